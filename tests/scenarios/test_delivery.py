"""EventBridge delivery failures: an event that cannot start the pipeline is parked, not lost."""

from __future__ import annotations

import re

from localrun.emulator.deployment import LocalDeployment
from localrun.runner import run_scenario
from localrun.scenarios.catalogue import SCENARIOS

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_undeliverable_event_goes_to_the_dead_letter_queue(deployment: LocalDeployment) -> None:
    report = run_scenario(deployment, SCENARIOS["target_unavailable"])
    assert report["as_expected"], report
    [letter] = report["dead_letters"]
    # Parked by the front door (stacks/front_door.py), which could not start the pipeline.
    assert "StateMachineDoesNotExist" in letter["ERROR_CODE"]
    assert letter["TARGET_ARN"] == deployment.state_machines["pipeline"]
    # The parked event is the original, so it can be replayed as is.
    assert letter["event"]["detail"]["object"]["key"] == f"{deployment.incoming_prefix}orders/2026-11-24/orders.csv"
    assert report["pipeline_runs"] == [] and report["notifications"] == []


def test_delivered_events_leave_the_dead_letter_queue_empty(deployment: LocalDeployment) -> None:
    report = run_scenario(deployment, SCENARIOS["happy_path"])
    assert report["statuses"] == ["SUCCEEDED"] and report["dead_letters"] == []


def test_executions_are_named_as_eventbridge_names_them(deployment: LocalDeployment) -> None:
    """`<event id>_<uuid>`, 73 characters: the stage executions still start (AWS allows 80)."""
    report = run_scenario(deployment, SCENARIOS["duplicate_event"])
    assert report["as_expected"], report["statuses"]
    names = [run["name"] for run in report["pipeline_runs"]]  # the front door passes its own name on
    assert {len(name) for name in names} == {73} and len(set(names)) == len(names)
    for name in names:  # the event's id (the duplicate's ends in "dup1"), then a fresh uuid
        assert re.fullmatch(rf"[0-9a-z-]{{36}}_{UUID}", name), name
    # One round ran (the second event coalesced, at the door or in the pipeline): its stages, names within 80.
    assert len(report["stage_runs"]) == 3 and all(len(run["name"]) <= 80 for run in report["stage_runs"])
