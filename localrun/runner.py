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

from localrun import moto_redrive, permissions
from localrun.deployment import LocalDeployment, object_created_event
from localrun.pricing import STEP_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_KEY = "orders/2026-11-24/orders.csv"


# expected_failed_stage of a run whose stage depends on timing: one unsuccessful notice, naming
# whichever stage the run stopped in (the scenario's check compares it with the run's history).
STOPPED_IN_ANY_STAGE = "*"


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
    # Uploads pass the front door (stacks/front_door.py): those that find a run in progress start no
    # pipeline execution, so how many start depends on timing. True: one or more, each ending as
    # expected_statuses[0].
    any_number_of_runs: bool = False
    # What must hold of the data and the lease once every run ended: problems found, or none.
    check: Callable[[LocalDeployment, dict[str, Any]], list[str]] | None = None


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


# -- volume: bursts, arrivals during a run, the lease, odd files -------------------------------
ORDERS = (SAMPLES / "orders.csv").read_bytes()
ROWS_PER_SAMPLE = 40


def _orders(index: int) -> bytes:
    """The sample with order ids of its own: files of one burst share no order (no duplicates)."""
    return ORDERS.replace(b"SO-2026-", f"SO-{index:05d}-".encode())


BURST_FOLDERS = ("burst", "first", "second", "late")


def _upload(deployment: LocalDeployment, count: int, folder: str = "burst") -> list[str]:
    """`count` uploads at once, each with its Object Created event: the executions EventBridge starts."""
    started: list[str] = []
    for index in range(count):
        key = f"{deployment.incoming_prefix}{folder}/orders-{index:05d}.csv"
        started += deployment.put_landing_object(key, _orders(BURST_FOLDERS.index(folder) * 10_000 + index))
    return started


def _wait_for_state(deployment: LocalDeployment, arn: str, state: str, *, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if state in path_of(deployment.history(arn)):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{arn} never entered {state!r}")


def _arrival_during_run(deployment: LocalDeployment) -> list[str]:
    [first] = _upload(deployment, 1, "first")
    _wait_for_state(deployment, first, "Run crawl stage")  # the lease is held, the round under way
    return [first, *_upload(deployment, 1, "second")]


def _arrival_at_release(deployment: LocalDeployment) -> list[str]:
    [first] = _upload(deployment, 1, "first")
    _wait_for_state(deployment, first, "Files waiting?")  # about to release the lease
    return [first, *_upload(deployment, 1, "late")]


def _stale_lease(deployment: LocalDeployment) -> list[str]:
    # An earlier run stopped while it held the lease and never released it (aborted, timed out,
    # or its release failed): its item is still in the table, its holder no longer running.
    sfn = deployment.clients["stepfunctions"]
    stopped = sfn.start_execution(
        stateMachineArn=deployment.state_machines["pipeline"], name="stopped-run", input=json.dumps({})
    )["executionArn"]
    deployment.wait(stopped)
    deployment.clients["dynamodb"].put_item(
        TableName=deployment.lease_table,
        Item={"lease_id": {"S": "pipeline"}, "holder": {"S": stopped}, "acquired_at": {"S": "2026-11-24T02:00:00Z"}},
    )
    deployment.notifications()  # the stopped run's own notice is not this scenario's
    return _upload(deployment, 1)


MIXED_DROP: dict[str, tuple[bytes, str | None]] = {
    # name under incoming/: (content, quarantine reason code, or None when admitted)
    "good.csv": (ORDERS, None),
    "with-bom.csv": (b"\xef\xbb\xbf" + _orders(99_999), None),
    "reordered.csv": (
        b"customer_id,order_id,order_date,amount,currency\nC1,SO-1,2026-11-24,1.00,EUR\n",
        "header_mismatch",
    ),
    "latin1.csv": (
        b"order_id,customer_id,order_date,amount,currency\nSO-9,M\xfcller,2026-11-24,1.00,EUR\n",
        "not_utf8",
    ),
    "empty.csv": (b"", "empty"),
    "orders.json": (b'{"order_id": "SO-1"}', "not_csv"),
    "folder/": (b"", "folder_marker"),
}


def _mixed_drop(deployment: LocalDeployment) -> list[str]:
    # Only what the rule matches (a non-empty .csv) starts a run; the rest is found by that run.
    # The drop lands at once, then its events arrive (each passes the front door before the next).
    events = []
    for name, (body, _) in MIXED_DROP.items():
        key = f"{deployment.incoming_prefix}{name}"
        deployment.put_object_without_event(key, body)
        if name.endswith(".csv") and body:
            etag = deployment.clients["s3"].head_object(Bucket=deployment.landing_bucket, Key=key)["ETag"].strip('"')
            events.append(object_created_event(bucket=deployment.landing_bucket, key=key, size=len(body), etag=etag))
    return [arn for event in events for arn in deployment.deliver(event)]


def _thousand_files(deployment: LocalDeployment) -> list[str]:
    for index in range(1000):
        deployment.put_object_without_event(f"{deployment.incoming_prefix}bulk/orders-{index:05d}.csv", _orders(index))
    return deployment.schedule_tick()  # one run admits them all


def _notified_admissions(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [n["message"]["stages"]["admission"]["Output"] for n in report["notifications"] if "stages" in n["message"]]


def _transformed_rows(report: dict[str, Any]) -> int:
    outputs = [n["message"]["stages"].get("transform") for n in report["notifications"] if "stages" in n["message"]]
    return sum(o["Output"]["input_rows"] for o in outputs if o)


def _drained(deployment: LocalDeployment, files: int, *, max_rounds: int | None = None) -> list[str]:
    """Problems, if any: files left under incoming/, a lease still held, files admitted twice or lost."""
    problems = []
    if left := deployment.keys_under(deployment.incoming_prefix):
        problems.append(f"{len(left)} file(s) left under {deployment.incoming_prefix}: {left[:3]}")
    if deployment.clients["dynamodb"].scan(TableName=deployment.lease_table)["Items"]:
        problems.append("the lease is still held after every run ended")
    admitted = [k for k in deployment.keys_under(deployment.landing_prefix) if k.endswith(".csv")]
    if len(admitted) != files:
        problems.append(f"{len(admitted)} file(s) admitted, expected {files}")
    return problems


def _check_burst(files: int, max_rounds: int) -> Callable[[LocalDeployment, dict[str, Any]], list[str]]:
    def check(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
        problems = _drained(deployment, files)
        crawls = sum(1 for s in report["stage_runs"] if s["stage"] == "crawl")
        if crawls > max_rounds:
            problems.append(f"{crawls} crawls for one burst, expected at most {max_rounds}")
        if _transformed_rows(report) != files * ROWS_PER_SAMPLE:
            problems.append(f"{_transformed_rows(report)} rows transformed, expected {files * ROWS_PER_SAMPLE}")
        if any(n["message"].get("status") == "FAILED" for n in report["notifications"]):
            problems.append("a failure notice for a burst")
        return problems

    return check


def _check_mixed_drop(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    problems = _drained(deployment, sum(1 for _, code in MIXED_DROP.values() if code is None))
    [admission] = _notified_admissions(report)
    expected = {code: 0 for _, code in MIXED_DROP.values() if code}
    for _, code in MIXED_DROP.values():
        if code:
            expected[code] += 1
    if admission["by_reason"] != expected:
        problems.append(f"quarantined by reason {admission['by_reason']}, expected {expected}")
    sidecars = [k for k in deployment.keys_under("quarantine/") if k.endswith(".reason.json")]
    if len(sidecars) != sum(expected.values()):
        problems.append(f"{len(sidecars)} reason sidecars under quarantine/, expected {sum(expected.values())}")
    return problems


def _check_lease_expires_with_failed_run(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    # The admitted file stays in its run folder (not in limbo under incoming/); the lease still names
    # the failed execution, which holds nothing now that it has stopped (the next run takes it over).
    problems = [p for p in _drained(deployment, 1) if not p.startswith("the lease")]
    items = deployment.clients["dynamodb"].scan(TableName=deployment.lease_table)["Items"]
    failed = [r["name"] for r in report["pipeline_runs"]]
    if [item["holder"]["S"].rsplit(":", 1)[-1] for item in items] != failed:
        problems.append(f"the lease should name the failed run {failed} until the next run takes it over: {items}")
    return problems


def _redrive_after_fix(deployment: LocalDeployment) -> list[str]:
    """The job fails, its notice arrives, the fault is removed, the operator redrives the execution."""
    [execution] = _put("orders.csv")(deployment)
    if deployment.wait(execution)["status"] != "FAILED":
        return [execution]
    moto_redrive.wait_for_deliveries()  # the FAILED notice has arrived
    deployment.faults.job_outcome = "SUCCEEDED"  # the cause fixed
    deployment.clients["stepfunctions"].redrive_execution(executionArn=execution)
    return [execution]


def _published_partitions(deployment: LocalDeployment) -> list[list[str]]:
    glue, found = deployment.clients["glue"], []
    for database in glue.get_databases()["DatabaseList"]:
        for table in glue.get_tables(DatabaseName=database["Name"])["TableList"]:
            partitions = glue.get_partitions(DatabaseName=database["Name"], TableName=table["Name"])["Partitions"]
            found += [partition["Values"] for partition in partitions]
    return found


def _check_redriven_once(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    problems = _drained(deployment, 1)  # lease released, the file admitted once, nothing waiting
    runs = {stage: [s for s in report["stage_runs"] if s["stage"] == stage] for stage in ("admission", "crawl")}
    for stage, executions in runs.items():
        if len(executions) != 1:
            problems.append(f"{len(executions)} {stage} executions: the redrive must not run {stage} again")
    transforms = [s["status"] for s in report["stage_runs"] if s["stage"] == "transform"]
    if sorted(transforms) != ["FAILED", "SUCCEEDED"]:
        problems.append(f"transform executions {transforms}: expected the failed one and the redriven one")
    if len(partitions := _published_partitions(deployment)) != 1:
        problems.append(f"{len(partitions)} partitions published, expected the run's one: {partitions}")
    subjects = [n["subject"] for n in report["notifications"]]
    if subjects != ["Pipeline FAILED at stage transform: GlueJobFailed", "Pipeline SUCCEEDED"]:
        problems.append(f"notices {subjects}: expected the failure, then the redriven round's success")
    return problems


def _pipeline_timed_out(deployment: LocalDeployment) -> list[str]:
    """A run that hits the pipeline's own timeout (lowered here to 4 s: the crawl keeps running; on a
    busy machine the run may still be in admission, which the notice then names)."""
    sfn, machine = deployment.clients["stepfunctions"], deployment.state_machines["pipeline"]
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps({**definition, "TimeoutSeconds": 4}))
    return _put("orders.csv")(deployment)


def _check_timed_out_notice(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    [run] = report["pipeline_runs"]
    stages = [state for state in run["path"] if state.startswith("Run ") and state.endswith(" stage")]
    [notice] = report["notifications"] or [{"subject": None, "message": {}}]
    message = notice["message"]
    problems = []
    if not stages or message.get("state") != stages[-1]:
        problems.append(f"the notice names state {message.get('state')!r}, the run stopped in {stages[-1:]}")
    if message.get("resume", {}).get("action") != "redrive":
        problems.append(f"a timed-out run is resumed by a redrive, the notice says {message.get('resume')}")
    return problems


VOLUME_SCENARIOS = (
    Scenario(
        name="burst_50",
        description="50 uploads at once: one execution takes the lease, the others coalesce; at most two "
        "rounds, no failure notice, every file's rows transformed exactly once.",
        act=lambda deployment: _upload(deployment, 50),
        expected_statuses=("SUCCEEDED",) * 50,
        any_number_of_runs=True,
        check=_check_burst(50, max_rounds=2),
    ),
    Scenario(
        name="arrival_during_run",
        description="A file lands while a run is in its crawl stage: its own execution coalesces and the "
        "running one admits it in a second round.",
        act=_arrival_during_run,
        expected_statuses=("SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=_check_burst(2, max_rounds=2),
    ),
    Scenario(
        name="arrival_at_release",
        description="A file lands as the lease is being released: it is not stranded (the holder looks "
        "again after releasing, or the file's own execution takes the lease).",
        act=_arrival_at_release,
        expected_statuses=("SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=_check_burst(2, max_rounds=2),
    ),
    Scenario(
        name="stale_lease",
        description="The lease is held by an execution that stopped without releasing it: the next run "
        "takes it over (the lease expires with its holder).",
        act=_stale_lease,
        expected_statuses=("SUCCEEDED",),
        check=_check_burst(1, max_rounds=1),
    ),
    Scenario(
        name="transform_fails_lease_expires",
        description="The Glue job fails: one failure notice, the admitted file kept in its run folder "
        "(nothing in limbo), the lease expired with the failed run (the next upload takes it over).",
        faults={"job_outcome": "FAILED"},
        act=lambda deployment: _upload(deployment, 1),
        expected_statuses=("FAILED",),
        expected_failed_stage="transform",
        check=_check_lease_expires_with_failed_run,
    ),
    Scenario(
        name="mixed_drop",
        description="Good files with odd ones (reordered header, latin-1, empty, .json, a folder marker): "
        "each admitted or quarantined with its reason and a sidecar.",
        act=_mixed_drop,
        expected_statuses=("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=_check_mixed_drop,
    ),
    Scenario(
        name="thousand_files",
        description="1,000 files waiting when the schedule fires: one run admits them in batches.",
        act=_thousand_files,
        expected_statuses=("SUCCEEDED",),
        check=_check_burst(1000, max_rounds=1),
    ),
)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="happy_path",
            description="A CSV lands under the incoming prefix; admission, crawl, transform, notify success.",
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
            description="An object outside the incoming prefix starts nothing.",
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
            description="The same object's event arrives twice: two executions, both succeed; the "
            "second coalesces into the first (or finds nothing left), the file is processed once.",
            act=_same_object_twice,
            expected_statuses=("SUCCEEDED", "SUCCEEDED"),
            any_number_of_runs=True,
        ),
        Scenario(
            name="redrive_after_fix",
            description="The Glue job fails, its notice arrives, the fault is removed and the execution is "
            "redriven: the transform stage runs again (admission and crawl do not), the run publishes "
            "once, the lease ends released.",
            faults={"job_outcome": "FAILED"},
            act=_redrive_after_fix,
            expected_statuses=("SUCCEEDED",),
            expected_failed_stage="transform",
            check=_check_redriven_once,
        ),
        Scenario(
            name="pipeline_timed_out",
            description="The run hits the pipeline's own timeout (lowered to 4 s; the crawl keeps running): "
            "one TIMED_OUT notice naming the stage it stopped in and the redrive command.",
            faults={"crawl_seconds": 1000},
            act=_pipeline_timed_out,
            expected_statuses=("TIMED_OUT",),
            expected_failed_stage=STOPPED_IN_ANY_STAGE,
            check=_check_timed_out_notice,
        ),
        Scenario(
            name="job_failed_after_writing",
            description="The Glue job writes its staged output and manifest, then fails: nothing is published.",
            faults={"job_outcome": "FAILED_AFTER_WRITING"},
            act=_put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage="transform",
        ),
        *VOLUME_SCENARIOS,
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


def _follow(
    deployment: LocalDeployment, pipeline_arns: list[str], on_event: Callable[[str], None], *, timeout_s: float = 300
) -> None:
    """Print each state as it is entered, across the pipeline and its stage executions."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    sfn = deployment.clients["stepfunctions"]

    def executions() -> list[tuple[str, str]]:
        found = [("pipeline", arn) for arn in pipeline_arns]
        for stage in ("admission", "crawl", "transform"):
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
