"""Redrive and execution status changes for moto 5.2.5: two entries of the patch registry.

`sfn-redrive-execution` (RedriveExecution, AWS Step Functions API reference): moto has no
RedriveExecution, no `$$.Execution.RedriveCount` in the context object and no redrive fields in
DescribeExecution. Here, as on AWS, a FAILED, TIMED_OUT or ABORTED Standard execution is resumed
from the state it stopped in, with the input that state recorded when it was entered (its
StateEntered event), the same execution ARN, its history continued (an ExecutionRedriven event,
then the states run again), `$$.Execution.RedriveCount` counting the redrives (0 before any), and
DescribeExecution reporting redriveCount, redriveDate and redriveStatus. It resumes a top-level
state (a failed Map or Parallel state runs again whole; AWS redrives only a Distributed Map's
failed children: this pipeline has no state where that differs).

`sfn-status-change-events` ("Step Functions Execution Status Change" events, Step Functions user
guide, EventBridge): moto's Step Functions emits none. Here each execution that ends emits one, in
AWS's format, to the listeners the local EventBridge (localrun/emulator/local_eventbridge.py) registers, which
route it through the rules as AWS would. `wait_for_deliveries()` waits until every event of an
execution that has ended has been delivered (on AWS delivery is asynchronous too; tests wait for it).

Both are applied inside `localrun.emulator.moto.applied()` only, and undone when it is left.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
    StateMachineType,
)
from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend import execution_worker as worker_module

from localrun.emulator.assembly import ACCOUNT_ID, REGION
from localrun.emulator.moto.probing import create_machine, plain_moto
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch

REDRIVABLE = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED)
STATUS_CHANGE = "Step Functions Execution Status Change"

StatusChangeListener = Callable[[dict[str, Any]], None]


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


# -- sfn-redrive-execution ----------------------------------------------------------------------


def _redrive_count(execution: Any) -> int:
    return int(getattr(execution, "local_redrive_count", 0))


class _RedriveWorker(worker_module.ExecutionWorker):
    """Resumes an execution at `resume_at` with `resume_input`, continuing its history."""

    def __init__(self, *args: Any, resume_at: str, resume_input: Any, previous: Any, redrive_count: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.resume_at, self.resume_input, self.previous = resume_at, resume_input, previous
        self.redrive_count = redrive_count

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        program.start_at = StartAt(self.resume_at)  # type: ignore[attr-defined]  # this parse of the definition only
        env = self._get_evaluation_environment()
        env.event_manager = self.previous.event_manager  # the same history, its ids continued
        env.states.reset(self.resume_input)
        self.env = env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=cast(
                EventDetails,
                {"executionRedrivenEventDetails": ExecutionRedrivenEventDetails(redriveCount=self.redrive_count)},
            ),
            update_source_event_id=False,
        )
        program.eval(env)
        self._execution_communication.terminated()


def _resume_point(execution: Any) -> tuple[str, Any]:
    """The top-level state the execution stopped in, and the input it recorded on entering it."""
    import json

    top_level = execution.exec_worker._get_evaluation_entrypoint().states.states
    for event in reversed(execution.exec_worker.env.event_manager.get_event_history()):
        details = event.get("stateEnteredEventDetails")
        if details and details["name"] in top_level:
            return details["name"], json.loads(details.get("input") or "{}")
    raise ExecutionNotRedrivable(f"Execution {execution.exec_arn} never entered a state: nothing to redrive")


def redrive(backend: Any, execution_arn: str) -> datetime.datetime:
    """RedriveExecution on the executing backend: resume the execution where it stopped."""
    execution = backend.describe_execution(execution_arn)
    if execution.sm_type != StateMachineType.STANDARD:
        raise ExecutionNotRedrivable(f"Execution {execution_arn} is not a STANDARD workflow execution")
    if execution.exec_status not in REDRIVABLE:
        raise ExecutionNotRedrivable(f"Execution {execution_arn} is {execution.status} and cannot be redriven")
    resume_at, resume_input = _resume_point(execution)
    count = _redrive_count(execution) + 1
    worker = _RedriveWorker(
        evaluation_details=execution.exec_worker._evaluation_details,
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
        resume_at=resume_at,
        resume_input=resume_input,
        previous=execution.exec_worker.env,
        redrive_count=count,
    )
    execution.local_redrive_count = count
    execution.local_redrive_date = datetime.datetime.now(tz=datetime.UTC)
    execution.exec_worker = worker
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = execution.error = execution.cause = execution.output = None
    worker.start()
    return execution.local_redrive_date


def redrive_fields(execution: Any) -> dict[str, Any]:
    """DescribeExecution's redrive members, as AWS reports them."""
    fields: dict[str, Any] = {"redriveCount": _redrive_count(execution)}
    if getattr(execution, "local_redrive_date", None) is not None:
        fields["redriveDate"] = execution.local_redrive_date
    if execution.exec_status in REDRIVABLE and execution.sm_type == StateMachineType.STANDARD:
        fields["redriveStatus"] = "REDRIVABLE"
    else:
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = f"Execution is {execution.status} and cannot be redriven"
    return fields


def apply_redrive(runtime: LocalRuntime) -> None:
    worker_cls = worker_module.ExecutionWorker
    original_environment = worker_cls._get_evaluation_environment

    def evaluation_environment(worker: Any) -> Any:
        env = original_environment(worker)
        # $$.Execution.RedriveCount: 0 until the execution is redriven (child frames share this dict).
        execution_data = cast(dict[str, Any], env.states.context_object.context_object_data["Execution"])
        execution_data["RedriveCount"] = getattr(worker, "redrive_count", 0)
        return env

    runtime.replace(worker_cls, "_get_evaluation_environment", evaluation_environment)

    response_cls = sfn_responses.StepFunctionResponse
    original_describe = response_cls.describe_execution

    def describe_execution(self: Any) -> ActionResult:
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        if hasattr(execution, "exec_worker"):  # the executing backend's executions
            return ActionResult({**result.result, **redrive_fields(execution)})  # type: ignore[dict-item]
        return result

    def redrive_execution(self: Any) -> ActionResult:
        return ActionResult({"redriveDate": redrive(self.stepfunction_backend, self._get_param("executionArn"))})

    runtime.replace(response_cls, "describe_execution", describe_execution)
    # An action moto lacks: added while the registry is applied, removed when it is left.
    runtime.stack.enter_context(_added(response_cls, "redrive_execution", redrive_execution))


@contextlib.contextmanager
def _added(owner: Any, attribute: str, value: Any) -> Any:
    if hasattr(owner, attribute):
        raise RuntimeError(f"{owner.__name__}.{attribute} exists: upstream has it, drop this entry")
    setattr(owner, attribute, value)
    try:
        yield
    finally:
        delattr(owner, attribute)


def probe_redrive() -> bool:
    """True while plain moto cannot redrive a failed execution."""
    with plain_moto() as clients:
        sfn = clients["stepfunctions"]
        arn = create_machine(clients, "redrive", {"StartAt": "F", "States": {"F": {"Type": "Fail"}}})
        execution = sfn.start_execution(stateMachineArn=arn, name="redrive-run")["executionArn"]
        _wait(sfn, execution)
        try:
            sfn.redrive_execution(executionArn=execution)
        except Exception:  # not implemented (moto answers an unknown action with an error)
            return True
        return "redriveCount" not in sfn.describe_execution(executionArn=execution)


def _wait(sfn: Any, execution: str) -> None:
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)


# -- sfn-status-change-events -------------------------------------------------------------------

_listeners: list[StatusChangeListener] = []
_pending = threading.Condition()
_in_flight = 0


def on_status_change(listener: StatusChangeListener) -> None:
    """Call `listener` with each "Step Functions Execution Status Change" event from now on."""
    _listeners.append(listener)


def wait_for_deliveries(timeout_s: float = 30) -> None:
    """Until every status change of an execution that has ended has reached the listeners."""
    with _pending:
        if not _pending.wait_for(lambda: _in_flight == 0, timeout=timeout_s):
            raise TimeoutError(f"status change events still being delivered after {timeout_s} s")


def _ms(moment: datetime.datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def status_change_event(execution: Any) -> dict[str, Any]:
    """The event as EventBridge delivers it (Step Functions user guide, "Execution status change")."""
    import json

    detail: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": execution.status,
        "startDate": _ms(execution.start_date),
        "stopDate": _ms(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "output": json.dumps(execution.output) if execution.exec_status == ExecutionStatus.SUCCEEDED else None,
        "error": execution.error,
        "cause": execution.cause,
        "redriveCount": _redrive_count(execution),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": ACCOUNT_ID,
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [execution.exec_arn],
        "detail": detail,
    }


def apply_status_change_events(runtime: LocalRuntime) -> None:
    global _in_flight
    cls = execution_module.BaseExecutionWorkerCommunication
    original = cls.terminated

    def terminated(self: Any) -> None:
        global _in_flight
        with _pending:  # counted before the status shows, so whoever sees it can wait for the notice
            _in_flight += 1
        try:
            original(self)
            event = status_change_event(self.execution)
            for listener in list(_listeners):
                listener(event)
        finally:
            with _pending:
                _in_flight -= 1
                _pending.notify_all()

    runtime.replace(cls, "terminated", terminated)
    _listeners.clear()
    _in_flight = 0
    runtime.stack.callback(_listeners.clear)


def probe_status_change_events() -> bool:
    """True while an ended execution reaches neither an EventBridge rule's target nor the listeners.

    Plain moto: nothing arrives (the listeners are only called by this entry's patch; the SQS
    target would receive the event once upstream sends it to EventBridge).
    """
    heard: list[dict[str, Any]] = []
    _listeners.append(heard.append)
    try:
        with plain_moto() as clients:
            import boto3

            events, sqs, sfn = boto3.client("events"), boto3.client("sqs"), clients["stepfunctions"]
            queue = sqs.create_queue(QueueName="status-changes")["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
            events.put_rule(Name="status", EventPattern='{"source": ["aws.states"]}')
            events.put_targets(Rule="status", Targets=[{"Id": "q", "Arn": attributes["QueueArn"]}])
            definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
            arn = create_machine(clients, "status", definition)
            _wait(sfn, sfn.start_execution(stateMachineArn=arn, name="status-run")["executionArn"])
            wait_for_deliveries()
            return not heard and not sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages")
    finally:
        _listeners.remove(heard.append)


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
SFN_REDRIVE_EXECUTION = MotoPatch(
    "sfn-redrive-execution",
    "RedriveExecution is not implemented, the context object has no Execution.RedriveCount and "
    "DescribeExecution no redrive fields; AWS resumes a failed, timed-out or aborted Standard "
    "execution from the state it stopped in, with that state's recorded input (localrun/py)",
    apply_redrive,
    probe_redrive,
)
SFN_STATUS_CHANGE_EVENTS = MotoPatch(
    "sfn-status-change-events",
    'executions emit no "Step Functions Execution Status Change" event; AWS sends one to '
    "EventBridge whenever an execution's status changes (localrun/py)",
    apply_status_change_events,
    probe_status_change_events,
)
