"""The pipeline state machine, run on the synthesized definition (tests/helpers.py `simulate`).

A `World` answers the pipeline's tasks as AWS would: the lease table (conditional puts and
deletes), the lease holder's status, the listing of incoming/, the stage executions and SNS. The
tests drive one run at a time through it: lease free or held, holder running or gone, files
arriving between rounds and during the release, nothing admitted, a stage failing, its redrive.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks import pipeline_contract as contract
from stacks.config.stages import config_for
from tests.helpers import (
    Run,
    StateError,
    reachable,
    simulate,
    state_machine_definition,
    states_of,
    successors,
    task_resource_endswith,
)
from tests.stacks.test_pipeline_template import OBJECT_CREATED, PIPELINE, SCHEDULED

EXECUTION = "3f8a-20261124"  # simulate()'s execution name
ME = f"arn:aws:states:us-east-1:111122223333:execution:machine:{EXECUTION}"
OTHER = "arn:aws:states:us-east-1:111122223333:execution:machine:other-run"
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
STAGES = ("admission", "crawl", "transform")


def run_key(round_: int) -> str:
    return hashlib.md5(f"{EXECUTION}-r{round_}".encode()).hexdigest()


def stage_arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:111122223333:execution:stage-machine:{name}"


@dataclass
class World:
    holder: str | None = None  # the lease item's holder, if there is one
    holder_status: str = "RUNNING"  # DescribeExecution of that holder ("GONE": it does not exist)
    lost_takeover: bool = False  # another execution takes a stale lease over first
    waiting: list[int] = field(default_factory=list)  # KeyCount of each look at incoming/, in order
    admitted: list[int] = field(default_factory=list)  # files admitted per round (default 1)
    fail_stage: str | None = None
    failure: Any = None  # params -> StateError
    started: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    lease_writes: list[str] = field(default_factory=list)
    continued: list[dict[str, Any]] = field(default_factory=list)  # executions started to take over

    def on_task(self, name: str, state: dict[str, Any], params: Any) -> Any:
        resource = state["Resource"]
        if resource.endswith(":sns:publish"):
            self.published.append(params)
            return {"MessageId": "m-1"}
        if resource.endswith(":dynamodb:putItem"):
            return self._put(params)
        if resource.endswith(":dynamodb:getItem"):
            return {"Item": {"lease_id": {"S": "pipeline"}, "holder": {"S": self.holder}}} if self.holder else {}
        if resource.endswith(":aws-sdk:sfn:describeExecution"):
            assert params["ExecutionArn"] == self.holder
            if self.holder_status == "GONE":
                raise StateError("Sfn.ExecutionDoesNotExistException", "Execution Does Not Exist")
            return {"Status": self.holder_status, "ExecutionArn": self.holder}
        if resource.endswith(":dynamodb:deleteItem"):
            me = params["ExpressionAttributeValues"][":me"]["S"]
            if params["ConditionExpression"] != "holder = :me" or self.holder != me:
                raise StateError(CONDITION_FAILED, "The conditional request failed")
            self.lease_writes.append("release")
            self.holder = None
            return {}
        if resource.endswith(":aws-sdk:s3:listObjectsV2"):
            assert params["MaxKeys"] == 1 and params["Prefix"] == config_for("dev").incoming_prefix
            return {"KeyCount": self.waiting.pop(0) if self.waiting else 0}
        if resource.endswith(":states:::states:startExecution"):
            self.continued.append(params)
            return {"ExecutionArn": f"{ME}-next", "StartDate": 1}
        assert resource.endswith(":states:startExecution.sync:2"), name
        return self._start_stage(params)

    def _put(self, params: dict[str, Any]) -> dict[str, Any]:
        condition, holder = params["ConditionExpression"], params["Item"]["holder"]["S"]
        assert holder == ME and params["Item"]["lease_id"] == {"S": "pipeline"}
        if condition == "attribute_not_exists(lease_id)":
            if self.holder is not None:
                raise StateError(CONDITION_FAILED, "The conditional request failed")
        else:
            assert condition == "holder = :stale", condition
            if self.lost_takeover or self.holder != params["ExpressionAttributeValues"][":stale"]["S"]:
                raise StateError(CONDITION_FAILED, "The conditional request failed")
        self.lease_writes.append("take")
        self.holder = holder
        return {}

    def _start_stage(self, params: dict[str, Any]) -> dict[str, Any]:
        self.started.append(params)
        stage = params["Name"].rsplit("-", 1)[-1]
        if stage == self.fail_stage:
            raise self.failure(params)
        output: dict[str, Any] = {}
        if stage == "admission":
            admitted = self.admitted.pop(0) if self.admitted else 1
            output = {"run": params["Input"]["run"]["name"], "admitted": admitted, "quarantined": 0}
        return {"ExecutionArn": stage_arn(params["Name"]), "Status": "SUCCEEDED", "Output": output}


@pytest.fixture(scope="module")
def asl(dev: Any) -> dict[str, Any]:
    return state_machine_definition(dev.templates["pipeline"], PIPELINE)


def run(asl: dict[str, Any], world: World, event: Any = OBJECT_CREATED) -> Run:
    return simulate(asl, event, world.on_task, execution_name=EXECUTION, max_steps=500)


def stage_execution_failed(error: str | None, cause: str | None, status: str = "FAILED") -> Any:
    """A stage that ended unsuccessfully, as startExecution.sync:2 reports it: States.TaskFailed with
    the execution's DescribeExecution JSON (Error and Cause only if it had them) as the cause."""

    def failure(params: dict[str, Any]) -> StateError:
        described = {"ExecutionArn": stage_arn(params["Name"]), "Name": params["Name"], "Status": status}
        described |= {k: v for k, v in (("Error", error), ("Cause", cause)) if v is not None}
        return StateError("States.TaskFailed", json.dumps(described, separators=(",", ":"), sort_keys=True))

    return failure


# --- one round ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [OBJECT_CREATED, SCHEDULED], ids=["object-created", "schedule"])
def test_a_run_takes_the_lease_admits_crawls_transforms_notifies_once_and_releases(
    asl: dict[str, Any], dev: Any, event: Any
) -> None:
    world = World()
    result = run(asl, world, event)
    assert result.status == "SUCCEEDED", result
    template: Template = dev.templates["pipeline"]
    outputs = template.to_json()["Outputs"]  # each stage's machine, as the stack names it for consumers
    assert [s["StateMachineArn"] for s in world.started] == [
        f"${{Ref:{outputs[contract.state_machine_output(stage)]['Value']['Ref']}}}" for stage in STAGES
    ]
    # Child names: the round's key (an MD5 of <execution>-r1), the redrive count (0: never redriven)
    # and the stage; any parent name fits 80.
    assert [s["Name"] for s in world.started] == [f"{run_key(1)}-0-{stage}" for stage in STAGES]
    for started in world.started:
        assert started["Input"]["trigger"] == event
        run_info = started["Input"]["run"]
        assert run_info["name"] == f"{EXECUTION}-r1" and run_info["key"] == run_key(1)
        assert run_info["landing_path"].endswith(f"/landing/run={EXECUTION}-r1/")
    [notice] = world.published
    assert notice["Subject"] == "Pipeline SUCCEEDED"
    assert notice["Message"]["run"] == f"{EXECUTION}-r1" and notice["Message"]["round"] == 1
    assert notice["Message"]["stages"]["admission"]["Output"]["admitted"] == 1
    assert world.lease_writes == ["take", "release"] and world.holder is None


def test_a_round_that_admitted_nothing_skips_crawl_and_transform_but_still_notifies(asl: dict[str, Any]) -> None:
    world = World(admitted=[0])
    result = run(asl, world)
    assert result.status == "SUCCEEDED"
    assert [s["Name"].rsplit("-", 1)[-1] for s in world.started] == ["admission"]
    [notice] = world.published
    assert notice["Message"]["stages"]["admission"]["Output"]["admitted"] == 0
    assert world.holder is None


# --- the lease ---------------------------------------------------------------------------------


def test_a_run_that_finds_the_lease_held_by_a_running_execution_coalesces_silently(asl: dict[str, Any]) -> None:
    world = World(holder=OTHER, holder_status="RUNNING")
    result = run(asl, world)
    assert result.status == "SUCCEEDED" and result.trace[-1] == "Coalesced"
    assert world.started == [] and world.published == []  # no stage, no notice
    assert world.holder == OTHER and world.lease_writes == []  # the holder keeps its lease


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "GONE"])
def test_a_lease_whose_holder_has_stopped_is_taken_over(asl: dict[str, Any], status: str) -> None:
    # A holder that timed out, was aborted or failed without releasing holds nothing once stopped.
    world = World(holder=OTHER, holder_status=status)
    result = run(asl, world)
    assert result.status == "SUCCEEDED"
    assert [s["Name"].rsplit("-", 1)[-1] for s in world.started] == list(STAGES)
    assert world.lease_writes == ["take", "release"] and world.holder is None


def test_a_takeover_lost_to_another_execution_coalesces(asl: dict[str, Any]) -> None:
    world = World(holder=OTHER, holder_status="ABORTED", lost_takeover=True)
    result = run(asl, world)
    assert result.status == "SUCCEEDED" and result.trace[-1] == "Coalesced"
    assert world.started == [] and world.published == []


def test_a_lease_released_between_the_failed_take_and_the_read_is_taken(asl: dict[str, Any]) -> None:
    world = World(holder=OTHER)
    original = world.on_task

    def release_before_read(name: str, state: dict[str, Any], params: Any) -> Any:
        if state["Resource"].endswith(":dynamodb:getItem"):
            world.holder = None  # the holder released just now
        return original(name, state, params)

    result = simulate(asl, OBJECT_CREATED, release_before_read, execution_name=EXECUTION, max_steps=500)
    assert result.status == "SUCCEEDED"
    assert len(world.started) == 3 and world.holder is None


# --- rounds ------------------------------------------------------------------------------------


def test_files_waiting_after_a_round_run_another_round_under_a_new_run(asl: dict[str, Any]) -> None:
    world = World(waiting=[4, 0, 0])
    result = run(asl, world)
    assert result.status == "SUCCEEDED"
    assert [s["Name"] for s in world.started] == [f"{run_key(r)}-0-{stage}" for r in (1, 2) for stage in STAGES]
    assert [p["Message"]["run"] for p in world.published] == [f"{EXECUTION}-r1", f"{EXECUTION}-r2"]
    landing = {s["Input"]["run"]["landing_path"] for s in world.started}
    assert len(landing) == 2  # each round its own folder: no round re-reads another's files
    assert world.lease_writes == ["take", "release"]


def test_a_file_that_lands_while_the_lease_is_released_is_not_stranded(asl: dict[str, Any]) -> None:
    # Its own execution found the lease held and coalesced: this run must see it after releasing.
    world = World(waiting=[0, 1, 0, 0])
    result = run(asl, world)
    assert result.status == "SUCCEEDED"
    assert len(world.started) == 6 and len(world.published) == 2
    assert world.lease_writes == ["take", "release", "take", "release"] and world.holder is None


def test_when_rounds_are_spent_a_new_execution_takes_over_the_waiting_files(asl: dict[str, Any]) -> None:
    max_rounds = config_for("dev").admission.max_rounds
    world = World(waiting=[1] * 50)  # files keep arriving
    result = run(asl, world)
    assert result.status == "SUCCEEDED"
    assert len(world.published) == max_rounds
    assert len(world.started) == 3 * max_rounds
    assert world.lease_writes == ["take", "release"] and world.holder is None
    # The files that arrived meanwhile are not left for the next schedule tick: their own
    # executions coalesced into this one, so it hands them to a fresh execution of itself.
    [continuation] = world.continued
    assert continuation["StateMachineArn"] == "arn:aws:states:us-east-1:111122223333:stateMachine:machine"  # itself
    assert continuation["Name"] == f"{hashlib.md5(EXECUTION.encode()).hexdigest()}-next"  # a retry: the same
    assert continuation["Input"]["detail-type"] == "Scheduled Event"  # recognised as a trigger
    assert continuation["Input"]["detail"]["continues"] == ME


def test_no_continuation_when_nothing_is_waiting(asl: dict[str, Any]) -> None:
    world = World(waiting=[0, 0])
    assert run(asl, world).status == "SUCCEEDED" and world.continued == []


# --- failures and redrives -----------------------------------------------------------------------

STAGE_FAILURES = [
    ("admission", "States.ExceedToleratedFailureThreshold", "3 of 10 child workflow executions failed"),
    ("crawl", "CrawlerFailed", "Internal Service Exception: the crawler could not read s3 objects"),
    ("crawl", "CrawlerTimedOut", "crawler still running after 60 polls, 60 s apart"),
    ("transform", "GlueJobFailed", '{"Id":"jr_0123","JobRunState":"FAILED","ErrorMessage":"boom"}'),
    ("transform", "ValidationFailed", "9 of 40 rows rejected (22.5%)"),
]


@pytest.mark.parametrize(("stage", "error", "cause"), STAGE_FAILURES)
def test_a_failed_stage_fails_the_execution_at_its_own_task(
    asl: dict[str, Any], stage: str, error: str, cause: str
) -> None:
    world = World(fail_stage=stage, failure=stage_execution_failed(error, cause))
    result = run(asl, world)
    # Not caught: the execution fails in the stage's task, which is what a redrive re-enters.
    assert (result.status, result.error, result.stopped_in) == ("FAILED", "States.TaskFailed", f"Run {stage} stage")
    described = json.loads(result.cause)  # the stage execution's own error, for the notice to read
    assert (described["Error"], described["Cause"]) == (error, cause)
    assert world.started[-1]["Name"] == f"{run_key(1)}-0-{stage}"  # nothing started after it
    assert world.published == []  # the notice comes from the execution's status change (FailureNotice)
    # The lease is not released: it expires with its holder, so the next upload takes it over.
    assert world.lease_writes == ["take"] and world.holder == ME


@pytest.mark.parametrize("stage", STAGES)
def test_a_redrive_reenters_the_failed_stage_under_a_new_name_and_finishes_the_round(
    asl: dict[str, Any], stage: str
) -> None:
    world = World(fail_stage=stage, failure=stage_execution_failed("Boom", "boom"))
    failed = run(asl, world)
    before = len(world.started)
    world.fail_stage = None  # the cause was fixed
    redriven = simulate(
        asl, OBJECT_CREATED, world.on_task, execution_name=EXECUTION, max_steps=500, redrive_of=failed, redrive_count=1
    )
    assert redriven.status == "SUCCEEDED" and redriven.trace[0] == f"Run {stage} stage"
    later = STAGES[STAGES.index(stage) :]
    # The failed stage again under a new name (the failed child keeps its own), then the rest;
    # the stages before it are not run again.
    assert [s["Name"] for s in world.started[before:]] == [f"{run_key(1)}-1-{later[0]}"] + [
        f"{run_key(1)}-1-{name}" for name in later[1:]
    ]
    assert {s["Input"]["run"]["name"] for s in world.started} == {f"{EXECUTION}-r1"}  # same run, files, partition
    [notice] = world.published  # the round's notice, once
    assert notice["Subject"] == "Pipeline SUCCEEDED" and notice["Message"]["run"] == f"{EXECUTION}-r1"
    assert world.lease_writes == ["take", "release"] and world.holder is None


def test_a_redriven_run_whose_lease_was_taken_over_runs_no_round_beside_the_holder(asl: dict[str, Any]) -> None:
    world = World(fail_stage="transform", failure=stage_execution_failed("GlueJobFailed", "boom"))
    failed = run(asl, world)
    # While it waited, the next upload's execution took the lease over and is running.
    world.fail_stage, world.holder, world.waiting = None, OTHER, [3, 3]
    redriven = simulate(
        asl, OBJECT_CREATED, world.on_task, execution_name=EXECUTION, max_steps=500, redrive_of=failed, redrive_count=1
    )
    assert redriven.status == "SUCCEEDED"
    assert [s["Name"].rsplit("-", 2)[-2:] for s in world.started[3:]] == [["1", "transform"]]  # no new round
    assert world.holder == OTHER  # not released by this run, not taken from its holder
    assert "After release: Take lease" in redriven.trace and redriven.trace[-1] == "Pipeline succeeded"


def test_a_redriven_run_takes_the_lease_again_before_another_round(asl: dict[str, Any]) -> None:
    world = World(fail_stage="crawl", failure=stage_execution_failed("CrawlerFailed", "boom"))
    failed = run(asl, world)
    world.fail_stage, world.waiting = None, [2, 2, 0, 0]  # files arrived while it waited
    redriven = simulate(
        asl, OBJECT_CREATED, world.on_task, execution_name=EXECUTION, max_steps=500, redrive_of=failed, redrive_count=1
    )
    assert redriven.status == "SUCCEEDED"
    # Release, look, take again, then round 2 (its children named with this attempt's count).
    assert world.lease_writes == ["take", "release", "take", "release"] and world.holder is None
    assert [s["Name"] for s in world.started[2:]] == [f"{run_key(1)}-1-{n}" for n in ("crawl", "transform")] + [
        f"{run_key(2)}-1-{n}" for n in STAGES
    ]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"hello": "world"},
        {"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}},
        {**SCHEDULED, "detail-type": "AWS API Call via CloudTrail"},
    ],
    ids=["empty", "foreign", "object-without-key", "other-detail-type"],
)
def test_unknown_trigger_fails_at_once_without_touching_a_held_lease(asl: dict[str, Any], event: Any) -> None:
    world = World(holder=OTHER)
    result = run(asl, world, event)
    assert (result.status, result.error, result.stopped_in) == ("FAILED", "InvalidTriggerEvent", "Trigger rejected")
    assert "expected an S3 Object Created event" in result.cause
    assert world.started == [] and world.published == [] and world.lease_writes == []
    assert world.holder == OTHER


# --- the definition's shape --------------------------------------------------------------------


def test_every_path_to_an_end_after_the_lease_is_taken_releases_it(asl: dict[str, Any]) -> None:
    states = asl["States"]
    takes = states_of(asl, task_resource_endswith(":dynamodb:putItem"))
    releases = set(states_of(asl, task_resource_endswith(":dynamodb:deleteItem")))
    ends = {name for name, state in states.items() if state["Type"] in ("Succeed", "Fail")}
    for take in takes:
        # From a successful take, an end is reached only through a release.
        def ends_without_release(name: str, seen: set[str]) -> set[str]:
            if name in seen or name in releases:
                return set()
            seen.add(name)
            found = {name} & ends
            for following in successors(states[name]):
                found |= ends_without_release(following, seen)
            return found

        assert ends_without_release(states[take]["Next"], set()) == set(), take
    assert releases and ends


def test_no_stage_task_catches_and_the_only_fail_state_is_before_the_lease(asl: dict[str, Any]) -> None:
    stage_tasks = states_of(asl, task_resource_endswith(":states:::states:startExecution.sync:2"))
    assert set(stage_tasks) == {f"Run {stage} stage" for stage in STAGES}
    for name, task in stage_tasks.items():
        assert "Catch" not in task, f"{name}: a caught failure ends in a Fail state, and a redrive fails there again"
        assert "Retry" not in task, name  # a stage execution that failed would fail again at once
    fails = {name for name, state in asl["States"].items() if state["Type"] == "Fail"}
    assert fails == {"Trigger rejected"}
    takes = states_of(asl, task_resource_endswith(":dynamodb:putItem"))
    assert not any("Trigger rejected" in reachable(asl, asl["States"][take]["Next"]) for take in takes)
