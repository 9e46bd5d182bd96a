"""The deployment stages, dev, prod and local: one validated DeploymentConfig each.

A stage's config is built only when that stage is selected (`config_for`), so a mistake in one
stage's settings fails that stage alone, with one line naming the field, the value and what is
allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from stacks.config.checks import ConfigError
from stacks.config.deployment import DeploymentConfig
from stacks.config.settings import CrawlerConfig, GlueJobConfig, MwaaConfig

# --- the stages ---------------------------------------------------------------------------------
# One function per stage: a stage's config is built, and so validated, only when that stage is
# selected, so a mistake in dev does not stop `make synth STAGE=prod`. DEV and LOCAL still read as
# constants: they are built on first use (module __getattr__ below).


def dev_stage(*, notification_emails: tuple[str, ...] = ()) -> DeploymentConfig:
    return DeploymentConfig(stage="dev", notification_emails=notification_emails)


def prod_stage(*, notification_emails: tuple[str, ...] = ()) -> DeploymentConfig:
    return DeploymentConfig(
        stage="prod",
        # The addresses are the deployer's: `-c notification_emails=...` (app.py), required here.
        notification_emails=notification_emails,
        notifications_required=True,
        reserve_lambda_concurrency=True,
        state_machine_log_level="ERROR",
        state_machine_log_execution_data=False,
        glue_job=GlueJobConfig(number_of_workers=5, timeout_minutes=120),
        crawl_stage_timeout_minutes=90,
        transform_stage_timeout_minutes=180,
        pipeline_timeout_minutes=900,
        removal_policy="retain",
        log_retention_days=365,
        mwaa=MwaaConfig(environment_class="mw1.medium", max_workers=5),
    )


def local_stage(*, notification_emails: tuple[str, ...] = ()) -> DeploymentConfig:
    """The dev stage with second-long waits and retries: what `make demo` and the scenario tests
    synthesize and execute locally. Deployable, but meant for local runs."""
    dev = dev_stage(notification_emails=notification_emails)
    return replace(
        dev,
        stage="local",
        # Three busy retries (1 + 2 + 4 s): a scenario that spends them all waits 7 s, not 31 s.
        crawler=CrawlerConfig(
            poll_interval_seconds=1, max_polls=5, busy_retry_interval_seconds=1, busy_retry_attempts=3
        ),
        glue_job=replace(dev.glue_job, busy_retry_interval_seconds=1, busy_retry_attempts=3),
        admission_stage_timeout_minutes=5,
        crawl_stage_timeout_minutes=5,
        transform_stage_timeout_minutes=70,
        pipeline_timeout_minutes=240,
    )


STAGE_BUILDERS: dict[str, Callable[..., DeploymentConfig]] = {
    "dev": dev_stage,
    "prod": prod_stage,
    "local": local_stage,
}

if TYPE_CHECKING:  # built on first use by __getattr__
    DEV: DeploymentConfig
    LOCAL: DeploymentConfig


def config_for(stage: object, *, notification_emails: tuple[str, ...] = ()) -> DeploymentConfig:
    """The validated config of one deployment stage, or a ConfigError naming the stages there are.

    `notification_emails`: the deployer's addresses (they are not the repository's to know).
    """
    builder = STAGE_BUILDERS.get(stage) if isinstance(stage, str) else None
    if builder is None:
        raise ConfigError(f"config stage = {stage!r}: must be one of {', '.join(STAGE_BUILDERS)}")
    return builder(notification_emails=notification_emails)


def __getattr__(name: str) -> object:
    # No PROD: prod is built only with the deployer's addresses (config_for("prod", notification_emails=...)).
    if name in ("DEV", "LOCAL"):
        return config_for(name.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
