"""A crashed job locally ends as it ends on Glue (issue 16 item 6).

On main, when the job's code raised inside the local Glue stand-in (a Spark error, e.g. writing a
date before 1582 to Parquet), the job run stayed RUNNING: every later local run failed with
"already running", and `why` on the failed run raised the Py4J traceback. Now the run ends FAILED
with the error as Glue records it in JobRun.ErrorMessage, the next run goes through, and `why`
prints what it can whatever it cannot read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import glue.run
from localrun.emulator.deployment import LocalDeployment
from ops import failure_logs, why

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
JAVA_ERROR = (
    "org.apache.spark.SparkUpgradeException: [INCONSISTENT_BEHAVIOR_CROSS_VERSION.WRITE_ANCIENT_DATETIME] "
    "You may get a different result due to the upgrading to Spark >= 3.0"
)


class Py4JJavaError(Exception):
    """Shaped like py4j.protocol.Py4JJavaError's message: the call, the Java exception, its stack."""

    def __str__(self) -> str:
        return (
            "An error occurred while calling o231.parquet.\n"
            f": {JAVA_ERROR}\n"
            "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.sparkUpgradeInWritingDatesError\n"
            "\tat org.apache.spark.sql.execution.datasources.DataSourceUtils$.$anonfun$createDateRebaseFuncInWrite"
        )


def crash(*args: Any, **kwargs: Any) -> Any:
    raise Py4JJavaError()


def run_pipeline(deployment: LocalDeployment, name: str) -> dict[str, Any]:
    [arn] = deployment.put_landing_object(f"{deployment.incoming_prefix}{name}", (SAMPLES / "orders.csv").read_bytes())
    return deployment.wait(arn, timeout_s=240)


def test_a_crashed_job_run_ends_failed_with_its_error_and_the_next_run_goes_through(
    deployment: LocalDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy = glue.run.run_job
    monkeypatch.setattr(glue.run, "run_job", crash)

    assert run_pipeline(deployment, "ancient.csv")["status"] == "FAILED"

    glue_client = deployment.clients["glue"]
    [job] = glue_client.get_jobs()["Jobs"]
    [run] = glue_client.get_job_runs(JobName=job["Name"])["JobRuns"]
    assert (run["JobRunState"], run["ErrorMessage"]) == ("FAILED", JAVA_ERROR)
    [notice] = [n["message"] for n in deployment.notifications()]
    assert notice["stage"] == "transform" and JAVA_ERROR in notice["cause"]
    text = why.for_deployment(deployment)
    assert "GlueJobFailed" in text and JAVA_ERROR[:80] in text

    monkeypatch.setattr(glue.run, "run_job", healthy)
    assert run_pipeline(deployment, "fixed.csv")["status"] == "SUCCEEDED"


def test_why_prints_what_it_can_when_evidence_cannot_be_read(
    deployment: LocalDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.faults.job_outcome = "FAILED"
    assert run_pipeline(deployment, "orders.csv")["status"] == "FAILED"

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise Py4JJavaError()

    monkeypatch.setattr(failure_logs, "glue_job_evidence", unreadable)

    text = why.for_deployment(deployment)

    assert text.startswith("✗ run ")
    assert "could not read the Glue job run of 'Run transform job': Py4JJavaError: An error occurred" in text
    assert "\tat org.apache" not in text  # one line, not the stack
    assert "next:" in text
