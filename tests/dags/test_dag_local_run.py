"""The DAG run for real (`dag.test()`) against the synthesized stage state machines on a moto server.

The local runner brings the synthesized `local` stage (second-long waits) up on a moto server on
a free loopback port: buckets, crawler, job, the stage state machines with resolved ARNs, the
admission and check-results Lambdas routed in-process (moto bent by the local runner's patch
registry, so the admission stage's Distributed Map runs). Airflow gets the environment's configuration options
exactly as the Orchestration stack sets them on MWAA (`pipeline.*` from the synthesized
template, resolved to the local ARNs), as `AIRFLOW__PIPELINE__*` variables, and an
`aws_default` connection to the moto server. The triggerer runs inline: the deferrable sensor
and stage tasks really defer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localrun import outer_loop
from localrun.emulator.deployment import LocalDeployment
from localrun.emulator.glue_standin import spark_session
from localrun.outer_loop import DAG_ID, DagRunResult, MotoServer, run_dag
from tests.conftest import Synthesized
from tests.dags.conftest import REPO, parse_dag_file

STAGES = ["admission", "crawl", "transform"]
TASKS = ["wait_for_data", "admission", "proceed_after_admission", "crawl", "transform"]
SAMPLE = REPO / "samples" / "orders.csv"

pytestmark = pytest.mark.slow  # Airflow DAG runs (see pyproject.toml)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with outer_loop.moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def local_stage(synth: Callable[[str], Synthesized]) -> Synthesized:
    return synth("local")


@pytest.fixture(scope="module")
def local_env(airflow_db: Path, moto_server: MotoServer) -> Iterator[pytest.MonkeyPatch]:
    """Credentials and endpoint for this process (the Lambda handler too), as `make demo-dag` sets them."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in outer_loop.endpoint_environment(moto_server.url, moto_server.port).items():
            patch.setenv(name, value)
        yield patch


@pytest.fixture
def empty_deployment(
    local_env: pytest.MonkeyPatch, local_stage: Synthesized, moto_server: MotoServer
) -> Iterator[LocalDeployment]:
    """A fresh local deployment with nothing under the incoming prefix, and the options that point at it."""
    requests.post(f"{moto_server.url}/moto-api/reset", timeout=10).raise_for_status()
    deployment = LocalDeployment.bring_up(local_stage.outdir, endpoint_url=moto_server.url)
    outer_loop.sign_as_mwaa_role()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in outer_loop.airflow_options(deployment).items():
            patch.setenv(name, value)
        try:
            yield deployment
        finally:
            deployment.stop_running()


def upload(deployment: LocalDeployment, name: str, body: bytes) -> str:
    """Data only, under the incoming prefix: no Object Created event, so no pipeline state machine run."""
    key = f"{deployment.incoming_prefix}{name}"
    deployment.clients["s3"].put_object(Bucket=deployment.landing_bucket, Key=key, Body=body)
    return key


@pytest.fixture
def deployment(empty_deployment: LocalDeployment) -> LocalDeployment:
    """A fresh local deployment with the sample uploaded under the incoming prefix."""
    upload(empty_deployment, "orders.csv", SAMPLE.read_bytes())
    return empty_deployment


def keys(deployment: LocalDeployment, prefix: str) -> list[str]:
    listed = deployment.clients["s3"].list_objects_v2(Bucket=deployment.landing_bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def parse_dag() -> Any:
    """The DAG parsed with the options now in the environment (the deployment's)."""
    dag, errors = parse_dag_file()
    assert errors == {}
    return dag


def executions(deployment: LocalDeployment, stage: str) -> list[dict[str, Any]]:
    sfn = deployment.clients["stepfunctions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in deployment.executions(stage)]


def test_all_stages_succeed_so_the_dag_run_succeeds(empty_deployment: LocalDeployment, capsys: Any) -> None:
    """As `make demo-dag` runs it (outer_loop.run_and_show), and what it prints."""
    deployment = empty_deployment
    said: list[str] = []
    result = outer_loop.run_and_show(deployment, {"orders.csv": SAMPLE}, said.append, spark_session)
    with capsys.disabled():
        print(f"\n[local DAG run] all stages succeed: {result.seconds:.1f} s")
    assert result.state == "success", result.tasks
    assert result.tasks == {task: ("success", 1) for task in TASKS}
    tasks = [line.split()[:2] for line in said if line.startswith("    ") and " try " in line]
    assert tasks == [[task, "success"] for task in TASKS]  # in the DAG's order
    assert [
        line.split()[0] for line in said if " execution manual__" in line and line.endswith(": SUCCEEDED")
    ] == STAGES
    assert "  admitted: incoming/orders.csv (40 records)" in said
    [published] = [line for line in said if line.startswith("  published: ")]
    assert ", 38 rows at s3://" in published
    assert "  rejected rows: 2 (amount: negative 1, order_date: not yyyy-MM-dd 1)" in said
    dag = parse_dag()
    name = dag.user_defined_macros["stage_execution_name"]
    # One run for the whole DAG run, as the pipeline state machine's round gives every stage its own.
    run = dag.user_defined_macros["pipeline_run"](DAG_ID, result.run_id)
    assert run["landing_path"] == f"s3://{deployment.landing_bucket}/{deployment.landing_prefix}run={run['name']}/"
    for stage in STAGES:
        [execution] = executions(deployment, stage)  # exactly one execution per stage
        assert execution["status"] == "SUCCEEDED"
        assert execution["name"] == name(DAG_ID, result.run_id, stage)
        assert json.loads(execution["input"]) == {
            "trigger": {"source": "airflow", "dag_id": DAG_ID, "run_id": result.run_id, "stage": stage},
            "run": run,
        }
    admitted = json.loads(executions(deployment, "admission")[0]["output"])
    assert (admitted["run"], admitted["admitted"], admitted["quarantined"]) == (run["name"], 1, 0)
    # The file moved from incoming into the run's folder, and the job read that folder.
    assert keys(deployment, deployment.incoming_prefix) == []
    # Under a safe name, beside its admission record, which keeps the key it was uploaded under.
    folder = f"{deployment.landing_prefix}run={run['name']}/"
    [record_key] = [key for key in keys(deployment, folder) if key.startswith(f"{folder}_admitted/")]
    s3 = deployment.clients["s3"]
    record = json.loads(s3.get_object(Bucket=deployment.landing_bucket, Key=record_key)["Body"].read())
    assert record["original_key"] == f"{deployment.incoming_prefix}orders.csv"
    assert sorted(keys(deployment, folder)) == sorted([record_key, record["object_key"]])
    [job_run] = [
        job_run
        for job in deployment.clients["glue"].get_jobs()["Jobs"]
        for job_run in deployment.clients["glue"].get_job_runs(JobName=job["Name"])["JobRuns"]
    ]
    assert job_run["Arguments"]["--landing_path"] == run["landing_path"]
    checked = json.loads(executions(deployment, "transform")[0]["output"])
    assert checked["valid"] is True and checked["input_rows"] > 0
    assert deployment.executions("pipeline") == []  # the DAG runs the stages, not the pipeline machine
    assert deployment.notifications() == []


def test_nothing_admitted_skips_crawl_and_transform_and_the_dag_run_succeeds(
    empty_deployment: LocalDeployment,
) -> None:
    """A .csv wakes the sensor but is quarantined (its header is not the contract): nothing new to process."""
    deployment = empty_deployment
    header, *rows = SAMPLE.read_text().splitlines()
    reordered = ",".join(reversed(header.split(",")))
    upload(deployment, "reordered.csv", "\n".join([reordered, *rows]).encode())
    result = run_dag(parse_dag())
    assert result.state == "success", result.tasks
    assert result.tasks == {
        "wait_for_data": ("success", 1),
        "admission": ("success", 1),
        "proceed_after_admission": ("success", 1),  # it ran, and said no
        "crawl": ("skipped", 0),
        "transform": ("skipped", 0),
    }
    [admission] = executions(deployment, "admission")
    summary = json.loads(admission["output"])
    assert (summary["admitted"], summary["quarantined"], summary["by_reason"]) == (0, 1, {"header_mismatch": 1})
    assert deployment.executions("crawl") == [] and deployment.executions("transform") == []
    assert keys(deployment, deployment.incoming_prefix) == []  # quarantined, with its reason
    assert deployment.notifications() == []  # skipped is no failure


@pytest.mark.parametrize(
    ("stage", "fault", "error"),
    [
        ("crawl", {"crawl_outcome": "FAILED"}, "CrawlerFailed"),  # after admission admitted the sample
        ("transform", {"job_outcome": "FAILED"}, "GlueJobFailed"),
    ],
)
def test_a_failed_stage_fails_its_task_stops_the_rest_and_is_reported(
    deployment: LocalDeployment, stage: str, fault: dict[str, str], error: str
) -> None:
    for knob, value in fault.items():
        setattr(deployment.faults, knob, value)
    result = run_dag(parse_dag())
    assert result.state == "failed"
    failed_at = STAGES.index(stage)
    assert result.tasks["admission"] == ("success", 1) and result.tasks["proceed_after_admission"] == ("success", 1)
    # Failed once, without Airflow retries: only clearing the task (after a fix) tries the stage again.
    assert result.tasks[stage] == ("failed", 1)
    for later in STAGES[failed_at + 1 :]:
        assert result.tasks[later][0] == "upstream_failed"
        assert deployment.executions(later) == []  # never started
    [execution] = executions(deployment, stage)
    assert (execution["status"], execution["error"]) == ("FAILED", error)
    # Reported as the pipeline state machine reports a failed stage: one notice on its topic.
    [notice] = deployment.notifications()
    assert notice["subject"] == f"Pipeline FAILED at stage {stage}: {error}"
    message = notice["message"]
    assert (message["status"], message["stage"], message["error"]) == ("FAILED", stage, error)
    assert message["cause"] == execution["cause"] and message["stage_execution"] == execution["executionArn"]
    assert (message["dag_id"], message["run_id"]) == (DAG_ID, result.run_id)


def test_a_retry_follows_the_execution_it_started_and_a_try_after_its_fail_state_starts_the_next(
    deployment: LocalDeployment,
) -> None:
    """What a retry or a cleared task does: the latest attempt's name again, so the same execution while
    it runs or once it succeeded; after the stage ended in its own Fail state, the next attempt."""
    from airflow.sdk.exceptions import TaskDeferred

    dag = parse_dag()
    run_id = "manual__2026-11-24T10:00:00+00:00"
    name = dag.user_defined_macros["stage_execution_name"]

    class FakeTaskInstance:
        def xcom_push(self, key: str, value: Any) -> None:
            pass

    def attempt(stage: str) -> str:
        """One try of the stage task with its fields rendered: the ARN it returns or waits for."""
        task = copy.copy(dag.task_dict[stage])
        task.state_machine_arn = deployment.state_machines[stage]
        task.name = name(DAG_ID, run_id, stage)
        task.state_machine_input = {
            "trigger": {"source": "airflow", "dag_id": DAG_ID, "run_id": run_id, "stage": stage},
            "run": dag.user_defined_macros["pipeline_run"](DAG_ID, run_id),
        }
        try:
            return task.execute({"ti": FakeTaskInstance(), "dag": dag, "run_id": run_id})
        except TaskDeferred as deferred:
            return deferred.trigger.waiter_args["executionArn"]

    first = attempt("crawl")  # starts the execution and defers
    assert attempt("crawl") == first  # a retry while it runs waits for the same execution
    assert deployment.wait(first)["status"] == "SUCCEEDED"
    assert attempt("crawl") == first  # a retry after it succeeded succeeds without a new one
    assert [e["executionArn"] for e in deployment.executions("crawl")] == [first]

    deployment.faults.job_outcome = "FAILED"  # the transform stage ends in its Fail state, GlueJobFailed
    failed = attempt("transform")
    assert deployment.wait(failed)["status"] == "FAILED"
    resumed = attempt("transform")  # a new try: a redrive would enter the Fail state again, so attempt 1
    assert resumed.endswith(f":{name(DAG_ID, run_id, 'transform', 1)}")
    assert deployment.wait(resumed)["status"] == "FAILED"
    assert attempt("transform").endswith(f":{name(DAG_ID, run_id, 'transform', 2)}")
    described = executions(deployment, "transform")
    assert len(described) == 3 and all(e.get("redriveCount", 0) == 0 for e in described)  # none redriven


def clear_and_rerun(dag: Any, run_id: str, task_id: str) -> DagRunResult:
    """The Airflow UI's Clear of a failed task (with its downstream tasks), then the DAG run goes on.

    Airflow's own clear of those task instances in that DAG run; then dag.test() runs the same DAG
    run on (left alone it would clear every task and create the run afresh).
    """
    from airflow.models import dagrun as dagrun_module
    from airflow.serialization.definitions.dag import SerializedDAG
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    task_ids = [task_id, *dag.task_dict[task_id].get_flat_relative_ids(upstream=False)]
    scheduler_dag.clear(task_ids=task_ids, run_id=run_id, only_failed=True, dag_run_state=DagRunState.RUNNING)

    def the_cleared_run(**kwargs: Any) -> Any:
        model = dagrun_module.DagRun
        found = kwargs["session"].scalar(select(model).where(model.dag_id == dag.dag_id, model.run_id == run_id))
        found.dag = kwargs["dag"]  # as create_dagrun leaves it
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun", the_cleared_run)
        patch.setattr(SerializedDAG, "clear_dags", lambda *args, **kwargs: 0)
        return run_dag(dag)


def published_once(deployment: LocalDeployment, transform: dict[str, Any]) -> None:
    """One partition in the catalog, holding exactly the rows the successful transform wrote."""
    from localrun.emulator.glue_standin import spark_session
    from localrun.emulator.published import published_partitions

    [partition] = published_partitions(deployment, spark_session)
    assert partition.row_count == json.loads(transform["output"])["output_rows"] > 0


def test_a_cleared_task_resumes_its_failed_stage_in_the_same_run_and_publishes_once(
    deployment: LocalDeployment, moto_server: MotoServer
) -> None:
    """The job fails (the stage's own Fail state) -> notice -> fixed -> the task cleared: attempt 1 of the stage."""
    import boto3

    from ops import why

    deployment.faults.job_outcome = "FAILED"
    dag = parse_dag()
    failed = run_dag(dag)
    assert failed.state == "failed" and failed.tasks["transform"] == ("failed", 1)
    [first] = executions(deployment, "transform")
    # The notice and `why` advise clearing the task, never a redrive behind the DAG run.
    [notice] = deployment.notifications()
    resume = notice["message"]["resume"]
    assert resume["action"] == "clear" and "redrive-execution" not in resume["command"]
    assert f"--path /dags/{DAG_ID}/clearTaskInstances " in resume["command"]
    assert json.loads(resume["command"].rsplit("--body ", 1)[1].strip("'")) == {
        "dag_run_id": failed.run_id,
        "task_ids": ["transform"],
        "include_downstream": True,
        "only_failed": True,
        "dry_run": False,
    }
    clients = why.clients_for(boto3.Session(region_name="us-east-1"), endpoint_url=moto_server.url)
    diagnosis = why.diagnose(clients, first["executionArn"], region="us-east-1")
    assert diagnosis.redrive is None and diagnosis.rerun == resume["command"]  # the DAG's notice and why agree
    text, _ = why.why_dag_run(
        clients, region="us-east-1", dag_id=DAG_ID, run_id=failed.run_id, state_machines=deployment.state_machines
    )
    assert "clearTaskInstances" in text and "redrive-execution" not in text

    deployment.faults.job_outcome = "SUCCEEDED"  # the fix
    result = clear_and_rerun(dag, failed.run_id, "transform")
    assert result.state == "success", result.tasks
    assert result.run_id == failed.run_id
    assert result.tasks == {**{task: ("success", 1) for task in TASKS}, "transform": ("success", 2)}
    name = dag.user_defined_macros["stage_execution_name"]
    described = {e["name"]: e for e in executions(deployment, "transform")}
    assert set(described) == {name(DAG_ID, failed.run_id, "transform", n) for n in (0, 1)}
    assert described[first["name"]]["status"] == "FAILED"  # kept as it failed, with its history
    assert described[first["name"]].get("redriveCount", 0) == 0  # never redriven
    resumed = described[name(DAG_ID, failed.run_id, "transform", 1)]
    assert resumed["status"] == "SUCCEEDED" and resumed["input"] == first["input"]  # the same run
    assert len(deployment.executions("admission")) == len(deployment.executions("crawl")) == 1  # not run again
    published_once(deployment, resumed)
    assert deployment.notifications() == []
    text, status = why.why_dag_run(
        clients, region="us-east-1", dag_id=DAG_ID, run_id=failed.run_id, state_machines=deployment.state_machines
    )
    assert status == 1 and "every stage execution succeeded" in text  # the latest attempts


def test_a_cleared_task_redrives_a_stage_that_stopped_in_a_failed_step(deployment: LocalDeployment) -> None:
    """StartCrawler refused past its retries (not caught: the crawl stage stops in that task) -> the other
    crawl ends -> the task cleared: its execution is redriven, the same ARN, from that task on."""
    from stacks.config.stages import local_stage as local_config  # the fixture local_stage is the synth

    # Someone else's crawl holds the crawler through the first StartCrawler and every retry, then ends.
    deployment.faults.crawler_busy_starts = 1 + local_config().crawler.busy_retry_attempts
    dag = parse_dag()
    failed = run_dag(dag)
    assert failed.state == "failed" and failed.tasks["crawl"] == ("failed", 1)
    assert failed.tasks["transform"][0] == "upstream_failed"
    [notice] = deployment.notifications()
    assert notice["message"]["error"] == "Glue.CrawlerRunningException"
    assert notice["message"]["resume"]["action"] == "clear"
    assert '"task_ids":["crawl"]' in notice["message"]["resume"]["command"]

    result = clear_and_rerun(dag, failed.run_id, "crawl")  # with transform, which waited upstream_failed
    assert result.state == "success", result.tasks
    assert (result.tasks["crawl"], result.tasks["transform"]) == (("success", 2), ("success", 1))
    [execution] = executions(deployment, "crawl")  # the same execution, redriven
    assert execution["executionArn"] == notice["message"]["stage_execution"]
    assert (execution["status"], execution["redriveCount"]) == ("SUCCEEDED", 1)
    assert len(deployment.executions("admission")) == 1  # not run again
    [transform] = executions(deployment, "transform")
    published_once(deployment, transform)
    assert deployment.notifications() == []


def test_a_stage_outliving_its_wait_limit_fails_its_task(deployment: LocalDeployment) -> None:
    """A stage that runs past its state machine's timeout (moto does not time executions out)."""
    deployment.faults.crawl_outcome = "NEVER_ENDS"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__PIPELINE__CRAWL_TIMEOUT_SECONDS", "1")  # 5 + 2 grace polls, 0.2 s apart
        dag = parse_dag()
    assert dag.task_dict["crawl"].waiter_max_attempts == 7
    result = run_dag(dag)
    assert result.state == "failed"
    assert result.tasks["crawl"] == ("failed", 1) and result.tasks["transform"][0] == "upstream_failed"
    [execution] = executions(deployment, "crawl")
    assert execution["status"] == "RUNNING"  # the crawl stage itself gives up later (CrawlerTimedOut)
    [notice] = deployment.notifications()
    assert notice["message"]["error"] == "WaitLimitExceeded"
    assert notice["message"]["stage_execution"] == execution["executionArn"]


def test_a_missing_option_fails_the_task_at_once_and_the_notice_names_it(deployment: LocalDeployment) -> None:
    """The stack's options half there (here the crawl stage's ARN): no retries, one notice."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AIRFLOW__PIPELINE__CRAWL_STATE_MACHINE_ARN")
        result = run_dag(parse_dag())
    assert result.state == "failed"
    assert result.tasks["crawl"] == ("failed", 1) and result.tasks["transform"][0] == "upstream_failed"
    assert deployment.executions("crawl") == []
    [notice] = deployment.notifications()
    assert notice["subject"] == "Pipeline FAILED at stage crawl: PipelineOptionMissing"
    assert notice["message"]["cause"] == (
        "Airflow configuration option pipeline.crawl_state_machine_arn (AIRFLOW__PIPELINE__CRAWL_STATE_MACHINE_ARN) "
        "is not set: the Orchestration stack sets it on the MWAA environment"
    )
    assert result.seconds < 60  # the default retries would wait 2 x 2 minutes
