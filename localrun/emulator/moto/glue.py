"""Glue: crawl and job-run records as AWS reports them, and runs ended by the Glue stand-in."""

from __future__ import annotations

from typing import Any

from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.moto_api import state_manager

from localrun.emulator.assembly import ACCOUNT_ID
from localrun.emulator.moto.probing import (
    PROBE_BUCKET,
    PROBE_REGION,
    PROBE_ROLE,
    create_crawler,
    plain_moto,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch

# -- Glue ----------------------------------------------------------------------------------------
_CRAWL_STATUS_TO_AWS = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}
_NEVER = {"progression": "manual", "times": 10**9}  # moto must not advance these records itself


def _apply_crawl_status_names(runtime: LocalRuntime) -> None:
    original = glue_models.FakeCrawler.as_dict

    def as_dict(crawler: Any) -> dict:
        data = original(crawler)
        last = data.get("LastCrawl")
        if last:
            moto_status = last.get("Status")
            if moto_status == "RUNNING":
                # AWS has no LastCrawl for a crawl still running: it shows the previous one.
                previous = [c for c in crawler.crawls[:-1] if c.status != "RUNNING"]
                if previous:
                    last = {**last, "Status": _CRAWL_STATUS_TO_AWS.get(previous[-1].status, previous[-1].status)}
                    data["LastCrawl"] = last
                else:
                    data.pop("LastCrawl")
            elif moto_status in _CRAWL_STATUS_TO_AWS:
                last["Status"] = _CRAWL_STATUS_TO_AWS[moto_status]
                message = getattr(crawler.crawls[-1], "error_message", None)
                if message:
                    last["ErrorMessage"] = message
        return data

    runtime.replace(glue_models.FakeCrawler, "as_dict", as_dict)


def _probe_crawl_status_names() -> bool:
    with plain_moto() as clients:
        create_crawler(clients)
        state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
        clients["glue"].start_crawler(Name="c")
        return clients["glue"].get_crawler(Name="c")["Crawler"].get("LastCrawl", {}).get("Status") != "SUCCEEDED"


def _apply_job_run_error_message(runtime: LocalRuntime) -> None:
    original = glue_models.FakeJobRun.as_dict

    def as_dict(run: Any) -> dict:
        data = original(run)
        message = getattr(run, "error_message", None)  # set by whatever ended the run abnormally
        if message:
            data["ErrorMessage"] = message
        return data

    runtime.replace(glue_models.FakeJobRun, "as_dict", as_dict)


def _probe_job_run_error_message() -> bool:
    with plain_moto() as clients:
        glue = clients["glue"]
        glue.create_job(
            Name="j", Role=PROBE_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/s.py"}
        )
        run_id = glue.start_job_run(JobName="j")["JobRunId"]
        # moto never fails a run itself: end it FAILED, with its reason, on its own record (as the
        # Glue stand-in does), as AWS would on an error.
        run: Any = glue_models.glue_backends[ACCOUNT_ID][PROBE_REGION].jobs["j"].job_runs[0]
        run.status, run.error_message = "FAILED", "AnalysisException: path does not exist"
        return "ErrorMessage" not in glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]


def _apply_crawler_runs(runtime: LocalRuntime) -> None:
    # The stand-in (localrun/emulator/glue_standin.py) decides when a crawl ends, and how (fault knobs).
    runtime.update(state_manager._transitions, {"glue::crawl": _NEVER})
    original_start = glue_models.FakeCrawler.start_crawler
    original_get = glue_responses.GlueResponse.get_crawler

    def start_crawler(crawler: Any) -> None:
        runtime.glue.start_crawler(original_start, crawler)

    def get_crawler(response: Any) -> Any:  # each GetCrawler call is one poll of the crawl
        crawler = response.glue_backend.crawlers.get(response.parameters.get("Name"))
        if crawler is not None:
            runtime.glue.crawler_polled(crawler)
        return original_get(response)

    runtime.replace(glue_models.FakeCrawler, "start_crawler", start_crawler)
    runtime.replace(glue_responses.GlueResponse, "get_crawler", get_crawler)


def _probe_crawler_runs() -> bool:
    with plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
        clients["s3"].put_object(Bucket=PROBE_BUCKET, Key="landing/orders.csv", Body=b"order_id,amount\n1,2.50\n")
        clients["glue"].create_database(DatabaseInput={"Name": "db"})
        create_crawler(clients)
        state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
        clients["glue"].start_crawler(Name="c")
        clients["glue"].get_crawler(Name="c")  # the crawl has ended by now
        return clients["glue"].get_tables(DatabaseName="db")["TableList"] == []  # and crawled nothing


def _apply_job_runs(runtime: LocalRuntime) -> None:
    # The stand-in decides how a run ends and writes what the transform would (fault knobs).
    runtime.update(state_manager._transitions, {"glue::job_run": _NEVER})
    original_start = glue_models.FakeJob.start_job_run
    original_get = glue_models.FakeJob.get_job_run

    def start_job_run(job: Any, **kwargs: Any) -> str:
        return runtime.glue.start_job_run(original_start, job, **kwargs)

    def get_job_run(job: Any, run_id: str) -> Any:
        run = original_get(job, run_id)
        runtime.glue.job_run_polled(job, run)
        return run

    runtime.replace(glue_models.FakeJob, "start_job_run", start_job_run)
    runtime.replace(glue_models.FakeJob, "get_job_run", get_job_run)


_JOB_SCRIPT = b"""import boto3
boto3.client("s3").put_object(Bucket="probe-bucket", Key="out/written-by-the-job", Body=b"1")
"""


def _probe_job_runs() -> bool:
    with plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
        clients["s3"].put_object(Bucket=PROBE_BUCKET, Key="job.py", Body=_JOB_SCRIPT)
        glue = clients["glue"]
        glue.create_job(
            Name="j", Role=PROBE_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/job.py"}
        )
        state_manager.set_transition(model_name="glue::job_run", transition={"progression": "immediate"})
        run_id = glue.start_job_run(JobName="j")["JobRunId"]
        state = glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]["JobRunState"]
        written = clients["s3"].list_objects_v2(Bucket=PROBE_BUCKET, Prefix="out/").get("KeyCount", 0)
        return state == "SUCCEEDED" and written == 0  # "succeeded" without running the script


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
CRAWL_STATUS_NAMES = MotoPatch(
    "crawl-status-names",
    "a finished crawl reports LastCrawl.Status COMPLETED/STOPPED; AWS reports "
    "SUCCEEDED/CANCELLED/FAILED, and AWS shows no LastCrawl for a crawl still running",
    _apply_crawl_status_names,
    _probe_crawl_status_names,
)
JOB_RUN_ERROR_MESSAGE = MotoPatch(
    "job-run-error-message",
    "a failed job run has no ErrorMessage in GetJobRun; AWS reports why it failed",
    _apply_job_run_error_message,
    _probe_job_run_error_message,
)
GLUE_CRAWLER_RUNS = MotoPatch(
    "glue-crawler-runs",
    "moto runs no crawl: a crawl ends on moto's timer, having read nothing; the Glue stand-in "
    "ends it after its GetCrawler polls, as the fault knobs say",
    _apply_crawler_runs,
    _probe_crawler_runs,
    stand_in=True,
)
GLUE_JOB_RUNS = MotoPatch(
    "glue-job-runs",
    "moto runs no Glue script: a job run ends SUCCEEDED on moto's timer, having written nothing; "
    "the Glue stand-in ends it as the fault knobs say and writes what the transform would",
    _apply_job_runs,
    _probe_job_runs,
    stand_in=True,
)
