"""Typed deployment configuration, one instance per stage, validated when it is built.

A stage's config is built only when that stage is selected (`config_for`), so a mistake in one
stage's settings fails that stage alone, with one line naming the field, the value and what is
allowed.

Nothing here reads the environment or CDK context: `app.py` picks the stage and passes the
config down, so every construct can be reused with a config of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from stacks.mwaa_facts import (
    MWAA_AIRFLOW_VERSIONS,
    MWAA_EGRESS,
    MWAA_ENVIRONMENT_CLASSES,
    MWAA_MAX_WORKERS,
    MWAA_WEB_SERVER_ACCESS,
)

# Worker types a Glue 5.0 Spark ETL job accepts (Glue API, WorkerType).
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X")
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

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# One or more key segments, each ending in '/'. No '*' or '?': the job reads the prefix as a Hadoop
# glob and IAM as a wildcard, while the EventBridge rule matches it literally.
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.'()\-]+")


# The stage constructs' busy retries double the wait each time (crawl_stage.py, transform_stage.py).
BUSY_RETRY_BACKOFF_RATE = 2


class ConfigError(ValueError):
    """Invalid configuration: the message names the field, the value and what is allowed."""


def _fail(path: str, value: object, allowed: str) -> None:
    raise ConfigError(f"config {path} = {value!r}: {allowed}")


def _positive_int(path: str, value: object, *, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _fail(path, value, "must be an integer > 0")
    if maximum is not None and value > maximum:  # type: ignore[operator]
        _fail(path, value, f"must be an integer between 1 and {maximum}")


def _boolean(path: str, value: object) -> None:
    if not isinstance(value, bool):
        _fail(path, value, "must be True or False")


def _one_of(path: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(path, value, f"must be one of {', '.join(allowed)}")


# EventBridge cron: minutes hours day-of-month month day-of-week year, and exactly one of
# day-of-month / day-of-week is '?'. Each field: *, a value, a range, a list or an increment;
# day-of-month also L, LW or <day>W, day-of-week also <day>L or <day>#<1-5>, each on its own.
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29 in a leap year


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[0] stands for `low`

    def value(self, text: str) -> int | None:
        upper = text.upper()
        if upper in self.names:
            return self.low + self.names.index(upper)
        if text.isdigit() and self.low <= int(text) <= self.high:
            return int(text)
        return None


_CRON_FIELDS = (
    _CronField("minutes", 0, 59),
    _CronField("hours", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField("month", 1, 12, _MONTHS),
    _CronField("day-of-week", 1, 7, _WEEKDAYS),
    _CronField("year", 1970, 2199),
)
_CRON_TERM = re.compile(r"(\*|[0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?(?:/(\d+))?")


def _cron_values(spec: _CronField, text: str) -> set[int] | str:
    """The values a cron field stands for, or why it is not valid."""
    if spec.name == "day-of-month" and text.upper() in ("L", "LW"):
        return {28, 29, 30, 31}  # the last day of the month: one of these
    special = {"day-of-month": r"(\w+)W", "day-of-week": r"(\w+)(?:L|#[1-5])"}.get(spec.name)
    if special and (match := re.fullmatch(special, text, flags=re.IGNORECASE)):
        day = spec.value(match.group(1))
        return {day} if day is not None else f"{match.group(1)!r} is not a {spec.name}"
    values: set[int] = set()
    for term in text.split(","):
        match = _CRON_TERM.fullmatch(term)
        if not match:
            return "expected *, a value, a range a-b, a list a,b or an increment a/n"
        first, last, step = match.groups()
        start = spec.low if first == "*" else spec.value(first)
        end = spec.high if first == "*" or (last is None and step) else spec.value(last or first)
        if start is None or end is None or (first == "*" and last is not None):
            return f"values are {spec.low}-{spec.high}" + (
                f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
            )
        if start > end:
            return f"the range {term!r} runs backwards"
        if step is not None and not 1 <= int(step) <= spec.high - spec.low:
            return f"the increment in {term!r} must be between 1 and {spec.high - spec.low}"
        values.update(range(start, end + 1, int(step or 1)))
    return values


def validate_cron(path: str, expression: str) -> None:
    """Check an EventBridge `cron(...)` expression field by field, and that its dates exist."""
    allowed = "must be an EventBridge expression cron(min hour day-of-month month day-of-week year)"
    match = re.fullmatch(r"cron\((.+)\)", expression) if isinstance(expression, str) else None
    if not match:
        _fail(path, expression, allowed)
    fields = match.group(1).split()  # type: ignore[union-attr]
    if len(fields) != 6:
        _fail(path, expression, f"{allowed}, six fields (got {len(fields)})")
    values: dict[str, set[int]] = {}
    for spec, text in zip(_CRON_FIELDS, fields, strict=True):
        if text == "?" and spec.name in ("day-of-month", "day-of-week"):
            continue
        parsed = _cron_values(spec, text)
        if isinstance(parsed, str):
            _fail(path, expression, f"{allowed}; field {spec.name} {text!r} is not valid: {parsed}")
        values[spec.name] = parsed  # type: ignore[assignment]
    day_of_month, month, year = fields[2], fields[3], fields[5]
    if (day_of_month == "?") == (fields[4] == "?"):
        _fail(path, expression, f"{allowed}; exactly one of day-of-month and day-of-week must be '?'")
    if day_of_month != "?":
        leap = any(y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) for y in values["year"])
        longest = {m: _MONTH_DAYS[m - 1] - (m == 2 and not leap) for m in values["month"]}
        if not any(day <= longest[m] for day in values["day-of-month"] for m in longest):
            _fail(
                path,
                expression,
                f"{allowed}; day-of-month {day_of_month!r} never occurs in month {month!r}"
                + ("" if year == "*" else f" of year {year!r}"),
            )


def _validate_prefix(path: str, prefix: object) -> None:
    allowed = "must be an S3 key prefix ending in '/' (e.g. 'landing/' or 'landing/orders/')"
    if not isinstance(prefix, str) or not prefix.endswith("/") or len(prefix) > 256:
        _fail(path, prefix, f"{allowed}, at most 256 characters")
    for segment in prefix[:-1].split("/"):  # type: ignore[index]
        if segment in ("", ".", ".."):
            _fail(path, prefix, f"{allowed}; no empty, '.' or '..' segment (S3 and Hadoop would disagree on the key)")
        if not _PREFIX_SEGMENT.fullmatch(segment):
            _fail(path, prefix, f"{allowed}; segments of letters, digits and !_.'()- only (no '*', '?' or spaces)")


def _validate_emails(path: str, emails: object) -> None:
    if not isinstance(emails, tuple):
        _fail(path, emails, "must be a tuple of e-mail addresses, e.g. ('ops@example.com',)")
    seen: set[str] = set()
    for email in emails:  # type: ignore[attr-defined]
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            _fail(path, email, "each must be an e-mail address")
        if email.lower() in seen:
            _fail(path, email, "each address once (it is listed twice)")
        seen.add(email.lower())


def retry_worst_case_seconds(interval_seconds: int, attempts: int) -> int:
    """The longest a Step Functions Retry waits in all: interval x BackoffRate^i per attempt, no MaxDelaySeconds.

    Full jitter only ever shortens a wait. The stage constructs retry with BUSY_RETRY_BACKOFF_RATE.
    """
    return sum(interval_seconds * BUSY_RETRY_BACKOFF_RATE**attempt for attempt in range(attempts))


@dataclass(frozen=True, kw_only=True)
class CrawlerConfig:
    """How the crawl stage polls the crawler. Cost grows with polls: 4 transitions each (crawl_stage.py)."""

    poll_interval_seconds: int = 30
    max_polls: int = 60
    # StartCrawler retry on Glue.CrawlerRunningException: base interval, attempts.
    busy_retry_interval_seconds: int = 30
    # 30 + 60 + 120 + 240 + 480 = 930 s at most; with 60 polls of 30 s, 2,730 s of a 3,600 s stage.
    busy_retry_attempts: int = 5

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


MAX_BATCH_MEGABYTES = 10_240
# Step Functions caps a state's input and output at 256 KiB (States.DataLimitExceeded). A child
# workflow's input is its batch, {"Items": [{"key", "size", "run"}, ...]}: the Distributed Map cuts
# batches at MAX_BATCH_INPUT_BYTES (ItemBatcher MaxInputBytesPerBatch), half the cap, and batch_size
# is bounded so that a full batch of the longest keys S3 allows still fits that with room to spare.
STATE_PAYLOAD_LIMIT_BYTES = 256 * 1024
MAX_BATCH_INPUT_BYTES = STATE_PAYLOAD_LIMIT_BYTES // 2
MAX_S3_KEY_BYTES = 1024
# One item at its largest: a 1,024-byte key, a size of up to 5 TB (13 digits), a run name of an
# 80-character execution name plus "-r<round>", and the JSON around them (with a comma).
MAX_ADMISSION_ITEM_BYTES = len('{"key":"","size":,"run":""},') + MAX_S3_KEY_BYTES + 13 + 80 + len("-r20")
MAX_BATCH_SIZE = (MAX_BATCH_INPUT_BYTES - len('{"Items":[]}')) // MAX_ADMISSION_ITEM_BYTES


@dataclass(frozen=True, kw_only=True)
class AdmissionConfig:
    """How a run admits the files under the incoming prefix (a Distributed Map over the listing)."""

    # Files per child workflow (ItemBatcher MaxItemsPerBatch): the cost knob; see `make cost`.
    batch_size: int = 100
    # A file larger than this is quarantined. Each child workflow (Express: 5 minutes at most)
    # reads and moves its batch one file after another: batch_size x this is capped (see validate).
    max_file_megabytes: int = 64
    # Share of child workflows (batches) that may fail before the admission stage fails.
    tolerated_failure_percentage: int = 10
    # Rounds one pipeline run may do while files keep arriving (each round: admit, crawl, transform).
    max_rounds: int = 3

    def validate(self, path: str) -> None:
        if isinstance(self.batch_size, int) and self.batch_size > MAX_BATCH_SIZE:
            _fail(
                f"{path}.batch_size",
                self.batch_size,
                f"must be an integer between 1 and {MAX_BATCH_SIZE}: a batch of {MAX_S3_KEY_BYTES}-byte keys "
                f"must fit {MAX_BATCH_INPUT_BYTES:,} bytes, half of Step Functions' 256 KiB state limit",
            )
        _positive_int(f"{path}.batch_size", self.batch_size)
        _positive_int(f"{path}.max_file_megabytes", self.max_file_megabytes, maximum=5120)
        # At ~100 MB/s a Lambda reads 10 GB in under two minutes: a full batch of the largest files
        # must fit the admission Lambda's 4 minutes (ADMIT_TIMEOUT in stacks/admission_stage.py).
        worst = self.batch_size * self.max_file_megabytes
        if worst > MAX_BATCH_MEGABYTES:
            _fail(
                f"{path}.max_file_megabytes",
                self.max_file_megabytes,
                f"batch_size x max_file_megabytes must be at most {MAX_BATCH_MEGABYTES:,} MB "
                f"(a batch is read within 4 minutes); with batch_size {self.batch_size}: "
                f"at most {MAX_BATCH_MEGABYTES // self.batch_size}",
            )
        value = self.tolerated_failure_percentage
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            _fail(f"{path}.tolerated_failure_percentage", value, "must be an integer from 0 to 100")
        _positive_int(f"{path}.max_rounds", self.max_rounds, maximum=20)


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
        _positive_int(f"{path}.min_workers", self.min_workers, maximum=MWAA_MAX_WORKERS)
        _positive_int(f"{path}.max_workers", self.max_workers, maximum=MWAA_MAX_WORKERS)
        if self.max_workers < self.min_workers:
            _fail(f"{path}.max_workers", self.max_workers, f"must be >= min_workers ({self.min_workers})")
        if self.environment_class == "mw1.micro" and self.max_workers != 1:
            _fail(f"{path}.max_workers", self.max_workers, "must be 1 with mw1.micro (one worker, no extra workers)")
        _one_of(f"{path}.web_server_access", self.web_server_access, MWAA_WEB_SERVER_ACCESS)
        _one_of(f"{path}.egress", self.egress, MWAA_EGRESS)


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
            _fail("stage", self.stage, "must be 1-16 lower-case letters, digits or '-', starting with a letter")
        p = self.stage
        prefixes = {name: getattr(self, name) for name in ("incoming_prefix", "landing_prefix", "quarantine_prefix")}
        for name, prefix in prefixes.items():
            _validate_prefix(f"{p}.{name}", prefix)
        for name, prefix in prefixes.items():
            for other, other_prefix in prefixes.items():
                if name != other and prefix.startswith(other_prefix):
                    _fail(
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
            _positive_int(f"{p}.{name}", getattr(self, name), maximum=525_600)
        for name, (worst, parts) in (
            ("crawl_stage_timeout_minutes", self.crawl_stage_worst_case()),
            ("transform_stage_timeout_minutes", self.transform_stage_worst_case()),
        ):
            if getattr(self, name) * 60 <= worst:
                _fail(
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
            _fail(
                f"{p}.pipeline_timeout_minutes",
                self.pipeline_timeout_minutes,
                f"must be at least admission.max_rounds ({self.admission.max_rounds}) x the sum of the stage "
                f"timeouts ({stages}) = {stages * self.admission.max_rounds}",
            )
        _validate_emails(f"{p}.notification_emails", self.notification_emails)
        _boolean(f"{p}.notifications_required", self.notifications_required)
        if self.notifications_required and not self.notification_emails:
            _fail(
                f"{p}.notification_emails",
                self.notification_emails,
                f"stage {p} needs at least one address for its failure notices and alarms: "
                "-c notification_emails=ops@example.com (make ... EMAILS=ops@example.com)",
            )
        _boolean(f"{p}.reserve_lambda_concurrency", self.reserve_lambda_concurrency)
        _one_of(f"{p}.state_machine_log_level", self.state_machine_log_level, STATE_MACHINE_LOG_LEVELS)
        _boolean(f"{p}.state_machine_log_execution_data", self.state_machine_log_execution_data)
        if self.state_machine_log_level == "OFF" and self.state_machine_log_execution_data:
            _fail(
                f"{p}.state_machine_log_execution_data",
                self.state_machine_log_execution_data,
                "must be False when state_machine_log_level is OFF (nothing is logged)",
            )
        _one_of(f"{p}.removal_policy", self.removal_policy, REMOVAL_POLICIES)
        _one_of(f"{p}.outer_loop", self.outer_loop, OUTER_LOOPS)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            _fail(
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
        crawler=CrawlerConfig(
            poll_interval_seconds=1, max_polls=5, busy_retry_interval_seconds=1, busy_retry_attempts=5
        ),
        glue_job=replace(dev.glue_job, busy_retry_interval_seconds=1, busy_retry_attempts=5),
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
