"""The front door as synthesized: an EXPRESS machine that reads the lease and starts the pipeline
only when no running execution holds it (stacks/pipeline/front_door.py). The definition is walked with
tests/helpers.py's simulator; its role may do exactly what the walk needs."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config.stages import config_for
from stacks.pipeline.front_door import (
    COALESCED_AT_THE_DOOR,
    LOOK_AT_INCOMING,
    NOTHING_WAITING,
    PIPELINE_NOT_STARTED,
    START_PIPELINE,
)
from stacks.pipeline.single_flight_lease import HOLDER_GONE
from tests.helpers import (
    STATE_MACHINE_TYPE,
    Run,
    StateError,
    as_list,
    one_resource,
    refs_in,
    render,
    simulate,
    state_machine_definition,
    state_machine_logical_id,
)
from tests.stacks.test_pipeline_template import PIPELINE, lower_actions, machine_role_statements

DOOR = "FrontDoorWorkflow"
EVENT = {"id": "e-1", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}}
HOLDER = "arn:aws:states:us-east-1:111122223333:execution:pipeline:holder"


@pytest.fixture(scope="module")
def template(dev: Any) -> Template:
    return dev.templates["pipeline"]


def walk(
    template: Template,
    lease: dict[str, Any],
    holder: str | StateError | None = None,
    start: Any = None,
    *,
    listed: int | StateError = 1,
    event: dict[str, Any] = EVENT,
) -> Run:
    """The door on one event: GetItem answers `lease`, DescribeExecution `holder`, StartExecution
    `start`, and ListObjectsV2 of the incoming prefix finds `listed` keys."""

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        resource = state["Resource"]
        if resource.endswith(":aws-sdk:s3:listObjectsV2"):
            if isinstance(listed, StateError):
                raise listed
            assert params["Prefix"] == config_for("dev").incoming_prefix and params["MaxKeys"] == 1
            return {"KeyCount": listed}
        if resource.endswith(":dynamodb:getItem"):
            return lease
        if resource.endswith(":aws-sdk:sfn:describeExecution"):
            if isinstance(holder, StateError):
                raise holder
            return {"Status": holder}
        if resource.endswith(":states:::states:startExecution"):
            if isinstance(start, StateError):
                raise start
            return {"ExecutionArn": f"arn:started:{params['Name']}"}
        if resource.endswith(":states:::sqs:sendMessage"):
            return {}
        raise AssertionError(f"unexpected task {name}")

    return simulate(state_machine_definition(template, DOOR), event, on_task, execution_name="e-1_uuid")


def table_arns(table: str) -> set[str]:
    """How a grant (GetAtt) and a task (format_arn) spell a table's ARN."""
    return {
        f"${{GetAtt:{table}.Arn}}",
        f"arn:${{Ref:AWS::Partition}}:dynamodb:${{Ref:AWS::Region}}:${{Ref:AWS::AccountId}}:table/${{Ref:{table}}}",
    }


def held_by(holder: str) -> dict[str, Any]:
    return {"Item": {"lease_id": {"S": "pipeline"}, "holder": {"S": holder}}}


def test_the_door_is_express_and_the_uploads_rule_targets_it(template: Template) -> None:
    _, door = one_resource(template, STATE_MACHINE_TYPE, DOOR)
    assert door["Properties"]["StateMachineType"] == "EXPRESS"
    door_id, pipeline_id = state_machine_logical_id(template, DOOR), state_machine_logical_id(template, PIPELINE)
    rules = template.find_resources("AWS::Events::Rule")
    uploads = [
        r for r in rules.values() if r["Properties"].get("EventPattern", {}).get("detail-type") == ["Object Created"]
    ]
    [rule] = uploads
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": door_id}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    schedule = [r for r in rules.values() if "ScheduleExpression" in r["Properties"]]
    assert [t["Arn"] for r in schedule for t in r["Properties"]["Targets"]] == [{"Ref": pipeline_id}]


def test_no_lease_starts_the_pipeline_with_the_event_under_the_doors_name(template: Template) -> None:
    run = walk(template, {})
    assert run.status == "SUCCEEDED" and START_PIPELINE in run.trace, run.trace
    [params] = run.calls_to(START_PIPELINE)
    assert params["Input"] == EVENT and params["Name"] == "e-1_uuid"
    assert "Describe lease holder" not in run.trace


def test_nothing_waiting_under_incoming_starts_nothing(template: Template) -> None:
    """The event outlived its file under incoming/ (an earlier run admitted it): no empty run."""
    for lease, holder in (({}, None), (held_by(HOLDER), "SUCCEEDED")):
        run = walk(template, lease, holder, listed=0)
        assert run.status == "SUCCEEDED" and run.trace[-3:] == [LOOK_AT_INCOMING, "Files waiting?", NOTHING_WAITING]
        assert not run.calls_to(START_PIPELINE)


def test_a_look_that_fails_starts_the_pipeline_anyway(template: Template) -> None:
    run = walk(template, {}, listed=StateError("S3.AccessDeniedException", "denied"))
    assert run.status == "SUCCEEDED" and run.calls_to(START_PIPELINE), run.trace


def test_the_look_does_not_depend_on_how_the_event_spells_its_key(template: Template) -> None:
    """S3 URL-encodes keys in its other notifications: a door that listed the event's key could miss
    a waiting file. It lists the incoming prefix, whatever the event says (walk checks the Prefix)."""
    odd = {**EVENT, "detail": {"bucket": {"name": "b"}, "object": {"key": "incoming/a+b%20c.csv"}}}
    run = walk(template, {}, event=odd, listed=1)
    assert LOOK_AT_INCOMING in run.trace and run.calls_to(START_PIPELINE), run.trace


def test_a_running_holder_coalesces_at_the_door(template: Template) -> None:
    run = walk(template, held_by(HOLDER), holder="RUNNING")
    assert run.trace == [
        "Read lease",
        "Lease held?",
        "Describe lease holder",
        "Lease holder running?",
        COALESCED_AT_THE_DOOR,
    ]
    assert not run.calls_to(START_PIPELINE)


@pytest.mark.parametrize("holder", ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", StateError(HOLDER_GONE)])
def test_an_ended_or_gone_holder_starts_the_pipeline(template: Template, holder: str | StateError) -> None:
    run = walk(template, held_by(HOLDER), holder=holder)
    assert run.status == "SUCCEEDED" and run.calls_to(START_PIPELINE), run.trace


def test_a_start_that_already_happened_succeeds(template: Template) -> None:
    run = walk(template, {}, start=StateError("StepFunctions.ExecutionAlreadyExistsException"))
    assert run.status == "SUCCEEDED" and "Park the event" not in run.trace


def test_a_pipeline_that_cannot_start_parks_the_event_and_fails(template: Template) -> None:
    run = walk(template, {}, start=StateError("StepFunctions.StateMachineDoesNotExistException", "gone"))
    assert (run.status, run.error) == ("FAILED", PIPELINE_NOT_STARTED)
    [message] = run.calls_to("Park the event")
    assert message["MessageBody"] == EVENT
    assert (
        message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "StepFunctions.StateMachineDoesNotExistException"
    )


def test_transient_errors_are_retried(template: Template) -> None:
    states = state_machine_definition(template, DOOR)["States"]
    for name, prefix in (
        ("Read lease", "DynamoDB."),
        ("Describe lease holder", "Sfn."),
        (START_PIPELINE, "StepFunctions."),
        (LOOK_AT_INCOMING, "S3."),
    ):
        errors = [e for retrier in states[name]["Retry"] for e in retrier["ErrorEquals"]]
        assert errors and all(e.startswith(prefix) for e in errors), (name, errors)
        assert "States.ALL" not in errors


def test_the_door_may_read_the_lease_list_the_landing_bucket_start_the_pipeline_and_describe_its_executions(
    template: Template,
) -> None:
    specific, _ = machine_role_statements(template, DOOR)
    pipeline_id = state_machine_logical_id(template, PIPELINE)
    lease_table, _ = one_resource(template, "AWS::DynamoDB::Table", "LeaseTable")
    queue, _ = one_resource(template, "AWS::SQS::Queue", "TriggersDeadLetterQueue")
    by_action: dict[str, list[Any]] = {}
    for statement in specific:
        for action in lower_actions(statement):
            by_action.setdefault(action, []).extend(as_list(statement["Resource"]))
    assert {render(r) for r in by_action.pop("dynamodb:getitem")} <= table_arns(lease_table)
    assert by_action.pop("states:startexecution") == [{"Ref": pipeline_id}]
    [described] = by_action.pop("states:describeexecution")
    assert render(described).endswith(f":execution:${{GetAtt:{pipeline_id}.Name}}:*")
    assert refs_in(by_action.pop("sqs:sendmessage")) == {queue}
    [listed] = by_action.pop("s3:listbucket")
    assert "Landing" in render(listed) and not render(listed).endswith("*"), listed
    # What is left: the storage key (the lease table's and the queue's), nothing else.
    assert set(by_action) <= {"kms:decrypt", "kms:describekey", "kms:generatedatakey"}, by_action
    assert not any(a.startswith("dynamodb:put") or a.startswith("dynamodb:delete") for a in by_action)
