"""`make cost`: what a burst of N files costs, four ways, counted on local runs and priced with dated prices.

    python -m ops.cost [--assembly cdk.out.local] [--measure 10,100,1000] [--plot docs/cost-per-burst.png]
                            [--tasks 15] [--mwaa-class mw1.small] [--mwaa-extra-workers 1]

The four designs, for a burst of N files under the incoming prefix:

(a) per object: every upload started a whole pipeline run (the design before the admission stage):
    N runs, N crawls, N job runs;
(b) inline Map: the pipeline as it is, with its admission stage an inline Map over the listing,
    one Lambda invocation per file (states inside an iteration are billed; the iteration is not);
(c) Distributed Map, before the front door: ItemBatcher batches of `batch_size` files, each one
    EXPRESS child workflow (one Standard transition to start it, then an Express request) invoking
    the admission Lambda once over its batch; the crawl stage polls the crawler;
(d) Distributed Map behind the front door (as deployed): each upload's event runs an EXPRESS door
    that starts the pipeline only when no running execution holds the lease (one Express request
    per upload), and the crawl stage is woken by the crawler's end event through an EXPRESS
    callback (5 transitions per crawl, one Express request).

(b) and (c) share the old trigger: EventBridge started one pipeline execution per upload, and every
execution that found the lease held by a running execution ended Coalesced after 8 states. In (d)
only the pipelines a door started before the first run took the lease coalesce.

Figures come from transitions counted in local runs (a fresh LocalDeployment, N small valid CSVs
put under incoming/ with `put_landing_object`, every pipeline and stage execution waited for and
counted with the runner's helpers) and from the formula below, which the tests check against
those runs (`tests/scenarios/test_cost.py`: exact equality). Durations (crawl, job, admission
Lambda) cannot be measured on moto: they are the assumptions in `Assumptions`, printed with the
table. Prices: `ops/pricing.py` and, for MWAA, `stacks/config/mwaa_facts.py`, each with its date.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from ops.cost_measured import Measured, measure_burst, measured_from
from ops.cost_model import (
    BURSTS,
    VARIANTS,
    Assumptions,
    BurstCounts,
    MwaaComparison,
    Priced,
    before_door_shape,
    crawl_sweep,
    distributed_map,
    mwaa_comparison,
    price,
    projections,
)
from ops.pricing import EXPRESS_WORKFLOWS, GLUE, LAMBDA, STEP_FUNCTIONS
from stacks.common.paths import REPO_ROOT
from stacks.config.settings import CrawlerConfig
from stacks.config.stages import config_for


# -- output --------------------------------------------------------------------------------------
def _money(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}" if value >= 0.0001 else f"${value:.6f}"


def burst_table(rows: Sequence[BurstCounts], assumptions: Assumptions) -> str:
    lines = [
        "| files | design | Standard transitions (of which coalesced triggers) | Express requests | Express GB-s "
        "| Lambda invocations | crawls | job runs | Step Functions $ (Standard + Express) | Glue $ | $ per burst |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cost = price(row, assumptions)
        design = VARIANTS[row.variant] + ("" if row.source == "formula" else f" — {row.source}")
        if not row.feasible:
            design += " — over one execution's 25,000-event history"
        transitions = f"{row.standard_transitions:,}"
        if row.trigger_transitions:
            transitions += f" ({row.trigger_transitions:,})"
        lines.append(
            f"| {row.files:,} | {design} | {transitions} | {row.express_requests:,} "
            f"| {row.express_gb_seconds:,.1f} | {row.lambda_invocations:,} | {row.crawls:,} "
            f"| {row.job_runs:,} | {_money(cost.step_functions + cost.express)} | {_money(cost.glue)} "
            f"| {_money(cost.total)} |"
        )
    return "\n".join(lines)


def mwaa_table(comparison: MwaaComparison) -> str:
    c = comparison
    lines = [
        f"A {c.tasks}-task DAG as one state machine: {c.transitions_per_run} transitions a run, "
        f"{_money(c.usd_per_run)}. MWAA {c.environment_class} with {c.extra_workers:g} extra worker(s) on average: "
        f"{_money(c.environment_usd_per_month)}/month{'' if c.confirmed else ' (price not confirmed)'}; "
        f"break-even at {c.break_even_runs_per_month:,.0f} runs a month.",
        "",
        "| schedule | runs/month | Step Functions $/month | MWAA $/month | saved by moving $/month |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs, step_functions, saving in c.schedules:
        lines.append(
            f"| {name} | {runs:,.0f} | {_money(step_functions)} "
            f"| {_money(c.environment_usd_per_month)} | {_money(saving)} |"
        )
    return "\n".join(lines)


def crawl_sweep_table(crawler: CrawlerConfig) -> str:
    wait = crawler.poll_interval_seconds * min(crawler.event_wait_polls, crawler.max_polls)
    bound = crawler.poll_interval_seconds * crawler.max_polls
    lines = [
        f"| crawl lasts | polled every {crawler.poll_interval_seconds} s (before) "
        f"| woken by its end event, a look every {wait} s without one (as deployed) "
        f"| woken, one wait of {bound} s (`event_wait_polls` = `max_polls`) |",
        "|---:|---:|---:|---:|",
    ]
    for row in crawl_sweep(crawler):
        note = "" if row.within_bound else f" (over the {bound // 60}-minute bound: raise `max_polls`)"
        lines.append(f"| {row.minutes:g} min{note} | {row.polled:,} | {row.woken:,} | {row.woken_one_wait:,} |")
    return "\n".join(lines)


def price_notes(assumptions: Assumptions) -> str:
    return (
        f"Prices, us-east-1: Step Functions Standard ${STEP_FUNCTIONS.usd_per_1000_standard_transitions:.3f}/1,000 "
        f"transitions ({STEP_FUNCTIONS.as_of}); Express ${EXPRESS_WORKFLOWS.usd_per_million_requests:.2f}/million "
        f"requests + ${EXPRESS_WORKFLOWS.usd_per_gb_second:.8f}/GB-s, 64 MB, 100 ms steps ({EXPRESS_WORKFLOWS.as_of}); "
        f"Lambda ${LAMBDA.usd_per_million_requests:.2f}/million + ${LAMBDA.usd_per_gb_second:.10f}/GB-s "
        f"({LAMBDA.as_of}); "
        f"Glue ${GLUE.usd_per_dpu_hour:.2f}/DPU-hour, crawler minimum {GLUE.crawler_minimum_s // 60} min, job minimum "
        f"{GLUE.job_minimum_s // 60} min ({GLUE.as_of}, {'confirmed' if GLUE.confirmed else 'to be confirmed'}).\n"
        f"Assumed (not measurable locally): crawl {assumptions.crawl_seconds:.0f} s on "
        f"{assumptions.crawler_dpus:g} DPUs, polled every {assumptions.poll_interval_seconds:.0f} s "
        f"({assumptions.polls} polls); job {assumptions.job_seconds:.0f} s "
        f"on {assumptions.job_dpus:g} DPUs; admission {assumptions.admit_overhead_seconds} s + "
        f"{assumptions.admit_seconds_per_file} s per file; batch size {assumptions.batch_size}; a burst takes 2 rounds "
        f"(round 1: {assumptions.first_round_files} file). (c) polls the crawl; (d) is woken by its end event. "
        f"Front door {assumptions.door_seconds} s a request, crawl callback {assumptions.callback_seconds} s; "
        f"pipelines started by doors racing the first run: {assumptions.raced_pipelines}."
    )


def plot(path: Path, assumptions: Assumptions, measured: Sequence[Measured] = ()) -> Path:
    """Two panels, log-log: everything (Glue dominates), and orchestration alone (Step Functions,
    Express, Lambda), where the designs and the per-upload executions (Standard or door) differ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({round(10 ** (k / 8)) for k in range(0, 33)})  # 1 .. 10,000, 8 points a decade
    colors = {"per_object": "#c62828", "inline_map": "#ef6c00", "before_door": "#1565c0", "distributed_map": "#2e7d32"}
    figure, panels = plt.subplots(1, 2, figsize=(12, 5), dpi=100)
    measures: list[tuple[str, Callable[[Priced], float]]] = [
        ("everything: Step Functions, Express, Lambda, Glue", lambda p: p.total),
        ("orchestration only: Step Functions, Express, Lambda", lambda p: p.total - p.glue),
    ]
    for axes, (label, measure) in zip(panels, measures, strict=True):
        for index, variant in enumerate(VARIANTS):
            rows = [projections(n, assumptions)[index] for n in sizes]
            points = [(r.files, measure(price(r, assumptions)), r.feasible) for r in rows]
            feasible = [(n, y) for n, y, ok in points if ok]
            axes.plot(*zip(*feasible, strict=True), "-", color=colors[variant], label=VARIANTS[variant])
            beyond = [(n, y) for n, y, ok in points if not ok]
            if beyond:
                axes.plot(*zip(*([feasible[-1], *beyond]), strict=True), ":", color=colors[variant])
                axes.plot([], [], ":", color=colors[variant], label="(b) past one execution's 25,000-event history")
        runs_alone = [
            (n, measure(price(replace(row, standard_transitions=row.run_transitions), assumptions)))
            for n in sizes
            for row in [distributed_map(before_door_shape(n, assumptions), assumptions)]
        ]
        axes.plot(
            *zip(*runs_alone, strict=True),
            "--",
            color=colors["before_door"],
            label="(c) without the coalesced trigger executions",
        )
        for m in measured:
            marker = "o" if m.arrival == "at once" else "x"
            axes.plot([m.files], [measure(price(m.counts(assumptions), assumptions))], marker, color="#1b5e20")
        for arrival, marker in (("at once", "o"), ("one by one", "x")):
            if any(m.arrival == arrival for m in measured):
                axes.plot([], [], marker, color="#1b5e20", label=f"(d) measured locally, uploads {arrival}")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("files in the burst")
        axes.set_ylabel("$ per burst")
        axes.set_title(label, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="upper left", fontsize=7)
    figure.suptitle(f"Cost of a burst of files, four designs (us-east-1 prices of {STEP_FUNCTIONS.as_of}, make cost)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    parser.add_argument(
        "--measure", default="10,100,1000", help="bursts to run locally, all objects landed at once ('' for none)"
    )
    parser.add_argument(
        "--one-by-one", default="1000", help="bursts to run locally, one upload after another ('' for none)"
    )
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "docs" / "cost-per-burst.png")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "reports" / "cost.json")
    parser.add_argument(
        "--reuse-measured", type=Path, help="take the local bursts from an earlier --report instead of running them"
    )
    parser.add_argument("--tasks", type=int, default=15, help="tasks of the DAG compared with MWAA")
    parser.add_argument("--mwaa-class", default="mw1.small")
    parser.add_argument("--mwaa-extra-workers", type=float, default=1.0)
    args = parser.parse_args(argv)
    sizes = [(int(s), True) for s in args.measure.split(",") if s.strip()]
    sizes += [(int(s), False) for s in args.one_by_one.split(",") if s.strip()]
    assumptions = Assumptions()

    measured: list[Measured] = []
    if args.reuse_measured:
        measured = [measured_from(item) for item in json.loads(args.reuse_measured.read_text())["measured"]]
        sizes = []
    if sizes:
        from localrun.emulator.assembly import RESYNTHESIZE, newer_sources

        if not (args.assembly / "manifest.json").exists():
            print(f"error: no cloud assembly at {args.assembly}: {RESYNTHESIZE}", file=sys.stderr)
            return 2
        if stale := newer_sources(args.assembly):
            print(
                f"error: {args.assembly} is older than {stale[0].relative_to(REPO_ROOT)}: {RESYNTHESIZE}",
                file=sys.stderr,
            )
            return 2
    if sizes:
        from localrun.emulator.glue_standin import start_spark_in_background

        # The stand-in's transform runs on a local SparkSession: its JVM's output goes to a file.
        spark_log = REPO_ROOT / "reports" / "cost-spark.log"
        spark_log.parent.mkdir(parents=True, exist_ok=True)
        start_spark_in_background(log_file=spark_log)
        print(f"Spark's log: {spark_log.relative_to(REPO_ROOT)}", flush=True)
    for files, at_once in sizes:
        arrival = "at once (the objects land, then their events)" if at_once else "one upload after another"
        print(f"▶ burst of {files:,} files on a fresh local deployment, {arrival}", flush=True)
        m = measure_burst(
            args.assembly, files, at_once=at_once, on_progress=lambda line: print(f"  {line}", flush=True)
        )
        predicted = distributed_map(m.shape, replace(assumptions, batch_size=m.batch_size)).standard_transitions
        rounds = [len(r) for r in m.shape.runs]
        print(
            f"  {m.door_executions:,} front-door executions, {m.callback_executions} crawl callbacks, "
            f"{m.left_incoming} files left under incoming/; "
            f"{m.transitions:,} transitions ({m.trigger_transitions:,} in {m.shape.coalesced:,} coalesced "
            f"executions; formula {predicted:,}{'' if predicted == m.transitions else ' MISMATCH'}), "
            f"{m.express_requests} Express requests, {m.crawls} crawls, {m.job_runs} job runs, "
            f"{len(m.shape.runs)} working run(s) with rounds {rounds}, {m.admitted:,} of {m.files:,} files admitted"
            f"{'' if m.admitted == m.files else ' (the rest wait under incoming/: max_rounds spent)'}, "
            f"files per round {m.shape.runs}; uploads {m.upload_s} s, all done in {m.wall_s} s",
            flush=True,
        )
        measured.append(m)

    rows = [row for files in BURSTS for row in projections(files, assumptions)]
    rows += [m.counts(assumptions) for m in measured]
    print("\n## $ per burst\n")
    print(burst_table(rows, assumptions))
    print()
    print(price_notes(assumptions))
    print("\n## Standard transitions of a one-file run against the crawl's duration (dev's crawler settings)\n")
    print(crawl_sweep_table(config_for("dev").crawler))
    print("\n## MWAA or Step Functions, per month\n")
    comparison = mwaa_comparison(
        tasks=args.tasks, environment_class=args.mwaa_class, extra_workers=args.mwaa_extra_workers
    )
    print(mwaa_table(comparison))
    if args.plot:
        written = plot(args.plot, assumptions, measured)
        print(f"\nplot: {written.relative_to(REPO_ROOT) if written.is_relative_to(REPO_ROOT) else written}")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "assumptions": asdict(assumptions),
            "projections": [{**asdict(r), "usd": asdict(price(r, assumptions))} for r in rows if r.source == "formula"],
            "measured": [asdict(m) for m in measured],
            "mwaa": asdict(comparison),
        }
        args.report.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
