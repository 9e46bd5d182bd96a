"""The registry's RedriveExecution and status-change events (localrun/emulator/moto/redrive.py), against the
AWS behaviour they stand in for: resume at the state that failed, with its recorded input, the
history continued, `$$.Execution.RedriveCount` counting; one status-change event per end."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localrun.emulator.deployment import local_aws
from localrun.emulator.moto import redrive as moto_redrive

ROLE = "arn:aws:iam::123456789012:role/r"
# First (records the redrive count it ran under) ─► Read (fails until the object exists) ─► Done
DEFINITION = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Parameters": {"first_ran_under.$": "$$.Execution.RedriveCount"}, "Next": "Read"},
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {"Bucket": "redrive-bucket", "Key": "k"},
            "ResultSelector": {"ok": True},
            "ResultPath": "$.read",
            "Next": "Done",
        },
        "Done": {
            "Type": "Pass",
            "Parameters": {"first_ran_under.$": "$.first_ran_under", "done_under.$": "$$.Execution.RedriveCount"},
            "End": True,
        },
    },
}


def _wait(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "still running"
        time.sleep(0.05)
    return dict(described)


def test_a_redrive_resumes_the_failed_state_with_its_recorded_input_and_counts() -> None:
    with local_aws():
        sfn, s3 = boto3.client("stepfunctions"), boto3.client("s3")
        s3.create_bucket(Bucket="redrive-bucket")
        machine = sfn.create_state_machine(name="m", definition=json.dumps(DEFINITION), roleArn=ROLE)["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")["executionArn"]
        failed = _wait(sfn, arn)
        assert failed["status"] == "FAILED" and failed["error"].endswith("NoSuchKeyException")
        assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")

        s3.put_object(Bucket="redrive-bucket", Key="k", Body=b"now it is there")  # the cause fixed
        assert "redriveDate" in sfn.redrive_execution(executionArn=arn)
        done = _wait(sfn, arn)
        assert done["status"] == "SUCCEEDED" and done["executionArn"] == arn  # the same execution
        # First ran once, before the failure (count 0); the redrive went on from Read (count 1).
        assert json.loads(done["output"]) == {"first_ran_under": 0, "done_under": 1}
        assert (done["redriveCount"], done["redriveStatus"]) == (1, "NOT_REDRIVABLE") and "redriveDate" in done

        events = sfn.get_execution_history(executionArn=arn)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
        assert entered == ["First", "Read", "Read", "Done"]
        [redriven] = [e for e in events if e["type"] == "ExecutionRedriven"]
        assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
        assert [e["id"] for e in events] == sorted({e["id"] for e in events})  # one history, ids continued

        with pytest.raises(ClientError, match="ExecutionNotRedrivable"):
            sfn.redrive_execution(executionArn=arn)  # SUCCEEDED: nothing to redrive


def test_every_end_emits_one_status_change_event_in_aws_format() -> None:
    seen: list[dict[str, Any]] = []
    with local_aws():
        moto_redrive.on_status_change(seen.append)
        sfn = boto3.client("stepfunctions")
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(name="p", definition=definition, roleArn=ROLE)["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="ok", input='{"a": 1}')["executionArn"]
        _wait(sfn, arn)
        moto_redrive.wait_for_deliveries()
    [event] = seen
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    detail = event["detail"]
    assert (detail["executionArn"], detail["stateMachineArn"], detail["status"]) == (arn, machine, "SUCCEEDED")
    assert json.loads(detail["input"]) == {"a": 1} and event["resources"] == [arn]
    assert moto_redrive._listeners == []  # the listeners end with the registry
