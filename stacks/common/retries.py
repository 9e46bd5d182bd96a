"""Every Retry of the state machines, named once: which errors are transient, and how long to wait.

aws-sdk integrations name their errors `<Service>.<ErrorCode>` (AWS Step Functions developer guide).
The transient errors are retried a few times, seconds apart. A busy resource (a crawler already
crawling, a job at its concurrent-runs limit) is retried for as long as the stage's config allows:
`busy_retry`, with the backoff rate (BUSY_RETRY_BACKOFF_RATE) that the config's worst-case budget
of each stage assumes (stacks/config/settings.py, retry_worst_case_seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

from stacks.config.settings import BUSY_RETRY_BACKOFF_RATE

LAMBDA_TRANSIENT_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
S3_TRANSIENT_ERRORS = ("S3.S3Exception", "S3.SdkClientException")
GLUE_THROTTLING_ERRORS = ("Glue.ThrottlingException",)
GLUE_TRANSIENT_ERRORS = ("Glue.ThrottlingException", "Glue.InternalServiceException", "Glue.OperationTimeoutException")
SNS_TRANSIENT_ERRORS = ("SNS.InternalErrorException", "SNS.ThrottledException", "SNS.KMSThrottlingException")
DYNAMODB_TRANSIENT_ERRORS = (
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.ThrottlingException",
)
# What a states:startExecution / aws-sdk:sfn call may fail with for a moment (AWS Step Functions
# API reference: ThrottlingException): the optimized integration names errors StepFunctions.X,
# the aws-sdk one Sfn.X.
SFN_START_TRANSIENT_ERRORS = ("StepFunctions.ThrottlingException", "StepFunctions.SdkClientException")
SFN_SDK_TRANSIENT_ERRORS = ("Sfn.ThrottlingException", "Sfn.SdkClientException")
# StartCrawler while the crawler crawls; glue:startJobRun while the job runs its maximum of
# concurrent runs, or when throttled.
CRAWLER_BUSY_ERRORS = ("Glue.CrawlerRunningException",)
GLUE_JOB_BUSY_ERRORS = ("Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """One Retry: the errors, the first wait, the attempts, how the wait grows, full jitter or none."""

    errors: tuple[str, ...]
    interval_seconds: int  # seconds, not a Duration: a Duration is a jsii call, and these are made at import
    max_attempts: int
    backoff_rate: float | None = None  # None: left out of the template (Step Functions doubles: 2.0)
    full_jitter: bool = False

    def apply(self, task: sfn.TaskStateBase | sfn.CustomState) -> None:
        task.add_retry(
            errors=list(self.errors),
            interval=Duration.seconds(self.interval_seconds),
            max_attempts=self.max_attempts,
            backoff_rate=self.backoff_rate,
            jitter_strategy=sfn.JitterType.FULL if self.full_jitter else None,
        )


LAMBDA_TRANSIENT = RetryPolicy(
    errors=LAMBDA_TRANSIENT_ERRORS, interval_seconds=2, max_attempts=3, backoff_rate=2, full_jitter=True
)
S3_TRANSIENT = RetryPolicy(errors=S3_TRANSIENT_ERRORS, interval_seconds=2, max_attempts=3)
GLUE_THROTTLING = RetryPolicy(
    errors=GLUE_THROTTLING_ERRORS, interval_seconds=2, max_attempts=3, backoff_rate=2, full_jitter=True
)
GLUE_TRANSIENT = RetryPolicy(errors=GLUE_TRANSIENT_ERRORS, interval_seconds=2, max_attempts=3, backoff_rate=2)
SNS_TRANSIENT = RetryPolicy(
    errors=SNS_TRANSIENT_ERRORS, interval_seconds=2, max_attempts=3, backoff_rate=2, full_jitter=True
)
DYNAMODB_TRANSIENT = RetryPolicy(errors=DYNAMODB_TRANSIENT_ERRORS, interval_seconds=1, max_attempts=5, backoff_rate=2)
SFN_START_TRANSIENT = RetryPolicy(errors=SFN_START_TRANSIENT_ERRORS, interval_seconds=1, max_attempts=5, backoff_rate=2)
SFN_SDK_TRANSIENT = RetryPolicy(errors=SFN_SDK_TRANSIENT_ERRORS, interval_seconds=1, max_attempts=5, backoff_rate=2)


def busy_retry(errors: tuple[str, ...], *, interval: Duration, attempts: int) -> RetryPolicy:
    """Retry a busy resource `attempts` times from `interval`, as the config budgets it (with full jitter)."""
    return RetryPolicy(
        errors=errors,
        interval_seconds=int(interval.to_seconds()),
        max_attempts=attempts,
        backoff_rate=BUSY_RETRY_BACKOFF_RATE,
        full_jitter=True,
    )
