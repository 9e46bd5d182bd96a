"""A burst measured: N small valid CSVs on a fresh local deployment, every execution counted."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localrun.emulator.deployment import LocalDeployment

from ops.cost_model import Assumptions, BurstCounts, BurstShape, distributed_map
from stacks import pipeline_contract as contract

HEADER = b"order_id,customer_id,order_date,amount,currency\n"


# -- measured: a burst on a fresh local deployment ------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Measured:
    files: int
    batch_size: int
    shape: BurstShape
    transitions: int  # every Standard pipeline and stage execution, as the runner counts them
    trigger_transitions: int
    express_requests: int  # admission children, front doors and crawl callbacks
    crawls: int
    job_runs: int
    statuses: dict[str, int]  # of every pipeline execution (door-started, and continuations)
    upload_s: float
    wall_s: float
    door_executions: int = 0  # front-door executions (one per upload)
    callback_executions: int = 0  # crawl-callback executions (one per crawl end event)
    left_incoming: int = 0  # files still under incoming/ when everything ended
    arrival: str = "one by one"  # or "at once": every object landed before the first event arrived

    @property
    def admitted(self) -> int:
        """Files a round listed (admitted or quarantined); the rest are still under incoming/."""
        return sum(n for run in self.shape.runs for n in run)

    def counts(self, assumptions: Assumptions | None = None) -> BurstCounts:
        """The counts of this run; GB-seconds (not measurable on moto) from the formula for its shape."""
        estimate = distributed_map(self.shape, replace(assumptions or Assumptions(), batch_size=self.batch_size))
        return BurstCounts(
            variant=estimate.variant,
            files=self.files,
            standard_transitions=self.transitions,
            trigger_transitions=self.trigger_transitions,
            express_requests=self.express_requests,
            express_gb_seconds=estimate.express_gb_seconds,
            # The admission children invoke the Lambda once per batch; doors and callbacks invoke none.
            lambda_invocations=self.express_requests - self.door_executions - self.callback_executions,
            lambda_gb_seconds=estimate.lambda_gb_seconds,
            crawls=self.crawls,
            job_runs=self.job_runs,
            source=f"measured (local, {self.arrival})",
        )


def small_csv(index: int) -> bytes:
    """One valid row with an order id of its own (the job drops duplicate order ids)."""
    return HEADER + f"SO-B-{index:06d},CUST-{index % 10_000:05d},2026-11-24,{10 + index % 90}.50,EUR\n".encode()


def assembly_batch_size(deployment: LocalDeployment) -> int:
    """MaxItemsPerBatch of the admission stage's Distributed Map, as synthesized."""
    pipeline = deployment.assembly.stack_ending("-Pipeline")
    # The stack's output names the admission stage's state machine: a Ref to its logical id.
    machine = pipeline.template["Resources"][pipeline.output(contract.state_machine_output(contract.ADMISSION))["Ref"]]
    found = _find_key(machine["Properties"]["DefinitionString"], "MaxItemsPerBatch")
    if found is None:
        raise ValueError("the admission stage's definition has no MaxItemsPerBatch")
    return int(found)


def _find_key(value: Any, key: str) -> Any:
    """The first `"key": value` in a definition (a JSON string, or Fn::Join parts of one)."""
    if isinstance(value, str):
        marker = f'"{key}":'
        if marker in value:
            return int(value.split(marker, 1)[1].split(",")[0].split("}")[0].strip())
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if (found := _find_key(item, key)) is not None:
                return found
    return None


def measure_burst(
    assembly: Path,
    files: int,
    *,
    at_once: bool = False,
    on_progress: Callable[[str], None] | None = None,
    timeout_s: float = 900,
) -> Measured:
    """Bring a fresh deployment up, put `files` small CSVs under incoming/, wait, count."""
    from localrun.emulator.deployment import LocalDeployment, local_aws

    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    with local_aws():
        deployment = LocalDeployment.bring_up(assembly)
        try:
            return measure_on(deployment, files, at_once=at_once, on_progress=on_progress, timeout_s=timeout_s)
        finally:
            deployment.stop_running()


def measure_on(
    deployment: LocalDeployment,
    files: int,
    *,
    at_once: bool = False,
    on_progress: Callable[[str], None] | None = None,
    timeout_s: float = 900,
) -> Measured:
    """A burst on a deployment that is up and has run nothing yet (every execution is counted).

    Each upload's event runs the front door, which starts the pipeline unless a running execution
    holds the lease. One by one: each object lands and its event is delivered before the next lands,
    at the emulator's pace (a round takes seconds here, minutes on AWS, so the uploads span many
    rounds). At once: every object lands, then the events arrive (a burst faster than a round, as
    a burst is on AWS). Counted are all the pipeline's executions: those the doors started, and the
    continuations runs start themselves."""
    from localrun.runner import describe_execution as describe

    started = time.monotonic()
    keys = [(f"{deployment.incoming_prefix}burst/part-{index:05d}.csv", small_csv(index)) for index in range(files)]
    events = [deployment.land_object(key, body) for key, body in keys] if at_once else []
    for index in range(files):
        if at_once:
            deployment.deliver(events[index])
        else:
            deployment.put_landing_object(*keys[index])
        if on_progress and (index + 1) % 250 == 0:
            on_progress(f"{index + 1:,} of {files:,} uploads delivered ({time.monotonic() - started:.0f} s)")
    uploaded = time.monotonic()
    # Every pipeline execution: those the doors started, and the continuations a run starts itself
    # when its rounds are spent with files waiting (`<name>-next`), until none is left running.
    while True:
        executions = deployment.executions(contract.PIPELINE)
        running = [e["executionArn"] for e in executions if e["status"] == "RUNNING"]
        if not running:
            break
        for arn in running:
            deployment.wait(arn, timeout_s=max(1.0, timeout_s - (time.monotonic() - started)))
    pipeline = [describe(deployment, e["executionArn"]) for e in executions]
    stages = {stage: deployment.executions(stage) for stage in contract.STAGES}
    described = {stage: [describe(deployment, e["executionArn"]) for e in found] for stage, found in stages.items()}
    sfn = deployment.clients["stepfunctions"]
    admitted: dict[str, int] = {}
    for execution in stages[contract.ADMISSION]:
        output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"]).get("output") or "{}")
        admitted[output.get("run", execution["name"])] = int(output.get("admitted", 0)) + int(
            output.get("quarantined", 0)
        )
    working = [r for r in pipeline if "Coalesced" not in r["path"]]
    runs = []
    for run in working:
        # Round names are <execution name>-r<round> (stacks/pipeline_workflow.py, Start round).
        rounds = sorted(
            (name for name in admitted if name.startswith(run["name"] + "-r")), key=lambda n: int(n.rsplit("-r", 1)[1])
        )
        runs.append([admitted[name] for name in rounds])
    polls = [d["path"].count("Get crawler") for d in described[contract.CRAWL]]
    statuses: dict[str, int] = {}
    for run in pipeline:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    coalesced = [r for r in pipeline if "Coalesced" in r["path"]]
    callbacks = deployment.executions(contract.CRAWL_CALLBACK)
    doors = len(deployment.door_executions)
    return Measured(
        files=files,
        batch_size=assembly_batch_size(deployment),
        shape=BurstShape(
            files=files,
            coalesced=len(coalesced),
            runs=runs,
            retakes=sum(r["path"].count("After release: Take lease") for r in working),
            continuations=sum(r["path"].count("Continue in a new execution") for r in working),
            polls_per_crawl=polls,
            doors=doors,
        ),
        transitions=sum(r["transitions"] for r in pipeline)
        + sum(d["transitions"] for ds in described.values() for d in ds),
        trigger_transitions=sum(r["transitions"] for r in coalesced),
        express_requests=sum(d["express_requests"] for ds in described.values() for d in ds) + doors + len(callbacks),
        crawls=len(described[contract.CRAWL]),
        job_runs=len(described[contract.TRANSFORM]),
        statuses=statuses,
        upload_s=round(uploaded - started, 1),
        wall_s=round(time.monotonic() - started, 1),
        door_executions=doors,
        callback_executions=len(callbacks),
        left_incoming=len(deployment.keys_under(deployment.incoming_prefix)),
        arrival="at once" if at_once else "one by one",
    )


def measured_from(item: dict[str, Any]) -> Measured:
    return Measured(**{**item, "shape": BurstShape(**item["shape"])})
