"""The Pipeline stack as synthesized: what the state machines do, how they are triggered and watched, who may do what.

State machine tests parse the ASL and walk or run it (tests/helpers.py): Retry and Catch on the
named errors, where each branch of a Choice goes, which SNS message a failure sends. Values that
come from config are compared with the config, on more than one stage where they differ.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import DeploymentConfig, config_for
from tests.helpers import (
    STATE_MACHINE_TYPE,
    Run,
    StateError,
    as_list,
    exported_value,
    one_resource,
    reachable,
    refs_in,
    render,
    simulate,
    state_machine_definition,
    state_machine_logical_id,
    states_of,
    successors,
    task_resource_endswith,
)

if TYPE_CHECKING:
    from tests.conftest import Synthesized

CRAWL, TRANSFORM, PIPELINE = "CrawlStageWorkflow", "TransformStageWorkflow", "PipelineWorkflow"
TIMEOUT_MINUTES = {
    CRAWL: lambda c: c.crawl_stage_timeout_minutes,
    TRANSFORM: lambda c: c.transform_stage_timeout_minutes,
    PIPELINE: lambda c: c.pipeline_timeout_minutes,
}
# Actions with no resource-level permissions, the only ones an identity policy may allow on "*":
# Step Functions' vended log delivery and X-Ray, Lambda's X-Ray, and MWAA's execution role
# (environment metrics, the account-level public access block it checks). Anything else is a finding.
NO_RESOURCE_LEVEL_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "cloudwatch:PutMetricData",
    "s3:GetAccountPublicAccessBlock",
}

# Real-format trigger events (EventBridge delivers them as the execution input).
OBJECT_CREATED = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2026-11-24T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::landing-bucket"],
    "detail": {
        "version": "0",
        "bucket": {"name": "landing-bucket"},
        "object": {
            "key": "landing/orders.csv",
            "size": 2048,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "sequencer": "00617F08299329D189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "111122223333",
        "reason": "PutObject",
    },
}
SCHEDULED = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "111122223333",
    "time": "2026-11-24T02:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:111122223333:rule/schedule"],
    "detail": {},
}


@pytest.fixture(scope="module")
def template(dev: Synthesized) -> Template:
    return dev.templates["pipeline"]


@pytest.fixture(scope="module")
def config() -> DeploymentConfig:
    return config_for("dev")


def resources(template: Template) -> dict[str, Any]:
    return template.to_json()["Resources"]


def storage_id(dev: Synthesized, type_: str, prefix: str = "") -> str:
    return one_resource(dev.templates["storage"], type_, prefix)[0]


def imported(dev: Synthesized, value: Any) -> Any:
    """What an Fn::ImportValue in the pipeline stack stands for in the stack that exports it."""
    return exported_value(dev.templates.values(), value)


# --- crawl stage -------------------------------------------------------------------------------


def crawler_ref(template: Template) -> str:
    return f"${{Ref:{one_resource(template, 'AWS::Glue::Crawler')[0]}}}"


def test_start_crawler_retries_only_while_the_crawler_is_busy(template: Template, config: DeploymentConfig) -> None:
    asl = state_machine_definition(template, CRAWL)
    start = asl["States"][asl["StartAt"]]
    assert start["Type"] == "Task"
    assert start["Resource"].endswith(":states:::aws-sdk:glue:startCrawler")
    assert start["Parameters"] == {"Name": crawler_ref(template)}
    busy = [retrier for retrier in start.get("Retry", []) if "Glue.CrawlerRunningException" in retrier["ErrorEquals"]]
    assert busy == [
        {
            "ErrorEquals": ["Glue.CrawlerRunningException"],
            "IntervalSeconds": config.crawler.busy_retry_interval_seconds,
            "MaxAttempts": config.crawler.busy_retry_attempts,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
    ]
    for retrier in start["Retry"]:  # nothing retried blindly: a crawler that cannot start fails the stage
        assert not {"States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]), retrier


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_poll_loop_waits_the_configured_interval_then_reads_the_crawler(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    template, config = synth(stage).templates["pipeline"], config_for(stage)
    asl = state_machine_definition(template, CRAWL)
    states = asl["States"]
    wait_name = states[asl["StartAt"]]["Next"]
    wait = states[wait_name]
    assert wait["Type"] == "Wait"
    assert wait["Seconds"] == config.crawler.poll_interval_seconds
    assert list(states_of(asl, lambda s: s["Type"] == "Wait")) == [wait_name]  # the only wait there is
    get_crawler = states[wait["Next"]]
    assert get_crawler["Resource"].endswith(":states:::aws-sdk:glue:getCrawler")
    assert get_crawler["Parameters"] == {"Name": crawler_ref(template)}
    choice = states[get_crawler["Next"]]
    assert choice["Type"] == "Choice"
    # The "still running" branch comes back to the wait, and only through Next (no error path).
    name = choice["Default"]
    for _ in range(len(states)):
        if name == wait_name:
            break
        assert states[name]["Type"] == "Pass", f"{name} between the poll Choice and the Wait"
        name = states[name]["Next"]
    assert name == wait_name


def crawler(state: str, last_crawl: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GetCrawler `Crawler` as AWS returns it; LastCrawl is absent until a first crawl ends."""
    response: dict[str, Any] = {"Name": "landing-crawler", "State": state, "DatabaseName": "db"}
    if last_crawl is not None:
        response["LastCrawl"] = {
            "LogGroup": "/aws-glue/crawlers",
            "LogStream": "landing-crawler",
            "MessagePrefix": "9f1c",
            "StartTime": "2026-11-24T10:00:00Z",
            **last_crawl,
        }
    return response


def run_crawl(template: Template, crawlers: Iterator[dict[str, Any]]) -> Run:
    asl = state_machine_definition(template, CRAWL)

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        if state["Resource"].endswith(":glue:startCrawler"):
            return {}
        if state["Resource"].endswith(":glue:getCrawler"):
            return {"Crawler": next(crawlers)}
        raise AssertionError(f"unexpected task {name}")

    return simulate(asl, {"trigger": OBJECT_CREATED}, on_task)


def test_crawl_succeeds_when_the_crawler_is_ready_and_its_last_crawl_succeeded(template: Template) -> None:
    succeeded = {"Status": "SUCCEEDED"}
    run = run_crawl(template, iter([crawler("RUNNING"), crawler("STOPPING"), crawler("READY", succeeded)]))
    assert run.status == "SUCCEEDED", run
    assert len(run.task_calls) == 4  # StartCrawler, then three polls
    assert run.output["Status"] == "SUCCEEDED"  # the stage's output is the crawl it waited for


@pytest.mark.parametrize(
    ("last_crawl", "cause"),
    [
        (
            {"Status": "FAILED", "ErrorMessage": "Insufficient Lake Formation permission(s)"},
            "Insufficient Lake Formation permission(s)",
        ),
        ({"Status": "CANCELLED"}, '"Status":"CANCELLED"'),
        ({"Status": "FAILED"}, '"Status":"FAILED"'),
    ],
)
def test_crawl_fails_crawler_failed_when_the_crawl_ended_otherwise(
    template: Template, last_crawl: dict[str, Any], cause: str
) -> None:
    run = run_crawl(template, iter([crawler("RUNNING"), crawler("READY", last_crawl)]))
    assert (run.status, run.error) == ("FAILED", "CrawlerFailed"), run
    assert cause in run.cause


def test_crawler_not_yet_running_is_polled_again_not_failed(template: Template) -> None:
    # Right after StartCrawler a crawler that never crawled before can still read READY without LastCrawl.
    run = run_crawl(template, iter([crawler("READY"), crawler("RUNNING"), crawler("READY", {"Status": "SUCCEEDED"})]))
    assert run.status == "SUCCEEDED", run


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_crawl_times_out_after_max_polls(synth: Callable[[str], Synthesized], stage: str) -> None:
    config = config_for(stage)
    run = run_crawl(synth(stage).templates["pipeline"], itertools.repeat(crawler("RUNNING")))
    assert (run.status, run.error) == ("FAILED", "CrawlerTimedOut"), run.trace[-5:]
    polls = len(run.task_calls) - 1
    assert polls == config.crawler.max_polls
    asl = state_machine_definition(synth(stage).templates["pipeline"], CRAWL)
    waits = [name for name in run.trace if asl["States"][name]["Type"] == "Wait"]
    assert len(waits) == polls  # every poll waits first


# --- transform stage ---------------------------------------------------------------------------


def test_transform_runs_the_glue_job_to_completion_and_retries_only_when_busy(
    template: Template, config: DeploymentConfig
) -> None:
    asl = state_machine_definition(template, TRANSFORM)
    run_job = asl["States"][asl["StartAt"]]
    assert run_job["Resource"].endswith(":states:::glue:startJobRun.sync")
    assert run_job["Parameters"]["JobName"] == f"${{Ref:{one_resource(template, 'AWS::Glue::Job')[0]}}}"
    busy = [r for r in run_job.get("Retry", []) if "Glue.ConcurrentRunsExceededException" in r["ErrorEquals"]]
    assert len(busy) == 1
    assert busy[0]["IntervalSeconds"] == config.glue_job.busy_retry_interval_seconds
    assert busy[0]["MaxAttempts"] == config.glue_job.busy_retry_attempts
    assert (busy[0]["BackoffRate"], busy[0]["JitterStrategy"]) == (2, "FULL")
    for retrier in run_job["Retry"]:  # a failed job run is not started again blindly
        assert not {"States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]), retrier
    [catcher] = run_job["Catch"]
    assert catcher["ErrorEquals"] == ["States.TaskFailed"]
    job_failed = asl["States"][catcher["Next"]]
    assert (job_failed["Type"], job_failed["Error"]) == ("Fail", "GlueJobFailed")


def test_transform_checks_results_with_the_lambda_then_chooses(template: Template) -> None:
    asl = state_machine_definition(template, TRANSFORM)
    check = asl["States"][asl["States"][asl["StartAt"]]["Next"]]
    function_id, function = one_resource(template, "AWS::Lambda::Function", "TransformStageCheckResults")
    assert check["Resource"] == f"${{GetAtt:{function_id}.Arn}}"
    assert function["Properties"]["Handler"] == "handler.handler"
    assert asl["States"][check["Next"]]["Type"] == "Choice"


def run_transform(template: Template, job: Callable[[], Any], check: dict[str, Any] | None = None) -> Run:
    asl = state_machine_definition(template, TRANSFORM)

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        if state["Resource"].endswith(":glue:startJobRun.sync"):
            return job()
        assert check is not None, f"{name} ran after the job failed"
        return check

    return simulate(asl, {"trigger": OBJECT_CREATED}, on_task, execution_name="run-7-transform")


def job_succeeded() -> dict[str, Any]:
    return {"Id": "jr_0123", "JobName": "transform", "JobRunState": "SUCCEEDED", "ExecutionTime": 61}


def test_transform_succeeds_with_the_check_result(template: Template, config: DeploymentConfig) -> None:
    verdict = {"valid": True, "reason": "2 of 40 rows rejected (5.0%)"}
    run = run_transform(template, job_succeeded, verdict)
    assert run.status == "SUCCEEDED"
    assert run.output == verdict
    [job_params] = [params for _, params in run.task_calls[:1]]
    [check_params] = [params for _, params in run.task_calls[1:]]
    # The job writes the manifest where the check reads it: one key per stage execution.
    assert job_params["Arguments"]["--manifest_key"] == check_params["key"] == "manifests/run-7-transform.json"
    assert check_params["max_rejected_ratio"] == config.glue_job.max_rejected_ratio


def test_the_check_reads_the_bucket_the_job_writes_manifests_to(dev: Synthesized, template: Template) -> None:
    asl = state_machine_definition(template, TRANSFORM)
    check = asl["States"][asl["States"][asl["StartAt"]]["Next"]]
    _, job = one_resource(template, "AWS::Glue::Job")
    manifest_bucket = job["Properties"]["DefaultArguments"]["--manifest_bucket"]
    assert check["Parameters"]["bucket"] == render(manifest_bucket)
    assert imported(dev, manifest_bucket) == {"Ref": storage_id(dev, "AWS::S3::Bucket", "CuratedBucket")}


@pytest.mark.parametrize("error", ["States.TaskFailed", "Glue.ConcurrentRunsExceededException", "States.Permissions"])
def test_failed_job_run_fails_the_stage_glue_job_failed(template: Template, error: str) -> None:
    def job() -> Any:
        raise StateError(error, '{"JobRunState":"FAILED","ErrorMessage":"boom"}')

    run = run_transform(template, job)
    assert (run.status, run.error) == ("FAILED", "GlueJobFailed")
    assert "boom" in run.cause
    assert len(run.task_calls) == 1  # the check never ran


def test_invalid_results_fail_the_stage_validation_failed(template: Template) -> None:
    run = run_transform(template, job_succeeded, {"valid": False, "reason": "9 of 40 rows rejected (22.5%)"})
    assert (run.status, run.error, run.cause) == ("FAILED", "ValidationFailed", "9 of 40 rows rejected (22.5%)")


# --- pipeline ----------------------------------------------------------------------------------


def stage_tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return states_of(asl, task_resource_endswith(":states:::states:startExecution.sync:2"))


def publish_tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return states_of(asl, task_resource_endswith(":states:::sns:publish"))


def test_pipeline_runs_each_stage_machine_synchronously_under_a_derived_name(template: Template) -> None:
    asl = state_machine_definition(template, PIPELINE)
    tasks = stage_tasks(asl)
    targets = [task["Parameters"]["StateMachineArn"] for task in tasks.values()]
    assert sorted(targets) == sorted(
        f"${{Ref:{state_machine_logical_id(template, prefix)}}}" for prefix in (CRAWL, TRANSFORM)
    )
    for task in tasks.values():
        assert "$$.Execution.Name" in task["Parameters"]["Name.$"]


def test_every_stage_failure_is_noted_notified_once_and_fails_the_pipeline(
    dev: Synthesized, template: Template
) -> None:
    asl = state_machine_definition(template, PIPELINE)
    states = asl["States"]
    topic = {"Ref": storage_id(dev, "AWS::SNS::Topic")}
    notices = set(publish_tasks(asl))
    for name, task in stage_tasks(asl).items():
        [catcher] = task["Catch"]
        assert catcher["ErrorEquals"] == ["States.ALL"], name
        assert catcher["ResultPath"] == "$.error"
        note = states[catcher["Next"]]
        assert note["Type"] == "Pass" and note["ResultPath"] == "$.failed_stage"
        assert note["Result"] in name.lower()  # "Run crawl stage" notes "crawl"
        failure_side = reachable(asl, note["Next"])
        assert failure_side & notices, name
        for notice in failure_side & notices:
            notify = states[notice]
            assert imported(dev, _import_of(notify["Parameters"]["TopicArn"])) == topic
            subject = notify["Parameters"]["Subject.$"]
            assert "$.failed_stage" in subject and "$.error.Error" in subject  # names the stage and its error
            # A notice is followed by the Fail state only: never a second notice.
            assert reachable(asl, notify["Next"]) == {notify["Next"]}
            fail = states[notify["Next"]]
            assert (fail["Type"], fail["Error"], fail["CausePath"]) == ("Fail", "PipelineFailed", "$.error.Cause")
        # The failure path can never reach the success notice.
        assert not reachable(asl, catcher["Next"]) & success_path(asl)


def test_the_stage_error_is_parsed_only_from_a_cause_that_reads_as_the_stage_executions_json(
    template: Template,
) -> None:
    # A Pass state cannot catch: an intrinsic that failed there would end the run without a notice.
    asl = state_machine_definition(template, PIPELINE)
    parsers = states_of(asl, lambda s: "States.StringToJson" in json.dumps(s.get("Parameters", {})))
    assert parsers, "no state reads the stage's own error"
    for name, parser in parsers.items():
        assert parser["Type"] == "Pass"
        # Missing Error or Cause in the stage's JSON keep the caught ones (merged over them).
        assert "States.JsonMerge($.error, States.StringToJson($.error.Cause), false)" in parser["Parameters"].values()
        entries = [(from_name, state) for from_name, state in asl["States"].items() if name in successors(state)]
        assert entries and all(state["Type"] == "Choice" for _, state in entries), entries
        for _, choice in entries:
            [rule] = [c for c in choice["Choices"] if c["Next"] == name]
            conditions = rule["And"]
            assert {"Variable": "$.error.Error", "StringEquals": "States.TaskFailed"} in conditions
            on_cause = [c for c in conditions if c["Variable"] == "$.error.Cause"]
            assert on_cause[0] == {"Variable": "$.error.Cause", "IsPresent": True}  # first, before reading it
            [pattern] = [c["StringMatches"] for c in on_cause if "StringMatches" in c]
            assert pattern.startswith("{") and pattern.endswith("}") and '"ExecutionArn"' in pattern
            assert choice["Default"] != name


def success_path(asl: dict[str, Any]) -> set[str]:
    """The states an execution goes through when the trigger is recognised and nothing fails."""
    path, name = [], asl["StartAt"]
    while name is not None:
        path.append(name)
        state = asl["States"][name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state.get("Next")
    assert asl["States"][path[-1]]["Type"] == "Succeed", path
    return set(path)


def test_success_path_runs_every_stage_and_publishes_once(template: Template) -> None:
    asl = state_machine_definition(template, PIPELINE)
    path = success_path(asl)
    assert set(stage_tasks(asl)) <= path
    assert len(set(publish_tasks(asl)) & path) == 1
    # Trigger check, the stages, the notice, Succeed: nothing else is billed on success.
    assert len(path) == len(stage_tasks(asl)) + 3
    # An unrecognised trigger goes to the failure notice, never to a stage.
    trigger_choice = asl["States"][asl["StartAt"]]
    rejected = reachable(asl, trigger_choice["Default"])
    assert not rejected & set(stage_tasks(asl))
    assert rejected & set(publish_tasks(asl)) and not rejected & path


def _import_of(placeholder: str) -> dict[str, str]:
    match = re.fullmatch(r"\$\{ImportValue:(.+)\}", placeholder)
    assert match, placeholder
    return {"Fn::ImportValue": match.group(1)}


PIPELINE_EXECUTION = "arn:aws:states:us-east-1:111122223333:execution:machine:3f8a-20261124"  # simulate()'s
PARENT_NAME_MD5 = hashlib.md5(b"3f8a-20261124").hexdigest()
StageFailure = Callable[[dict[str, Any]], StateError]


def stage_arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:111122223333:execution:stage-machine:{name}"


def stage_execution_failed(error: str | None, cause: str | None, status: str = "FAILED") -> StageFailure:
    """A stage execution that ended unsuccessfully, as startExecution.sync:2 reports it: States.TaskFailed
    with the execution's DescribeExecution JSON as the cause (Error and Cause only if it had them)."""

    def failure(params: dict[str, Any]) -> StateError:
        described = {
            "ExecutionArn": stage_arn(params["Name"]),
            "Name": params["Name"],
            "Status": status,
            "StateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:stage-machine",
            "StartDate": 1795514400.0,
            "StopDate": 1795514461.5,
            "Input": json.dumps(params["Input"]),
            "InputDetails": {"Included": True},
        }
        if error is not None:
            described["Error"] = error
        if cause is not None:
            described["Cause"] = cause
        # Keys sorted: the check on the cause must not depend on where ExecutionArn comes.
        return StateError("States.TaskFailed", json.dumps(described, separators=(",", ":"), sort_keys=True))

    return failure


def run_pipeline(
    template: Template,
    event: Any,
    fail_stage: str | None = None,
    failure: StageFailure | None = None,
    execution_name: str = "3f8a-20261124",
) -> tuple[Run, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the pipeline; returns the run, the stage executions started and the SNS messages published."""
    asl = state_machine_definition(template, PIPELINE)
    started: list[dict[str, Any]] = []
    published: list[dict[str, Any]] = []

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        if state["Resource"].endswith(":sns:publish"):
            published.append(params)
            return {"MessageId": "m-1"}
        assert state["Resource"].endswith(":startExecution.sync:2"), name
        started.append(params)
        if fail_stage is not None and params["Name"].endswith(f"-{fail_stage}"):
            raise (failure or stage_execution_failed("CrawlerFailed", "boom"))(params)
        return {
            "ExecutionArn": stage_arn(params["Name"]),
            "Status": "SUCCEEDED",
            "Output": {},
            "StartDate": 1,
            "StopDate": 2,
        }

    return simulate(asl, event, on_task, execution_name=execution_name), started, published


def state_types(template: Template, names: list[str]) -> list[str]:
    states = state_machine_definition(template, PIPELINE)["States"]
    return [states[name]["Type"] for name in names]


@pytest.mark.parametrize("event", [OBJECT_CREATED, SCHEDULED], ids=["object-created", "schedule"])
def test_pipeline_runs_crawl_then_transform_and_notifies_success_once(template: Template, event: Any) -> None:
    run, started, published = run_pipeline(template, event)
    assert run.status == "SUCCEEDED", run
    crawl_ref = f"${{Ref:{state_machine_logical_id(template, CRAWL)}}}"
    transform_ref = f"${{Ref:{state_machine_logical_id(template, TRANSFORM)}}}"
    assert [s["StateMachineArn"] for s in started] == [crawl_ref, transform_ref]
    # Child names derive from the parent's (an MD5 of it, so any parent name fits AWS's 80
    # characters): a redriven parent cannot start a second child.
    assert [s["Name"] for s in started] == [f"{PARENT_NAME_MD5}-crawl", f"{PARENT_NAME_MD5}-transform"]
    assert all(s["Input"]["trigger"] == event for s in started)
    [message] = published
    assert "SUCCEEDED" in message["Subject"] and "FAIL" not in message["Subject"].upper()
    assert message["Message"]["status"] == "SUCCEEDED"
    assert state_types(template, run.trace) == ["Choice", "Task", "Task", "Task", "Succeed"]  # 5 transitions


@pytest.mark.parametrize(
    ("stage", "error", "cause"),
    [
        ("crawl", "CrawlerFailed", "Internal Service Exception: the crawler could not read s3 objects"),
        ("crawl", "CrawlerTimedOut", "crawler still running after 60 polls, 60 s apart"),
        ("transform", "GlueJobFailed", '{"Id":"jr_0123","JobRunState":"FAILED","ErrorMessage":"boom"}'),
        ("transform", "ValidationFailed", "9 of 40 rows rejected (22.5%)"),
        ("transform", "States.Runtime", "The JSONPath '$.check.valid' could not be found in the input"),
    ],
    ids=["crawl-failed", "crawl-timed-out", "job-failed", "validation-failed", "stage-runtime-error"],
)
def test_a_failed_stage_is_notified_with_its_own_error_and_cause(
    template: Template, stage: str, error: str, cause: str
) -> None:
    run, started, published = run_pipeline(
        template, OBJECT_CREATED, fail_stage=stage, failure=stage_execution_failed(error, cause)
    )
    # A custom error name ("States.*" names are reserved), with the stage's own cause.
    assert (run.status, run.error, run.cause) == ("FAILED", "PipelineFailed", cause)
    assert started[-1]["Name"].endswith(f"-{stage}")  # nothing started after the failed stage
    [message] = published
    assert message["Subject"] == f"Pipeline FAILED at stage {stage}: {error}"
    assert len(message["Subject"]) <= 100  # SNS refuses longer subjects
    assert message["Message"] == {
        "status": "FAILED",
        "stage": stage,
        "error": error,
        "cause": cause,
        "execution": PIPELINE_EXECUTION,
        "stage_execution": stage_arn(f"{PARENT_NAME_MD5}-{stage}"),
    }
    # After the stage task: note the stage, check the error, read it, notify, fail.
    assert state_types(template, run.trace[len(started) + 1 :]) == ["Pass", "Choice", "Pass", "Task", "Fail"]


def test_a_stage_execution_that_ended_without_an_error_is_notified_with_the_caught_one(template: Template) -> None:
    # An execution stopped without error and cause (ABORTED) has neither in its DescribeExecution.
    run, _, published = run_pipeline(
        template, OBJECT_CREATED, fail_stage="crawl", failure=stage_execution_failed(None, None, status="ABORTED")
    )
    [message] = published
    body = message["Message"]
    assert (body["error"], json.loads(body["cause"])["Status"]) == ("States.TaskFailed", "ABORTED")
    assert body["stage_execution"] == stage_arn(f"{PARENT_NAME_MD5}-crawl")
    assert message["Subject"] == "Pipeline FAILED at stage crawl: States.TaskFailed"
    assert (run.status, run.error, run.cause) == ("FAILED", "PipelineFailed", body["cause"])


def _caught(error: str, cause: str) -> StageFailure:
    return lambda params: StateError(error, cause)


@pytest.mark.parametrize("stage", ["crawl", "transform"])
@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("States.TaskFailed", "boom"),
        ("States.TaskFailed", ""),
        ("States.TaskFailed", '{"ExecutionArn":"arn:aws:states:us-east-1:111122223333:execution:m:x","Error":"Cr'),
        ("States.TaskFailed", '{"Status":"FAILED"}'),
        ("States.Timeout", "stage execution took too long"),
        ("States.Permissions", "not authorized to perform: states:StartExecution"),
        ("StepFunctions.ExecutionAlreadyExistsException", "Execution Already Exists: 'arn:aws:states:...'"),
    ],
    ids=["not-json", "empty", "json-cut-short", "json-not-an-execution", "timeout", "permissions", "could-not-start"],
)
def test_any_other_stage_error_is_notified_as_caught_exactly_once(
    template: Template, stage: str, error: str, cause: str
) -> None:
    run, started, published = run_pipeline(template, OBJECT_CREATED, fail_stage=stage, failure=_caught(error, cause))
    assert (run.status, run.error, run.cause) == ("FAILED", "PipelineFailed", cause)  # never a States.Runtime
    [message] = published
    assert message["Subject"] == f"Pipeline FAILED at stage {stage}: {error}"
    assert message["Message"] == {
        "status": "FAILED",
        "stage": stage,
        "error": error,
        "cause": cause,
        "execution": PIPELINE_EXECUTION,
    }
    # After the stage task: note the stage, check the error, notify, fail (no parsing).
    assert state_types(template, run.trace[len(started) + 1 :]) == ["Pass", "Choice", "Task", "Fail"]


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
def test_unknown_trigger_is_notified_as_a_failure_without_running_a_stage(template: Template, event: Any) -> None:
    run, started, published = run_pipeline(template, event)
    assert (run.status, run.error) == ("FAILED", "PipelineFailed")
    assert "expected an S3 Object Created event" in run.cause
    assert started == []
    [message] = published
    assert message["Subject"] == "Pipeline FAILED at stage trigger: InvalidTriggerEvent"
    assert message["Message"]["error"] == "InvalidTriggerEvent"
    assert "stage_execution" not in message["Message"]
    assert state_types(template, run.trace) == ["Choice", "Pass", "Task", "Fail"]  # 4 transitions, as before


# --- every state machine -----------------------------------------------------------------------

MACHINES = [CRAWL, TRANSFORM, PIPELINE]


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
@pytest.mark.parametrize("prefix", MACHINES)
def test_state_machine_timeout_comes_from_config(synth: Callable[[str], Synthesized], stage: str, prefix: str) -> None:
    asl = state_machine_definition(synth(stage).templates["pipeline"], prefix)
    assert asl["TimeoutSeconds"] == TIMEOUT_MINUTES[prefix](config_for(stage)) * 60


@pytest.mark.parametrize("prefix", MACHINES)
def test_state_machine_logs_all_to_its_own_encrypted_log_group_and_traces(
    dev: Synthesized, template: Template, prefix: str
) -> None:
    _, machine = one_resource(template, STATE_MACHINE_TYPE, prefix)
    props = machine["Properties"]
    assert props.get("StateMachineType", "STANDARD") == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ALL", True)
    [destination] = logging["Destinations"]
    log_group_id, attribute = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    log_group = resources(template)[log_group_id]
    assert (log_group["Type"], attribute) == ("AWS::Logs::LogGroup", "Arn")
    assert imported(dev, log_group["Properties"]["KmsKeyId"]) == {
        "Fn::GetAtt": [storage_id(dev, "AWS::KMS::Key"), "Arn"]
    }
    others = [m for lid, m in template.find_resources(STATE_MACHINE_TYPE).items() if not lid.startswith(prefix)]
    assert all(log_group_id not in refs_in(m["Properties"]["LoggingConfiguration"]) for m in others)


@pytest.mark.parametrize("prefix", MACHINES)
def test_state_machine_has_an_alarm_on_unsuccessful_executions_that_notifies_the_topic(
    dev: Synthesized, template: Template, prefix: str
) -> None:
    machine_id = state_machine_logical_id(template, prefix)
    alarms = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if machine_id in refs_in(a["Properties"].get("Metrics", a["Properties"].get("Dimensions")))
    ]
    assert len(alarms) == 1, alarms
    [alarm] = alarms
    metric_names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} <= metric_names
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    [action] = alarm["AlarmActions"]
    assert imported(dev, action) == {"Ref": storage_id(dev, "AWS::SNS::Topic")}


# --- triggers ----------------------------------------------------------------------------------


def rules(template: Template) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in template.find_resources("AWS::Events::Rule").items()}


def test_object_created_rule_matches_new_objects_under_the_landing_prefix(
    dev: Synthesized, template: Template, config: DeploymentConfig
) -> None:
    [pattern] = [rule["EventPattern"] for rule in rules(template).values() if "EventPattern" in rule]
    assert set(pattern) == {"source", "detail-type", "detail"}
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    [bucket_name] = pattern["detail"]["bucket"]["name"]
    assert imported(dev, bucket_name) == {"Ref": storage_id(dev, "AWS::S3::Bucket", "LandingBucket")}
    assert pattern["detail"]["object"] == {"key": [{"prefix": config.landing_prefix}]}


def test_schedule_rule_uses_the_configured_schedule(template: Template, config: DeploymentConfig) -> None:
    schedules = [rule["ScheduleExpression"] for rule in rules(template).values() if "ScheduleExpression" in rule]
    assert schedules == [config.schedule]


def test_rule_targets_start_the_pipeline_with_retries_and_an_encrypted_dead_letter_queue(
    dev: Synthesized, template: Template
) -> None:
    all_rules = rules(template)
    assert len(all_rules) == 2
    pipeline_id = state_machine_logical_id(template, PIPELINE)
    queue_policies = [p["Properties"] for p in template.find_resources("AWS::SQS::QueuePolicy").values()]
    for rule_id, rule in all_rules.items():
        [target] = rule["Targets"]
        assert target["Arn"] == {"Ref": pipeline_id}
        retry = target["RetryPolicy"]
        assert retry["MaximumRetryAttempts"] > 0 and retry["MaximumEventAgeInSeconds"] > 0
        queue_id, attribute = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
        queue = resources(template)[queue_id]
        assert (queue["Type"], attribute) == ("AWS::SQS::Queue", "Arn")
        assert imported(dev, queue["Properties"]["KmsMasterKeyId"]) == {
            "Fn::GetAtt": [storage_id(dev, "AWS::KMS::Key"), "Arn"]
        }
        # EventBridge may put this rule's undeliverable events into the queue.
        allowed = [
            s
            for p in queue_policies
            if {"Ref": queue_id} in p["Queues"]
            for s in p["PolicyDocument"]["Statement"]
            if s["Effect"] == "Allow"
            and s.get("Principal") == {"Service": "events.amazonaws.com"}
            and "sqs:SendMessage" in as_list(s["Action"])
            and rule_id in refs_in(s.get("Condition"))
        ]
        assert allowed, f"no queue policy lets EventBridge dead-letter events of {rule_id}"


# --- IAM ---------------------------------------------------------------------------------------


def role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement of a role: inline policies and attached AWS::IAM::Policy resources (no managed policies)."""
    all_resources = resources(template)
    role = all_resources[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), f"{role_id} has managed policies"
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for resource in all_resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", []):
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def machine_role_statements(template: Template, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(statements on specific resources, statements on "*") of a state machine's role."""
    _, machine = one_resource(template, STATE_MACHINE_TYPE, prefix)
    statements = role_statements(template, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    on_star = [s for s in statements if s["Resource"] == "*"]
    for statement in on_star:
        assert set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL_ACTIONS, statement
    return [s for s in statements if s["Resource"] != "*"], on_star


def lower_actions(statement: dict[str, Any]) -> set[str]:
    return {action.lower() for action in as_list(statement["Action"])}  # IAM actions are case-insensitive


def test_crawl_stage_may_only_start_and_read_its_crawler(template: Template) -> None:
    specific, _ = machine_role_statements(template, CRAWL)
    [statement] = specific
    assert lower_actions(statement) == {"glue:startcrawler", "glue:getcrawler"}
    crawler_arn = "arn:${Ref:AWS::Partition}:glue:${Ref:AWS::Region}:${Ref:AWS::AccountId}:crawler/" + crawler_ref(
        template
    )
    assert [render(resource) for resource in as_list(statement["Resource"])] == [crawler_arn]


def test_pipeline_may_start_only_the_two_stage_machines(dev: Synthesized, template: Template) -> None:
    specific, _ = machine_role_statements(template, PIPELINE)
    stage_ids = {state_machine_logical_id(template, CRAWL), state_machine_logical_id(template, TRANSFORM)}
    starts = [s for s in specific if "states:startexecution" in lower_actions(s)]
    assert len(starts) == 1 and lower_actions(starts[0]) == {"states:startexecution"}
    assert sorted(as_list(starts[0]["Resource"]), key=json.dumps) == sorted(
        ({"Ref": lid} for lid in stage_ids), key=json.dumps
    )
    for statement in specific:
        actions = lower_actions(statement)
        if any(action.startswith("states:") for action in actions):
            # Describe/Stop (for .sync) on executions of the stage machines only.
            assert refs_in(statement["Resource"]) == stage_ids, statement
        if "sns:publish" in actions:
            assert [imported(dev, r) for r in as_list(statement["Resource"])] == [
                {"Ref": storage_id(dev, "AWS::SNS::Topic")}
            ]


def policy_statements(value: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in a resource: identity, trust, bucket, queue, topic and key policies."""
    if isinstance(value, dict):
        if isinstance(value.get("Statement"), list):
            yield from value["Statement"]
        for inner in value.values():
            yield from policy_statements(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from policy_statements(inner)


def is_kms_default_admin_statement(resource_type: str, statement: dict[str, Any]) -> bool:
    """CDK's default key-policy statement: kms:* for the account root, which hands control to IAM policies."""
    principal = statement.get("Principal", {})
    return (
        resource_type == "AWS::KMS::Key"
        and statement.get("Action") == "kms:*"
        and isinstance(principal, dict)
        and render(principal.get("AWS", "")) == "arn:${Ref:AWS::Partition}:iam::${Ref:AWS::AccountId}:root"
    )


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_no_statement_allows_every_action_of_a_service(synth: Callable[[str], Synthesized], stage: str) -> None:
    checked = 0
    for name, template in synth(stage).templates.items():
        for logical_id, resource in resources(template).items():
            for statement in policy_statements(resource.get("Properties", {})):
                if statement["Effect"] != "Allow" or is_kms_default_admin_statement(resource["Type"], statement):
                    continue
                checked += 1
                where = f"{name}/{logical_id}: {statement}"
                assert "NotAction" not in statement, where
                for action in as_list(statement["Action"]):
                    assert action != "*" and not re.fullmatch(r"[\w-]+:\*", action), where
                if resource["Type"].startswith("AWS::IAM::") and statement.get("Resource") == "*":
                    assert set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL_ACTIONS, where
    assert checked > 20  # the walk found the policies
