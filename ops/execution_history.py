"""A failed execution, read from its history: the failed state, its error and cause, its task.

What a diagnosis holds (the model `why` renders) and how the history is read; ops/failure_logs.py
adds the log lines, ops/why.py finds the execution and renders the diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

REDRIVE_WINDOW = timedelta(days=14)
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")
LOG_LINES = 10  # per log excerpt: the last lines are where the error is
_FAILURE_EVENTS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "MapRunFailed": "mapRunFailedEventDetails",
}
_END_EVENTS = {
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
}


# -- what a diagnosis holds --------------------------------------------------------------------
@dataclass
class LogExcerpt:
    what: str  # e.g. "Glue job run jr_… of my-job"
    group: str
    stream: str | None
    lines: list[str]
    console: str
    note: str = ""  # e.g. "job run FAILED: <ErrorMessage>", or why there are no lines


@dataclass
class Task:
    """One visit of a Task state: what it called and how that ended."""

    state: str
    resource_type: str  # "glue", "aws-sdk:glue", "lambda", "states", "sns", ...
    resource: str  # "startJobRun.sync", "getCrawler", a function ARN, ...
    parameters: dict[str, Any]
    scheduled: datetime
    ended: datetime | None = None
    outputs: list[Any] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None


@dataclass
class Diagnosis:
    execution_arn: str
    name: str
    state_machine_arn: str
    status: str
    started: datetime
    stopped: datetime | None
    region: str
    failed_state: str | None = None  # where the error arose (a Task, or the Fail state itself)
    error: str | None = None
    cause: str | None = None
    caught: bool = False  # the error was caught and the run went on to end_state
    end_state: str | None = None
    end_error: str | None = None
    end_cause: str | None = None
    stage: str | None = None
    child: Diagnosis | None = None
    logs: list[LogExcerpt] = field(default_factory=list)
    redrive: str | None = None
    redrive_note: str = ""
    rerun: str = ""
    problems: list[str] = field(default_factory=list)  # what could not be read: why prints the rest

    @property
    def console(self) -> str:
        return f"{console(self.region)}/states/home?region={self.region}#/v2/executions/details/{self.execution_arn}"

    def deepest(self) -> Diagnosis:
        return self.child.deepest() if self.child else self


def console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def log_console(region: str, group: str, stream: str | None = None) -> str:
    """A CloudWatch console link (the console escapes `/` and `%` in group and stream as `$252F`...)."""

    def escape(text: str) -> str:
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    link = f"{console(region)}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{escape(group)}"
    return f"{link}/log-events/{escape(stream)}" if stream else link


# -- the execution history ---------------------------------------------------------------------
def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def json_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def tasks_of(events: list[dict[str, Any]]) -> list[Task]:
    """Every task call of an execution, in order, with its outputs and failure."""
    found: list[Task] = []
    state = ""
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        elif kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            parameters = json_value(details.get("parameters", "{}"))
            found.append(Task(state, details["resourceType"], details["resource"], parameters, event["timestamp"]))
        elif kind == "LambdaFunctionScheduled":
            details = event["lambdaFunctionScheduledEventDetails"]
            found.append(
                Task(state, "lambda", details["resource"], json_value(details.get("input", "{}")), event["timestamp"])
            )
        elif found and kind in ("TaskSubmitted", "TaskSucceeded", "LambdaFunctionSucceeded"):
            result: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            found[-1].outputs.append(json_value(result.get("output")))
            found[-1].ended = event["timestamp"] if kind != "TaskSubmitted" else found[-1].ended
        elif found and kind in _FAILURE_EVENTS:
            details = event.get(_FAILURE_EVENTS[kind], {})
            found[-1].error, found[-1].cause, found[-1].ended = (
                details.get("error"),
                details.get("cause"),
                event["timestamp"],
            )
    return found


def locate_failure(events: list[dict[str, Any]], diagnosis: Diagnosis) -> None:
    """Fill in the failed state, its error and cause, whether it was caught, and the end state.

    A task failure that a Retry recovered from does not count; one still open when its state is
    left was caught; one still open when the execution ends was not. Without a task failure the
    error arose in the state the execution ended in (a Fail state, or a timeout).
    """
    state, open_failure = "", None
    caught: tuple[str, str | None, str | None] | None = None
    declared: tuple[str, str | None, str | None] | None = None  # the error a Fail state's input names
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            state, open_failure = event["stateEnteredEventDetails"]["name"], None
        elif kind.endswith("StateExited") and open_failure:
            caught, open_failure = open_failure, None
        elif kind in _FAILURE_EVENTS:
            details = event.get(_FAILURE_EVENTS[kind], {})
            open_failure = (state, details.get("error"), details.get("cause"))
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
            open_failure = None  # a retry recovered
        elif kind in _END_EVENTS:
            details = event.get(_END_EVENTS[kind], {})
            diagnosis.end_state = state
            diagnosis.end_error = details.get("error") or kind.removeprefix("Execution")
            diagnosis.end_cause = details.get("cause")
            if open_failure:
                diagnosis.failed_state, diagnosis.error, diagnosis.cause = open_failure
            elif caught:
                (diagnosis.failed_state, diagnosis.error, diagnosis.cause), diagnosis.caught = caught, True
            else:
                diagnosis.failed_state, diagnosis.error, diagnosis.cause = declared or (
                    state,
                    diagnosis.end_error,
                    diagnosis.end_cause,
                )
        if kind == "FailStateEntered":
            # this pipeline's convention: the Fail state's input names the failed stage and its error
            entered = json_value(event["stateEnteredEventDetails"].get("input"))
            if isinstance(entered, dict):
                diagnosis.stage = entered.get("failed_stage") or diagnosis.stage
                error = entered.get("error")
                if isinstance(error, dict):
                    declared = (state, error.get("Error"), error.get("Cause"))


def child_execution(cause: str | None) -> str | None:
    """The child's ExecutionArn from a failed `states:startExecution.sync` task's cause."""
    parsed = json_value(cause)
    return parsed.get("ExecutionArn") if isinstance(parsed, dict) else None


def readable_cause(cause: str | None) -> str:
    """The human part of a cause: a job run's ErrorMessage, a Lambda's errorMessage, or the text."""
    parsed = json_value(cause)
    if isinstance(parsed, dict):
        for key in ("ErrorMessage", "errorMessage", "Cause", "cause"):
            if parsed.get(key):
                return readable_cause(str(parsed[key]))
        if "ExecutionArn" in parsed and "Error" in parsed:
            return f"{parsed['Error']} in {parsed['ExecutionArn'].rsplit(':', 1)[-1]}"
    return " ".join(str(cause or "").split())
