"""One notice for every unsuccessful end of the pipeline: the status-change rule, its Lambda, the notice.

Template tests read the synthesized Pipeline stack; the notice tests run the handler's pure part
(`notice`) over a status-change event's detail and the end of a history, as AWS delivers them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import one_resource, render, state_machine_logical_id
from tests.stacks.test_pipeline_template import PIPELINE

HANDLER = Path(__file__).resolve().parents[2] / "lambda" / "failure_notice" / "handler.py"
EXECUTION = "arn:aws:states:us-east-1:111122223333:execution:pipeline:3f8a"
STAGE_EXECUTION = "arn:aws:states:us-east-1:111122223333:execution:transform-machine:abc-0-transform"


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("failure_notice_handler_test", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rule(dev: Any) -> dict[str, Any]:
    template = dev.templates["pipeline"].to_json()
    [found] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    return found["Properties"]


def test_the_rule_matches_every_unsuccessful_end_of_the_pipeline_machine_only(dev: Any, rule: dict[str, Any]) -> None:
    pipeline = state_machine_logical_id(dev.templates["pipeline"], PIPELINE)
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]  # not SUCCEEDED: its own notice
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": pipeline}]
    assert rule.get("State", "ENABLED") == "ENABLED"  # whichever outer loop is active


def test_the_rule_delivers_to_the_notice_function_with_retries_and_a_dead_letter_queue(
    dev: Any, rule: dict[str, Any]
) -> None:
    template = dev.templates["pipeline"].to_json()
    [target] = rule["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    function = template["Resources"][function_id]
    assert function["Type"] == "AWS::Lambda::Function"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert template["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
    # a notice the function cannot publish is parked too, not lost
    assert function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0] == dlq
    variables = function["Properties"]["Environment"]["Variables"]
    topic_id, _ = one_resource(dev.templates["storage"], "AWS::SNS::Topic")
    assert topic_id in render(variables["TOPIC_ARN"])


def test_the_notice_function_reads_only_the_pipelines_histories_and_publishes_to_the_topic(
    dev: Any, rule: dict[str, Any]
) -> None:
    template = dev.templates["pipeline"].to_json()
    function = template["Resources"][rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert "states:GetExecutionHistory" in actions and "sns:Publish" in actions
    assert not {a for a in actions if a.endswith("*") and not a.startswith(("kms:", "xray:"))}
    [history] = [s for s in statements if s["Action"] == "states:GetExecutionHistory"]
    pipeline = state_machine_logical_id(dev.templates["pipeline"], PIPELINE)
    assert f"{pipeline}.Name" in render(history["Resource"]) and ":execution:" in render(history["Resource"])


# --- the notice -------------------------------------------------------------------------------


def _history(*states: str) -> list[dict[str, Any]]:
    return [
        {"id": i + 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}
        for i, name in enumerate(states)
    ]


def _stage_failed(error: str | None, cause: str | None, run: str = "3f8a-r1") -> dict[str, Any]:
    described = {"ExecutionArn": STAGE_EXECUTION, "Status": "FAILED", "Input": {"run": {"name": run}}}
    described |= {k: v for k, v in (("Error", error), ("Cause", cause)) if v is not None}
    return {"status": "FAILED", "executionArn": EXECUTION, "error": "States.TaskFailed", "cause": json.dumps(described)}


@pytest.mark.parametrize(
    ("stage", "error", "action"),
    [
        ("admission", "States.ExceedToleratedFailureThreshold", "redrive"),
        ("crawl", "CrawlerFailed", "redrive"),
        ("transform", "GlueJobFailed", "redrive"),
        ("transform", "ValidationFailed", "replay"),
    ],
)
def test_a_failed_stage_is_notified_with_its_own_error_and_what_resumes_it(
    handler: ModuleType, stage: str, error: str, action: str
) -> None:
    events = _history("Take lease", "Run admission stage", f"Run {stage} stage")
    subject, message = handler.notice(_stage_failed(error, "why"), events, quarantine_location="s3://b/quarantine/")
    assert subject == f"Pipeline FAILED at stage {stage}: {error}" and len(subject) <= 100 and subject.isascii()
    assert (message["stage"], message["error"], message["cause"]) == (stage, error, "why")
    assert (message["stage_execution"], message["run"], message["execution"]) == (STAGE_EXECUTION, "3f8a-r1", EXECUTION)
    resume = message["resume"]
    assert resume["action"] == action
    if action == "redrive":
        assert resume["command"] == f"aws stepfunctions redrive-execution --execution-arn {EXECUTION}"
    else:  # a redrive would repeat the refusal: the replay of the quarantined run, and its record
        assert resume["quarantine_record"] == "s3://b/quarantine/run=3f8a-r1.json"
        assert "arn:aws:states:us-east-1:111122223333:stateMachine:transform-machine" in resume["command"]
        assert "redrive-execution" not in resume["command"]


@pytest.mark.parametrize("status", ["TIMED_OUT", "ABORTED"])
def test_a_run_that_timed_out_or_was_stopped_is_notified_in_the_state_it_stopped_in(
    handler: ModuleType, status: str
) -> None:
    subject, message = handler.notice(
        {"status": status, "executionArn": EXECUTION}, _history("Run admission stage", "Run crawl stage")
    )
    assert subject == f"Pipeline {status} at stage crawl: {status}"
    assert (message["state"], message["resume"]["action"]) == ("Run crawl stage", "redrive")


def test_a_stage_execution_that_ended_without_an_error_keeps_the_caught_one(handler: ModuleType) -> None:
    _, message = handler.notice(_stage_failed(None, None), _history("Run crawl stage"))
    assert message["error"] == "States.TaskFailed" and json.loads(message["cause"])["Status"] == "FAILED"


def test_a_rejected_trigger_has_nothing_to_resume(handler: ModuleType) -> None:
    detail = {"status": "FAILED", "executionArn": EXECUTION, "error": "InvalidTriggerEvent", "cause": "expected …"}
    events = [{"id": 3, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Trigger rejected"}}]
    subject, message = handler.notice(detail, events)
    assert subject == "Pipeline FAILED at stage trigger: InvalidTriggerEvent"
    assert message["resume"] == {"action": "none", "command": None, "why": message["resume"]["why"]}


def test_a_long_error_name_still_gives_an_sns_subject(handler: ModuleType) -> None:
    subject, _ = handler.notice(_stage_failed("E" * 200, "x"), _history("Run transform stage"))
    assert len(subject) == 100 and subject.endswith("...")


def test_a_malformed_event_is_refused_with_the_field(handler: ModuleType) -> None:
    with pytest.raises(ValueError, match="event detail"):
        handler.handler({"detail": "nope"}, None)


AIRFLOW_TRIGGER = {"source": "airflow", "dag_id": "glue_pipeline", "run_id": "manual__2026-12-01T02:00:00+00:00"}


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_stage_execution_the_dag_started_is_resumed_by_clearing_its_task_never_redriven(
    handler: ModuleType, status: str
) -> None:
    trigger = {**AIRFLOW_TRIGGER, "stage": "crawl"}
    advice = handler.resume_advice(
        status=status, state="Start crawler", error="CrawlerFailed", execution=STAGE_EXECUTION, trigger=trigger
    )
    assert advice["action"] == "clear" and "redrive-execution" not in advice["command"]
    assert "--path /dags/glue_pipeline/clearTaskInstances " in advice["command"]
    assert json.loads(advice["command"].rsplit("--body ", 1)[1].strip("'")) == {
        "dag_run_id": trigger["run_id"],
        "task_ids": ["crawl"],
        "include_downstream": True,
        "only_failed": True,
        "dry_run": False,  # the API's default is a dry run
    }
    assert "new DAG run" in advice["why"]  # and why that would not finish the run's work


def test_a_refused_run_the_dag_started_is_replayed_then_its_task_marked_success(handler: ModuleType) -> None:
    advice = handler.resume_advice(
        status="FAILED",
        state="Results invalid",
        error="ValidationFailed",
        execution=STAGE_EXECUTION,
        run="r1",
        quarantine_location="s3://b/quarantine/",
        trigger={**AIRFLOW_TRIGGER, "stage": "transform"},
    )
    assert advice["action"] == "replay" and advice["quarantine_record"] == "s3://b/quarantine/run=r1.json"
    assert "mark it success" in advice["why"]


def test_the_notice_reads_the_trigger_from_the_events_input(handler: ModuleType) -> None:
    """Were the rule to cover an execution the DAG started, its notice would still advise the Airflow action."""
    detail = {
        "status": "FAILED",
        "executionArn": STAGE_EXECUTION,
        "error": "GlueJobFailed",
        "cause": "x",
        "input": json.dumps({"trigger": {**AIRFLOW_TRIGGER, "stage": "transform"}, "run": {"name": "r1"}}),
    }
    events = [{"id": 9, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Transform job failed"}}]
    _, message = handler.notice(detail, events)
    assert message["resume"]["action"] == "clear"
