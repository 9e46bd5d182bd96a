"""`make cost`'s formula against transitions counted in local bursts (slow tier: each test puts
N files on a fresh local deployment and waits for every execution; `make cost` runs 1,000)."""

from __future__ import annotations

import math

import pytest

from localrun.emulator.deployment import LocalDeployment
from ops.cost_measured import measure_on
from ops.cost_model import Assumptions, distributed_map
from stacks.config.stages import config_for


@pytest.mark.parametrize("files", [20, 100])
def test_formula_matches_a_local_burst(deployment: LocalDeployment, files: int) -> None:
    measured = measure_on(deployment, files, timeout_s=600)
    assert measured.statuses == {"SUCCEEDED": files}, measured
    assert measured.batch_size == config_for("local").admission.batch_size
    shape = measured.shape
    # Every file admitted exactly once, by rounds of working runs; every other execution coalesced.
    assert sum(n for run in shape.runs for n in run) == files
    assert shape.coalesced + len(shape.runs) == files
    # Exact equality: the formula is the state machines' structure, the shape is what timing decided.
    predicted = distributed_map(shape, Assumptions(batch_size=measured.batch_size))
    assert predicted.standard_transitions == measured.transitions
    assert predicted.trigger_transitions == measured.trigger_transitions
    assert measured.express_requests == sum(math.ceil(n / measured.batch_size) for run in shape.runs for n in run)
    assert measured.crawls == measured.job_runs == sum(1 for run in shape.runs for n in run if n)
    assert all(len(run) <= config_for("local").admission.max_rounds for run in shape.runs)
