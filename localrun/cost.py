"""`make cost`: what a burst of N files costs, three ways, counted on local runs and priced with dated prices.

    python -m localrun.cost [--assembly cdk.out.local] [--measure 10,100,1000] [--plot docs/cost-per-burst.png]
                            [--tasks 15] [--mwaa-class mw1.small] [--mwaa-extra-workers 1]

The three designs, for a burst of N files under the incoming prefix:

(a) per object: every upload started a whole pipeline run (the design before the admission stage):
    N runs, N crawls, N job runs;
(b) inline Map: the pipeline as it is, with its admission stage an inline Map over the listing,
    one Lambda invocation per file (states inside an iteration are billed; the iteration is not);
(c) Distributed Map (the default): ItemBatcher batches of `batch_size` files, each one EXPRESS child
    workflow (one Standard transition to start it, then an Express request) invoking the admission
    Lambda once over its batch.

(b) and (c) share the trigger: EventBridge starts one pipeline execution per upload, and every
execution that finds the lease held by a running execution ends Coalesced after 8 states.

Figures come from transitions counted in local runs (a fresh LocalDeployment, N small valid CSVs
put under incoming/ with `put_landing_object`, every pipeline and stage execution waited for and
counted with the runner's helpers) and from the formula below, which the tests check against
those runs (`tests/scenarios/test_cost.py`: exact equality). Durations (crawl, job, admission
Lambda) cannot be measured on moto: they are the assumptions in `Assumptions`, printed with the
table. Prices: `localrun/pricing.py` and, for MWAA, `stacks/mwaa_facts.py`, each with its date.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrun.pricing import EXPRESS_WORKFLOWS, GLUE, LAMBDA, STEP_FUNCTIONS

if TYPE_CHECKING:
    from localrun.emulator.deployment import LocalDeployment

ROOT = Path(__file__).resolve().parent.parent
HEADER = b"order_id,customer_id,order_date,amount,currency\n"
BURSTS = (10, 1_000, 10_000)
VARIANTS = {
    "per_object": "(a) one execution per object",
    "inline_map": "(b) inline Map",
    "distributed_map": "(c) Distributed Map, batched",
}

# -- what the state machines cost in transitions (states entered; see each stage's docstring) ----
# Pipeline, once per working execution: Trigger recognised?, First round, Take lease, Release lease,
# Look at incoming after release, Files arrived during release?, Pipeline succeeded.
PIPELINE_FIXED = 7
# Per round that admitted files: Start round, Run admission stage, Proceed after admission?, Run crawl
# stage, Run transform stage, Notify round, Next round, Look at incoming, Files waiting?
PIPELINE_PER_ROUND = 9
# A round that admitted nothing skips Run crawl stage and Run transform stage.
PIPELINE_PER_EMPTY_ROUND = 7
# Files found after the release: After release: Take lease, then more rounds, and Release lease, Look
# at incoming after release, Files arrived during release? once more.
PIPELINE_RETAKE = 4
# An execution that finds the lease held: Trigger recognised?, First round, Take lease, Read lease,
# Lease still held?, Describe lease holder, Lease holder running?, Coalesced.
PIPELINE_COALESCED = 8
# Admission stage: Admit files (the map), Summarize admission, Admission done; plus one per child.
ADMISSION_FIXED = 3
# Crawl stage: Start crawler, Wait, Get crawler, Crawl finished?, Crawl succeeded; 4 per extra poll.
CRAWL_FIXED = 5
CRAWL_PER_EXTRA_POLL = 4
# Transform stage (write, audit, publish): Replay?, Run transform job, Check results, Results valid?,
# Publish run, Clear quarantine record, Results valid.
TRANSFORM_FIXED = 7
# (a): a happy run of the per-object design (3dd5706 and before, as measured then): pipeline 5
# (Trigger recognised?, Run crawl stage, Run transform stage, Notify success, Succeeded).
PER_OBJECT_PIPELINE = 5
# and its transform stage then: Run transform job, Check results, Results valid?, Results valid.
PER_OBJECT_TRANSFORM = 4
# (b): an inline Map cannot read an S3 listing (ItemReader is Distributed only): a ListObjectsV2 page
# (1,000 keys) and a "more pages?" Choice per page, then one Task state per file in each iteration.
INLINE_PER_PAGE = 2
INLINE_PAGE_SIZE = 1000
INLINE_PER_FILE = 1
# Standard execution history: 25,000 events at most. An inline iteration of one Task writes 7
# (MapIterationStarted, TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited,
# MapIterationSucceeded), so one execution's inline Map fails somewhere past ~3,500 files.
HISTORY_LIMIT_EVENTS = 25_000
INLINE_EVENTS_PER_FILE = 7


@dataclass(frozen=True, kw_only=True)
class Assumptions:
    """What the local runs cannot measure: AWS durations and sizes. Change them with what you see."""

    batch_size: int = 100  # ItemBatcher MaxItemsPerBatch (config admission.batch_size)
    crawl_seconds: float = 180  # a crawl of a few small files; billed at least 10 minutes anyway
    poll_interval_seconds: float = 30  # config crawler.poll_interval_seconds (dev, prod)
    crawler_dpus: float = 2  # what a small crawl uses; AWS reports a crawl's DPU-hours per run
    job_seconds: float = 120  # Glue 5.0 job over a few thousand rows, start-up included
    job_dpus: float = 2  # config glue_job: 2 x G.1X (1 DPU each)
    admit_seconds_per_file: float = 0.06  # HEAD, GET (streamed), copy, DELETE of one small file
    admit_overhead_seconds: float = 0.3  # per Lambda invocation (warm), and per Express child
    admission_lambda_mb: int = 512  # stacks/admission_stage.py
    check_lambda_mb: int = 256  # the check-results Lambda, once per job run
    check_lambda_seconds: float = 0.5
    first_round_files: int = 1  # a burst: round 1 lists what has landed when the first file starts it

    @property
    def polls(self) -> int:
        return max(1, math.ceil(self.crawl_seconds / self.poll_interval_seconds))


@dataclass(frozen=True, kw_only=True)
class BurstShape:
    """How a burst was (or would be) processed: the timing-dependent part of a run's cost."""

    files: int
    coalesced: int  # executions that ended Coalesced
    runs: list[list[int]]  # per working execution, files admitted per round (0: a round with none)
    retakes: int = 0  # times a run retook the lease after its release
    polls_per_crawl: list[int] = field(default_factory=list)  # empty: one poll each


@dataclass(frozen=True, kw_only=True)
class BurstCounts:
    variant: str
    files: int
    standard_transitions: int
    trigger_transitions: int  # of which: executions that only coalesced
    express_requests: int
    express_gb_seconds: float
    lambda_invocations: int
    lambda_gb_seconds: float
    crawls: int
    job_runs: int
    feasible: bool = True  # False: an inline Map over this many files exceeds one execution's history
    source: str = "formula"  # or "measured (local)"

    @property
    def run_transitions(self) -> int:
        return self.standard_transitions - self.trigger_transitions


@dataclass(frozen=True)
class Priced:
    step_functions: float
    express: float
    lambda_: float
    glue: float

    @property
    def total(self) -> float:
        return self.step_functions + self.express + self.lambda_ + self.glue


def price(counts: BurstCounts, assumptions: Assumptions) -> Priced:
    check_gb_s = counts.job_runs * assumptions.check_lambda_mb / 1024 * assumptions.check_lambda_seconds
    return Priced(
        step_functions=STEP_FUNCTIONS.standard_cost(counts.standard_transitions),
        express=EXPRESS_WORKFLOWS.cost(counts.express_requests, counts.express_gb_seconds),
        lambda_=LAMBDA.cost(counts.lambda_invocations + counts.job_runs, counts.lambda_gb_seconds + check_gb_s),
        glue=counts.crawls * GLUE.crawl_cost(assumptions.crawl_seconds, assumptions.crawler_dpus)
        + counts.job_runs * GLUE.job_cost(assumptions.job_seconds, assumptions.job_dpus),
    )


# -- the formula ---------------------------------------------------------------------------------
def nominal_shape(files: int, assumptions: Assumptions) -> BurstShape:
    """A burst on AWS: the first upload starts the run; round 1 admits what has landed by then
    (`first_round_files`), the rest lands while it crawls and transforms (minutes) and round 2 admits
    it; every other upload's execution coalesces. At most 2 crawls and 2 job runs."""
    first = min(files, assumptions.first_round_files)
    rounds = [first] + ([files - first] if files > first else [])
    return BurstShape(
        files=files, coalesced=files - 1, runs=[rounds], polls_per_crawl=[assumptions.polls] * len(rounds)
    )


def _crawl_transitions(shape: BurstShape, crawls: int) -> int:
    polls = shape.polls_per_crawl or [1] * crawls
    return sum(CRAWL_FIXED + CRAWL_PER_EXTRA_POLL * (p - 1) for p in polls)


def distributed_map(shape: BurstShape, assumptions: Assumptions) -> BurstCounts:
    """(c): the pipeline as deployed."""
    rounds = [n for run in shape.runs for n in run]
    full = [n for n in rounds if n > 0]
    batches = [math.ceil(n / assumptions.batch_size) for n in rounds]
    pipeline = sum(
        PIPELINE_FIXED + sum(PIPELINE_PER_ROUND if n else PIPELINE_PER_EMPTY_ROUND for n in run) for run in shape.runs
    )
    trigger = shape.coalesced * PIPELINE_COALESCED
    stages = (
        ADMISSION_FIXED * len(rounds)
        + sum(batches)
        + _crawl_transitions(shape, len(full))
        + TRANSFORM_FIXED * len(full)
    )
    durations = [
        assumptions.admit_overhead_seconds
        + min(assumptions.batch_size, n - i * assumptions.batch_size) * assumptions.admit_seconds_per_file
        for n, b in zip(rounds, batches, strict=True)
        for i in range(b)
    ]
    return BurstCounts(
        variant="distributed_map",
        files=shape.files,
        standard_transitions=trigger + pipeline + PIPELINE_RETAKE * shape.retakes + stages,
        trigger_transitions=trigger,
        express_requests=sum(batches),
        express_gb_seconds=sum(EXPRESS_WORKFLOWS.gb_seconds(d) for d in durations),
        lambda_invocations=sum(batches),
        lambda_gb_seconds=sum(durations) * assumptions.admission_lambda_mb / 1024,
        crawls=len(full),
        job_runs=len(full),
    )


def inline_map(shape: BurstShape, assumptions: Assumptions) -> BurstCounts:
    """(b): the same pipeline and trigger, its admission stage an inline Map with a Lambda per file."""
    batched = distributed_map(shape, assumptions)
    rounds = [n for run in shape.runs for n in run]
    pages = sum(max(1, math.ceil(n / INLINE_PAGE_SIZE)) for n in rounds)
    per_file_s = assumptions.admit_overhead_seconds + assumptions.admit_seconds_per_file
    return replace(
        batched,
        variant="inline_map",
        standard_transitions=batched.standard_transitions
        - batched.express_requests
        + INLINE_PER_PAGE * pages
        + INLINE_PER_FILE * shape.files,
        express_requests=0,
        express_gb_seconds=0.0,
        lambda_invocations=shape.files,
        lambda_gb_seconds=shape.files * per_file_s * assumptions.admission_lambda_mb / 1024,
        feasible=max(rounds, default=0) * INLINE_EVENTS_PER_FILE < HISTORY_LIMIT_EVENTS,
    )


def per_object(files: int, assumptions: Assumptions) -> BurstCounts:
    """(a): every upload a whole run, crawl and job each (uncontended: a lower bound; on AWS the runs
    collide on the one crawler and the job's MaxConcurrentRuns, and every refused start retries)."""
    run = PER_OBJECT_PIPELINE + CRAWL_FIXED + CRAWL_PER_EXTRA_POLL * (assumptions.polls - 1) + PER_OBJECT_TRANSFORM
    return BurstCounts(
        variant="per_object",
        files=files,
        standard_transitions=files * run,
        trigger_transitions=0,
        express_requests=0,
        express_gb_seconds=0.0,
        lambda_invocations=0,
        lambda_gb_seconds=0.0,
        crawls=files,
        job_runs=files,
    )


def projections(files: int, assumptions: Assumptions) -> list[BurstCounts]:
    shape = nominal_shape(files, assumptions)
    return [per_object(files, assumptions), inline_map(shape, assumptions), distributed_map(shape, assumptions)]


# -- measured: a burst on a fresh local deployment ------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Measured:
    files: int
    batch_size: int
    shape: BurstShape
    transitions: int  # every pipeline and stage execution, as the runner counts them
    trigger_transitions: int
    express_requests: int
    crawls: int
    job_runs: int
    statuses: dict[str, int]
    upload_s: float
    wall_s: float

    @property
    def admitted(self) -> int:
        """Files a round listed (admitted or quarantined); the rest are still under incoming/."""
        return sum(n for run in self.shape.runs for n in run)

    def counts(self, assumptions: Assumptions | None = None) -> BurstCounts:
        """The counts of this run; GB-seconds (not measurable on moto) from the formula for its shape."""
        estimate = distributed_map(self.shape, replace(assumptions or Assumptions(), batch_size=self.batch_size))
        return BurstCounts(
            variant="distributed_map",
            files=self.files,
            standard_transitions=self.transitions,
            trigger_transitions=self.trigger_transitions,
            express_requests=self.express_requests,
            express_gb_seconds=estimate.express_gb_seconds,
            lambda_invocations=self.express_requests,
            lambda_gb_seconds=estimate.lambda_gb_seconds,
            crawls=self.crawls,
            job_runs=self.job_runs,
            source="measured (local)",
        )


def small_csv(index: int) -> bytes:
    """One valid row with an order id of its own (the job drops duplicate order ids)."""
    return HEADER + f"SO-B-{index:06d},CUST-{index % 10_000:05d},2026-11-24,{10 + index % 90}.50,EUR\n".encode()


def assembly_batch_size(deployment: LocalDeployment) -> int:
    """MaxItemsPerBatch of the admission stage's Distributed Map, as synthesized."""
    machine = next(
        m
        for logical_id, m in deployment.assembly.stack_ending("-Pipeline")
        .resources("AWS::StepFunctions::StateMachine")
        .items()
        if logical_id.startswith("AdmissionStage")
    )
    found = _find_key(machine["Properties"]["DefinitionString"], "MaxItemsPerBatch")
    if found is None:
        raise ValueError("the admission stage's definition has no MaxItemsPerBatch")
    return int(found)


def _find_key(value: Any, key: str) -> Any:
    """The first `"key": value` in a definition (a JSON string, or Fn::Join parts of one)."""
    if isinstance(value, str):
        marker = f'"{key}":'
        if marker in value:
            return int(value.split(marker, 1)[1].split(",")[0].split("}")[0].strip())
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if (found := _find_key(item, key)) is not None:
                return found
    return None


def measure_burst(
    assembly: Path, files: int, *, on_progress: Callable[[str], None] | None = None, timeout_s: float = 900
) -> Measured:
    """Bring a fresh deployment up, put `files` small CSVs under incoming/, wait, count."""
    from localrun.emulator.deployment import LocalDeployment, local_aws

    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    with local_aws():
        deployment = LocalDeployment.bring_up(assembly)
        try:
            return measure_on(deployment, files, on_progress=on_progress, timeout_s=timeout_s)
        finally:
            deployment.stop_running()


def measure_on(
    deployment: LocalDeployment,
    files: int,
    *,
    on_progress: Callable[[str], None] | None = None,
    timeout_s: float = 900,
) -> Measured:
    """A burst on a deployment that is up and has run nothing yet (every execution is counted)."""
    from localrun.runner import describe_execution as describe

    started = time.monotonic()
    arns: list[str] = []
    for index in range(files):
        arns += deployment.put_landing_object(
            f"{deployment.incoming_prefix}burst/part-{index:05d}.csv", small_csv(index)
        )
        if on_progress and (index + 1) % 250 == 0:
            on_progress(f"{index + 1:,} of {files:,} files put ({time.monotonic() - started:.0f} s)")
    uploaded = time.monotonic()
    for arn in arns:  # all of them, so that no stage execution is still to come
        deployment.wait(arn, timeout_s=max(1.0, timeout_s - (time.monotonic() - started)))
    pipeline = [describe(deployment, arn) for arn in arns]
    stages = {stage: _all_executions(deployment, stage) for stage in ("admission", "crawl", "transform")}
    described = {stage: [describe(deployment, e["executionArn"]) for e in found] for stage, found in stages.items()}
    sfn = deployment.clients["stepfunctions"]
    admitted: dict[str, int] = {}
    for execution in stages["admission"]:
        output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"]).get("output") or "{}")
        admitted[output.get("run", execution["name"])] = int(output.get("admitted", 0)) + int(
            output.get("quarantined", 0)
        )
    working = [r for r in pipeline if "Coalesced" not in r["path"]]
    runs = []
    for run in working:
        # Round names are <execution name>-r<round> (stacks/pipeline_workflow.py, Start round).
        rounds = sorted(
            (name for name in admitted if name.startswith(run["name"] + "-r")), key=lambda n: int(n.rsplit("-r", 1)[1])
        )
        runs.append([admitted[name] for name in rounds])
    polls = [d["path"].count("Get crawler") for d in described["crawl"]]
    statuses: dict[str, int] = {}
    for run in pipeline:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    coalesced = [r for r in pipeline if "Coalesced" in r["path"]]
    return Measured(
        files=files,
        batch_size=assembly_batch_size(deployment),
        shape=BurstShape(
            files=files,
            coalesced=len(coalesced),
            runs=runs,
            retakes=sum(r["path"].count("After release: Take lease") for r in working),
            polls_per_crawl=polls,
        ),
        transitions=sum(r["transitions"] for r in pipeline)
        + sum(d["transitions"] for ds in described.values() for d in ds),
        trigger_transitions=sum(r["transitions"] for r in coalesced),
        express_requests=sum(d["express_requests"] for ds in described.values() for d in ds),
        crawls=len(described["crawl"]),
        job_runs=len(described["transform"]),
        statuses=statuses,
        upload_s=round(uploaded - started, 1),
        wall_s=round(time.monotonic() - started, 1),
    )


def _measured_from(item: dict[str, Any]) -> Measured:
    return Measured(**{**item, "shape": BurstShape(**item["shape"])})


def _all_executions(deployment: LocalDeployment, stage: str) -> list[dict[str, Any]]:
    sfn, found, token = deployment.clients["stepfunctions"], [], None
    while True:
        page = sfn.list_executions(
            stateMachineArn=deployment.state_machines[stage], maxResults=1000, **({"nextToken": token} if token else {})
        )
        found += page["executions"]
        token = page.get("nextToken")
        if not token:
            return found


# -- MWAA or Step Functions, by the month --------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MwaaComparison:
    environment_class: str
    extra_workers: float
    environment_usd_per_month: float
    confirmed: bool
    tasks: int
    transitions_per_run: int
    usd_per_run: float
    break_even_runs_per_month: float
    schedules: list[tuple[str, float, float, float]]  # name, runs/month, Step Functions $/month, saving $/month


SCHEDULES = (
    ("daily", 730 / 24),
    ("hourly", 730.0),
    ("every 15 minutes", 730.0 * 4),
    ("every 5 minutes", 730.0 * 12),
    ("every minute", 730.0 * 60),
)


def mwaa_comparison(
    *, tasks: int = 15, environment_class: str = "mw1.small", extra_workers: float = 1.0, overhead_states: int = 3
) -> MwaaComparison:
    """A DAG of `tasks` tasks run by one state machine: one Task state per task (`.sync` waits are
    not billed as transitions) plus `overhead_states` (a start Choice, a notify, the end). The
    environment is what the DAG alone keeps running: MWAA_PRICES, class plus extra workers."""
    from stacks.mwaa_facts import MWAA_PRICES

    environment = MWAA_PRICES.environment_per_month(environment_class, extra_workers=extra_workers)
    transitions = tasks + overhead_states
    per_run = STEP_FUNCTIONS.standard_cost(transitions)
    return MwaaComparison(
        environment_class=environment_class,
        extra_workers=extra_workers,
        environment_usd_per_month=environment,
        confirmed=environment_class in MWAA_PRICES.confirmed,
        tasks=tasks,
        transitions_per_run=transitions,
        usd_per_run=per_run,
        break_even_runs_per_month=environment / per_run,
        schedules=[(name, runs, runs * per_run, environment - runs * per_run) for name, runs in SCHEDULES],
    )


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
        f"(round 1: {assumptions.first_round_files} file)."
    )


def plot(path: Path, assumptions: Assumptions, measured: Sequence[Measured] = ()) -> Path:
    """Two panels, log-log: everything (Glue dominates), and orchestration alone (Step Functions,
    Express, Lambda), where the designs and the per-upload trigger executions differ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({round(10 ** (k / 8)) for k in range(0, 33)})  # 1 .. 10,000, 8 points a decade
    colors = {"per_object": "#c62828", "inline_map": "#ef6c00", "distributed_map": "#2e7d32"}
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
            for row in [distributed_map(nominal_shape(n, assumptions), assumptions)]
        ]
        axes.plot(
            *zip(*runs_alone, strict=True),
            "--",
            color=colors["distributed_map"],
            label="(c) without the coalesced trigger executions",
        )
        for m in measured:
            axes.plot([m.files], [measure(price(m.counts(assumptions), assumptions))], "o", color="#1b5e20")
        if measured:
            axes.plot([], [], "o", color="#1b5e20", label="(c) measured locally (10, 100, 1,000 files)")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("files in the burst")
        axes.set_ylabel("$ per burst")
        axes.set_title(label, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="upper left", fontsize=7)
    figure.suptitle(f"Cost of a burst of files, three designs (us-east-1 prices of {STEP_FUNCTIONS.as_of}, make cost)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    parser.add_argument("--measure", default="10,100,1000", help="burst sizes to run locally ('' for none)")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "cost-per-burst.png")
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "cost.json")
    parser.add_argument(
        "--reuse-measured", type=Path, help="take the local bursts from an earlier --report instead of running them"
    )
    parser.add_argument("--tasks", type=int, default=15, help="tasks of the DAG compared with MWAA")
    parser.add_argument("--mwaa-class", default="mw1.small")
    parser.add_argument("--mwaa-extra-workers", type=float, default=1.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.measure.split(",") if s.strip()]
    assumptions = Assumptions()

    measured: list[Measured] = []
    if args.reuse_measured:
        measured = [_measured_from(item) for item in json.loads(args.reuse_measured.read_text())["measured"]]
        sizes = []
    if sizes:
        from localrun.emulator.assembly import RESYNTHESIZE, newer_sources

        if not (args.assembly / "manifest.json").exists():
            print(f"error: no cloud assembly at {args.assembly}: {RESYNTHESIZE}", file=sys.stderr)
            return 2
        if stale := newer_sources(args.assembly):
            print(f"error: {args.assembly} is older than {stale[0].relative_to(ROOT)}: {RESYNTHESIZE}", file=sys.stderr)
            return 2
    for files in sizes:
        print(f"▶ burst of {files:,} files on a fresh local deployment", flush=True)
        m = measure_burst(args.assembly, files, on_progress=lambda line: print(f"  {line}", flush=True))
        predicted = distributed_map(m.shape, replace(assumptions, batch_size=m.batch_size)).standard_transitions
        rounds = [len(r) for r in m.shape.runs]
        print(
            f"  {m.transitions:,} transitions ({m.trigger_transitions:,} in {m.shape.coalesced:,} coalesced "
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
    print("\n## MWAA or Step Functions, per month\n")
    comparison = mwaa_comparison(
        tasks=args.tasks, environment_class=args.mwaa_class, extra_workers=args.mwaa_extra_workers
    )
    print(mwaa_table(comparison))
    if args.plot:
        written = plot(args.plot, assumptions, measured)
        print(f"\nplot: {written.relative_to(ROOT) if written.is_relative_to(ROOT) else written}")
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
