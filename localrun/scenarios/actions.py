"""What the scenarios do to a deployment (acts) and what must hold once every run ended (checks)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrun.emulator.aws_events import object_created_event
from stacks import pipeline_contract as contract

if TYPE_CHECKING:  # moto is imported where an action runs: `python -m localrun list` answers without it
    from localrun.emulator.deployment import LocalDeployment

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_KEY = "orders/2026-11-24/orders.csv"


def put(sample: str, key: str | None = None) -> Callable[[LocalDeployment], list[str]]:
    def act(deployment: LocalDeployment) -> list[str]:
        body = (SAMPLES / sample).read_bytes()
        return deployment.put_landing_object(key or f"{deployment.incoming_prefix}{SAMPLE_KEY}", body)

    return act


def put_outside_prefix(deployment: LocalDeployment) -> list[str]:
    return deployment.put_landing_object("uploads/orders.csv", (SAMPLES / "orders.csv").read_bytes())


def malformed_event(deployment: LocalDeployment) -> list[str]:
    # An Object Created event without detail.object.key: the rule does not match it, so it is
    # started by hand, as an operator replaying an event would, and the pipeline must reject it.
    event = object_created_event(bucket=deployment.landing_bucket, key="x", size=1, etag="0")
    del event["detail"]["object"]["key"]
    assert deployment.deliver(event) == [], "the rule must not match an event without a key"
    return [deployment.start(deployment.state_machines[contract.PIPELINE], event)]


def target_unavailable(deployment: LocalDeployment) -> list[str]:
    # The pipeline state machine is gone (e.g. mid-redeploy) when data lands: EventBridge cannot
    # deliver, and the event must wait in the rule's dead-letter queue rather than vanish.
    deployment.clients["stepfunctions"].delete_state_machine(
        stateMachineArn=deployment.state_machines[contract.PIPELINE]
    )
    return put("orders.csv")(deployment)


def same_object_twice(deployment: LocalDeployment) -> list[str]:
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


def _burst_key(deployment: LocalDeployment, folder: str, index: int) -> tuple[str, bytes]:
    key = f"{deployment.incoming_prefix}{folder}/orders-{index:05d}.csv"
    return key, _orders(BURST_FOLDERS.index(folder) * 10_000 + index)


def upload(deployment: LocalDeployment, count: int, folder: str = "burst") -> list[str]:
    """`count` uploads one after another, each delivered with its Object Created event before the next
    lands: they reach the pipeline at the emulator's pace, so a slow machine spreads them over rounds."""
    started: list[str] = []
    for index in range(count):
        started += deployment.put_landing_object(*_burst_key(deployment, folder, index))
    return started


def burst(deployment: LocalDeployment, count: int, folder: str = "burst") -> list[str]:
    """`count` uploads at once: every object lands, then their Object Created events arrive (S3 delivers
    events after the write, asynchronously), so the first run's first round finds them all."""
    landed = [_burst_key(deployment, folder, index) for index in range(count)]
    events = [deployment.land_object(key, body) for key, body in landed]
    return [arn for event in events for arn in deployment.deliver(event)]


def _wait_for_state(deployment: LocalDeployment, arn: str, state: str, *, timeout_s: float = 60) -> None:
    from localrun.runner import path_of

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if state in path_of(deployment.history(arn)):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{arn} never entered {state!r}")


def arrival_during_run(deployment: LocalDeployment) -> list[str]:
    [first] = upload(deployment, 1, "first")
    _wait_for_state(deployment, first, "Run crawl stage")  # the lease is held, the round under way
    return [first, *upload(deployment, 1, "second")]


def arrival_at_release(deployment: LocalDeployment) -> list[str]:
    [first] = upload(deployment, 1, "first")
    _wait_for_state(deployment, first, "Files waiting?")  # about to release the lease
    return [first, *upload(deployment, 1, "late")]


def stale_lease(deployment: LocalDeployment) -> list[str]:
    # An earlier run stopped while it held the lease and never released it (aborted, timed out,
    # or its release failed): its item is still in the table, its holder no longer running.
    sfn = deployment.clients["stepfunctions"]
    stopped = sfn.start_execution(
        stateMachineArn=deployment.state_machines[contract.PIPELINE], name="stopped-run", input=json.dumps({})
    )["executionArn"]
    deployment.wait(stopped)
    deployment.clients["dynamodb"].put_item(
        TableName=deployment.lease_table,
        Item={"lease_id": {"S": "pipeline"}, "holder": {"S": stopped}, "acquired_at": {"S": "2026-11-24T02:00:00Z"}},
    )
    deployment.notifications()  # the stopped run's own notice is not this scenario's
    return upload(deployment, 1)


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


def mixed_drop(deployment: LocalDeployment) -> list[str]:
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


def thousand_files(deployment: LocalDeployment) -> list[str]:
    for index in range(1000):
        deployment.put_object_without_event(f"{deployment.incoming_prefix}bulk/orders-{index:05d}.csv", _orders(index))
    return deployment.schedule_tick()  # one run admits them all


def _notified_admissions(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        n["message"]["stages"][contract.ADMISSION]["Output"]
        for n in report["notifications"]
        if "stages" in n["message"]
    ]


def _transformed_rows(report: dict[str, Any]) -> int:
    outputs = [
        n["message"]["stages"].get(contract.TRANSFORM) for n in report["notifications"] if "stages" in n["message"]
    ]
    return sum(o["Output"]["input_rows"] for o in outputs if o)


def left_waiting(deployment: LocalDeployment, *, lease_released: bool = True) -> list[str]:
    """Problems, if any, once every run ended: files left under incoming/, and (when the runs were to
    release it) a lease still held."""
    problems = []
    if left := deployment.keys_under(deployment.incoming_prefix):
        problems.append(f"{len(left)} file(s) left under {deployment.incoming_prefix}: {left[:3]}")
    if lease_released and deployment.clients["dynamodb"].scan(TableName=deployment.lease_table)["Items"]:
        problems.append("the lease is still held after every run ended")
    return problems


def admitted_copies(deployment: LocalDeployment) -> list[str]:
    """The admitted copies in the runs' folders (<landing prefix>run=<run>/<hash>.csv)."""
    return [k for k in deployment.keys_under(deployment.landing_prefix) if k.endswith(".csv")]


def _drained(deployment: LocalDeployment, files: int, *, max_rounds: int | None = None) -> list[str]:
    """Problems, if any: files left under incoming/, a lease still held, files admitted twice or lost."""
    problems = left_waiting(deployment)
    admitted = admitted_copies(deployment)
    if len(admitted) != files:
        problems.append(f"{len(admitted)} file(s) admitted, expected {files}")
    return problems


def check_burst(files: int, max_rounds: int) -> Callable[[LocalDeployment, dict[str, Any]], list[str]]:
    def check(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
        problems = _drained(deployment, files)
        # One crawl per working execution's round, at most max_rounds rounds per execution (a run
        # whose rounds are spent hands over to its continuation, which the report includes).
        crawls = sum(1 for s in report["stage_runs"] if s["stage"] == contract.CRAWL)
        working = sum(1 for r in report["pipeline_runs"] if "Start round" in r["path"])
        if crawls > max_rounds * working:
            problems.append(f"{crawls} crawls for {working} run(s), expected at most {max_rounds} each")
        if _transformed_rows(report) != files * ROWS_PER_SAMPLE:
            problems.append(f"{_transformed_rows(report)} rows transformed, expected {files * ROWS_PER_SAMPLE}")
        if any(n["message"].get("status") == "FAILED" for n in report["notifications"]):
            problems.append("a failure notice for a burst")
        return problems

    return check


def check_mixed_drop(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    problems = _drained(deployment, sum(1 for _, code in MIXED_DROP.values() if code is None))
    [admission] = _notified_admissions(report)
    expected = {code: 0 for _, code in MIXED_DROP.values() if code}
    for _, code in MIXED_DROP.values():
        if code:
            expected[code] += 1
    if admission["by_reason"] != expected:
        problems.append(f"quarantined by reason {admission['by_reason']}, expected {expected}")
    sidecars = [k for k in deployment.keys_under(deployment.quarantine_prefix) if k.endswith(".reason.json")]
    if len(sidecars) != sum(expected.values()):
        problems.append(
            f"{len(sidecars)} reason sidecars under {deployment.quarantine_prefix}, expected {sum(expected.values())}"
        )
    return problems


def check_lease_expires_with_failed_run(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    # The admitted file stays in its run folder (not in limbo under incoming/); the lease still names
    # the failed execution, which holds nothing now that it has stopped (the next run takes it over).
    problems = [p for p in _drained(deployment, 1) if not p.startswith("the lease")]
    items = deployment.clients["dynamodb"].scan(TableName=deployment.lease_table)["Items"]
    failed = [r["name"] for r in report["pipeline_runs"]]
    if [item["holder"]["S"].rsplit(":", 1)[-1] for item in items] != failed:
        problems.append(f"the lease should name the failed run {failed} until the next run takes it over: {items}")
    return problems


def redrive_after_fix(deployment: LocalDeployment) -> list[str]:
    """The job fails, its notice arrives, the fault is removed, the operator redrives the execution."""
    from localrun.emulator.moto import redrive as moto_redrive

    [execution] = put("orders.csv")(deployment)
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


def check_redriven_once(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
    problems = _drained(deployment, 1)  # lease released, the file admitted once, nothing waiting
    runs = {
        stage: [s for s in report["stage_runs"] if s["stage"] == stage]
        for stage in (contract.ADMISSION, contract.CRAWL)
    }
    for stage, executions in runs.items():
        if len(executions) != 1:
            problems.append(f"{len(executions)} {stage} executions: the redrive must not run {stage} again")
    transforms = [s["status"] for s in report["stage_runs"] if s["stage"] == contract.TRANSFORM]
    if sorted(transforms) != ["FAILED", "SUCCEEDED"]:
        problems.append(f"transform executions {transforms}: expected the failed one and the redriven one")
    if len(partitions := _published_partitions(deployment)) != 1:
        problems.append(f"{len(partitions)} partitions published, expected the run's one: {partitions}")
    subjects = [n["subject"] for n in report["notifications"]]
    if subjects != ["Pipeline FAILED at stage transform: GlueJobFailed", "Pipeline SUCCEEDED"]:
        problems.append(f"notices {subjects}: expected the failure, then the redriven round's success")
    return problems


def pipeline_timed_out(deployment: LocalDeployment) -> list[str]:
    """A run that hits the pipeline's own timeout (lowered here to 4 s: the crawl keeps running; on a
    busy machine the run may still be in admission, which the notice then names)."""
    sfn, machine = deployment.clients["stepfunctions"], deployment.state_machines[contract.PIPELINE]
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps({**definition, "TimeoutSeconds": 4}))
    return put("orders.csv")(deployment)


def check_timed_out_notice(deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
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
