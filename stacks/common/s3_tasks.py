"""One Step Functions task the stages share: is anything stored under a prefix?"""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.retries import S3_TRANSIENT


def count_keys(
    scope: Construct, id_: str, *, bucket: s3.IBucket, prefix: str, result_path: str
) -> tasks.CallAwsService:
    """ListObjectsV2 of at most one key under `prefix` (its KeyCount, 0 or 1, at `result_path`.count),
    retried on S3's transient errors; grants s3:ListBucket on `bucket` only. `prefix` may be a
    JsonPath token (sfn.JsonPath.format, string_at): read from the state's input."""
    task = tasks.CallAwsService(
        scope,
        id_,
        service="s3",
        action="listObjectsV2",
        parameters={"Bucket": bucket.bucket_name, "Prefix": prefix, "MaxKeys": 1},
        iam_action="s3:ListBucket",
        iam_resources=[bucket.bucket_arn],
        result_selector={"count.$": "$.KeyCount"},
        result_path=result_path,
    )
    S3_TRANSIENT.apply(task)
    return task
