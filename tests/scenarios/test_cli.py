"""`python -m localrun` as `make demo` and `make scenarios` call it: output and exit status."""

from __future__ import annotations

import csv
import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from localrun.runner import run_on_fresh_deployment, run_order
from localrun.scenarios.actions import MIXED_DROP
from localrun.scenarios.catalogue import SCENARIOS, VOLUME_SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def localrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localrun", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
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


@pytest.fixture(scope="module")
def happy_demo(
    local_assembly: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`make demo` once for the tests below: its output and its reports folder."""
    reports = tmp_path_factory.mktemp("demo-reports")
    return localrun("demo", "--assembly", str(local_assembly), "--reports", str(reports)), reports


def test_demo_shows_the_run_and_its_cost(happy_demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, tmp_path = happy_demo
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
    # the run stops before the job: the demo started no Spark (its banner would be in the log)
    assert "Setting default log level" not in (tmp_path / "crawl_failed.log").read_text()
    # the demo ends with what `make why` prints: down to the crawl's own log lines
    diagnosis = result.stdout.split("\n✗ run ", 1)[1]
    assert "FAILED at stage crawl: CrawlerFailed" in diagnosis.splitlines()[0]
    assert "] ERROR : Internal Service Exception" in diagnosis and "redrive-execution" in diagnosis


def test_spark_is_started_ahead_for_every_scenario_whose_run_uses_it() -> None:
    """The CLI starts the local Spark ahead only for a scenario that runs it (Scenario.runs_spark)."""
    for scenario in SCENARIOS.values():
        if "SUCCEEDED" in scenario.expected_statuses or scenario.faults.get("job_outcome") == "FAILED_AFTER_WRITING":
            assert scenario.runs_spark, scenario.name
    for name in ("crawl_failed", "crawl_never_finishes", "malformed_event", "target_unavailable", "job_failed"):
        assert not SCENARIOS[name].runs_spark, name


def _sample_orders() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """samples/orders.csv split by the sample's two bad rows (a negative amount, 30 February)."""

    def bad(row: dict[str, str]) -> bool:
        try:
            datetime.date.fromisoformat(row["order_date"])
        except ValueError:
            return True
        return row["amount"].startswith("-")

    with (ROOT / "samples" / "orders.csv").open(newline="") as sample:
        rows = list(csv.DictReader(sample))
    return [r for r in rows if not bad(r)], [r for r in rows if bad(r)]


def test_demo_ends_with_the_published_rows_read_back_through_the_catalog(
    happy_demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, reports = happy_demo
    assert result.returncode == 0, result.stderr[-2000:]
    valid, invalid = _sample_orders()
    lines = result.stdout.splitlines()
    [at] = [i for i, line in enumerate(lines) if line.startswith("  published: ")]
    assert lines[at - 1] == "  admitted: incoming/orders/2026-11-24/orders.csv (40 records)"  # as uploaded
    published = re.fullmatch(
        r"  published: (\S+)\.orders partition \((\S+)\), (\d+) rows at s3://(\S+)/staging/orders/run=\2/", lines[at]
    )
    assert published, lines[at]
    assert int(published.group(3)) == len(valid) == 38
    assert lines[at + 1] == "    order_id | customer_id | order_date | amount | currency"
    first = sorted(valid, key=lambda r: r["order_id"])[:3]  # the rows a reader sees first, from the CSV itself
    assert lines[at + 2 : at + 5] == [f"    {' | '.join(row.values())}" for row in first]
    assert lines[at + 5] == f"    … {len(valid) - 3} more"
    assert lines[at + 6] == f"  rejected rows: {len(invalid)} (amount: negative 1, order_date: not yyyy-MM-dd 1)"
    assert lines[at + 7] == "  quarantined files: none"
    assert lines[at + 8].startswith("  32 state transitions = $")  # the cost line follows the data
    assert lines[at + 9].startswith("  report: ") and "Spark and moto logs: " in lines[at + 9]
    # Spark's console noise is in the log file, not in the demo's output
    for stream in (result.stdout, result.stderr):
        assert "Setting default log level" not in stream and " WARN " not in stream
    assert result.stderr == ""
    assert "Setting default log level" in (reports / "happy_path.log").read_text()


def test_demo_lists_each_quarantined_file_with_its_reason(local_assembly: Path, tmp_path: Path) -> None:
    result = localrun("demo", "--assembly", str(local_assembly), "--scenario", "mixed_drop", "--reports", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    # each file by the key it was uploaded under, then where it is kept (a safe name in the run's folder)
    shown = [line for line in result.stdout.splitlines() if line.startswith("  quarantined: incoming/")]
    assert all("(kept as quarantine/run=" in line for line in shown)
    codes = sorted(line.split(" — ", 1)[1].split(":", 1)[0] for line in shown)
    assert codes == sorted(code for _, code in MIXED_DROP.values() if code)
    for name, (_, code) in MIXED_DROP.items():
        if code and not name.endswith("/"):
            assert any(line.split(" — ")[0].endswith(f"/{name}") and f" — {code}: " in line for line in shown), name
    [published] = [line for line in result.stdout.splitlines() if line.startswith("  published: ")]
    assert f", {2 * len(_sample_orders()[0])} rows at " in published  # two admitted copies of the sample


def test_all_hands_out_the_longest_scenarios_first(tmp_path: Path) -> None:
    volume = [scenario.name for scenario in VOLUME_SCENARIOS]
    assert run_order(tmp_path)[: len(volume)] == volume  # no reports yet: the volume scenarios first
    for name, seconds in (("crawl_failed", 0.7), ("happy_path", 9.8), ("thousand_files", 23.6)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"scenario": name, "wall_time_s": seconds}))
    (tmp_path / "burst_50.json").write_text("{not json")  # unreadable: as if there were none
    order = run_order(tmp_path)
    assert order[:3] == ["thousand_files", "happy_path", "crawl_failed"]
    assert order[3] == "burst_50"  # then the volume scenarios without a readable report
    assert sorted(order) == sorted(SCENARIOS)


def test_a_scenario_process_runs_its_scenario_on_a_deployment_of_its_own(
    local_assembly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each process of `localrun all` does: bring-up, the scenario, its report; Spark started once
    the assembly came up, for a scenario that runs it (Scenario.runs_spark): none for this one."""
    from localrun.emulator import glue_standin

    sparks: list[Path | None] = []
    monkeypatch.setattr(glue_standin, "start_spark_in_background", lambda *, log_file=None: sparks.append(log_file))
    line = run_on_fresh_deployment(local_assembly, "malformed_event", tmp_path, tmp_path / "scenarios.log")
    report = json.loads((tmp_path / "malformed_event.json").read_text())
    assert line == {
        "name": "malformed_event",
        "statuses": ", ".join(report["statuses"]),
        "notices": len(report["notifications"]),
        "transitions": report["transitions"],
        "wall_time_s": report["wall_time_s"],
        "as_expected": True,
    }
    assert line["statuses"] == "FAILED"
    assert sparks == []  # its run is rejected at the trigger: no JVM started for it
