"""EventBridge delivery failures: an event that cannot start the pipeline is parked, not lost."""

from __future__ import annotations

from localrun.deployment import LocalDeployment
from localrun.runner import SCENARIOS, run_scenario


def test_undeliverable_event_goes_to_the_dead_letter_queue(deployment: LocalDeployment) -> None:
    report = run_scenario(deployment, SCENARIOS["target_unavailable"])
    assert report["as_expected"], report
    [letter] = report["dead_letters"]
    assert letter["ERROR_CODE"] == "StateMachineDoesNotExist"
    assert letter["TARGET_ARN"] == deployment.state_machines["pipeline"]
    assert letter["RULE_ARN"].startswith("rule/") and "ObjectCreated" in letter["RULE_ARN"]
    # The parked event is the original, so it can be replayed as is.
    assert letter["event"]["detail"]["object"]["key"] == f"{deployment.landing_prefix}orders/2026-11-24/orders.csv"
    assert report["pipeline_runs"] == [] and report["notifications"] == []


def test_delivered_events_leave_the_dead_letter_queue_empty(deployment: LocalDeployment) -> None:
    report = run_scenario(deployment, SCENARIOS["happy_path"])
    assert report["statuses"] == ["SUCCEEDED"] and report["dead_letters"] == []
