"""`make demo-dag`: the DAG run once against the local stage machines, as a user runs it (a subprocess)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Synthesized
from tests.dags.conftest import REPO

pytestmark = pytest.mark.slow  # an Airflow DAG run in a fresh process (see pyproject.toml)


def test_the_dag_runs_every_stage_and_the_demo_shows_what_it_published(
    synth: Callable[[str], Synthesized], tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(REPO / "samples" / "orders.csv", drop / "orders.csv")
    (drop / "header.csv").write_text("x,y\n1,2\n")
    result = subprocess.run(
        [sys.executable, "-m", "localrun", "dag", "--assembly", str(synth("local").outdir), "--files", str(drop)]
        + ["--reports", str(tmp_path / "reports")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout.splitlines()
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    tasks = [line.split()[:2] for line in out if line.startswith("    ") and " try " in line]
    assert tasks == [
        [task, "success"] for task in ("wait_for_data", "admission", "proceed_after_admission", "crawl", "transform")
    ]
    executions = [line.split() for line in out if " execution manual__" in line]
    assert [(words[0], words[-1]) for words in executions] == [
        ("admission", "SUCCEEDED"),
        ("crawl", "SUCCEEDED"),
        ("transform", "SUCCEEDED"),
    ]
    assert "  admitted: incoming/orders.csv (40 records)" in out
    [published] = [line for line in out if line.startswith("  published: ")]
    assert ", 38 rows at s3://" in published
    assert "  rejected rows: 2 (amount: negative 1, order_date: not yyyy-MM-dd 1)" in out
    assert any(line.startswith("  quarantined: incoming/header.csv — header_mismatch: ") for line in out)
    assert out[-1] == "✓ DAG glue_pipeline: success"
    # Airflow's, the moto server's and Spark's lines are in the log file, not the terminal
    assert result.stderr == ""
    assert not [line for line in out if "[info" in line or "werkzeug" in line or "WARN" in line]
    log = (tmp_path / "reports" / "dag.log").read_text()
    assert "[DAG TEST] starting task_id=wait_for_data" in log and "werkzeug" in log
