"""The DAG as Airflow parses it: no import errors, nothing called at parse time, house style, stages, run.

The parse-time test runs in a fresh interpreter in which boto3, botocore and sockets raise before
Airflow, the provider or the DAG are imported, so any AWS or network call while parsing fails it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from localrun.outer_loop import DAG_ID, DAGS_FOLDER
from stacks.config.settings import MwaaConfig
from tests.dags.conftest import REPO, parse_dag_file, parse_folder_in_fresh_interpreter

STAGE_NAMES = ["admission", "crawl", "transform"]  # PipelineStack.stages, in order
TIMEOUTS = {"admission": 1800, "crawl": 3600, "transform": 7200}  # as the Orchestration stack sets them for dev
# The parse-time options as the stack sets them for dev (the ARNs are read only when tasks run).
DEV_OPTIONS = {"schedule": "0 2 * * *", **{f"{stage}_timeout_seconds": str(s) for stage, s in TIMEOUTS.items()}}
AWS_EXECUTION_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")  # StartExecution's limit, and CloudWatch logging's


@pytest.fixture(scope="module")
def dag(airflow_home: Path) -> Iterator[Any]:
    """The DAG parsed in-process, with the parse-time options set as the stack sets them."""
    dag, errors = parse_dag_file(DEV_OPTIONS)
    assert errors == {}
    yield dag


@pytest.fixture(scope="module")
def support(dag: Any) -> Any:
    """glue_pipeline_support, as the DAG file imported it (from beside it)."""
    import glue_pipeline_support

    assert Path(glue_pipeline_support.__file__).parent == DAGS_FOLDER
    return glue_pipeline_support


def test_parsing_makes_no_aws_or_network_call(airflow_home: Path, tmp_path: Path) -> None:
    parsed = parse_folder_in_fresh_interpreter(DAGS_FOLDER, DEV_OPTIONS, cwd=tmp_path)
    assert (parsed["import_errors"], list(parsed["dags"]), parsed["attempts"]) == ({}, [DAG_ID], [])
    # .airflowignore: the helpers module is imported by the DAG file, never parsed as one.
    assert parsed["parsed_files"] == ["glue_pipeline.py"]


def test_the_dag_file_holds_declarations_only() -> None:
    source = (DAGS_FOLDER / "glue_pipeline.py").read_text()
    assert len(source.splitlines()) <= 110
    assert not re.search(r"^(class|def) ", source, flags=re.MULTILINE)


def test_house_style(dag: Any) -> None:
    assert dag.catchup is False
    assert dag.start_date == datetime(2026, 11, 1, tzinfo=UTC)  # static, not derived from now()
    assert dag.schedule == "0 2 * * *"  # pipeline.schedule: the config's EventBridge cron, translated
    assert dag.max_active_runs == 1
    assert dag.tags == {"glue-pipeline", "outer-loop", "step-functions"}
    assert dag.doc_md and "configuration options" in dag.doc_md
    assert dag.default_args["retries"] >= 1
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.doc_md, task.task_id


def test_the_schedule_is_the_option_the_stack_sets_and_none_without_it(airflow_home: Path) -> None:
    weekdays, errors = parse_dag_file({**DEV_OPTIONS, "schedule": "30 4 * * 1-5"})
    assert errors == {} and weekdays.schedule == "30 4 * * 1-5"
    unscheduled, errors = parse_dag_file({})
    assert errors == {} and unscheduled.schedule is None  # runs start only by hand, and fail naming the options


def test_waits_for_data_then_runs_the_stages_in_order_skipping_the_rest_when_nothing_is_admitted(dag: Any) -> None:
    order = [task.task_id for task in dag.topological_sort()]
    assert order == ["wait_for_data", "admission", "proceed_after_admission", "crawl", "transform"]
    for upstream, task_id in zip(order, order[1:], strict=False):
        assert dag.task_dict[task_id].upstream_task_ids == {upstream}


def test_after_admission_a_short_circuit_reads_its_output(dag: Any, support: Any) -> None:
    """The pipeline state machine's "Proceed after admission?": crawl and transform only if a file was admitted."""
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    proceed = dag.task_dict["proceed_after_admission"]
    assert isinstance(proceed, ShortCircuitOperator)
    assert proceed.ignore_downstream_trigger_rules is True  # every later stage is skipped, not only the next
    assert proceed.python_callable is support.anything_admitted
    summary = proceed.op_kwargs["summary"]
    assert isinstance(summary, PlainXComArg)  # one operator's XCom: .operator and .key
    assert (summary.operator.task_id, summary.key) == ("admission", support.OUTPUT_XCOM)


def test_anything_admitted_reads_the_admission_summary(support: Any) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    summary = {"run": "r", "admitted": 2, "quarantined": 1, "by_reason": {"empty": 1}}
    assert support.anything_admitted(summary) is True
    assert support.anything_admitted({**summary, "admitted": 0}) is False
    assert support.anything_admitted({"run": "r", "admitted": 0}) is False  # nothing under incoming
    for broken in (None, {}, {"admitted": "3"}, "3"):
        with pytest.raises(AirflowFailException, match="the admission stage's output has no count 'admitted'"):
            support.anything_admitted(broken)


def test_wait_for_data_is_a_deferrable_s3_sensor_on_the_incoming_prefix(dag: Any) -> None:
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    sensor = dag.task_dict["wait_for_data"]
    assert isinstance(sensor, S3KeySensor)
    assert sensor.deferrable is True
    assert sensor.wildcard_match is True
    assert sensor.bucket_name == "{{ pipeline_option('landing_bucket') }}"
    # The S3 rule's filter too: .csv under incoming (anything else there waits for a run to quarantine it).
    assert sensor.bucket_key == "{{ pipeline_option('incoming_prefix') }}*.csv"
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
    # The run: one per DAG run, the same for every stage (the pipeline state machine passes its round's).
    assert payload["run"] == {
        field: f"{{{{ pipeline_run(dag.dag_id, run_id)['{field}'] }}}}" for field in ("name", "key", "landing_path")
    }


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_wait_limit_follows_the_stage_state_machine_timeout(dag: Any, stage: str) -> None:
    task = dag.task_dict[stage]
    waited = task.waiter_max_attempts * task.waiter_delay
    assert task.waiter_delay == 60
    assert TIMEOUTS[stage] < waited <= TIMEOUTS[stage] + 3 * task.waiter_delay
    assert waited > 30 * 60  # the operator's default (30 x 60 s) would give up on a long stage
    assert task.execution_timeout >= timedelta(seconds=waited)


def test_every_task_has_its_own_provider_sns_failure_notice(dag: Any) -> None:
    """SnsNotifier renders its fields in place, so tasks sharing one would share the first message."""
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    notifiers = []
    for task in dag.tasks:
        [notifier] = task.on_failure_callback
        assert isinstance(notifier, SnsNotifier), task.task_id
        assert notifier.target_arn == "{{ pipeline_option('notification_topic_arn') }}"
        notifiers.append(notifier)
    assert len({id(notifier) for notifier in notifiers}) == len(dag.tasks)


# Run ids Airflow makes, and ones a user or the REST API may pass (any string up to 250 characters).
ODD_RUN_IDS = [
    "manual__2026-11-26T02:00:00+00:00",
    "scheduled__2026-11-24T02:00:00+00:00",
    "manual__2026-11-24T10:00:00.123456+00:00",
    "manual__2026-11-24T10-00-00-123456-00-00",  # what the first one reads as: still another name
    "backfill run @ 2026-11-24 = test #3 / café ünïcode ✓",
    "日本語のラン",  # nothing readable survives: the hash and the stage remain
    "a" * 250,
    "x" * 64 + "+" * 100 + "y" * 86,
    "---",
    "",
]


def test_execution_names_are_valid_for_any_run_id_unique_per_run_and_stage_and_stable(support: Any) -> None:
    name = support.stage_execution_name
    names = set()
    for run_id in ODD_RUN_IDS:
        for dag_id in (DAG_ID, "other_dag"):
            for stage in STAGE_NAMES:
                candidate = name(dag_id, run_id, stage)
                assert AWS_EXECUTION_NAME.fullmatch(candidate), (run_id, candidate)
                assert candidate.endswith(f"-{stage}")
                assert candidate == name(dag_id, run_id, stage)  # what a retry computes
                names.add(candidate)
    assert len(names) == len(ODD_RUN_IDS) * 2 * len(STAGE_NAMES)  # never shared across runs, DAGs or stages
    readable = name(DAG_ID, "manual__2026-11-26T02:00:00+00:00", "crawl")
    assert re.fullmatch(r"manual__2026-11-26T02-00-00-00-00-[0-9a-f]{16}-crawl", readable)


def test_the_run_is_named_from_the_dag_run_alone_and_lands_in_its_own_folder(
    support: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__PIPELINE__LANDING_BUCKET", "landing-bucket")
    monkeypatch.setenv("AIRFLOW__PIPELINE__LANDING_PREFIX", "landing/")
    names = set()
    for run_id in ODD_RUN_IDS:
        for dag_id in (DAG_ID, "other_dag"):
            run = support.pipeline_run(dag_id, run_id)
            name = run["name"]
            assert AWS_EXECUTION_NAME.fullmatch(name), (run_id, name)  # what the admission Lambda accepts
            assert run == support.pipeline_run(dag_id, run_id)  # what every stage and every retry computes
            assert run["key"] == hashlib.md5(name.encode()).hexdigest()  # as States.Hash(name, 'MD5')
            assert run["landing_path"] == f"s3://landing-bucket/landing/run={name}/"
            names.add(name)
    assert len(names) == len(ODD_RUN_IDS) * 2  # never shared across runs or DAGs
    readable = support.run_name(DAG_ID, "manual__2026-11-26T02:00:00+00:00")
    assert re.fullmatch(r"manual__2026-11-26T02-00-00-00-00-[0-9a-f]{16}", readable)


def test_the_run_fails_naming_the_landing_option_it_misses(support: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW__PIPELINE__LANDING_BUCKET", "landing-bucket")
    monkeypatch.delenv("AIRFLOW__PIPELINE__LANDING_PREFIX", raising=False)
    with pytest.raises(
        AirflowFailException, match=r"option pipeline\.landing_prefix \(AIRFLOW__PIPELINE__LANDING_PREFIX\)"
    ):
        support.pipeline_run(DAG_ID, "manual__1")


def test_execution_names_differ_for_generated_run_ids(support: Any) -> None:
    """Many runs, long prefixes that truncate to the same readable part: the hash tells them apart."""
    prefix = "scheduled__" + "9" * 70
    run_ids = [f"{prefix}{n}" for n in range(2000)]
    names = {support.stage_execution_name(DAG_ID, run_id, "transform") for run_id in run_ids}
    assert len(names) == len(run_ids)
    assert all(AWS_EXECUTION_NAME.fullmatch(n) for n in names)


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


def test_requirements_comments_point_at_files_that_exist() -> None:
    requirements = (DAGS_FOLDER / "requirements.txt").read_text()
    mentioned = re.findall(r"\b((?:dags|docs|stacks|tests)/[\w./-]+\.\w+)", requirements)
    assert mentioned, "the comment says where the file is deployed from"
    assert [path for path in mentioned if not (REPO / path).is_file()] == []


def test_attempt_names_are_valid_and_distinct_per_attempt(support: Any) -> None:
    """A try that resumes a stage ended in its Fail state starts the next attempt under its own name."""
    for run_id in ODD_RUN_IDS:
        names = [support.stage_execution_name(DAG_ID, run_id, "transform", n) for n in range(50)]
        assert all(AWS_EXECUTION_NAME.fullmatch(n) for n in names), run_id
        assert len(set(names)) == 50
        assert all(n.endswith(f"-{a}-transform") for a, n in enumerate(names) if a)
    with pytest.raises(ValueError, match=r"^attempt = -1: must be 0 or more$"):
        support.stage_execution_name(DAG_ID, "manual__1", "crawl", -1)


@pytest.mark.parametrize("error", ["GlueJobFailed", "CrawlerFailed", "WaitLimitExceeded", "PipelineOptionMissing"])
def test_the_dags_notice_and_the_failure_notice_give_the_same_airflow_action(support: Any, error: str) -> None:
    """The DAG's notice (deployed to MWAA) and lambda/failure_notice (what `make why` reads) cannot share code."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "failure_notice_pin", REPO / "lambda" / "failure_notice" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    run_id = "scheduled__2026-12-01T02:00:00+00:00"
    dag = support.resume_advice(dag_id=DAG_ID, run_id=run_id, task_id="crawl", error=error)
    trigger = {"source": "airflow", "dag_id": DAG_ID, "run_id": run_id, "stage": "crawl"}
    lam = handler.resume_advice(status="FAILED", state="s", error=error, execution="arn", trigger=trigger)
    assert (dag["action"], dag["command"]) == (lam["action"], lam["command"]) == ("clear", lam["command"])
    refused = support.resume_advice(dag_id=DAG_ID, run_id=run_id, task_id="transform", error="ValidationFailed")
    assert refused["action"] == "replay" and f"make why DAG_RUN='{run_id}'" in refused["why"]
