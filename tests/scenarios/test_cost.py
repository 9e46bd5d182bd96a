"""`make cost`'s formula against transitions counted in local bursts (slow tier: each test puts
N files on a fresh local deployment and waits for every execution; `make cost` runs 1,000)."""

from __future__ import annotations

import math

import pytest

from localrun.emulator.deployment import LocalDeployment
from ops.cost_measured import measure_on
from ops.cost_model import PIPELINE_COALESCED, Assumptions, distributed_map
from stacks.config.stages import config_for


@pytest.mark.parametrize("files", [20, 100])
def test_formula_matches_a_local_burst(deployment: LocalDeployment, files: int) -> None:
    measured = measure_on(deployment, files, timeout_s=600)
    shape = measured.shape
    # Every upload ran the front door; the pipelines it started are the working runs plus the few
    # that read the lease before the first run took it (those coalesced), all SUCCEEDED.
    assert measured.door_executions == shape.doors == files
    assert measured.statuses == {"SUCCEEDED": len(shape.runs) + shape.coalesced}, measured
    assert measured.batch_size == config_for("local").admission.batch_size
    # Every file admitted exactly once, by rounds of working runs; nothing left under incoming/.
    assert sum(n for run in shape.runs for n in run) == files
    assert measured.left_incoming == 0
    # Exact equality: the formula is the state machines' structure, the shape is what timing decided.
    predicted = distributed_map(shape, Assumptions(batch_size=measured.batch_size))
    assert predicted.standard_transitions == measured.transitions
    assert measured.trigger_transitions == PIPELINE_COALESCED * shape.coalesced == predicted.trigger_transitions
    # The crawl stage is woken by the end event: one look at the crawler per crawl, 5 transitions.
    assert all(looks == 1 for looks in shape.polls_per_crawl), shape.polls_per_crawl
    full_rounds = sum(1 for run in shape.runs for n in run if n)
    assert measured.crawls == measured.job_runs == measured.callback_executions == full_rounds
    assert measured.crawls <= sum(len(run) for run in shape.runs)
    batches = sum(math.ceil(n / measured.batch_size) for run in shape.runs for n in run)
    assert measured.express_requests == predicted.express_requests == batches + files + measured.crawls
    assert all(len(run) <= config_for("local").admission.max_rounds for run in shape.runs)
