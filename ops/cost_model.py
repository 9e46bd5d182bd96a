"""The cost formula: transitions, Lambda and Glue time of a burst of N files, four ways, priced.

What each state machine costs in transitions (states entered), the assumptions moto cannot measure
(durations), the formula per design, and MWAA against Step Functions by the month. ops/cost.py
prints and plots it; ops/cost_measured.py counts the same on local runs (the tests compare them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ops.pricing import EXPRESS_WORKFLOWS, GLUE, LAMBDA, STEP_FUNCTIONS
from stacks.config.settings import CrawlerConfig

BURSTS = (10, 1_000, 10_000)
VARIANTS = {
    "per_object": "(a) one execution per object",
    "inline_map": "(b) inline Map",
    "before_door": "(c) Distributed Map, before the front door",
    "distributed_map": "(d) Distributed Map behind the front door",
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
# Rounds spent with files still waiting: Continue in a new execution (which is then a working run).
PIPELINE_CONTINUATION = 1
# An execution that finds the lease held: Trigger recognised?, First round, Take lease, Read lease,
# Lease still held?, Describe lease holder, Lease holder running?, Coalesced.
PIPELINE_COALESCED = 8
# Admission stage: Admit files (the map), Summarize admission, Admission done; plus one per child.
ADMISSION_FIXED = 3
# Crawl stage woken by the crawler's end event (stacks/pipeline/stages/crawl_stage.py): Start crawler,
# Wait for crawl end, Get crawler, Crawl finished?, Crawl succeeded, however long the crawl runs.
# The poll loop it replaced (before the front door) had the same 5 for one poll and 4 per extra poll.
CRAWL_FIXED = 5
CRAWL_PER_EXTRA_POLL = 4
# Behind the door, each further look at the crawler (woken before READY, or a wait that timed out):
# Count wait, Woken by an end event?, a wait (Settle or Wait for crawl end), Get crawler, Crawl finished?.
CRAWL_PER_EXTRA_LOOK = 5
# The front door (stacks/pipeline/front_door.py) and the crawl callback (crawl_callback.py) are
# EXPRESS: one request per upload and one per crawl, billed by duration, never per transition.
DOOR_PER_UPLOAD = 1
CALLBACK_PER_CRAWL = 1
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
    event_wait_seconds: float = 300  # behind the door: x config crawler.event_wait_polls, one wait for the end event
    crawler_dpus: float = 2  # what a small crawl uses; AWS reports a crawl's DPU-hours per run
    job_seconds: float = 120  # Glue 5.0 job over a few thousand rows, start-up included
    job_dpus: float = 2  # config glue_job: 2 x G.1X (1 DPU each)
    admit_seconds_per_file: float = 0.06  # HEAD, GET (streamed), copy, DELETE of one small file
    admit_overhead_seconds: float = 0.3  # per Lambda invocation (warm), and per Express child
    admission_lambda_mb: int = 512  # stacks/pipeline/stages/admission_stage.py
    check_lambda_mb: int = 256  # the check-results Lambda, once per job run
    check_lambda_seconds: float = 0.5
    first_round_files: int = 1  # a burst: round 1 lists what has landed when the first file starts it
    door_seconds: float = 0.1  # a front door: 3 to 6 states (GetItem, DescribeExecution, a LIST)
    callback_seconds: float = 0.1  # a crawl-callback execution: a GetItem and a SendTaskSuccess
    raced_pipelines: int = 0  # pipelines doors start before the first takes the lease (local: a few)

    @property
    def polls(self) -> int:
        """Looks at the crawler when the crawl stage polls it (before the door)."""
        return max(1, math.ceil(self.crawl_seconds / self.poll_interval_seconds))

    @property
    def looks(self) -> int:
        """Looks at the crawler when the end event wakes the stage: one more per wait the crawl outlasts."""
        return max(1, math.ceil(self.crawl_seconds / self.event_wait_seconds))


@dataclass(frozen=True, kw_only=True)
class BurstShape:
    """How a burst was (or would be) processed: the timing-dependent part of a run's cost."""

    files: int
    coalesced: int  # Standard executions that ended Coalesced
    runs: list[list[int]]  # per working execution, files admitted per round (0: a round with none)
    retakes: int = 0  # times a run retook the lease after its release
    polls_per_crawl: list[int] = field(default_factory=list)  # the poll loop (before the door); empty: one each
    doors: int = 0  # front-door executions (one per upload); 0: the design before the door
    continuations: int = 0  # runs that handed over to a fresh execution (rounds spent, files waiting)


@dataclass(frozen=True, kw_only=True)
class BurstCounts:
    variant: str
    files: int
    standard_transitions: int
    trigger_transitions: int  # of which: Standard executions that only coalesced
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
def _two_rounds(files: int, assumptions: Assumptions) -> list[int]:
    """Round 1 admits what has landed when the run starts (`first_round_files`); the rest lands
    while it crawls and transforms (minutes) and round 2 admits it. At most 2 crawls and 2 job runs."""
    first = min(files, assumptions.first_round_files)
    return [first] + ([files - first] if files > first else [])


def nominal_shape(files: int, assumptions: Assumptions) -> BurstShape:
    """A burst on AWS behind the front door: every upload's door runs; the first starts the pipeline,
    the doors of the rest find the lease held and end there, except `raced_pipelines` that read the
    lease before the first run took it (those pipelines coalesce, 8 transitions each)."""
    rounds = _two_rounds(files, assumptions)
    return BurstShape(
        files=files,
        coalesced=min(files - 1, assumptions.raced_pipelines),
        runs=[rounds],
        polls_per_crawl=[assumptions.looks] * len(rounds),
        doors=files * DOOR_PER_UPLOAD,
    )


def before_door_shape(files: int, assumptions: Assumptions) -> BurstShape:
    """The same burst before the front door: every upload started a Standard execution (all but the
    first coalesced) and the crawl stage polled the crawler every `poll_interval_seconds`."""
    rounds = _two_rounds(files, assumptions)
    return BurstShape(
        files=files, coalesced=files - 1, runs=[rounds], polls_per_crawl=[assumptions.polls] * len(rounds)
    )


def _crawl_transitions(shape: BurstShape, crawls: int) -> int:
    polls = shape.polls_per_crawl or [1] * crawls
    per_extra = CRAWL_PER_EXTRA_LOOK if shape.doors else CRAWL_PER_EXTRA_POLL
    return sum(CRAWL_FIXED + per_extra * (p - 1) for p in polls)


def distributed_map(shape: BurstShape, assumptions: Assumptions) -> BurstCounts:
    """(d): the pipeline as deployed, behind the front door (`shape.doors` > 0); (c) without it.
    Standard: the working runs and their stages, plus 8 per coalesced execution; Express: the
    admission batches, one door per upload and one crawl callback per crawl (behind the door)."""
    rounds = [n for run in shape.runs for n in run]
    full = [n for n in rounds if n > 0]
    batches = [math.ceil(n / assumptions.batch_size) for n in rounds]
    pipeline = sum(
        PIPELINE_FIXED + sum(PIPELINE_PER_ROUND if n else PIPELINE_PER_EMPTY_ROUND for n in run) for run in shape.runs
    )
    pipeline += PIPELINE_CONTINUATION * shape.continuations
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
    callbacks = CALLBACK_PER_CRAWL * len(full) if shape.doors else 0
    express_seconds = [
        *durations,
        *[assumptions.door_seconds] * shape.doors,
        *[assumptions.callback_seconds] * callbacks,
    ]
    return BurstCounts(
        variant="distributed_map" if shape.doors else "before_door",
        files=shape.files,
        standard_transitions=trigger + pipeline + PIPELINE_RETAKE * shape.retakes + stages,
        trigger_transitions=trigger,
        express_requests=sum(batches) + shape.doors + callbacks,
        express_gb_seconds=sum(EXPRESS_WORKFLOWS.gb_seconds(d) for d in express_seconds),
        lambda_invocations=sum(batches),
        lambda_gb_seconds=sum(durations) * assumptions.admission_lambda_mb / 1024,
        crawls=len(full),
        job_runs=len(full),
    )


def inline_map(shape: BurstShape, assumptions: Assumptions) -> BurstCounts:
    """(b): the pipeline before the door, its admission stage an inline Map with a Lambda per file."""
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
    """One row per design of VARIANTS, in its order."""
    before = before_door_shape(files, assumptions)
    return [
        per_object(files, assumptions),
        inline_map(before, assumptions),
        distributed_map(before, assumptions),
        distributed_map(nominal_shape(files, assumptions), assumptions),
    ]


# -- transitions per run against the crawl's duration -------------------------------------------
CRAWL_SWEEP_MINUTES = (1, 10, 60)


@dataclass(frozen=True, kw_only=True)
class CrawlSweepRow:
    minutes: float
    polled: int  # a one-file run before the door: the crawl stage polls every poll interval
    woken: int  # as deployed: woken by the end event, one more look per event wait the crawl outlasts
    woken_one_wait: int  # with event_wait_polls = max_polls: one wait as long as the stage's bound
    within_bound: bool  # the crawl ends within max_polls x poll interval (else CrawlerTimedOut)


def crawl_sweep(
    crawler: CrawlerConfig, minutes: tuple[float, ...] = CRAWL_SWEEP_MINUTES, assumptions: Assumptions | None = None
) -> list[CrawlSweepRow]:
    """Standard transitions of a one-file run (one round) for crawls of `minutes`, with `crawler`'s
    interval, event wait and bound; rows past the bound are priced as if max_polls were raised."""
    base = replace(
        assumptions or Assumptions(),
        poll_interval_seconds=crawler.poll_interval_seconds,
        event_wait_seconds=crawler.poll_interval_seconds * min(crawler.event_wait_polls, crawler.max_polls),
    )
    bound = crawler.poll_interval_seconds * crawler.max_polls
    rows = []
    for m in minutes:
        a = replace(base, crawl_seconds=m * 60)
        one_wait = replace(a, event_wait_seconds=max(a.crawl_seconds, bound))
        rows.append(
            CrawlSweepRow(
                minutes=m,
                polled=distributed_map(before_door_shape(1, a), a).standard_transitions,
                woken=distributed_map(nominal_shape(1, a), a).standard_transitions,
                woken_one_wait=distributed_map(nominal_shape(1, one_wait), one_wait).standard_transitions,
                within_bound=m * 60 <= bound,
            )
        )
    return rows


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
    from stacks.config.mwaa_facts import MWAA_PRICES

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
