"""Airflow for the DAG tests: a throw-away AIRFLOW_HOME, the repository's dags/ folder, SQLite.

Airflow fixes its home and metadata database when it is first imported, so `airflow_home`
sets the environment before any test here imports Airflow, and restores it at the end of the
session. Test modules in this package import Airflow only inside fixtures and tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
DAG_FILE = DAGS_FOLDER / "glue_pipeline.py"
DAG_ID = "glue_pipeline"


def airflow_environment(home: Path) -> dict[str, str]:
    """What every Airflow process of these tests needs: its own home and database, our DAGs only."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # No AWS credentials or config from the machine running the tests.
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if "airflow" in sys.modules:
        pytest.fail(
            "Airflow was imported before tests/dags set AIRFLOW_HOME: its home and database "
            "are fixed at first import. Import Airflow only inside fixtures and tests."
        )
    home = tmp_path_factory.mktemp("airflow-home")
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
    """The metadata database (SQLite), migrated once per session."""
    from airflow.utils.db import initdb

    initdb()
    return airflow_home / "airflow.db"
