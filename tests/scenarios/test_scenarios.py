"""Each scenario executes the synthesized state machines on moto and checks status, path and notices."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localrun.deployment import LocalDeployment
from localrun.runner import SCENARIOS, run_scenario

CRAWL_OK = ["Start crawler", "Wait for crawler", "Get crawler", "Crawl finished?", "Crawl succeeded"]
TRANSFORM_OK = ["Run transform job", "Check results", "Results valid?", "Results valid"]
PIPELINE_OK = ["Trigger recognised?", "Run crawl stage", "Run transform stage", "Notify success", "Pipeline succeeded"]


def run(deployment: LocalDeployment, name: str) -> dict[str, Any]:
    report = run_scenario(deployment, SCENARIOS[name])
    assert report["as_expected"], json.dumps(report, indent=1, default=str)[:3000]
    return report


def stage(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in report["stage_runs"] if s["stage"] == name]
    return found


def failure_notice(report: dict[str, Any]) -> dict[str, Any]:
    """Exactly one notification, a failure, and it names the stage."""
    [notice] = report["notifications"]
    assert notice["message"]["status"] == "FAILED"
    assert notice["subject"] == f"Pipeline FAILED at stage {notice['message']['stage']}"
    assert notice["message"]["execution"].endswith(report["pipeline_runs"][0]["name"])
    return notice["message"]


def test_happy_path(deployment: LocalDeployment) -> None:
    report = run(deployment, "happy_path")
    [pipeline] = report["pipeline_runs"]
    assert pipeline["path"] == PIPELINE_OK
    assert stage(report, "crawl")["path"] == CRAWL_OK
    assert stage(report, "transform")["path"] == TRANSFORM_OK
    [notice] = report["notifications"]
    assert notice["subject"] == "Pipeline SUCCEEDED"
    checked = notice["message"]["stages"]["transform"]["Output"]
    assert (checked["input_rows"], checked["output_rows"], checked["rejected_rows"]) == (40, 38, 2)
    # Child executions are named after the parent (idempotent on redrive).
    assert stage(report, "crawl")["name"] == f"{pipeline['name']}-crawl"
    assert report["transitions"] == 5 + 5 + 4


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
    assert [s["stage"] for s in report["stage_runs"]] == ["crawl"]  # transform never started
    message = failure_notice(report)
    assert message["stage"] == "crawl" and "CrawlerFailed" in message["cause"]
    assert report["pipeline_runs"][0]["error"] == "PipelineFailed"


def test_crawl_never_finishes_times_out(deployment: LocalDeployment) -> None:
    report = run(deployment, "crawl_never_finishes")
    crawl = stage(report, "crawl")
    assert crawl["error"] == "CrawlerTimedOut"
    assert crawl["path"].count("Get crawler") == 5  # LOCAL max_polls
    assert crawl["path"][-1] == "Crawl timed out"
    assert failure_notice(report)["stage"] == "crawl"


@pytest.mark.parametrize("scenario, state", [("job_failed", "FAILED"), ("job_timeout", "TIMEOUT")])
def test_job_run_failure(deployment: LocalDeployment, scenario: str, state: str) -> None:
    report = run(deployment, scenario)
    transform = stage(report, "transform")
    assert transform["path"] == ["Run transform job", "Transform job failed"]
    assert transform["error"] == "GlueJobFailed"
    assert json.loads(transform["cause"])["JobRunState"] == state
    message = failure_notice(report)
    assert message["stage"] == "transform" and "GlueJobFailed" in message["cause"]


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
    assert transform["path"][-1] == "Results invalid"
    assert transform["error"] == "ValidationFailed"
    assert reason in transform["cause"]
    assert failure_notice(report)["stage"] == "transform"


def test_object_outside_prefix_starts_nothing(deployment: LocalDeployment) -> None:
    report = run(deployment, "outside_prefix")
    assert report["pipeline_runs"] == [] and report["stage_runs"] == []
    assert report["notifications"] == []


def test_malformed_event_is_rejected_and_notified(deployment: LocalDeployment) -> None:
    report = run(deployment, "malformed_event")
    [pipeline] = report["pipeline_runs"]
    assert pipeline["path"] == ["Trigger recognised?", "Reject trigger", "Notify failure", "Pipeline failed"]
    message = failure_notice(report)
    assert (message["stage"], message["error"]) == ("trigger", "InvalidTriggerEvent")
    assert report["stage_runs"] == []


def test_duplicate_event_is_processed_once(deployment: LocalDeployment) -> None:
    report = run(deployment, "duplicate_event")
    assert report["statuses"] == ["SUCCEEDED", "SUCCEEDED"]  # no lost run
    outputs = [n["message"]["stages"]["transform"]["Output"] for n in report["notifications"]]
    assert sorted(o["input_rows"] for o in outputs) == [0, 40]  # no double processing
    assert any("no new rows since the last run" in o["reason"] for o in outputs)  # and the second run says so


def test_nothing_new_is_a_noted_no_op(deployment: LocalDeployment) -> None:
    report = run(deployment, "nothing_new")
    assert stage(report, "transform")["path"] == TRANSFORM_OK
    [notice] = report["notifications"]
    output = notice["message"]["stages"]["transform"]["Output"]
    assert (notice["subject"], output["input_rows"]) == ("Pipeline SUCCEEDED", 0)
    assert output["reason"].startswith("no new rows since the last run")
