"""The DAG as Airflow parses it: no import errors, nothing called at parse time, house style, stages.

The parse-time test runs in a fresh interpreter in which boto3, botocore and sockets raise before
Airflow, the provider or the DAG are imported, so any AWS or network call while parsing fails it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from stacks.config import MwaaConfig
from tests.dags.conftest import DAG_FILE, DAG_ID, DAGS_FOLDER, REPO

STAGE_NAMES = ["crawl", "transform"]  # PipelineStack.stages, in order
TIMEOUTS = {"crawl": 3600, "transform": 7200}  # as the Orchestration stack sets them for dev

NO_CALLS_AT_PARSE_TIME = textwrap.dedent("""
    import json, socket, sys
    attempts = []

    def refuse(what):
        def refused(*args, **kwargs):
            attempts.append(what)
            raise RuntimeError(what + " called while parsing the DAG")
        return refused

    for name in ("connect", "connect_ex", "sendto"):
        setattr(socket.socket, name, refuse("socket." + name))
    socket.create_connection = refuse("socket.create_connection")
    socket.getaddrinfo = refuse("socket.getaddrinfo")
    import boto3, boto3.session, botocore.client, botocore.session
    boto3.client = refuse("boto3.client")
    boto3.resource = refuse("boto3.resource")
    boto3.session.Session.client = refuse("boto3.Session.client")
    boto3.session.Session.resource = refuse("boto3.Session.resource")
    botocore.session.Session.create_client = refuse("botocore.Session.create_client")
    botocore.client.BaseClient._make_api_call = refuse("an AWS API call")

    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    print(json.dumps({"import_errors": bag.import_errors, "dags": sorted(bag.dags), "attempts": attempts}))
""")


@pytest.fixture(scope="module")
def dag(airflow_home: Path) -> Iterator[Any]:
    """The DAG parsed in-process, with the stage timeouts set as the stack sets them."""
    with pytest.MonkeyPatch.context() as patch:
        for stage, seconds in TIMEOUTS.items():
            patch.setenv(f"AIRFLOW__PIPELINE__{stage.upper()}_TIMEOUT_SECONDS", str(seconds))
        patch.delenv("AIRFLOW__PIPELINE__WAITER_DELAY_SECONDS", raising=False)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(DAG_FILE))
        assert bag.import_errors == {}
        yield bag.dags[DAG_ID]


def test_parsing_makes_no_aws_or_network_call(airflow_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_CALLS_AT_PARSE_TIME, str(DAGS_FOLDER)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed == {"import_errors": {}, "dags": [DAG_ID], "attempts": []}


def test_house_style(dag: Any) -> None:
    assert dag.catchup is False
    assert dag.start_date == datetime(2026, 11, 1, tzinfo=UTC)  # static, not derived from now()
    assert dag.schedule == "0 2 * * *"  # explicit; the EventBridge schedule's default
    assert dag.max_active_runs == 1
    assert dag.tags == {"glue-pipeline", "outer-loop", "step-functions"}
    assert dag.doc_md and "configuration options" in dag.doc_md
    assert dag.default_args["retries"] >= 1
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.doc_md, task.task_id


def test_waits_for_data_then_runs_the_stages_in_order(dag: Any) -> None:
    order = [task.task_id for task in dag.topological_sort()]
    assert order == ["wait_for_data", *STAGE_NAMES]
    for upstream, task_id in zip(order, order[1:], strict=False):
        assert dag.task_dict[task_id].upstream_task_ids == {upstream}


def test_wait_for_data_is_a_deferrable_s3_sensor_on_the_landing_prefix(dag: Any) -> None:
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    sensor = dag.task_dict["wait_for_data"]
    assert isinstance(sensor, S3KeySensor)
    assert sensor.deferrable is True
    assert sensor.wildcard_match is True
    assert sensor.bucket_name == "{{ pipeline_option('landing_bucket') }}"
    assert sensor.bucket_key == "{{ pipeline_option('landing_prefix') }}*"
    assert timedelta(seconds=sensor.timeout) <= timedelta(hours=24)  # ends before the next daily run


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_each_stage_is_a_deferrable_step_functions_execution(dag: Any, stage: str) -> None:
    from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator

    task = dag.task_dict[stage]
    assert isinstance(task, StepFunctionStartExecutionOperator)
    assert task.deferrable is True
    # ARN from the configuration option the stack sets, when the task runs, not when parsed.
    assert task.state_machine_arn == f"{{{{ pipeline_option('{stage}_state_machine_arn') }}}}"
    # One name per DAG run and stage: a retry cannot start a second execution.
    name, payload = str(task.name), task.state_machine_input
    assert "run_id" in name and f"'{stage}'" in name
    assert "try_number" not in name
    assert isinstance(payload, dict) and payload["trigger"]["run_id"] == "{{ run_id }}"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_wait_limit_follows_the_stage_state_machine_timeout(dag: Any, stage: str) -> None:
    task = dag.task_dict[stage]
    waited = task.waiter_max_attempts * task.waiter_delay
    assert task.waiter_delay == 60
    assert TIMEOUTS[stage] < waited <= TIMEOUTS[stage] + 3 * task.waiter_delay
    assert waited > 30 * 60  # the operator's default (30 x 60 s) would give up on a long stage
    assert task.execution_timeout >= timedelta(seconds=waited)


def test_execution_names_are_valid_unique_per_run_and_stage_and_stable(dag: Any) -> None:
    name = dag.user_defined_macros["stage_execution_name"]
    run_id = "manual__2026-11-24T10:00:00.123456+00:00"
    first = name(DAG_ID, run_id, "crawl")
    assert first == name(DAG_ID, run_id, "crawl")  # what a retry computes
    assert first.startswith("manual__2026-11-24T10-00-00.123456+00-00-") and first.endswith("-crawl")
    others = {
        name(DAG_ID, run_id, "transform"),
        name(DAG_ID, "manual__2026-11-24T10-00-00.123456+00-00", "crawl"),
        name("other_dag", run_id, "crawl"),
        name(DAG_ID, "scheduled__2026-11-24T02:00:00+00:00", "crawl"),
    }
    assert first not in others and len(others) == 4
    for candidate in (first, *others, name(DAG_ID, "x" * 300, "transform")):
        # Step Functions: 1-80 characters, none of whitespace < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /
        assert 1 <= len(candidate) <= 80 and re.fullmatch(r"[0-9A-Za-z_.+=@-]+", candidate), candidate


def test_requirements_pin_the_versions_the_tests_run() -> None:
    """dags/requirements.txt = the MWAA image's provider for the configured Airflow version, with constraints."""
    requirements = (DAGS_FOLDER / "requirements.txt").read_text()
    airflow_version = MwaaConfig().airflow_version
    constraint = f'--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow_version}/constraints-3.12.txt"'
    assert constraint in requirements.splitlines()
    provider = version("apache-airflow-providers-amazon")
    assert f"apache-airflow-providers-amazon=={provider}" in requirements.splitlines()
    assert version("apache-airflow") == airflow_version
    dev = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert f"apache-airflow=={airflow_version}" in dev
    assert any(line.startswith("apache-airflow-providers-amazon[") and line.endswith(f"]=={provider}") for line in dev)
