"""Issue 18's target on a burst of 1,000 uploads, counted locally (slow tier, about two minutes).

Every object lands, then the 1,000 Object Created events arrive one by one (S3 sends them after the
writes): each runs the front door. The transitions are counted from the executions' histories and
held to `make cost`'s formula exactly, and to the target: at most 300 Standard transitions, at most
2 crawls and 2 job runs, no failure notice, nothing left under incoming/.
"""

from __future__ import annotations

from localrun.emulator.deployment import LocalDeployment
from ops.cost_measured import measure_on
from ops.cost_model import PIPELINE_COALESCED, Assumptions, distributed_map

FILES = 1_000


def test_a_burst_of_1000_uploads_meets_the_target_and_the_formula(deployment: LocalDeployment) -> None:
    measured = measure_on(deployment, FILES, at_once=True, timeout_s=900)
    shape = measured.shape
    predicted = distributed_map(shape, Assumptions(batch_size=measured.batch_size))
    assert predicted.standard_transitions == measured.transitions, measured
    assert measured.trigger_transitions == PIPELINE_COALESCED * shape.coalesced
    assert measured.door_executions == FILES and measured.left_incoming == 0
    assert sum(n for run in shape.runs for n in run) == FILES  # every file admitted, once
    assert measured.statuses == {"SUCCEEDED": len(shape.runs) + shape.coalesced}, measured.statuses
    assert measured.transitions <= 300, measured.transitions
    assert measured.crawls <= 2 and measured.job_runs <= 2, (measured.crawls, measured.job_runs)
    notices = deployment.notifications()
    assert notices and all(n["subject"] == "Pipeline SUCCEEDED" for n in notices), notices
