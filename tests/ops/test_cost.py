"""`make cost`'s formula, prices and output, without running anything (the local bursts that check
the formula against counted transitions are in tests/scenarios/test_cost.py, the slow tier)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ops import cost, cost_model
from ops.cost_model import Assumptions, BurstShape, distributed_map, inline_map, per_object, price, projections
from ops.pricing import EXPRESS_WORKFLOWS, GLUE, STEP_FUNCTIONS
from stacks.config.mwaa_facts import MWAA_PRICES
from stacks.config.stages import config_for

A = Assumptions()


def test_assumptions_follow_the_deployed_config() -> None:
    dev = config_for("dev")
    assert A.batch_size == dev.admission.batch_size
    assert A.poll_interval_seconds == dev.crawler.poll_interval_seconds
    assert A.event_wait_seconds == dev.crawler.poll_interval_seconds * dev.crawler.event_wait_polls
    assert dev.glue_job.worker_type == "G.1X" and A.job_dpus == dev.glue_job.number_of_workers


@pytest.mark.parametrize("files", [10, 1_000, 10_000])
def test_targets_for_the_default_design(files: int) -> None:
    """Benchmarks of issue 18, from the formula: a 10,000-file burst behind the front door within
    300 Standard transitions in all; at most 2 crawls and 2 job runs."""
    batched = distributed_map(cost_model.nominal_shape(files, A), A)
    assert batched.variant == "distributed_map"
    assert batched.crawls <= 2 and batched.job_runs <= 2
    assert batched.standard_transitions <= 300
    batches = 1 + -(-(files - 1) // A.batch_size)
    # One door per upload and one crawl callback per crawl, Express; no upload a Standard execution.
    assert batched.express_requests == batches + files + batched.crawls
    assert batched.trigger_transitions == 0
    # Before the door, every upload started an execution that coalesced: 8 transitions each.
    before = distributed_map(cost_model.before_door_shape(files, A), A)
    assert before.variant == "before_door"
    assert before.trigger_transitions == (files - 1) * cost_model.PIPELINE_COALESCED


def test_behind_the_door_a_burst_costs_its_runs_plus_8_per_raced_pipeline() -> None:
    """Standard W + 8·c: c pipelines a door started before the first run took the lease."""
    alone = distributed_map(cost_model.nominal_shape(200, A), A)
    raced = distributed_map(cost_model.nominal_shape(200, replace(A, raced_pipelines=3)), A)
    assert raced.standard_transitions - alone.standard_transitions == 3 * cost_model.PIPELINE_COALESCED
    assert raced.express_requests == alone.express_requests  # still one door per upload


def test_a_run_that_hands_over_costs_one_state_more_than_two_runs() -> None:
    """Rounds spent with files waiting: "Continue in a new execution", then the next working run."""
    shape = cost_model.nominal_shape(200, A)
    two_runs = replace(shape, runs=[[100], [100]])
    handed_over = replace(two_runs, continuations=1)
    assert (
        distributed_map(handed_over, A).standard_transitions - distributed_map(two_runs, A).standard_transitions
        == cost_model.PIPELINE_CONTINUATION
        == 1
    )


def test_behind_the_door_a_crawl_costs_a_look_per_event_wait_it_outlasts_not_a_poll_per_interval() -> None:
    """The sweep of issue 18: 1, 10 and 60-minute crawls, a one-file run (pipeline 16, admission 4,
    transform 7, and the crawl stage: 5, plus 4 per extra poll before, 5 per extra look behind the door)."""
    dev = config_for("dev").crawler
    assert (dev.poll_interval_seconds, dev.event_wait_polls, dev.max_polls) == (30, 10, 60)
    rows = cost_model.crawl_sweep(dev)
    assert [(r.minutes, r.polled, r.woken, r.woken_one_wait) for r in rows] == [
        (1, 27 + 5 + 4 * 1, 27 + 5, 27 + 5),  # 2 polls of 30 s; one wait
        (10, 27 + 5 + 4 * 19, 27 + 5 + 5 * 1, 27 + 5),  # 20 polls; the 300 s wait timed out once
        (60, 27 + 5 + 4 * 119, 27 + 5 + 5 * 11, 27 + 5),  # 120 polls; 12 waits; over dev's 30 minutes
    ]
    assert [r.within_bound for r in rows] == [True, True, False]
    # With one wait as long as the bound (event_wait_polls = max_polls) the run costs the same however
    # long the crawl; the price is a lost event noticed only at the bound.
    one_wait = replace(dev, event_wait_polls=dev.max_polls)
    assert {r.woken for r in cost_model.crawl_sweep(one_wait, (1, 10, 30))} == {32}


def test_the_formula_counts_a_crawl_longer_than_one_event_wait() -> None:
    short, long = (replace(A, crawl_seconds=s) for s in (60, 3_600))
    door_short = distributed_map(cost_model.nominal_shape(100, short), short)
    door_long = distributed_map(cost_model.nominal_shape(100, long), long)
    crawls = door_short.crawls
    assert door_long.standard_transitions - door_short.standard_transitions == crawls * 11 * 5
    before_short = distributed_map(cost_model.before_door_shape(100, short), short)
    before_long = distributed_map(cost_model.before_door_shape(100, long), long)
    assert before_long.standard_transitions - before_short.standard_transitions == crawls * (119 - 1) * 4


def test_one_execution_per_object_costs_a_crawl_and_a_job_per_file() -> None:
    old = per_object(1_000, A)
    assert (old.crawls, old.job_runs) == (1_000, 1_000)
    # A happy run of the old design was 14 transitions with one poll (README before 6453f5d).
    one_poll = per_object(1, replace(A, crawl_seconds=1))
    assert one_poll.standard_transitions == 14


def test_the_inline_map_bills_a_transition_per_file_and_outgrows_one_history() -> None:
    shape = cost_model.nominal_shape(3_000, A)
    inline, batched = inline_map(shape, A), distributed_map(shape, A)
    assert inline.standard_transitions - batched.standard_transitions == 3_000 + 2 * 4 - batched.express_requests
    assert inline.lambda_invocations == 3_000 and inline.express_requests == 0
    assert inline.feasible and not inline_map(cost_model.nominal_shape(10_000, A), A).feasible


def test_designs_order_by_cost_for_big_bursts() -> None:
    for files in (1_000, 10_000):
        old, inline, before, door = (price(row, A).total for row in projections(files, A))
        assert door < before < inline < old


def test_formula_of_a_measured_shape() -> None:
    """Before the door: three rounds (16, 84, and one that found nothing), 99 coalesced, a crawl of two polls."""
    shape = BurstShape(files=100, coalesced=99, runs=[[16, 84, 0]], polls_per_crawl=[1, 2])
    counts = distributed_map(shape, A)
    pipeline = 7 + 9 + 9 + 7
    admission = 3 * 3 + (1 + 1 + 0)
    crawl, transform = 5 + 9, 7 + 7
    assert counts.standard_transitions == 99 * 8 + pipeline + admission + crawl + transform
    assert (counts.crawls, counts.job_runs, counts.express_requests) == (2, 2, 2)
    # Behind the door: the same rounds, 2 pipelines raced (coalesced), crawls woken by their event.
    door = distributed_map(BurstShape(files=100, coalesced=2, runs=[[16, 84, 0]], doors=100), A)
    assert door.standard_transitions == 2 * 8 + pipeline + admission + 5 + 5 + transform
    assert door.express_requests == 2 + 100 + 2


def test_prices_are_dated_and_billed_as_aws_bills_them() -> None:
    for dated in (STEP_FUNCTIONS, EXPRESS_WORKFLOWS, GLUE):
        assert dated.as_of and dated.region == "us-east-1"
    assert EXPRESS_WORKFLOWS.gb_seconds(0.01) == pytest.approx(0.1 * 64 / 1024)  # 100 ms, 64 MB at least
    assert EXPRESS_WORKFLOWS.gb_seconds(6.3) == pytest.approx(6.3 * 64 / 1024)
    assert EXPRESS_WORKFLOWS.cost(1_000_000, 0) == pytest.approx(1.00)
    assert GLUE.crawl_cost(60, 1) == pytest.approx(0.44 / 6)  # 10-minute minimum
    assert GLUE.job_cost(10, 1) == pytest.approx(0.44 / 60)  # 1-minute minimum
    assert GLUE.confirmed is False  # until someone checks the pricing page


def test_mwaa_comparison_uses_the_repository_prices() -> None:
    comparison = cost_model.mwaa_comparison(tasks=15)
    hourly = MWAA_PRICES.environment_per_hour["mw1.small"] + MWAA_PRICES.additional_worker_per_hour["mw1.small"]
    expected = hourly * MWAA_PRICES.hours_per_month
    assert comparison.environment_usd_per_month == pytest.approx(expected)
    assert 390 < comparison.environment_usd_per_month < 410  # "a $400/month environment"
    assert comparison.transitions_per_run == 18
    assert comparison.break_even_runs_per_month == pytest.approx(expected / (18 * 0.025 / 1000))
    assert all(saving > 0 for *_, saving in comparison.schedules)


def test_cli_without_local_runs_prints_the_tables_and_draws_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png, report = tmp_path / "cost.png", tmp_path / "cost.json"
    assert cost.main(["--measure", "", "--one-by-one", "", "--plot", str(png), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| 10,000 | (c) Distributed Map, before the front door | 80,188 (79,992) |" in out
    assert "| 10,000 | (d) Distributed Map behind the front door | 156 | 10,103 |" in out
    assert "break-even at" in out and "to be confirmed" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.exists()


def test_the_docs_show_the_table_and_plot_make_cost_prints() -> None:
    """The formula rows and the MWAA table in the docs are what the code computes now."""
    root = Path(__file__).resolve().parents[2]
    docs = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))])
    rows = [row for files in cost_model.BURSTS for row in projections(files, A)]
    for line in cost.burst_table(rows, A).splitlines():
        assert line in docs, f"stale cost table in the docs (run make cost): {line}"
    for line in cost.crawl_sweep_table(config_for("dev").crawler).splitlines():
        assert line in docs, f"stale crawl-duration sweep in the docs (run make cost): {line}"
    for line in cost.mwaa_table(cost_model.mwaa_comparison()).splitlines()[2:]:
        assert line in docs, f"stale MWAA comparison in the docs (run make cost): {line}"
    assert "docs/cost-per-burst.png" in docs and (root / "docs" / "cost-per-burst.png").exists()
