"""`make demo-dag`: the DAG run once against the local stage machines, as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Synthesized
from tests.dags.conftest import REPO

pytestmark = pytest.mark.slow  # an Airflow DAG run in a fresh process (see pyproject.toml)


def test_the_command_runs_the_dag_on_a_local_stage_and_keeps_airflows_output_in_its_log(
    synth: Callable[[str], Synthesized], tmp_path: Path
) -> None:
    """The command's own part: a fresh Airflow home and database, the moto server, the options and the
    MWAA role, the output split. A drop whose one file is quarantined, so the run admits nothing and
    skips the Spark stages (the path with every stage is test_dag_local_run.py's, through the same
    outer_loop.run_and_show, in the test process)."""
    drop = tmp_path / "drop"
    drop.mkdir()
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
    assert out[1].startswith("  Airflow 3.") and " metadata database in " in out[1]
    tasks = [line.split()[:2] for line in out if line.startswith("    ") and " try " in line]
    assert tasks == [
        ["wait_for_data", "success"],
        ["admission", "success"],
        ["proceed_after_admission", "success"],
        ["crawl", "skipped"],
        ["transform", "skipped"],
    ]
    assert any(line.startswith("    admission execution manual__") and line.endswith(": SUCCEEDED") for line in out)
    assert any(line.startswith("  quarantined: incoming/header.csv — header_mismatch: ") for line in out)
    assert out[-1] == "✓ DAG glue_pipeline: success"
    # Airflow's and the moto server's lines are in the log file, not the terminal
    assert result.stderr == ""
    assert not [line for line in out if "[info" in line or "werkzeug" in line]
    log = (tmp_path / "reports" / "dag.log").read_text()
    assert "[DAG TEST] starting task_id=wait_for_data" in log and "werkzeug" in log
