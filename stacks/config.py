"""Typed deployment configuration, one instance per stage, validated when it is built.

Nothing here reads the environment or CDK context: `app.py` picks the stage and passes the
config down, so every construct can be reused with a config of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

# Worker types a Glue 5.0 Spark ETL job accepts (Glue API, WorkerType).
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X")
# Amazon MWAA: Airflow versions with an image in Nov 2026, and the environment classes.
MWAA_AIRFLOW_VERSIONS = ("2.11.0", "3.0.6", "3.2.1", "3.3.1")
MWAA_ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
MWAA_WEB_SERVER_ACCESS = ("PRIVATE_ONLY", "PUBLIC_ONLY")
MWAA_EGRESS = ("vpc-endpoints", "nat-gateway")
REMOVAL_POLICIES = ("destroy", "retain")
OUTER_LOOPS = ("eventbridge", "mwaa")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 400, 545, 731)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()\-][A-Za-z0-9!_.*'()\-/]*/$")


class ConfigError(ValueError):
    """Invalid configuration: the message names the field, the value and what is allowed."""


def _fail(path: str, value: object, allowed: str) -> None:
    raise ConfigError(f"config {path} = {value!r}: {allowed}")


def _positive_int(path: str, value: object, *, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _fail(path, value, "must be an integer > 0")
    if maximum is not None and value > maximum:  # type: ignore[operator]
        _fail(path, value, f"must be an integer between 1 and {maximum}")


def _one_of(path: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(path, value, f"must be one of {', '.join(allowed)}")


# EventBridge cron: minutes hours day-of-month month day-of-week year, and exactly one of
# day-of-month / day-of-week is '?'. Each field: *, a value, a range, a list or an increment.
_CRON_FIELDS = (
    ("minutes", r"[0-5]?\d"),
    ("hours", r"(?:[01]?\d|2[0-3])"),
    ("day-of-month", r"(?:[1-9]|[12]\d|3[01])W?|L|LW"),
    ("month", r"(?:[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)"),
    ("day-of-week", r"(?:[1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(?:L|#[1-5])?"),
    ("year", r"(?:19[7-9]\d|2[01]\d\d)"),
)


def validate_cron(path: str, expression: str) -> None:
    """Check an EventBridge `cron(...)` expression field by field."""
    allowed = "must be an EventBridge expression cron(min hour day-of-month month day-of-week year)"
    match = re.fullmatch(r"cron\((.+)\)", expression) if isinstance(expression, str) else None
    if not match:
        _fail(path, expression, allowed)
    fields = match.group(1).split()  # type: ignore[union-attr]
    if len(fields) != 6:
        _fail(path, expression, f"{allowed}, six fields (got {len(fields)})")
    for (name, value_re), value in zip(_CRON_FIELDS, fields, strict=True):
        term = rf"(?:\*|{value_re})(?:-(?:{value_re}))?(?:/\d+)?"
        if value != "?" and not re.fullmatch(rf"{term}(?:,{term})*", value, flags=re.IGNORECASE):
            _fail(path, expression, f"{allowed}; field {name} {value!r} is not valid")
    if (fields[2] == "?") == (fields[4] == "?"):
        _fail(path, expression, f"{allowed}; exactly one of day-of-month and day-of-week must be '?'")


@dataclass(frozen=True, kw_only=True)
class CrawlerConfig:
    """How the crawl stage polls the crawler. Cost grows with polls: 3 transitions each."""

    poll_interval_seconds: int = 30
    max_polls: int = 60
    # StartCrawler retry on Glue.CrawlerRunningException: base interval, attempts.
    busy_retry_interval_seconds: int = 30
    busy_retry_attempts: int = 6

    def validate(self, path: str) -> None:
        _positive_int(f"{path}.poll_interval_seconds", self.poll_interval_seconds, maximum=3600)
        _positive_int(f"{path}.max_polls", self.max_polls, maximum=1000)
        _positive_int(f"{path}.busy_retry_interval_seconds", self.busy_retry_interval_seconds, maximum=3600)
        _positive_int(f"{path}.busy_retry_attempts", self.busy_retry_attempts, maximum=20)


@dataclass(frozen=True, kw_only=True)
class GlueJobConfig:
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    # Retry of glue:startJobRun on concurrency / throttling errors.
    busy_retry_interval_seconds: int = 60
    busy_retry_attempts: int = 5
    # Share of input rows the job may reject before the stage fails ValidationFailed.
    max_rejected_ratio: float = 0.10

    def validate(self, path: str) -> None:
        _one_of(f"{path}.worker_type", self.worker_type, GLUE_WORKER_TYPES)
        _positive_int(f"{path}.number_of_workers", self.number_of_workers, maximum=299)
        if self.number_of_workers < 2:
            _fail(f"{path}.number_of_workers", self.number_of_workers, "Glue Spark jobs need at least 2 workers")
        _positive_int(f"{path}.timeout_minutes", self.timeout_minutes, maximum=2880)
        _positive_int(f"{path}.busy_retry_interval_seconds", self.busy_retry_interval_seconds, maximum=3600)
        _positive_int(f"{path}.busy_retry_attempts", self.busy_retry_attempts, maximum=20)
        ratio = self.max_rejected_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            _fail(f"{path}.max_rejected_ratio", ratio, "must be a number between 0 and 1")


@dataclass(frozen=True, kw_only=True)
class MwaaConfig:
    airflow_version: str = "3.3.1"
    environment_class: str = "mw1.small"
    min_workers: int = 1
    max_workers: int = 2
    web_server_access: str = "PRIVATE_ONLY"
    egress: str = "vpc-endpoints"

    def validate(self, path: str) -> None:
        _one_of(f"{path}.airflow_version", self.airflow_version, MWAA_AIRFLOW_VERSIONS)
        _one_of(f"{path}.environment_class", self.environment_class, MWAA_ENVIRONMENT_CLASSES)
        _positive_int(f"{path}.min_workers", self.min_workers, maximum=25)
        _positive_int(f"{path}.max_workers", self.max_workers, maximum=25)
        if self.max_workers < self.min_workers:
            _fail(f"{path}.max_workers", self.max_workers, f"must be >= min_workers ({self.min_workers})")
        _one_of(f"{path}.web_server_access", self.web_server_access, MWAA_WEB_SERVER_ACCESS)
        _one_of(f"{path}.egress", self.egress, MWAA_EGRESS)


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """Everything that differs between deployment stages."""

    stage: str
    landing_prefix: str = "landing/"
    # Daily at 02:00 UTC; data arriving under landing_prefix also starts the pipeline.
    schedule: str = "cron(0 2 * * ? *)"
    crawler: CrawlerConfig = field(default_factory=CrawlerConfig)
    glue_job: GlueJobConfig = field(default_factory=GlueJobConfig)
    crawl_stage_timeout_minutes: int = 60
    transform_stage_timeout_minutes: int = 120
    pipeline_timeout_minutes: int = 240
    notification_emails: tuple[str, ...] = ()
    removal_policy: Literal["destroy", "retain"] = "destroy"
    log_retention_days: int = 30
    mwaa: MwaaConfig = field(default_factory=MwaaConfig)
    # Which loop starts the pipeline: the EventBridge rules (schedule + data arrival), or the
    # MWAA DAG. Only one: both would race for the one crawler. With "mwaa" the rules stay in the
    # template but disabled, and `make deploy` adds the Orchestration stack.
    outer_loop: Literal["eventbridge", "mwaa"] = "eventbridge"

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", self.stage):
            _fail("stage", self.stage, "must be 1-16 lower-case letters, digits or '-', starting with a letter")
        p = self.stage
        if not isinstance(self.landing_prefix, str) or not _PREFIX.fullmatch(self.landing_prefix):
            _fail(
                f"{p}.landing_prefix", self.landing_prefix, "must be an S3 key prefix ending in '/' (e.g. 'landing/')"
            )
        validate_cron(f"{p}.schedule", self.schedule)
        self.crawler.validate(f"{p}.crawler")
        self.glue_job.validate(f"{p}.glue_job")
        self.mwaa.validate(f"{p}.mwaa")
        for name in ("crawl_stage_timeout_minutes", "transform_stage_timeout_minutes", "pipeline_timeout_minutes"):
            _positive_int(f"{p}.{name}", getattr(self, name), maximum=525_600)
        if self.transform_stage_timeout_minutes <= self.glue_job.timeout_minutes:
            _fail(
                f"{p}.transform_stage_timeout_minutes",
                self.transform_stage_timeout_minutes,
                f"must be longer than glue_job.timeout_minutes ({self.glue_job.timeout_minutes})",
            )
        crawl_budget_s = self.crawler.poll_interval_seconds * self.crawler.max_polls
        if self.crawl_stage_timeout_minutes * 60 <= crawl_budget_s:
            _fail(
                f"{p}.crawl_stage_timeout_minutes",
                self.crawl_stage_timeout_minutes,
                f"must be longer than crawler.poll_interval_seconds x max_polls ({crawl_budget_s} s)",
            )
        stages = self.crawl_stage_timeout_minutes + self.transform_stage_timeout_minutes
        if self.pipeline_timeout_minutes < stages:
            _fail(
                f"{p}.pipeline_timeout_minutes",
                self.pipeline_timeout_minutes,
                f"must be at least the sum of the stage timeouts ({stages})",
            )
        for email in self.notification_emails:
            if not isinstance(email, str) or not _EMAIL.fullmatch(email):
                _fail(f"{p}.notification_emails", email, "each must be an e-mail address")
        _one_of(f"{p}.removal_policy", self.removal_policy, REMOVAL_POLICIES)
        _one_of(f"{p}.outer_loop", self.outer_loop, OUTER_LOOPS)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            _fail(
                f"{p}.log_retention_days",
                self.log_retention_days,
                f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (CloudWatch Logs retention)",
            )

    @property
    def is_production(self) -> bool:
        return self.removal_policy == "retain"


DEV = DeploymentConfig(stage="dev")

PROD = DeploymentConfig(
    stage="prod",
    glue_job=GlueJobConfig(number_of_workers=5, timeout_minutes=120),
    crawl_stage_timeout_minutes=90,
    transform_stage_timeout_minutes=180,
    pipeline_timeout_minutes=300,
    removal_policy="retain",
    log_retention_days=365,
    mwaa=MwaaConfig(environment_class="mw1.medium", max_workers=5),
)

# The dev stage with second-long waits and retries: what `make demo` and the scenario tests
# synthesize and execute locally. Deployable, but meant for local runs.
LOCAL = replace(
    DEV,
    stage="local",
    crawler=CrawlerConfig(poll_interval_seconds=1, max_polls=5, busy_retry_interval_seconds=1, busy_retry_attempts=5),
    glue_job=replace(DEV.glue_job, busy_retry_interval_seconds=1, busy_retry_attempts=5),
    crawl_stage_timeout_minutes=5,
    transform_stage_timeout_minutes=70,
    pipeline_timeout_minutes=80,
)

STAGES: dict[str, DeploymentConfig] = {c.stage: c for c in (DEV, PROD, LOCAL)}


def config_for(stage: str) -> DeploymentConfig:
    """The config of a deployment stage, or a ConfigError naming the stages there are."""
    try:
        return STAGES[stage]
    except KeyError:
        raise ConfigError(f"config stage = {stage!r}: must be one of {', '.join(STAGES)}") from None
