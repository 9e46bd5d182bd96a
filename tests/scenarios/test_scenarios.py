"""Each scenario executes the synthesized state machines on moto and checks status, path and notices."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from localrun.emulator.deployment import LocalDeployment
from localrun.emulator.local_eventbridge import scheduled_event
from localrun.runner import describe_execution, run_scenario
from localrun.scenarios.actions import SAMPLES
from localrun.scenarios.catalogue import SCENARIOS

CRAWL_OK = ["Start crawler", "Wait for crawl end", "Get crawler", "Crawl finished?", "Crawl succeeded"]
# Write (the job stages the run's output), audit (the check), publish (the run's partition).
TRANSFORM_OK = [
    "Replay?",
    "Run transform job",
    "Check results",
    "Results valid?",
    "Publish run",
    "Clear quarantine record",
    "Results valid",
]
ADMISSION_OK = ["Admit files", "Summarize admission", "Admission done"]
# Lease taken, one round (admission, crawl, transform), its notice, nothing waiting, lease released.
PIPELINE_START = ["Trigger recognised?", "First round", "Take lease", "Start round"]
PIPELINE_STAGES = ["Run admission stage", "Proceed after admission?", "Run crawl stage", "Run transform stage"]
PIPELINE_END = [
    "Notify round",
    "Next round",
    "Look at incoming",
    "Files waiting?",
    "Release lease",
    "Look at incoming after release",
    "Files arrived during release?",
    "Pipeline succeeded",
]
PIPELINE_OK = PIPELINE_START + PIPELINE_STAGES + PIPELINE_END


SAMPLE_CSV = (SAMPLES / "orders.csv").read_bytes()


def run(deployment: LocalDeployment, name: str) -> dict[str, Any]:
    report = run_scenario(deployment, SCENARIOS[name])
    assert report["as_expected"], json.dumps(report, indent=1, default=str)[:3000]
    return report


def stage(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in report["stage_runs"] if s["stage"] == name]
    return found


def failure_notice(report: dict[str, Any], failed_stage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exactly one notification, from the execution's status change: the stage, its error, how to resume.

    With the stage execution that failed: the pipeline failed AT that stage's task (nothing after
    it ran, nothing caught it), and the notice carries the stage execution's own error and cause
    (not States.TaskFailed and its DescribeExecution JSON) and ARN.
    """
    [notice] = report["notifications"]
    message = notice["message"]
    assert message["status"] == "FAILED"
    assert notice["subject"] == f"Pipeline FAILED at stage {message['stage']}: {message['error']}"
    [pipeline] = report["pipeline_runs"]
    assert message["execution"].endswith(f":{pipeline['name']}")
    if failed_stage is not None:
        stage_name = failed_stage["stage"]
        assert (message["stage"], message["error"], message["cause"]) == (
            stage_name,
            failed_stage["error"],
            failed_stage["cause"],
        )
        assert message["stage_execution"].endswith(f":{failed_stage['name']}")
        assert pipeline["path"] == PIPELINE_OK[: PIPELINE_OK.index(f"Run {stage_name} stage") + 1]
        assert pipeline["error"] == "States.TaskFailed" and json.loads(pipeline["cause"])["Error"] == message["error"]
        assert pipeline["transitions"] == len(pipeline["path"])
        action = "replay" if message["error"] == "ValidationFailed" else "redrive"
        assert message["resume"]["action"] == action, message["resume"]
        if action == "redrive":
            assert message["resume"]["command"] == (
                f"aws stepfunctions redrive-execution --execution-arn {message['execution']}"
            )
    return message


def test_happy_path(deployment: LocalDeployment) -> None:
    report = run(deployment, "happy_path")
    [pipeline] = report["pipeline_runs"]
    assert pipeline["path"] == PIPELINE_OK
    assert stage(report, "crawl")["path"] == CRAWL_OK
    assert stage(report, "transform")["path"][-1] == "Results valid"  # nothing to publish, nothing failed
    [notice] = report["notifications"]
    assert notice["subject"] == "Pipeline SUCCEEDED"
    checked = notice["message"]["stages"]["transform"]["Output"]
    assert (checked["input_rows"], checked["output_rows"], checked["rejected_rows"]) == (40, 38, 2)
    admission = stage(report, "admission")
    assert admission["path"] == ADMISSION_OK
    assert notice["message"]["stages"]["admission"]["Output"]["admitted"] == 1
    # Child executions are named after the parent's round (idempotent on redrive): an MD5 of it,
    # so a 73-character EventBridge name still gives a child name within AWS's 80 characters.
    parent_md5 = hashlib.md5(f"{pipeline['name']}-r1".encode()).hexdigest()  # the round's run name
    assert stage(report, "crawl")["name"] == f"{parent_md5}-0-crawl"  # redrive count 0
    assert stage(report, "transform")["name"] == f"{parent_md5}-0-transform"
    # pipeline 16, admission 3 + 1 child workflow (one batch), crawl 5, transform 4
    assert [r["transitions"] for r in (pipeline, admission, stage(report, "crawl"), stage(report, "transform"))] == [
        len(PIPELINE_OK),
        len(ADMISSION_OK) + 1,
        len(CRAWL_OK),
        len(TRANSFORM_OK),
    ]
    assert admission["express_requests"] == 1
    assert report["transitions"] == len(PIPELINE_OK) + len(ADMISSION_OK) + 1 + len(CRAWL_OK) + len(TRANSFORM_OK)


def test_crawler_already_running_is_retried(deployment: LocalDeployment) -> None:
    report = run(deployment, "crawler_already_running")
    crawl = stage(report, "crawl")
    assert crawl["path"] == CRAWL_OK
    assert [f["error"] for f in crawl["task_failures"]] == ["Glue.CrawlerRunningException"]
    assert crawl["transitions"] == len(CRAWL_OK) + 1  # the retry is billed
    assert [n["subject"] for n in report["notifications"]] == ["Pipeline SUCCEEDED"]


def test_crawl_failed(deployment: LocalDeployment) -> None:
    report = run(deployment, "crawl_failed")
    crawl = stage(report, "crawl")
    assert crawl["path"][-1] == "Crawl failed"
    assert (crawl["status"], crawl["error"]) == ("FAILED", "CrawlerFailed")
    assert "could not read s3 objects" in crawl["cause"]
    assert [s["stage"] for s in report["stage_runs"]] == ["admission", "crawl"]  # transform never started
    message = failure_notice(report, crawl)
    assert message["error"] == "CrawlerFailed" and "could not read s3 objects" in message["cause"]


def test_crawl_never_finishes_times_out(deployment: LocalDeployment) -> None:
    report = run(deployment, "crawl_never_finishes")
    crawl = stage(report, "crawl")
    assert crawl["error"] == "CrawlerTimedOut"
    # No end event; one wait of local max_polls x interval (5 x 1 s), then GetCrawler: still running.
    assert crawl["path"].count("Wait for crawl end") == 1 and crawl["path"].count("Get crawler") == 1
    assert crawl["path"][-1] == "Crawl timed out"
    message = failure_notice(report, crawl)
    assert message["error"] == "CrawlerTimedOut" and "still running after 1 waits" in message["cause"]


@pytest.mark.parametrize("scenario, state", [("job_failed", "FAILED"), ("job_timeout", "TIMEOUT")])
def test_job_run_failure(deployment: LocalDeployment, scenario: str, state: str) -> None:
    report = run(deployment, scenario)
    transform = stage(report, "transform")
    assert transform["path"] == ["Replay?", "Run transform job", "Transform job failed"]
    assert transform["error"] == "GlueJobFailed"
    assert json.loads(transform["cause"])["JobRunState"] == state
    message = failure_notice(report, transform)
    assert message["error"] == "GlueJobFailed" and json.loads(message["cause"])["JobRunState"] == state
    # The job's end event also trips the Glue job alarm: one line on the alarm topic.
    [alarm] = deployment.alarms
    assert f"ended {state}: " in alarm["text"] and "(fault)" in alarm["text"], alarm


def test_job_concurrency_exceeded_then_retried(deployment: LocalDeployment) -> None:
    report = run(deployment, "job_concurrency_exceeded")
    transform = stage(report, "transform")
    assert transform["path"] == TRANSFORM_OK
    assert [f["error"] for f in transform["task_failures"]] == ["Glue.ConcurrentRunsExceededException"] * 2
    assert [n["subject"] for n in report["notifications"]] == ["Pipeline SUCCEEDED"]


@pytest.mark.parametrize(
    "scenario, reason", [("empty_output", "no rows written"), ("too_many_rejected", "rejected ratio")]
)
def test_check_results_fails_the_stage(deployment: LocalDeployment, scenario: str, reason: str) -> None:
    report = run(deployment, scenario)
    transform = stage(report, "transform")
    assert transform["path"][-3:] == ["Note quarantine", "Quarantine run", "Results invalid"]
    assert transform["error"] == "ValidationFailed"
    assert reason in transform["cause"]
    message = failure_notice(report, transform)
    assert message["error"] == "ValidationFailed" and reason in message["cause"]


def test_object_outside_prefix_starts_nothing(deployment: LocalDeployment) -> None:
    report = run(deployment, "outside_prefix")
    assert report["pipeline_runs"] == [] and report["stage_runs"] == []
    assert report["notifications"] == []


def test_malformed_event_is_rejected_and_notified(deployment: LocalDeployment) -> None:
    report = run(deployment, "malformed_event")
    [pipeline] = report["pipeline_runs"]
    # No lease was taken, so none is released: notice, then Fail.
    assert pipeline["path"] == ["Trigger recognised?", "Trigger rejected"]
    message = failure_notice(report)
    assert (message["stage"], message["error"]) == ("trigger", "InvalidTriggerEvent")
    assert "expected an S3 Object Created event" in message["cause"]
    assert "stage_execution" not in message  # there is none
    assert message["resume"]["action"] == "none"  # nothing ran, nothing to resume
    assert report["stage_runs"] == []


def test_a_stage_that_cannot_start_is_notified_with_its_error(deployment: LocalDeployment) -> None:
    # No crawl stage state machine: StartExecution fails, so there is no stage execution to read.
    # A file waits under incoming/, so the round reaches the crawl stage.
    deployment.clients["s3"].put_object(
        Bucket=deployment.landing_bucket, Key=f"{deployment.incoming_prefix}a.csv", Body=SAMPLE_CSV
    )
    sfn = deployment.clients["stepfunctions"]
    sfn.delete_state_machine(stateMachineArn=deployment.state_machines["crawl"])
    event = scheduled_event(rule_arn="arn:aws:events:us-east-1:123456789012:rule/pipeline-schedule")
    pipeline = describe_execution(deployment, deployment.start(deployment.state_machines["pipeline"], event))
    assert pipeline["path"] == PIPELINE_START + ["Run admission stage", "Proceed after admission?", "Run crawl stage"]
    [caught] = pipeline["task_failures"]
    assert caught["error"].endswith("StateMachineDoesNotExistException")
    [notice] = deployment.notifications()
    message = notice["message"]
    assert (message["status"], message["stage"], message["error"]) == ("FAILED", "crawl", caught["error"])
    assert notice["subject"] == f"Pipeline FAILED at stage crawl: {caught['error']}"
    assert "stage_execution" not in message
    assert pipeline["error"] == message["error"]
    assert message["resume"]["action"] == "redrive"  # once the stage's machine is back


def test_duplicate_event_is_processed_once(deployment: LocalDeployment) -> None:
    # S3 delivers at least once: the second event's door finds the lease held and ends there, or (if
    # it read the lease before the first run took it) starts a pipeline that coalesces or finds the
    # file gone. Either way the file is admitted, crawled and transformed once.
    report = run(deployment, "duplicate_event")
    assert report["statuses"] in (["SUCCEEDED"], ["SUCCEEDED", "SUCCEEDED"])  # no false failure
    doors = [describe_execution(deployment, arn) for arn in deployment.door_executions]
    assert [d["status"] for d in doors] == ["SUCCEEDED", "SUCCEEDED"]  # both events were handled
    assert len(report["statuses"]) == 1 + sum(1 for d in doors[1:] if d["path"][-1] == "Pipeline started")
    transforms = [n["message"]["stages"].get("transform") for n in report["notifications"]]
    assert sum(t["Output"]["input_rows"] for t in transforms if t) == 40  # no double processing
    assert [s["stage"] for s in report["stage_runs"]].count("crawl") == 1


def test_nothing_new_is_a_noted_no_op(deployment: LocalDeployment) -> None:
    report = run(deployment, "nothing_new")
    assert stage(report, "transform")["path"][-1] == "Results valid"  # nothing to publish, nothing failed
    [notice] = report["notifications"]
    output = notice["message"]["stages"]["transform"]["Output"]
    assert (notice["subject"], output["input_rows"]) == ("Pipeline SUCCEEDED", 0)
    assert output["reason"].startswith("no new rows in this run's files")


def test_a_redrive_after_the_fix_resumes_the_failed_stage_and_publishes_once(deployment: LocalDeployment) -> None:
    report = run(deployment, "redrive_after_fix")  # its check: admission and crawl once, one partition, lease free
    [pipeline] = report["pipeline_runs"]
    assert pipeline["status"] == "SUCCEEDED"
    # The first attempt up to the failed stage, then the redrive from that stage on.
    failed_at = PIPELINE_OK.index("Run transform stage") + 1
    assert pipeline["path"] == PIPELINE_OK[:failed_at] + PIPELINE_OK[failed_at - 1 :]
    described = deployment.clients["stepfunctions"].describe_execution(
        executionArn=report["notifications"][0]["message"]["execution"]
    )
    assert (described["redriveCount"], described["redriveStatus"]) == (1, "NOT_REDRIVABLE")
    key = hashlib.md5(f"{pipeline['name']}-r1".encode()).hexdigest()
    names = sorted(s["name"] for s in report["stage_runs"] if s["stage"] == "transform")
    assert names == [f"{key}-0-transform", f"{key}-1-transform"]  # a new child for the redrive
    failed, succeeded = (report["notifications"][i]["message"] for i in (0, 1))
    assert failed["resume"]["action"] == "redrive" and failed["redrive_count"] == 0
    assert succeeded["run"] == f"{pipeline['name']}-r1"  # the same run, files and partition


def test_a_run_that_times_out_is_notified_once_with_the_stage_it_stopped_in(deployment: LocalDeployment) -> None:
    report = run(deployment, "pipeline_timed_out")
    [pipeline] = report["pipeline_runs"]
    [notice] = report["notifications"]
    message = notice["message"]
    assert (pipeline["status"], message["status"]) == ("TIMED_OUT", "TIMED_OUT")
    assert notice["subject"] == f"Pipeline TIMED_OUT at stage {message['stage']}: {message['error']}"
    assert message["state"] == f"Run {message['stage']} stage"
    assert message["resume"]["command"].startswith("aws stepfunctions redrive-execution --execution-arn ")
