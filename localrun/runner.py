"""Scenarios: one local run of the pipeline each, with faults, observed and reported.

A run report (JSON) holds, per execution, the states entered in order, the billed state
transitions (states entered plus retries, as AWS bills Standard workflows), the duration and
the notifications sent. The demo prints it; the scenario tests assert on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrun.deployment import LocalDeployment, object_created_event
from localrun.pricing import STEP_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_KEY = "orders/2026-11-24/orders.csv"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str
    faults: dict[str, Any] = field(default_factory=dict)
    act: Callable[[LocalDeployment], list[str]]
    # What the run must end as, for `make demo SCENARIO=...` to exit 0.
    expected_statuses: tuple[str, ...]
    expected_failed_stage: str | None = None
    expected_dead_letters: int = 0


def _put(sample: str, key: str | None = None) -> Callable[[LocalDeployment], list[str]]:
    def act(deployment: LocalDeployment) -> list[str]:
        body = (SAMPLES / sample).read_bytes()
        return deployment.put_landing_object(key or f"{deployment.incoming_prefix}{SAMPLE_KEY}", body)

    return act


def _put_outside_prefix(deployment: LocalDeployment) -> list[str]:
    return deployment.put_landing_object("uploads/orders.csv", (SAMPLES / "orders.csv").read_bytes())


def _malformed_event(deployment: LocalDeployment) -> list[str]:
    # An Object Created event without detail.object.key: the rule does not match it, so it is
    # started by hand, as an operator replaying an event would, and the pipeline must reject it.
    event = object_created_event(bucket=deployment.landing_bucket, key="x", size=1, etag="0")
    del event["detail"]["object"]["key"]
    assert deployment.deliver(event) == [], "the rule must not match an event without a key"
    return [deployment.start(deployment.state_machines["pipeline"], event)]


def _target_unavailable(deployment: LocalDeployment) -> list[str]:
    # The pipeline state machine is gone (e.g. mid-redeploy) when data lands: EventBridge cannot
    # deliver, and the event must wait in the rule's dead-letter queue rather than vanish.
    deployment.clients["stepfunctions"].delete_state_machine(stateMachineArn=deployment.state_machines["pipeline"])
    return _put("orders.csv")(deployment)


def _same_object_twice(deployment: LocalDeployment) -> list[str]:
    key = f"{deployment.incoming_prefix}{SAMPLE_KEY}"
    body = (SAMPLES / "orders.csv").read_bytes()
    response = deployment.clients["s3"].put_object(Bucket=deployment.landing_bucket, Key=key, Body=body)
    etag = response["ETag"].strip('"')
    # S3 delivers events at least once: the same object's event arrives twice, with two ids.
    first = object_created_event(bucket=deployment.landing_bucket, key=key, size=len(body), etag=etag)
    second = {**first, "id": first["id"][:-4] + "dup1"}
    return deployment.deliver(first) + deployment.deliver(second)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="happy_path",
            description="A CSV lands under the landing prefix; crawl, transform, notify success.",
            act=_put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="crawler_already_running",
            description="StartCrawler is refused once (a crawl is running); "
            "the Retry on Glue.CrawlerRunningException waits and the run succeeds.",
            faults={"crawler_busy_starts": 1},
            act=_put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="crawl_failed",
            description="The crawl ends with LastCrawl.Status FAILED.",
            faults={"crawl_outcome": "FAILED"},
            act=_put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="crawl",
        ),
        Scenario(
            name="crawl_never_finishes",
            description="The crawler never finishes: the bounded poll loop gives up.",
            faults={"crawl_outcome": "NEVER_ENDS"},
            act=_put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="crawl",
        ),
        Scenario(
            name="job_failed",
            description="The Glue job run ends FAILED.",
            faults={"job_outcome": "FAILED"},
            act=_put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="transform",
        ),
        Scenario(
            name="job_timeout",
            description="The Glue job run ends TIMEOUT.",
            faults={"job_outcome": "TIMEOUT"},
            act=_put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="transform",
        ),
        Scenario(
            name="job_concurrency_exceeded",
            description="StartJobRun is refused twice with "
            "ConcurrentRunsExceededException; the Retry waits and the run succeeds.",
            faults={"job_busy_starts": 2},
            act=_put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="empty_output",
            description="Every row of the CSV is invalid: the job writes no rows; the check fails the run.",
            act=_put("orders_all_invalid.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="transform",
        ),
        Scenario(
            name="nothing_new",
            description="A header-only CSV: nothing new to process; the run succeeds and its notice says so.",
            act=_put("orders_empty.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="too_many_rejected",
            description="Most rows are invalid: the rejected share is over the threshold.",
            act=_put("orders_mostly_bad.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="transform",
        ),
        Scenario(
            name="outside_prefix",
            description="An object outside the landing prefix starts nothing.",
            act=_put_outside_prefix,
            expected_statuses=(),
        ),
        Scenario(
            name="malformed_event",
            description="An event without detail.object.key: no rule match; started by "
            "hand it fails InvalidTriggerEvent and is notified.",
            act=_malformed_event,
            expected_statuses=("FAILED",),
            expected_failed_stage="trigger",
        ),
        Scenario(
            name="target_unavailable",
            description="The pipeline state machine cannot be started: the event "
            "goes to the rule's dead-letter queue, with the error, instead of being lost.",
            act=_target_unavailable,
            expected_statuses=(),
            expected_dead_letters=1,
        ),
        Scenario(
            name="duplicate_event",
            description="The same object's event arrives twice: two runs, both succeed; "
            "the job bookmark makes the second one process nothing, and it says so.",
            act=_same_object_twice,
            expected_statuses=("SUCCEEDED", "SUCCEEDED"),
        ),
    )
}


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
    pipeline_arns = scenario.act(deployment)
    if on_event:
        _follow(deployment, pipeline_arns, on_event)
    runs = [describe_execution(deployment, arn) for arn in pipeline_arns]
    stages: list[dict[str, Any]] = []
    for stage in ("admission", "crawl", "transform"):
        for execution in deployment.executions(stage):
            stages.append({"stage": stage, **describe_execution(deployment, execution["executionArn"])})
    notifications = deployment.notifications()
    dead_letters = deployment.dead_letters()
    transitions = sum(r["transitions"] for r in runs) + sum(s["transitions"] for s in stages)
    report = {
        "scenario": scenario.name,
        "description": scenario.description,
        "statuses": [r["status"] for r in runs],
        "pipeline_runs": runs,
        "stage_runs": stages,
        "notifications": notifications,
        "dead_letters": dead_letters,
        "transitions": transitions,
        "cost_usd": round(STEP_FUNCTIONS.standard_cost(transitions), 8),
        "price": {
            "as_of": STEP_FUNCTIONS.as_of,
            "region": STEP_FUNCTIONS.region,
            "usd_per_1000_standard_transitions": STEP_FUNCTIONS.usd_per_1000_standard_transitions,
        },
        "wall_time_s": round(time.monotonic() - started_at, 3),
    }
    failed_stages = [n["message"].get("stage") for n in notifications if n["message"].get("status") == "FAILED"]
    report["as_expected"] = (
        tuple(report["statuses"]) == scenario.expected_statuses
        and failed_stages == ([scenario.expected_failed_stage] if scenario.expected_failed_stage else [])
        and len(dead_letters) == scenario.expected_dead_letters
    )
    return report


def _follow(
    deployment: LocalDeployment, pipeline_arns: list[str], on_event: Callable[[str], None], *, timeout_s: float = 300
) -> None:
    """Print each state as it is entered, across the pipeline and its stage executions."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    sfn = deployment.clients["stepfunctions"]

    def executions() -> list[tuple[str, str]]:
        found = [("pipeline", arn) for arn in pipeline_arns]
        for stage in ("crawl", "transform"):
            found += [(stage, e["executionArn"]) for e in deployment.executions(stage)]
        return found

    while True:
        running = False
        for label, arn in executions():
            history = deployment.history(arn)
            for event in history[seen.get(arn, 0) :]:
                if event["type"].endswith("StateEntered"):
                    on_event(f"{label:>9} ▸ {event['stateEnteredEventDetails']['name']}")
                elif event["type"] == "TaskFailed":
                    details = event.get("taskFailedEventDetails", {})
                    on_event(f"{label:>9}   ✗ {details.get('error')}")
                elif event["type"] == "ExecutionFailed":
                    details = event.get("executionFailedEventDetails", {})
                    on_event(f"{label:>9} ✗ FAILED {details.get('error')}")
                elif event["type"] == "ExecutionSucceeded":
                    on_event(f"{label:>9} ✓ SUCCEEDED")
            seen[arn] = len(history)
            running |= sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        if not running:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions still running after {timeout_s:.0f} s: {pipeline_arns}")
        time.sleep(0.25)


def write_report(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report['scenario']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
