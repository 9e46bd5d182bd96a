"""How long things are kept, from the config's values: log retention and the removal policy.

The config validates both (LOG_RETENTION_DAYS, REMOVAL_POLICIES); this maps them to CDK's types
for every stack, so the mapping is written once.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from stacks.config.deployment import LOG_RETENTION_DAYS, REMOVAL_POLICIES


def log_retention(days: int) -> logs.RetentionDays:
    try:
        return logs.RetentionDays[LOG_RETENTION_DAYS[days]]
    except KeyError:
        raise ValueError(
            f"log retention {days!r} days: must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
        ) from None


def removal_policy(name: str) -> RemovalPolicy:
    """`name` ("destroy" or "retain", DeploymentConfig.removal_policy) as CDK's RemovalPolicy."""
    if name not in REMOVAL_POLICIES:
        raise ValueError(f"removal policy {name!r}: must be one of {', '.join(REMOVAL_POLICIES)}")
    return RemovalPolicy[name.upper()]
