"""Airflow for the DAG tests: a throw-away AIRFLOW_HOME, the repository's dags/ folder, SQLite.

Airflow fixes its home and metadata database when it is first imported, so tests/conftest.py sets
AIRFLOW_HOME and the other Airflow settings for each test process at start-up (before any test,
here or elsewhere, imports Airflow); `airflow_home` adds the AWS isolation for the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localrun.outer_loop import airflow_environment, parse_dag
from tests.isolated_python import isolated_python

REPO = Path(__file__).resolve().parents[2]
# Every pipeline.* option the Orchestration stack sets, with dev's parse-time values.
STACK_OPTION_NAMES = (
    "schedule",
    "landing_bucket",
    "incoming_prefix",
    "landing_prefix",
    "notification_topic_arn",
    "admission_state_machine_arn",
    "admission_timeout_seconds",
    "crawl_state_machine_arn",
    "crawl_timeout_seconds",
    "transform_state_machine_arn",
    "transform_timeout_seconds",
    "waiter_delay_seconds",
)


def option_variable(key: str) -> str:
    """How MWAA hands the environment's `pipeline.<key>` option to Airflow."""
    return f"AIRFLOW__PIPELINE__{key.upper()}"


def parse_dag_file(options: dict[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    """(the DAG or None, import errors): dags/glue_pipeline.py parsed as the DAG processor does
    (localrun.outer_loop.parse_dag). `options`: exactly these pipeline.* options (by key) while
    parsing; None: the environment as it is.
    """
    with pytest.MonkeyPatch.context() as patch:
        for key in STACK_OPTION_NAMES if options is not None else ():
            patch.delenv(option_variable(key), raising=False)
        for key, value in (options or {}).items():
            patch.setenv(option_variable(key), value)
        return parse_dag()


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    # Set for the whole test process at start-up (tests/conftest.py): Airflow may be imported first by
    # a test outside this package, and fixes its home at that import.
    from tests.conftest import airflow_home_of_this_process

    home = airflow_home_of_this_process()
    if os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail(f"AIRFLOW_HOME = {os.environ.get('AIRFLOW_HOME')!r}: something changed it from {home}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in airflow_environment(home).items():
            patch.setenv(name, value)
        for name in (
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        ):
            patch.delenv(name, raising=False)
        yield home


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """The metadata database (SQLite), migrated once per session (per pytest-xdist worker: each has its own home)."""
    from airflow.utils.db import initdb

    initdb()
    return airflow_home / "airflow.db"


# Run by `parse_folder_in_fresh_interpreter`: boto3, botocore and sockets raise before Airflow, the
# provider or the DAG are imported, so any AWS or network call while parsing shows up in "attempts".
_PARSE_FOLDER = textwrap.dedent("""
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

    from pathlib import Path
    from airflow.dag_processing.dagbag import BundleDagBag
    folder = Path(sys.argv[1])
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
    print(json.dumps({
        "import_errors": {Path(f).name: e.strip().splitlines()[-1] for f, e in bag.import_errors.items()},
        "parsed_files": sorted(stat.file for stat in bag.dagbag_stats),
        "dags": {
            dag_id: {
                "tasks": [task.task_id for task in dag.topological_sort()],
                "schedule": dag.schedule,
                "waiter_max_attempts": {t.task_id: getattr(t, "waiter_max_attempts", None) for t in dag.tasks},
                "modules": sorted({type(t).__module__ for t in dag.tasks}),
            }
            for dag_id, dag in bag.dags.items()
        },
        "attempts": attempts,
    }))
""")


def parse_folder_in_fresh_interpreter(folder: Path, options: dict[str, str], *, cwd: Path) -> dict[str, Any]:
    """A DAG folder parsed the way Airflow's DAG processor parses its bundle, in a new `python -I`.

    Only the folder and the installed packages are importable (`-I`: no current directory, no
    PYTHONPATH; `cwd` should be outside the repository), so a module the DAG file imports must be
    in the folder. `options`: the pipeline.* options set, by key; no other is.
    """
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW__PIPELINE__")}
    environment |= {option_variable(key): value for key, value in options.items()}
    environment["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    result = subprocess.run(
        [*isolated_python(), "-c", _PARSE_FOLDER, str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed
