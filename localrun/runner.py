"""Run a scenario (localrun/scenarios/) on a local deployment, observe it and report it.

A run report (JSON) holds, per execution, the states entered in order, the billed state
transitions (states entered plus retries, as AWS bills Standard workflows), the duration and
the notifications sent. The demo prints it; the scenario tests assert on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from localrun.emulator import permissions
from localrun.emulator.deployment import LocalDeployment
from localrun.scenarios.scenario import STOPPED_IN_ANY_STAGE, Scenario
from ops.pricing import STEP_FUNCTIONS
from stacks import pipeline_contract as contract


def billed_transitions(history: list[dict[str, Any]]) -> int:
    """States entered, plus one per retry attempt (AWS bills retries as transitions)."""
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    scheduled = sum(1 for e in history if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
    task_states = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return entered + max(0, scheduled - task_states)


def path_of(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def child_workflows(deployment: LocalDeployment, history: list[dict[str, Any]]) -> int:
    """Child workflows the execution's Distributed Maps started (one billed transition each on
    AWS; Express children are billed as requests, not transitions)."""
    sfn, total = deployment.clients["stepfunctions"], 0
    for event in history:
        if event["type"] == "MapRunStarted":
            map_run = sfn.describe_map_run(mapRunArn=event["mapRunStartedEventDetails"]["mapRunArn"])
            total += map_run["executionCounts"]["total"]
    return total


def describe_execution(deployment: LocalDeployment, arn: str) -> dict[str, Any]:
    execution = deployment.wait(arn)
    history = deployment.history(arn)
    children = child_workflows(deployment, history)
    failures = [e.get("taskFailedEventDetails") for e in history if e["type"] == "TaskFailed"]
    duration = (execution.get("stopDate") or execution["startDate"]) - execution["startDate"]
    return {
        "name": execution["name"],
        "status": execution["status"],
        "error": execution.get("error"),
        "cause": execution.get("cause"),
        "path": path_of(history),
        "transitions": billed_transitions(history) + children,
        "express_requests": children,
        "task_failures": [{"error": f.get("error"), "cause": (f.get("cause") or "")[:300]} for f in failures if f],
        "duration_s": round(duration.total_seconds(), 3),
    }


def run_scenario(
    deployment: LocalDeployment, scenario: Scenario, on_event: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run one scenario on a fresh deployment; returns the run report."""
    for name, value in scenario.faults.items():
        setattr(deployment.faults, name, value)
    started_at = time.monotonic()
    pipeline_arns = _with_continuations(deployment, scenario.act(deployment))
    if on_event:
        _follow(deployment, pipeline_arns, on_event)
    runs = [describe_execution(deployment, arn) for arn in pipeline_arns]
    stages: list[dict[str, Any]] = []
    for stage in contract.STAGES:
        for execution in deployment.executions(stage):
            stages.append({"stage": stage, **describe_execution(deployment, execution["executionArn"])})
    notifications = deployment.notifications()
    dead_letters = deployment.dead_letters()
    policies = permissions.policies()  # what the run's callers were refused (a grant missing)
    access_denied = list(policies.denied) if policies else []
    transitions = sum(r["transitions"] for r in runs) + sum(s["transitions"] for s in stages)
    report = {
        "scenario": scenario.name,
        "description": scenario.description,
        "statuses": [r["status"] for r in runs],
        "pipeline_runs": runs,
        "stage_runs": stages,
        "notifications": notifications,
        "dead_letters": dead_letters,
        "access_denied": access_denied,
        "transitions": transitions,
        "cost_usd": round(STEP_FUNCTIONS.standard_cost(transitions), 8),
        "price": {
            "as_of": STEP_FUNCTIONS.as_of,
            "region": STEP_FUNCTIONS.region,
            "usd_per_1000_standard_transitions": STEP_FUNCTIONS.usd_per_1000_standard_transitions,
        },
        "wall_time_s": round(time.monotonic() - started_at, 3),
    }
    unsuccessful = ("FAILED", "TIMED_OUT", "ABORTED")
    failed_stages = [n["message"].get("stage") for n in notifications if n["message"].get("status") in unsuccessful]
    report["problems"] = scenario.check(deployment, report) if scenario.check else []
    report["as_expected"] = (
        not report["problems"]
        and (
            bool(report["statuses"]) and set(report["statuses"]) == {scenario.expected_statuses[0]}
            if scenario.any_number_of_runs
            else tuple(report["statuses"]) == scenario.expected_statuses
        )
        and (
            len(failed_stages) == 1
            if scenario.expected_failed_stage == STOPPED_IN_ANY_STAGE
            else failed_stages == ([scenario.expected_failed_stage] if scenario.expected_failed_stage else [])
        )
        and len(dead_letters) == scenario.expected_dead_letters
    )
    return report


def _with_continuations(deployment: LocalDeployment, pipeline_arns: list[str]) -> list[str]:
    """The scenario's pipeline executions and the continuations they started, each ended.

    A run whose rounds are spent with files waiting starts a fresh execution of itself
    (`<MD5 of its name>-next`, stacks/pipeline/pipeline_workflow.py); no door started it, so the
    scenario's own list misses it, and the data checks must wait for it too."""
    arns = list(pipeline_arns)

    def continuations() -> list[str]:
        try:
            listed = deployment.executions(contract.PIPELINE)
        except ClientError:  # the undeliverable-event scenario deletes the pipeline machine
            return []
        return [e["executionArn"] for e in listed if e["name"].endswith("-next") and e["executionArn"] not in arns]

    while more := continuations():
        for arn in more:
            deployment.wait(arn, timeout_s=600)
        arns += more
    return arns


def _follow(
    deployment: LocalDeployment, pipeline_arns: list[str], on_event: Callable[[str], None], *, timeout_s: float = 300
) -> None:
    """Print each state as it is entered, across the pipeline and its stage executions."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    sfn = deployment.clients["stepfunctions"]

    def executions() -> list[tuple[str, str]]:
        found = [(contract.PIPELINE, arn) for arn in pipeline_arns]
        for stage in contract.STAGES:
            found += [(stage, e["executionArn"]) for e in deployment.executions(stage)]
        return found

    while True:
        running = False
        # One poll's new events from every execution, printed in the order they happened: a stage
        # that ends and the pipeline that goes on within one poll would otherwise print the pipeline's
        # next states before the stage's last ones (executions are read one after another).
        entered: list[tuple[Any, int, str]] = []
        for label, arn in executions():
            history = deployment.history(arn)
            for event in history[seen.get(arn, 0) :]:
                line = _event_line(label, event)
                if line is not None:
                    entered.append((event["timestamp"], len(entered), line))
            seen[arn] = len(history)
            running |= sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        for _, _, line in sorted(entered):
            on_event(line)
        if not running:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions still running after {timeout_s:.0f} s: {pipeline_arns}")
        time.sleep(0.25)


def _event_line(label: str, event: dict[str, Any]) -> str | None:
    """One history event as the demo prints it, or None for events it leaves out."""
    if event["type"].endswith("StateEntered"):
        return f"{label:>9} ▸ {event['stateEnteredEventDetails']['name']}"
    if event["type"] == "TaskFailed":
        return f"{label:>9}   ✗ {event.get('taskFailedEventDetails', {}).get('error')}"
    if event["type"] == "ExecutionFailed":
        return f"{label:>9} ✗ FAILED {event.get('executionFailedEventDetails', {}).get('error')}"
    if event["type"] == "ExecutionSucceeded":
        return f"{label:>9} ✓ SUCCEEDED"
    return None


def write_report(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report['scenario']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


# -- one scenario in a process of its own (`python -m localrun all` runs several at a time) --------


def run_order(reports: Path) -> list[str]:
    """The catalogue's scenarios, longest first, so the 1,000-file one does not start last while the
    other processes have nothing left to run: by the wall time in each scenario's last report in
    `reports`; without one, the volume scenarios (the long ones) first."""
    from localrun.scenarios.catalogue import SCENARIOS, VOLUME_SCENARIOS

    def last_wall_time(name: str) -> float:
        try:
            return float(json.loads((reports / f"{name}.json").read_text())["wall_time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    volume = {scenario.name for scenario in VOLUME_SCENARIOS}
    return sorted(SCENARIOS, key=lambda name: (-last_wall_time(name), name not in volume))


def start_scenario_process(log_file: Path) -> None:
    """Set up a process of `localrun all`: its log lines go to the run's file."""
    from localrun.console import configure_logging, log_to_file

    configure_logging("all")
    log_to_file(log_file, truncate=False)


def run_on_fresh_deployment(assembly: Path, name: str, reports: Path, log_file: Path) -> dict[str, Any]:
    """One scenario of the catalogue on a deployment of its own, its report written: what
    `localrun all` prints of it. A broken assembly raises AssemblyError or OSError."""
    from localrun.emulator.deployment import local_aws
    from localrun.emulator.glue_standin import start_spark_in_background
    from localrun.scenarios.catalogue import SCENARIOS

    with local_aws():
        deployment = LocalDeployment.bring_up(assembly)
        # The process's Spark (most scenarios run the transform) starts once an assembly came up:
        # a broken one is reported without a JVM started for nothing, as is a scenario that runs no Spark.
        if SCENARIOS[name].runs_spark:
            start_spark_in_background(log_file=log_file)
        try:
            report = run_scenario(deployment, SCENARIOS[name])
        finally:
            deployment.stop_running()
    write_report(report, reports)
    return {
        "name": name,
        "statuses": ", ".join(report["statuses"]) or "no run",
        "notices": len(report["notifications"]),
        "transitions": report["transitions"],
        "wall_time_s": report["wall_time_s"],
        "as_expected": report["as_expected"],
    }
