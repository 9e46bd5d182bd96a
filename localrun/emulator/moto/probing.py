"""What the probes share: plain, unpatched moto and a few helpers to reproduce a gap on it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.moto_api import state_manager

from localrun.emulator.assembly import ACCOUNT_ID, PARTITION

# -- probes: plain moto, no patch applied --------------------------------------------------------
PROBE_ROLE = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/probe"
PROBE_REGION = "us-east-1"
PROBE_BUCKET = "probe-bucket"


@contextlib.contextmanager
def plain_moto() -> Iterator[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    credentials = {"AWS_ACCESS_KEY_ID": "probe", "AWS_SECRET_ACCESS_KEY": "probe", "AWS_DEFAULT_REGION": PROBE_REGION}
    with mock.patch.dict(os.environ, credentials), mock.patch.dict(state_manager._transitions):
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield {name: boto3.client(name) for name in ("s3", "glue", "stepfunctions")}


def create_machine(clients: dict[str, Any], name: str, definition: dict) -> str:
    sfn = clients["stepfunctions"]
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=PROBE_ROLE)["stateMachineArn"]


def create_crawler(clients: dict[str, Any]) -> None:
    clients["glue"].create_crawler(
        Name="c", Role=PROBE_ROLE, DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://probe-bucket/landing/"}]}
    )


def run_task(clients: dict[str, Any], name: str, task: dict) -> dict[str, Any]:
    """One Task state executed to its end: DescribeExecution's answer (or why it failed)."""
    sfn = clients["stepfunctions"]
    arn = create_machine(clients, name, {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True, **task}}})
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run")["executionArn"]
    for _ in range(100):
        try:
            described = sfn.describe_execution(executionArn=execution)
        except Exception as error:  # DescribeExecution itself breaks on datetime outputs
            return {"status": "DESCRIBE_FAILED", "cause": str(error)}
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.1)
    return {"status": "RUNNING"}
