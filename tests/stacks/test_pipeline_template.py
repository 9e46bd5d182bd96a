"""The Pipeline stack as synthesized: what the state machines do, how they are triggered and watched, who may do what.

State machine tests parse the ASL and walk or run it (tests/helpers.py): Retry and Catch on the
named errors, where each branch of a Choice goes, which SNS message a failure sends. Values that
come from config are compared with the config, on more than one stage where they differ.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Template

from stacks.config.deployment import DeploymentConfig
from stacks.config.settings import retry_worst_case_seconds
from stacks.config.stages import config_for
from tests.conftest import stage_config
from tests.helpers import (
    STATE_MACHINE_TYPE,
    Run,
    StateError,
    as_list,
    exported_value,
    one_resource,
    refs_in,
    render,
    simulate,
    state_machine_definition,
    state_machine_logical_id,
)

if TYPE_CHECKING:
    from tests.conftest import Synthesized

ADMISSION, CRAWL, TRANSFORM, PIPELINE = (
    "AdmissionStageWorkflow",
    "CrawlStageWorkflow",
    "TransformStageWorkflow",
    "PipelineWorkflow",
)
TIMEOUT_MINUTES = {
    ADMISSION: lambda c: c.admission_stage_timeout_minutes,
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
OBJECT_CREATED: dict[str, Any] = {
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
        if state["Resource"].endswith(":dynamodb:putItem.waitForTaskToken"):
            # Every end event lost: the stage judges by GetCrawler alone (the event path:
            # tests/stacks/test_crawl_callback_template.py).
            raise StateError("States.Timeout")
        raise AssertionError(f"unexpected task {name}")

    return simulate(asl, {"trigger": OBJECT_CREATED}, on_task)


def test_crawl_succeeds_when_the_crawler_is_ready_and_its_last_crawl_succeeded(template: Template) -> None:
    succeeded = {"Status": "SUCCEEDED"}
    run = run_crawl(template, iter([crawler("RUNNING"), crawler("STOPPING"), crawler("READY", succeeded)]))
    assert run.status == "SUCCEEDED", run
    assert [name for name, _ in run.task_calls].count("Get crawler") == 3
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


# --- transform stage ---------------------------------------------------------------------------


def transform_states(template: Template) -> dict[str, Any]:
    return state_machine_definition(template, TRANSFORM)["States"]


def test_transform_runs_the_glue_job_to_completion_and_retries_only_when_busy(
    template: Template, config: DeploymentConfig
) -> None:
    asl = state_machine_definition(template, TRANSFORM)
    run_job = asl["States"]["Run transform job"]
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


@pytest.mark.parametrize("stage", ["dev", "local"])
@pytest.mark.parametrize(
    ("prefix", "state", "busy_error", "settings"),
    [
        (CRAWL, "Start crawler", "Glue.CrawlerRunningException", lambda c: c.crawler),
        (TRANSFORM, "Run transform job", "Glue.ConcurrentRunsExceededException", lambda c: c.glue_job),
    ],
)
def test_a_busy_retry_waits_at_most_what_the_config_budgets_for_it(
    synth: Callable[[str], Synthesized], stage: str, prefix: str, state: str, busy_error: str, settings: Any
) -> None:
    """The config refuses a stage timeout shorter than the stage's worst case, which counts the busy
    retries with retry_worst_case_seconds: the template's Retry must wait exactly that at most."""
    run = state_machine_definition(synth(stage).templates["pipeline"], prefix)["States"][state]
    [busy] = [r for r in run["Retry"] if busy_error in r["ErrorEquals"]]
    waits = [busy["IntervalSeconds"] * busy["BackoffRate"] ** attempt for attempt in range(busy["MaxAttempts"])]
    assert "MaxDelaySeconds" not in busy  # the budget counts every wait in full
    config = settings(stage_config(stage))
    assert sum(waits) == retry_worst_case_seconds(config.busy_retry_interval_seconds, config.busy_retry_attempts)


def test_transform_checks_results_with_the_lambda_then_chooses(template: Template) -> None:
    states = transform_states(template)
    check = states[states["Run transform job"]["Next"]]
    function_id, function = one_resource(template, "AWS::Lambda::Function", "TransformStageCheckResults")
    assert check["Resource"] == f"${{GetAtt:{function_id}.Arn}}"
    assert function["Properties"]["Handler"] == "handler.handler"
    assert states[check["Next"]]["Type"] == "Choice"


# What the pipeline passes each stage about the round it runs in (stacks/pipeline_workflow.py).
RUN = {"name": "run-7-r1", "key": "0f2d", "landing_path": "s3://landing-bucket/landing/run=run-7-r1/"}
VALID = {"valid": True, "reason": "ok", "input_rows": 40, "output_rows": 38, "rejected_rows": 2, "rejected_ratio": 0.05}
INVALID = {
    "valid": False,
    "reason": "rejected ratio 0.7000 (7/10) exceeds threshold 0.1000",
    "input_rows": 10,
    "output_rows": 3,
    "rejected_rows": 7,
    "rejected_ratio": 0.7,
}


def run_transform(
    template: Template,
    job: Callable[[], Any],
    check: dict[str, Any] | None = None,
    *,
    replay: dict[str, Any] | None = None,
    publish: Callable[[], Any] = dict,
    staged_keys: int = 1,
    quarantine_records: int = 1,
) -> Run:
    asl = state_machine_definition(template, TRANSFORM)

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        resource = state["Resource"]
        if resource.endswith(":glue:startJobRun.sync"):
            return job()
        if resource.endswith(":aws-sdk:glue:createPartition"):
            return publish()
        if resource.endswith(":aws-sdk:s3:listObjectsV2"):
            return {"KeyCount": quarantine_records if "quarantine/" in params["Prefix"] else staged_keys}
        if ":aws-sdk:s3:" in resource:
            return {}
        assert check is not None, f"{name} ran after the job failed"
        return check

    execution_input = (
        {"trigger": OBJECT_CREATED, "run": RUN} if replay is None else {"run": {"name": RUN["name"]}, "replay": replay}
    )
    return simulate(asl, execution_input, on_task, execution_name="run-7-transform")


def calls(run: Run, name: str) -> list[Any]:
    return [params for called, params in run.task_calls if called == name]


def job_succeeded() -> dict[str, Any]:
    return {"Id": "jr_0123", "JobName": "transform", "JobRunState": "SUCCEEDED", "ExecutionTime": 61}


def test_a_valid_run_is_published_as_its_catalog_partition(
    dev: Synthesized, template: Template, config: DeploymentConfig
) -> None:
    run = run_transform(template, job_succeeded, VALID)
    assert run.status == "SUCCEEDED"
    assert run.output == VALID
    [job_params] = calls(run, "Run transform job")
    [check_params] = calls(run, "Check results")
    # One manifest, staged output and rejected folder per run, named after it (a redrive finds its own).
    assert job_params["Arguments"]["--manifest_key"] == check_params["key"] == "manifests/run=run-7-r1.json"
    assert job_params["Arguments"]["--landing_path"] == RUN["landing_path"]  # exactly the round's files
    staged = job_params["Arguments"]["--curated_path"]
    assert staged.endswith("/staging/orders/run=run-7-r1/")
    assert job_params["Arguments"]["--rejected_path"].endswith("/rejected/orders/run=run-7-r1/")
    assert check_params["max_rejected_ratio"] == config.glue_job.max_rejected_ratio
    # Publishing is metadata only: the run's partition, pointing at what the job staged.
    [partition] = calls(run, "Publish run")
    assert partition["PartitionInput"]["Values"] == ["run-7-r1"]
    assert partition["PartitionInput"]["StorageDescriptor"]["Location"] == staged
    table_id, table = one_resource(dev.templates["storage"], "AWS::Glue::Table")
    assert partition["TableName"] == table["Properties"]["TableInput"]["Name"]
    assert (
        partition["PartitionInput"]["StorageDescriptor"]["Columns"]
        == table["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    )
    assert calls(run, "Quarantine run") == []


def test_a_valid_run_without_rows_publishes_nothing(template: Template) -> None:
    empty = {**VALID, "input_rows": 0, "output_rows": 0, "rejected_rows": 0, "rejected_ratio": 0.0}
    run = run_transform(template, job_succeeded, empty)
    assert run.status == "SUCCEEDED"
    assert calls(run, "Publish run") == [] and calls(run, "Quarantine run") == []


def test_a_run_published_before_is_published(template: Template) -> None:
    def already() -> Any:
        raise StateError("Glue.AlreadyExistsException", "Partition already exists.")

    run = run_transform(template, job_succeeded, VALID, publish=already)
    assert run.status == "SUCCEEDED"


@pytest.mark.parametrize("error", ["States.TaskFailed", "Glue.ConcurrentRunsExceededException", "States.Permissions"])
def test_failed_job_run_fails_the_stage_glue_job_failed(template: Template, error: str) -> None:
    def job() -> Any:
        raise StateError(error, '{"JobRunState":"FAILED","ErrorMessage":"boom"}')

    run = run_transform(template, job)
    assert (run.status, run.error) == ("FAILED", "GlueJobFailed")
    assert "boom" in run.cause
    assert len(run.task_calls) == 1  # the check never ran, nothing was published or quarantined


def test_an_invalid_run_is_quarantined_with_its_reason_and_fails_validation_failed(template: Template) -> None:
    run = run_transform(template, job_succeeded, INVALID)
    assert (run.status, run.error, run.cause) == ("FAILED", "ValidationFailed", INVALID["reason"])
    assert calls(run, "Publish run") == []
    [record] = calls(run, "Quarantine run")
    assert record["Key"] == "quarantine/orders/run=run-7-r1.json"
    body = json.loads(record["Body"])
    assert body["check"] == INVALID
    assert body["staged_path"].endswith("/staging/orders/run=run-7-r1/")
    # The replay input: the same run, checked again at the ratio it had.
    assert body["replay_input"] == {"run": {"name": "run-7-r1"}, "replay": {"max_rejected_ratio": 0.7}}


def test_a_replay_checks_again_with_its_own_threshold_and_publishes(template: Template) -> None:
    run = run_transform(template, job_succeeded, {**INVALID, "valid": True}, replay={"max_rejected_ratio": 0.7})
    assert run.status == "SUCCEEDED"
    assert calls(run, "Run transform job") == []  # the staged output is audited again, not rebuilt
    [check_params] = calls(run, "Check replayed run")
    assert (check_params["key"], check_params["max_rejected_ratio"]) == ("manifests/run=run-7-r1.json", 0.7)
    [partition] = calls(run, "Publish run")
    assert partition["PartitionInput"]["Values"] == ["run-7-r1"]
    assert [p["Key"] for p in calls(run, "Clear quarantine record")] == ["quarantine/orders/run=run-7-r1.json"]


@pytest.mark.parametrize(
    ("records", "staged_keys", "check", "reason"),
    [
        (0, 1, None, "no quarantine record"),  # a mistyped run name, or a run rejected and uploaded again
        (1, 0, None, "no staged output"),  # the output deleted: the check never runs
        (1, 1, INVALID, INVALID["reason"]),  # still over the replay's own threshold
        (1, 1, {**INVALID, "valid": True, "output_rows": 0}, None),  # nothing written: nothing to publish
    ],
    ids=["not-quarantined", "no-staged-output", "still-invalid", "no-rows"],
)
def test_a_replay_that_cannot_publish_is_refused_and_writes_nothing(
    template: Template, records: int, staged_keys: int, check: dict[str, Any] | None, reason: str | None
) -> None:
    run = run_transform(
        template,
        job_succeeded,
        check,
        replay={"max_rejected_ratio": 0.7},
        staged_keys=staged_keys,
        quarantine_records=records,
    )
    assert (run.status, run.error) == ("FAILED", "ReplayRefused")
    if reason:
        assert reason in run.cause
    [record] = calls(run, "Look at quarantine record")
    assert record["Prefix"] == "quarantine/orders/run=run-7-r1.json" and record["MaxKeys"] == 1
    if records:
        [listing] = calls(run, "Look at staged output")
        assert listing["Prefix"] == "staging/orders/run=run-7-r1/" and listing["MaxKeys"] == 1
    # No quarantine record for a run that may not exist, no partition, no record cleared.
    assert calls(run, "Quarantine run") == calls(run, "Publish run") == calls(run, "Clear quarantine record") == []


def test_the_check_reads_the_bucket_the_job_writes_manifests_to(dev: Synthesized, template: Template) -> None:
    states = transform_states(template)
    check = states["Check results"]
    _, job = one_resource(template, "AWS::Glue::Job")
    manifest_bucket = job["Properties"]["DefaultArguments"]["--manifest_bucket"]
    assert check["Parameters"]["bucket"] == render(manifest_bucket)
    assert imported(dev, manifest_bucket) == {"Ref": storage_id(dev, "AWS::S3::Bucket", "CuratedBucket")}


# --- pipeline ----------------------------------------------------------------------------------


# --- every state machine -----------------------------------------------------------------------

MACHINES = [ADMISSION, CRAWL, TRANSFORM, PIPELINE]


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
@pytest.mark.parametrize("prefix", MACHINES)
def test_state_machine_timeout_comes_from_config(synth: Callable[[str], Synthesized], stage: str, prefix: str) -> None:
    asl = state_machine_definition(synth(stage).templates["pipeline"], prefix)
    assert asl["TimeoutSeconds"] == TIMEOUT_MINUTES[prefix](stage_config(stage)) * 60


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
    """The rules that start the pipeline, picked by what they fire on: the schedule, and the uploads'
    rule (aws.s3 Object Created). Not the rules on AWS's own events: aws.states (the failure notice,
    test_failure_notice.py), aws.glue (the dashboard's Glue failure alarms, test_dashboard.py; the crawl
    stage's end events, test_crawl_callback_template.py)."""
    return {
        lid: r["Properties"]
        for lid, r in template.find_resources("AWS::Events::Rule").items()
        if "ScheduleExpression" in r["Properties"]
        or r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    }


def test_object_created_rule_matches_non_empty_csv_objects_under_the_incoming_prefix(
    dev: Synthesized, template: Template, config: DeploymentConfig
) -> None:
    [pattern] = [rule["EventPattern"] for rule in rules(template).values() if "EventPattern" in rule]
    assert set(pattern) == {"source", "detail-type", "detail"}
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    [bucket_name] = pattern["detail"]["bucket"]["name"]
    assert imported(dev, bucket_name) == {"Ref": storage_id(dev, "AWS::S3::Bucket", "LandingBucket")}
    # One wildcard for "under the prefix and ending in .csv": a prefix filter and a suffix filter
    # on the same field would match objects that satisfy either. Empty objects start nothing.
    assert pattern["detail"]["object"] == {
        "key": [{"wildcard": f"{config.incoming_prefix}*.csv"}],
        "size": [{"numeric": [">", 0]}],
    }


@pytest.mark.parametrize(
    ("key", "size", "starts"),
    [
        ("incoming/orders.csv", 10, True),
        ("incoming/2026/11/orders.csv", 10, True),
        ("incoming/orders.csv", 0, False),  # empty
        ("incoming/orders.json", 10, False),
        ("incoming/orders.CSV", 10, False),  # quarantined by the next run, never silently dropped
        ("incoming/", 0, False),  # folder marker
        ("incoming/a.csv/", 0, False),
        ("landing/orders.csv", 10, False),  # outside the incoming prefix
        ("orders.csv", 10, False),
    ],
)
def test_object_created_rule_filters_as_eventbridge_matches(
    template: Template, key: str, size: int, starts: bool
) -> None:
    from moto.events.models import EventPattern

    [pattern] = [rule["EventPattern"] for rule in rules(template).values() if "EventPattern" in rule]
    pattern = {**pattern, "detail": {**pattern["detail"], "bucket": {"name": ["landing-bucket"]}}}  # token resolved
    event: Any = {**OBJECT_CREATED, "detail": {**OBJECT_CREATED["detail"], "object": {"key": key, "size": size}}}
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is starts


def test_schedule_rule_uses_the_configured_schedule(template: Template, config: DeploymentConfig) -> None:
    schedules = [rule["ScheduleExpression"] for rule in rules(template).values() if "ScheduleExpression" in rule]
    assert schedules == [config.schedule]


def test_rule_targets_start_the_pipeline_with_retries_and_an_encrypted_dead_letter_queue(
    dev: Synthesized, template: Template
) -> None:
    all_rules = rules(template)
    assert len(all_rules) == 2
    pipeline_id = state_machine_logical_id(template, PIPELINE)
    door_id = state_machine_logical_id(template, "FrontDoorWorkflow")  # uploads: test_front_door_template.py
    queue_policies = [p["Properties"] for p in template.find_resources("AWS::SQS::QueuePolicy").values()]
    for rule_id, rule in all_rules.items():
        [target] = rule["Targets"]
        assert target["Arn"] == {"Ref": door_id if "EventPattern" in rule else pipeline_id}
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
    # Its task-token table: tests/stacks/test_crawl_callback_template.py.
    [statement] = [s for s in specific if any(a.startswith("glue:") for a in lower_actions(s))]
    assert lower_actions(statement) == {"glue:startcrawler", "glue:getcrawler"}
    crawler_arn = "arn:${Ref:AWS::Partition}:glue:${Ref:AWS::Region}:${Ref:AWS::AccountId}:crawler/" + crawler_ref(
        template
    )
    assert [render(resource) for resource in as_list(statement["Resource"])] == [crawler_arn]


def test_pipeline_may_start_only_the_three_stage_machines(dev: Synthesized, template: Template) -> None:
    specific, _ = machine_role_statements(template, PIPELINE)
    stage_ids = {state_machine_logical_id(template, prefix) for prefix in (ADMISSION, CRAWL, TRANSFORM)}
    pipeline_id = state_machine_logical_id(template, PIPELINE)
    starts = [s for s in specific if "states:startexecution" in lower_actions(s)]
    # One start of itself (a continuation when rounds are spent), the rest the stage machines.
    itself = [s for s in starts if s["Resource"] == {"Ref": pipeline_id}]
    assert len(itself) == 1 and lower_actions(itself[0]) == {"states:startexecution"}
    starts = [s for s in starts if s not in itself]
    assert len(starts) == 1 and lower_actions(starts[0]) == {"states:startexecution"}
    assert sorted(as_list(starts[0]["Resource"]), key=json.dumps) == sorted(
        ({"Ref": lid} for lid in stage_ids), key=json.dumps
    )
    for statement in specific:
        actions = lower_actions(statement)
        if statement in itself:
            continue
        if actions == {"states:describeexecution"} and refs_in(statement["Resource"]) == {pipeline_id}:
            # The lease: is its holder, an execution of this same machine, still running?
            assert render(statement["Resource"]).endswith(f":execution:${{GetAtt:{pipeline_id}.Name}}:*")
        elif any(action.startswith("states:") for action in actions):
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
