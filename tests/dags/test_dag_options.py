"""The DAG with its pipeline.* options missing, zero or negative: one clear line, never minutes of retries.

At parse time a value the DAG cannot use (a delay or a timeout that is zero, negative or not a
whole number) is an import error whose last line names the option, the value and what is allowed.
At run time a missing option fails the task that needs it at once (no retries), naming it, and
the failure notice goes out, or, without the topic's option, fails naming that option.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localrun.outer_loop import DAG_ID
from tests.dags.conftest import parse_dag_file

OPTIONS = {
    "schedule": "0 2 * * *",
    "admission_timeout_seconds": "1800",
    "crawl_timeout_seconds": "3600",
    "transform_timeout_seconds": "7200",
}
WHOLE = "must be a whole number of seconds > 0"
POLL = "must be a number of seconds > 0, such as 60 or 0.2"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("waiter_delay_seconds", "0", POLL),  # was a ZeroDivisionError
        ("waiter_delay_seconds", "-30", POLL),
        ("waiter_delay_seconds", "a minute", POLL),
        ("waiter_delay_seconds", "nan", POLL),
        ("waiter_delay_seconds", "inf", POLL),
        ("admission_timeout_seconds", "0", WHOLE),
        ("crawl_timeout_seconds", "0", WHOLE),
        ("crawl_timeout_seconds", "1.5", WHOLE),
        ("transform_timeout_seconds", "-7200", WHOLE),
    ],
)
def test_a_zero_negative_or_broken_number_is_one_import_error(
    airflow_home: Path, key: str, value: str, allowed: str
) -> None:
    dag, errors = parse_dag_file({**OPTIONS, key: value})
    assert dag is None and list(errors) == ["glue_pipeline.py"]
    last_line = errors["glue_pipeline.py"].strip().splitlines()[-1]
    variable = f"AIRFLOW__PIPELINE__{key.upper()}"
    assert last_line == (
        f"glue_pipeline_support.PipelineOptionInvalid: Airflow configuration option pipeline.{key} ({variable})"
        f" = {value!r}: {allowed}"
    )


def test_a_poll_interval_may_be_a_fraction_of_a_second(airflow_home: Path) -> None:
    dag, errors = parse_dag_file({**OPTIONS, "waiter_delay_seconds": "0.2"})
    assert errors == {}
    crawl = dag.task_dict["crawl"]
    assert (crawl.waiter_delay, crawl.waiter_max_attempts) == (0.2, 18_002)  # 3600 s / 0.2 s + 2 grace polls


def test_without_any_option_the_dag_parses_unscheduled_with_default_waits(airflow_home: Path) -> None:
    dag, errors = parse_dag_file({})
    assert errors == {} and dag.schedule is None
    assert {t.task_id: (t.waiter_delay, t.waiter_max_attempts) for t in dag.tasks if hasattr(t, "waiter_delay")} == {
        "admission": (60, 122),  # the 2-hour fallback, 60 s apart, plus 2 grace polls
        "crawl": (60, 122),
        "transform": (60, 122),
    }


@pytest.mark.parametrize(
    "key",
    [
        "landing_bucket",
        "incoming_prefix",
        "landing_prefix",
        "admission_state_machine_arn",
        "crawl_state_machine_arn",
        "transform_state_machine_arn",
        "notification_topic_arn",
    ],
)
def test_a_missing_run_time_option_fails_the_task_without_retries_naming_it(airflow_home: Path, key: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    dag, _ = parse_dag_file({})
    with pytest.raises(AirflowFailException) as raised:
        dag.user_defined_macros["pipeline_option"](key)
    assert str(raised.value) == (
        f"Airflow configuration option pipeline.{key} (AIRFLOW__PIPELINE__{key.upper()}) is not set: "
        "the Orchestration stack sets it on the MWAA environment"
    )


@dataclass
class FakeTaskInstance:
    task_id: str
    dag_id: str = DAG_ID
    run_id: str = "manual__2026-11-26T02:00:00+00:00"


def test_without_the_topic_option_the_notice_fails_naming_it(airflow_home: Path) -> None:
    """What Airflow logs as "Failed to send notification" when the stack's options are missing."""
    dag, _ = parse_dag_file({})
    [notifier] = dag.task_dict["wait_for_data"].on_failure_callback
    with pytest.raises(Exception, match=r"^Airflow configuration option pipeline\.notification_topic_arn "):
        notifier({"dag": dag, "ti": FakeTaskInstance("wait_for_data"), "exception": RuntimeError("boom")})


def test_the_notice_renders_the_pipeline_state_machine_message(airflow_home: Path, monkeypatch: Any) -> None:
    """The provider's SnsNotifier with the DAG's macros: subject and message as the state machine's."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(SnsHook, "publish_to_target", lambda self, **kwargs: sent.append(kwargs))
    monkeypatch.setenv("AIRFLOW__PIPELINE__NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:topic")
    dag, _ = parse_dag_file()
    [notifier] = dag.task_dict["crawl"].on_failure_callback
    import glue_pipeline_support as support

    failure = support.StageFailed("crawl", "FAILED", "CrawlerFailed", "the crawl failed", "arn:execution")
    notifier({"dag": dag, "ti": FakeTaskInstance("crawl"), "exception": failure})
    [published] = sent
    assert published["target_arn"] == "arn:aws:sns:us-east-1:123456789012:topic"
    assert published["subject"] == "Pipeline FAILED at stage crawl: CrawlerFailed"
    assert json.loads(published["message"]) == {
        "status": "FAILED",
        "stage": "crawl",
        "error": "CrawlerFailed",
        "cause": "the crawl failed",
        "stage_execution": "arn:execution",
        "dag_id": DAG_ID,
        "run_id": "manual__2026-11-26T02:00:00+00:00",
        # What finishes the run's work: clear the failed task (the DAG's own advice, pinned elsewhere).
        "resume": support.resume_advice(
            dag_id=DAG_ID, run_id="manual__2026-11-26T02:00:00+00:00", task_id="crawl", error="CrawlerFailed"
        ),
    }
    assert json.loads(published["message"])["resume"]["action"] == "clear"


@pytest.mark.slow
def test_a_run_without_the_options_fails_its_first_task_at_once(airflow_db: Path) -> None:
    """No retries for minutes: the sensor fails on its first try, the stages never start."""
    dag, _ = parse_dag_file({})
    started = time.monotonic()
    dag_run = dag.test()
    seconds = time.monotonic() - started
    tasks = {ti.task_id: (ti.state and str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "failed"
    assert tasks == {
        "wait_for_data": ("failed", 1),
        "admission": ("upstream_failed", 0),
        "proceed_after_admission": ("upstream_failed", 0),
        "crawl": ("upstream_failed", 0),
        "transform": ("upstream_failed", 0),
    }
    assert seconds < 60  # the default retries would wait 2 x 2 minutes
