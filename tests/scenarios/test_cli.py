"""`python -m localrun` as `make demo` and `make scenarios` call it: output and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def localrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localrun", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_unknown_scenario_is_one_clear_line_and_exit_2() -> None:
    result = localrun("demo", "--scenario", "nope")
    assert result.returncode == 2
    assert result.stderr.startswith("error: SCENARIO='nope' is not a scenario; one of: happy_path, ")


def test_missing_assembly_says_how_to_make_one(tmp_path: Path) -> None:
    result = localrun("demo", "--assembly", str(tmp_path / "absent"))
    assert result.returncode == 2
    # The demo reads cdk.out.local, which `make demo` synthesizes (`make synth` writes cdk.out).
    assert f"no cloud assembly at {tmp_path / 'absent'}: synthesize it again: `make demo` does" in result.stderr


def test_demo_shows_the_run_and_its_cost(local_assembly: Path, tmp_path: Path) -> None:
    result = localrun("demo", "--assembly", str(local_assembly), "--reports", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for line in (
        "   pipeline ▸ Run crawl stage",
        "      crawl ▸ Get crawler",
        "  transform ▸ Check results",
        "  ✉ SNS: Pipeline SUCCEEDED",
        "32 state transitions = $0.000800",
        "✓ happy_path: as expected",
    ):
        assert line in out, line
    assert (tmp_path / "happy_path.json").is_file()


def test_a_fault_scenario_exits_0_when_it_fails_as_expected(local_assembly: Path, tmp_path: Path) -> None:
    result = localrun(
        "demo", "--assembly", str(local_assembly), "--scenario", "crawl_failed", "--reports", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "✉ SNS: Pipeline FAILED at stage crawl: CrawlerFailed" in result.stdout
    # the demo ends with what `make why` prints: down to the crawl's own log lines
    diagnosis = result.stdout.split("\n✗ run ", 1)[1]
    assert "FAILED at stage crawl: CrawlerFailed" in diagnosis.splitlines()[0]
    assert "] ERROR : Internal Service Exception" in diagnosis and "redrive-execution" in diagnosis
