"""A stage's configuration: DeploymentConfig, everything that differs between deployment stages,
validated when it is built (the stages themselves: stacks/config/stages.py).

Nothing here reads the environment or CDK context: `app.py` picks the stage and passes the
config down, so every construct can be reused with a config of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from stacks.config.checks import boolean, fail, one_of, positive_int, validate_emails, validate_prefix
from stacks.config.cron import validate_cron
from stacks.config.settings import (
    AdmissionConfig,
    CrawlerConfig,
    GlueJobConfig,
    MwaaConfig,
    retry_worst_case_seconds,
)

REMOVAL_POLICIES = ("destroy", "retain")
OUTER_LOOPS = ("eventbridge", "mwaa")
# Step Functions log levels (LoggingConfiguration.Level): every event, errors only, fatal only, none.
STATE_MACHINE_LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
# CloudWatch Logs retention: the day counts it accepts, each by its name in CDK's RetentionDays.
LOG_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
}


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """Everything that differs between deployment stages."""

    stage: str
    # Uploads land under incoming_prefix; a run admits each file into its own folder under
    # landing_prefix (landing/run=<run>/...) or moves it to quarantine_prefix with a reason.
    incoming_prefix: str = "incoming/"
    landing_prefix: str = "landing/"
    quarantine_prefix: str = "quarantine/"
    # Daily at 02:00 UTC; a .csv arriving under incoming_prefix also starts the pipeline.
    schedule: str = "cron(0 2 * * ? *)"
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    crawler: CrawlerConfig = field(default_factory=CrawlerConfig)
    glue_job: GlueJobConfig = field(default_factory=GlueJobConfig)
    admission_stage_timeout_minutes: int = 30
    crawl_stage_timeout_minutes: int = 60
    transform_stage_timeout_minutes: int = 120
    # At least max_rounds x the three stage timeouts: a timeout never cuts a round short.
    pipeline_timeout_minutes: int = 660
    notification_emails: tuple[str, ...] = ()
    # A stage whose failure notices and alarms must reach someone: it refuses to synthesize
    # without an address (`-c notification_emails=...`, see app.py).
    notifications_required: bool = False
    # Reserve Lambda concurrency for the pipeline's functions (admit 10, summarize 2, check 2): a
    # runaway caller cannot starve them, but every reservation comes out of the account's pool,
    # of which Lambda keeps 100 unreserved; a new account's quota (often 10 or 50) refuses the deploy.
    reserve_lambda_concurrency: bool = False
    # What the state machines log: ALL with execution data shows every state's input and output
    # (every file key) and costs per event; ERROR without data logs failures and their errors only.
    state_machine_log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = "ALL"
    state_machine_log_execution_data: bool = True
    removal_policy: Literal["destroy", "retain"] = "destroy"
    log_retention_days: int = 30
    mwaa: MwaaConfig = field(default_factory=MwaaConfig)
    # Which loop starts the pipeline: the EventBridge rules (schedule + data arrival), or the
    # MWAA DAG. Only one: both would race for the one crawler. With "mwaa" the rules stay in the
    # template but disabled, and `make deploy` adds the Orchestration stack.
    outer_loop: Literal["eventbridge", "mwaa"] = "eventbridge"

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", self.stage):
            fail("stage", self.stage, "must be 1-16 lower-case letters, digits or '-', starting with a letter")
        p = self.stage
        prefixes = {name: getattr(self, name) for name in ("incoming_prefix", "landing_prefix", "quarantine_prefix")}
        for name, prefix in prefixes.items():
            validate_prefix(f"{p}.{name}", prefix)
        for name, prefix in prefixes.items():
            for other, other_prefix in prefixes.items():
                if name != other and prefix.startswith(other_prefix):
                    fail(
                        f"{p}.{name}",
                        prefix,
                        f"must not lie inside {other} ({other_prefix!r}): files would move in circles",
                    )
        self.admission.validate(f"{p}.admission")
        validate_cron(f"{p}.schedule", self.schedule)
        self.crawler.validate(f"{p}.crawler")
        self.glue_job.validate(f"{p}.glue_job")
        self.mwaa.validate(f"{p}.mwaa")
        for name in (
            "admission_stage_timeout_minutes",
            "crawl_stage_timeout_minutes",
            "transform_stage_timeout_minutes",
            "pipeline_timeout_minutes",
        ):
            positive_int(f"{p}.{name}", getattr(self, name), maximum=525_600)
        for name, (worst, parts) in (
            ("crawl_stage_timeout_minutes", self.crawl_stage_worst_case()),
            ("transform_stage_timeout_minutes", self.transform_stage_worst_case()),
        ):
            if getattr(self, name) * 60 <= worst:
                fail(
                    f"{p}.{name}",
                    getattr(self, name),
                    f"must be longer than the stage's worst case, {worst} s ({parts})",
                )
        stages = (
            self.admission_stage_timeout_minutes
            + self.crawl_stage_timeout_minutes
            + self.transform_stage_timeout_minutes
        )
        if self.pipeline_timeout_minutes < stages * self.admission.max_rounds:
            fail(
                f"{p}.pipeline_timeout_minutes",
                self.pipeline_timeout_minutes,
                f"must be at least admission.max_rounds ({self.admission.max_rounds}) x the sum of the stage "
                f"timeouts ({stages}) = {stages * self.admission.max_rounds}",
            )
        validate_emails(f"{p}.notification_emails", self.notification_emails)
        boolean(f"{p}.notifications_required", self.notifications_required)
        if self.notifications_required and not self.notification_emails:
            fail(
                f"{p}.notification_emails",
                self.notification_emails,
                f"stage {p} needs at least one address for its failure notices and alarms: "
                "-c notification_emails=ops@example.com (make ... EMAILS=ops@example.com)",
            )
        boolean(f"{p}.reserve_lambda_concurrency", self.reserve_lambda_concurrency)
        one_of(f"{p}.state_machine_log_level", self.state_machine_log_level, STATE_MACHINE_LOG_LEVELS)
        boolean(f"{p}.state_machine_log_execution_data", self.state_machine_log_execution_data)
        if self.state_machine_log_level == "OFF" and self.state_machine_log_execution_data:
            fail(
                f"{p}.state_machine_log_execution_data",
                self.state_machine_log_execution_data,
                "must be False when state_machine_log_level is OFF (nothing is logged)",
            )
        one_of(f"{p}.removal_policy", self.removal_policy, REMOVAL_POLICIES)
        one_of(f"{p}.outer_loop", self.outer_loop, OUTER_LOOPS)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            fail(
                f"{p}.log_retention_days",
                self.log_retention_days,
                f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (CloudWatch Logs retention)",
            )

    def crawl_stage_worst_case(self) -> tuple[int, str]:
        """Seconds the crawl stage can spend in configured waits: StartCrawler busy retries, then every poll."""
        c = self.crawler
        busy = retry_worst_case_seconds(c.busy_retry_interval_seconds, c.busy_retry_attempts)
        polls = c.max_polls * c.poll_interval_seconds
        return busy + polls, f"crawler busy retries {busy} s + max_polls x poll_interval_seconds {polls} s"

    def transform_stage_worst_case(self) -> tuple[int, str]:
        """Seconds the transform stage can spend: StartJobRun busy retries, then one job run to its timeout.

        The job has no Glue retries of its own (MaxRetries 0), so one run is the most it waits for.
        """
        j = self.glue_job
        busy = retry_worst_case_seconds(j.busy_retry_interval_seconds, j.busy_retry_attempts)
        run = j.timeout_minutes * 60
        return busy + run, f"glue_job busy retries {busy} s + glue_job.timeout_minutes {run} s"

    @property
    def is_production(self) -> bool:
        return self.removal_policy == "retain"
