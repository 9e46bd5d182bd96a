"""Issue 15, finding 7: under MWAA a day without files is not a failure.

The sensor's deferral ends in a timeout when no .csv arrived: the task is skipped (so are the
stages after it, and the DAG run succeeds), no failure callback runs and no "FAILED" notice goes
out. Any other end of the wait (the trigger could not read the bucket) still fails the task.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import parse_dag_file
from tests.dags.test_dag_integrity import DEV_OPTIONS


@pytest.fixture(scope="module")
def sensor(airflow_home: Path) -> Iterator[Any]:
    dag, errors = parse_dag_file(DEV_OPTIONS)
    assert errors == {}
    yield dag.task_dict["wait_for_data"]


def test_the_sensors_timeout_skips_the_run(sensor: Any) -> None:
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="arrived within 6:00:00: nothing to run"):
        sensor.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {})
    assert sensor.soft_fail is False  # only the timeout is skipped, errors are not hidden


def test_an_error_while_waiting_still_fails(sensor: Any) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowSkipException

    with pytest.raises(AirflowException) as raised:
        sensor.resume_execution(
            "execute_complete", {"event": {"status": "error", "message": "AccessDenied: s3:ListBucket"}}, {}
        )
    assert not isinstance(raised.value, AirflowSkipException)
