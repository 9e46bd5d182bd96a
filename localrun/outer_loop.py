"""`make demo-dag`: the MWAA outer loop run locally, the DAG (`dags/glue_pipeline.py`) against the stage machines.

The synthesized `local` stage comes up on a moto server on a free loopback port, bent by the local
runner's patch registry as in `make demo`. Airflow gets the environment's configuration options as the
Orchestration stack sets them on MWAA (`pipeline.*` from the synthesized template, resolved to the local
names), as `AIRFLOW__PIPELINE__*` variables, and an `aws_default` connection to the moto server that signs
as the MWAA execution role (its synthesized policies are enforced). `dag.test()` runs the DAG once, the
triggerer inline: the S3 sensor and the stage tasks really defer. The DAG tests (tests/dags/) run the DAG
with the same code.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stacks import pipeline_contract as contract
from stacks.common.paths import REPO_ROOT

if TYPE_CHECKING:
    from localrun.emulator.deployment import LocalDeployment

DAGS_FOLDER = REPO_ROOT / "dags"
DAG_FILE = DAGS_FOLDER / "glue_pipeline.py"
DAG_ID = "glue_pipeline"
MWAA_ACCESS_KEY = "mwaa-execution-role"  # the access key id Airflow signs with: the MWAA role's
# How often the stage tasks poll their executions locally (MWAA's is a minute; read when the DAG is parsed).
LOCAL_WAITER_DELAY_SECONDS = "0.2"


def airflow_environment(home: Path) -> dict[str, str]:
    """What an Airflow process of a local run needs: its own home and database, our DAGs only, and
    nothing of the machine's AWS set-up."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def endpoint_environment(url: str, port: int) -> dict[str, str]:
    """Credentials and endpoint for everything in this process (the DAG's hooks and the in-process Lambdas)."""
    connection = {
        "conn_type": "aws",
        "login": MWAA_ACCESS_KEY,  # Airflow's calls are the MWAA execution role's (see sign_as_mwaa_role)
        "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": url},
    }
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
        "MOTO_PORT": str(port),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        "AIRFLOW__PIPELINE__WAITER_DELAY_SECONDS": LOCAL_WAITER_DELAY_SECONDS,
    }


@dataclass(frozen=True)
class MotoServer:
    url: str
    port: int


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """A moto server on a free loopback port, executing state machines, bent as local runs bend moto."""
    import requests
    from moto.server import ThreadedMotoServer

    from localrun.emulator import moto as moto_patches

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        # Before any state machine exists: moto keeps executing and non-executing machines apart.
        requests.post(
            f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        ).raise_for_status()
        with moto_patches.applied():  # the server runs in this process: moto as local runs bend it
            yield MotoServer(url=url, port=port)
    finally:
        server.stop()


def sign_as_mwaa_role() -> None:
    """Airflow's calls (access key MWAA_ACCESS_KEY) are evaluated against the MWAA execution role's policies."""
    from localrun.emulator import permissions

    store = permissions.policies()
    if store is None:
        raise RuntimeError("no policies installed: bring the deployment up first")
    permissions.assume_by_access_key(MWAA_ACCESS_KEY, permissions.Principal(store.role("MwaaExecutionRole")))


def airflow_options(deployment: LocalDeployment) -> dict[str, str]:
    """The MWAA environment's configuration options, resolved for the local deployment, as MWAA hands
    `section.key` options to Airflow: AIRFLOW__SECTION__KEY."""
    orchestration = deployment.assembly.stack_ending("-Orchestration")
    _, environment = orchestration.one("AWS::MWAA::Environment")
    options = deployment.resolver.resolve(orchestration.name, environment["Properties"]["AirflowConfigurationOptions"])
    variables = {}
    for option, value in options.items():
        section, key = option.split(".", 1)
        variables[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
    return variables


def parse_dag() -> tuple[Any, dict[str, str]]:
    """(the DAG or None, import errors): dags/glue_pipeline.py parsed as the DAG processor does, with the
    options now in the environment. BundleDagBag, as Airflow 3's DAG processor and task runner use it:
    the DAG folder goes on sys.path, so the DAG file imports glue_pipeline_support from beside it."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(DAG_FILE), bundle_path=DAGS_FOLDER)
    return bag.dags.get(DAG_ID), {Path(file).name: error for file, error in bag.import_errors.items()}


@dataclass
class DagRunResult:
    state: str
    run_id: str
    tasks: dict[str, tuple[str | None, int]]  # task_id -> (state, try_number)
    seconds: float


def run_dag(dag: Any) -> DagRunResult:
    """One DAG run with `dag.test()`: the scheduler's loop and the triggerer inline, in this process."""
    started = time.monotonic()
    dag_run = dag.test()
    seconds = time.monotonic() - started
    tasks = {ti.task_id: (ti.state and str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    return DagRunResult(state=str(dag_run.state), run_id=dag_run.run_id, tasks=tasks, seconds=seconds)


@contextmanager
def output_to(log_file: Path) -> Iterator[Callable[[str], None]]:
    """Inside the block, everything written to this process's stdout and stderr goes to `log_file`
    (Airflow's structured log lines, the moto server's request lines, the JVM's output: each writes
    to the file descriptors its own way); the function yielded prints to the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    saved = (os.dup(1), os.dup(2))
    with open(log_file, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lambda line: print(line, file=terminal, flush=True)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()


def run_and_show(
    deployment: LocalDeployment, files: Mapping[str, Path], say: Callable[[str], None], spark: Callable[[], Any]
) -> DagRunResult:
    """`files` under incoming/ (data only: the DAG's sensor finds them, no upload event starts anything),
    the DAG parsed with the options now in the environment and run once; then, for `say`, each task's
    state, the stage executions the run started and what it published (`spark` reads it back)."""
    from localrun.emulator import published

    s3 = deployment.clients["s3"]
    for name, path in files.items():
        s3.put_object(
            Bucket=deployment.landing_bucket, Key=f"{deployment.incoming_prefix}{name}", Body=path.read_bytes()
        )
    say(f"  {len(files)} file(s) under s3://{deployment.landing_bucket}/{deployment.incoming_prefix}")
    dag, errors = parse_dag()
    if dag is None:
        raise RuntimeError(f"{DAG_FILE.name} did not parse: {errors}")
    order = [task.task_id for task in dag.topological_sort()]
    say(f"  dag.test() of {DAG_ID}: {', '.join(order)}")
    result = run_dag(dag)
    say(f"  DAG run {result.run_id}: {result.state} in {result.seconds:.1f} s")
    for task in order:
        state, tries = result.tasks.get(task, (None, 0))
        say(f"    {task:<24} {state or 'not run':<16} try {tries}")
    sfn = deployment.clients["stepfunctions"]
    for stage in contract.STAGES:
        for execution in deployment.executions(stage):
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            say(f"    {stage:<9} execution {described['name']}: {described['status']}")
    notifications = deployment.notifications()
    for note in notifications:
        say(f"  ✉ SNS: {note['subject']}")
    for line in published.render(published.run_data(deployment, spark)):
        say(line)
    return result


def demo(assembly: Path, files: Mapping[str, Path], log_file: Path) -> int:
    """`python -m localrun dag`: the DAG run once on a fresh local deployment, with `files` under incoming/,
    shown as run_and_show shows it. Airflow's, Spark's and moto's output goes to `log_file`."""
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.update(airflow_environment(home))  # before Airflow is imported: it fixes its home then
    started = time.monotonic()
    with output_to(log_file) as say:
        from airflow.utils.db import initdb

        from localrun.emulator.deployment import LocalDeployment
        from localrun.emulator.glue_standin import spark_session, start_spark_in_background

        start_spark_in_background(log_file=log_file)  # up while Airflow's database and the stacks come up
        initdb()
        say(f"  Airflow {_airflow_version()}: metadata database in {home} ({time.monotonic() - started:.1f} s)")
        with moto_server() as server:
            os.environ.update(endpoint_environment(server.url, server.port))
            deployment = LocalDeployment.bring_up(assembly, endpoint_url=server.url)
            try:
                sign_as_mwaa_role()
                os.environ.update(airflow_options(deployment))
                result = run_and_show(deployment, files, say, spark_session)
            finally:
                deployment.stop_running()
        succeeded = result.state == "success"
        say(f"  Airflow's, Spark's and moto's output: {log_file}; wall time {time.monotonic() - started:.1f} s")
        say(f"{'✓' if succeeded else '✗'} DAG {DAG_ID}: {result.state}")
    return 0 if succeeded else 1


def _airflow_version() -> str:
    from airflow import __version__

    return str(__version__)
