"""`make demo` resynthesizes the local assembly for exactly the files the local run calls it stale for.

A file the run checks and make does not (cdk.json was one) left `make demo` failing with "the assembly
is older than cdk.json: `make demo` synthesizes it again", which it did not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from localrun.emulator.assembly import APP_SOURCES

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_makefile_and_the_staleness_check_name_the_same_sources() -> None:
    target = "print-app-sources"
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", f"{target}: ; @echo $(APP_SOURCES)", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    checked = {path.relative_to(REPO_ROOT).as_posix() for pattern in APP_SOURCES for path in REPO_ROOT.glob(pattern)}
    assert "cdk.json" in checked and "dags/.airflowignore" in checked
    assert set(printed) == checked
