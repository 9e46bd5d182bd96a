"""The settings of each part of a stage: admission, the crawler, the Glue job, MWAA.

Each is a frozen keyword-only dataclass whose `validate(path)` checks its own fields; the
DeploymentConfig of a stage (stacks/config/deployment.py) holds one of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config.checks import fail, one_of, positive_int
from stacks.config.mwaa_facts import (
    MWAA_AIRFLOW_VERSIONS,
    MWAA_EGRESS,
    MWAA_ENVIRONMENT_CLASSES,
    MWAA_MAX_WORKERS,
    MWAA_WEB_SERVER_ACCESS,
)

# Worker types a Glue 5.0 Spark ETL job accepts (Glue API, WorkerType).
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X")

# Busy retries double the wait each time (stacks/common/retries.py busy_retry).
BUSY_RETRY_BACKOFF_RATE = 2


def retry_worst_case_seconds(interval_seconds: int, attempts: int) -> int:
    """The longest a Step Functions Retry waits in all: interval x BackoffRate^i per attempt, no MaxDelaySeconds.

    Full jitter only ever shortens a wait. The stage constructs retry with BUSY_RETRY_BACKOFF_RATE.
    """
    return sum(interval_seconds * BUSY_RETRY_BACKOFF_RATE**attempt for attempt in range(attempts))


@dataclass(frozen=True, kw_only=True)
class CrawlerConfig:
    """How the crawl stage waits for the crawler (stacks/pipeline/stages/crawl_stage.py): woken by the
    crawl's end event, it looks at the crawler itself after `event_wait_polls` intervals without one
    (EventBridge delivers Glue's events best effort), and fails CrawlerTimedOut after `max_polls`."""

    poll_interval_seconds: int = 30
    max_polls: int = 60
    # One wait for the end event: 10 x 30 s. A crawl longer than a wait, or a lost event, costs one
    # more look (5 transitions); a longer wait is cheaper for long crawls, slower after a lost event.
    event_wait_polls: int = 10
    # StartCrawler retry on Glue.CrawlerRunningException: base interval, attempts.
    busy_retry_interval_seconds: int = 30
    # 30 + 60 + 120 + 240 + 480 = 930 s at most; with 60 polls of 30 s, 2,730 s of a 3,600 s stage.
    busy_retry_attempts: int = 5

    def validate(self, path: str) -> None:
        positive_int(f"{path}.poll_interval_seconds", self.poll_interval_seconds, maximum=3600)
        positive_int(f"{path}.max_polls", self.max_polls, maximum=1000)
        positive_int(f"{path}.event_wait_polls", self.event_wait_polls, maximum=1000)
        positive_int(f"{path}.busy_retry_interval_seconds", self.busy_retry_interval_seconds, maximum=3600)
        positive_int(f"{path}.busy_retry_attempts", self.busy_retry_attempts, maximum=20)


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
        one_of(f"{path}.worker_type", self.worker_type, GLUE_WORKER_TYPES)
        positive_int(f"{path}.number_of_workers", self.number_of_workers, maximum=299)
        if self.number_of_workers < 2:
            fail(f"{path}.number_of_workers", self.number_of_workers, "Glue Spark jobs need at least 2 workers")
        positive_int(f"{path}.timeout_minutes", self.timeout_minutes, maximum=2880)
        positive_int(f"{path}.busy_retry_interval_seconds", self.busy_retry_interval_seconds, maximum=3600)
        positive_int(f"{path}.busy_retry_attempts", self.busy_retry_attempts, maximum=20)
        ratio = self.max_rejected_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            fail(f"{path}.max_rejected_ratio", ratio, "must be a number between 0 and 1")


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
            fail(
                f"{path}.batch_size",
                self.batch_size,
                f"must be an integer between 1 and {MAX_BATCH_SIZE}: a batch of {MAX_S3_KEY_BYTES}-byte keys "
                f"must fit {MAX_BATCH_INPUT_BYTES:,} bytes, half of Step Functions' 256 KiB state limit",
            )
        positive_int(f"{path}.batch_size", self.batch_size)
        positive_int(f"{path}.max_file_megabytes", self.max_file_megabytes, maximum=5120)
        # At ~100 MB/s a Lambda reads 10 GB in under two minutes: a full batch of the largest files
        # must fit the admission Lambda's 4 minutes (ADMIT_TIMEOUT_MINUTES, stacks/pipeline/stages/admission_stage.py).
        worst = self.batch_size * self.max_file_megabytes
        if worst > MAX_BATCH_MEGABYTES:
            fail(
                f"{path}.max_file_megabytes",
                self.max_file_megabytes,
                f"batch_size x max_file_megabytes must be at most {MAX_BATCH_MEGABYTES:,} MB "
                f"(a batch is read within 4 minutes); with batch_size {self.batch_size}: "
                f"at most {MAX_BATCH_MEGABYTES // self.batch_size}",
            )
        value = self.tolerated_failure_percentage
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            fail(f"{path}.tolerated_failure_percentage", value, "must be an integer from 0 to 100")
        positive_int(f"{path}.max_rounds", self.max_rounds, maximum=20)


@dataclass(frozen=True, kw_only=True)
class MwaaConfig:
    airflow_version: str = "3.3.1"
    environment_class: str = "mw1.small"
    min_workers: int = 1
    max_workers: int = 2
    web_server_access: str = "PRIVATE_ONLY"
    egress: str = "vpc-endpoints"

    def validate(self, path: str) -> None:
        one_of(f"{path}.airflow_version", self.airflow_version, MWAA_AIRFLOW_VERSIONS)
        one_of(f"{path}.environment_class", self.environment_class, MWAA_ENVIRONMENT_CLASSES)
        positive_int(f"{path}.min_workers", self.min_workers, maximum=MWAA_MAX_WORKERS)
        positive_int(f"{path}.max_workers", self.max_workers, maximum=MWAA_MAX_WORKERS)
        if self.max_workers < self.min_workers:
            fail(f"{path}.max_workers", self.max_workers, f"must be >= min_workers ({self.min_workers})")
        if self.environment_class == "mw1.micro" and self.max_workers != 1:
            fail(f"{path}.max_workers", self.max_workers, "must be 1 with mw1.micro (one worker, no extra workers)")
        one_of(f"{path}.web_server_access", self.web_server_access, MWAA_WEB_SERVER_ACCESS)
        one_of(f"{path}.egress", self.egress, MWAA_EGRESS)
