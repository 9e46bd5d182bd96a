"""Why did a pipeline run fail? One command, from the execution history to the log lines.

    python -m localrun.why [--stage dev] [--execution ARN|NAME] [--region R] [--profile P]
    python -m localrun.why --local --scenario job_failed [--assembly cdk.out.local]

The first form works on AWS with boto3's default credential chain; without `--execution` it takes
the latest failed (or timed-out, or aborted) execution of the stage's pipeline state machine, found
from the Pipeline stack's output `PipelineStateMachineArn`. The second runs a fault scenario on moto
(what `make demo` runs) and diagnoses it with the very same code.

The diagnosis follows "start with the execution history to identify which step failed, then check
CloudWatch Logs for the why": the failed state, its error and cause; into a failed stage's child
execution (`states:startExecution.sync:2`: the TaskFailed cause holds the child's ExecutionArn)
and its failed state; then the log lines where AWS writes them (a Glue job run's `ErrorMessage`
and `/aws-glue/jobs/error`, stream = run id; a crawl's `/aws-glue/crawlers`, stream = crawler name;
a Lambda's `/aws/lambda/<function>` during its invocation; the state machine's own log group);
console links; and what finishes the run's work, as the failure notice says it
(`resume_advice` in lambda/failure_notice/handler.py): the `aws stepfunctions redrive-execution`
command when a redrive will help (the execution can be redriven: Standard, failed, timed out or
aborted, stopped less than 14 days ago; and the error is not one a redrive repeats), the replay of
the quarantined run and its quarantine record after ValidationFailed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
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
        return f"{_console(self.region)}/states/home?region={self.region}#/v2/executions/details/{self.execution_arn}"

    def deepest(self) -> Diagnosis:
        return self.child.deepest() if self.child else self


def _console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def log_console(region: str, group: str, stream: str | None = None) -> str:
    """A CloudWatch console link (the console escapes `/` and `%` in group and stream as `$252F`...)."""

    def escape(text: str) -> str:
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    link = f"{_console(region)}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{escape(group)}"
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


def _json(text: Any) -> Any:
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
            parameters = _json(details.get("parameters", "{}"))
            found.append(Task(state, details["resourceType"], details["resource"], parameters, event["timestamp"]))
        elif kind == "LambdaFunctionScheduled":
            details = event["lambdaFunctionScheduledEventDetails"]
            found.append(
                Task(state, "lambda", details["resource"], _json(details.get("input", "{}")), event["timestamp"])
            )
        elif found and kind in ("TaskSubmitted", "TaskSucceeded", "LambdaFunctionSucceeded"):
            result: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            found[-1].outputs.append(_json(result.get("output")))
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
            entered = _json(event["stateEnteredEventDetails"].get("input"))
            if isinstance(entered, dict):
                diagnosis.stage = entered.get("failed_stage") or diagnosis.stage
                error = entered.get("error")
                if isinstance(error, dict):
                    declared = (state, error.get("Error"), error.get("Cause"))


def child_execution(cause: str | None) -> str | None:
    """The child's ExecutionArn from a failed `states:startExecution.sync` task's cause."""
    parsed = _json(cause)
    return parsed.get("ExecutionArn") if isinstance(parsed, dict) else None


def readable_cause(cause: str | None) -> str:
    """The human part of a cause: a job run's ErrorMessage, a Lambda's errorMessage, or the text."""
    parsed = _json(cause)
    if isinstance(parsed, dict):
        for key in ("ErrorMessage", "errorMessage", "Cause", "cause"):
            if parsed.get(key):
                return readable_cause(str(parsed[key]))
        if "ExecutionArn" in parsed and "Error" in parsed:
            return f"{parsed['Error']} in {parsed['ExecutionArn'].rsplit(':', 1)[-1]}"
    return " ".join(str(cause or "").split())


# -- CloudWatch Logs ---------------------------------------------------------------------------
def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fetch_lines(
    logs: Any,
    group: str,
    *,
    streams: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    pattern: str = "",
    limit: int = LOG_LINES,
) -> tuple[list[str], str]:
    """The last `limit` lines (timestamped) of a group, and a note when there are none."""
    arguments: dict[str, Any] = {"logGroupName": group, "interleaved": True}
    if streams:
        arguments["logStreamNames"] = streams
    if start:
        arguments["startTime"] = _ms(start)
    if end:
        arguments["endTime"] = _ms(end)
    if pattern:
        arguments["filterPattern"] = pattern
    events: list[dict[str, Any]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**arguments):
            events += page.get("events", [])
    except logs.exceptions.ResourceNotFoundException:
        return [], f"no log group {group} (nothing was logged there)"
    lines = [
        f"{datetime.fromtimestamp(e['timestamp'] / 1000, UTC):%H:%M:%S} {e['message'].rstrip()}"
        for e in sorted(events, key=lambda e: e["timestamp"])
    ]
    return lines[-limit:], "" if lines else "no lines in the run's time window"


def glue_job_evidence(glue: Any, logs: Any, task: Task, region: str) -> LogExcerpt | None:
    job = task.parameters.get("JobName")
    run_id = next(
        (
            o.get("JobRunId") or o.get("Id")
            for o in task.outputs
            if isinstance(o, dict) and (o.get("JobRunId") or o.get("Id"))
        ),
        None,
    )
    failed = _json(task.cause)
    if not run_id and isinstance(failed, dict):
        run_id, job = failed.get("Id"), failed.get("JobName", job)
    if not (job and run_id):
        return None
    run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    note = f"job run {run.get('JobRunState')}" + (f": {run['ErrorMessage']}" if run.get("ErrorMessage") else "")
    # a failed run's why is in the error log; a run that succeeded says what it did in the output log
    group = "/aws-glue/jobs/output" if run.get("JobRunState") == "SUCCEEDED" else "/aws-glue/jobs/error"
    lines, missing = fetch_lines(logs, group, streams=[run_id])
    return LogExcerpt(
        what=f"Glue job {job}, run {run_id}",
        group=group,
        stream=run_id,
        lines=lines,
        console=f"{_console(region)}/gluestudio/home?region={region}#/job/{quote(job, safe='')}/run/{run_id}",
        note="; ".join(filter(None, [note, missing])),
    )


def crawl_evidence(glue: Any, logs: Any, task: Task, diagnosis: Diagnosis) -> LogExcerpt | None:
    crawler = task.parameters.get("Name")
    if not crawler:
        return None
    described = glue.get_crawler(Name=crawler)["Crawler"]
    last = described.get("LastCrawl", {})
    group, stream = last.get("LogGroup", "/aws-glue/crawlers"), last.get("LogStream", crawler)
    # "[<crawl id>]" selects that crawl's lines, when the last crawl is the one this run started
    this_crawl = last.get("MessagePrefix") and last.get("StartTime", diagnosis.started) >= diagnosis.started
    lines, missing = fetch_lines(
        logs,
        group,
        streams=[stream],
        start=diagnosis.started,
        end=(diagnosis.stopped or datetime.now(UTC)) + timedelta(minutes=1),
        pattern=f'"{last["MessagePrefix"]}"' if this_crawl else "",
    )
    status = f"crawler {described.get('State', 'unknown')}, last crawl {last.get('Status', 'none')}" + (
        f": {last['ErrorMessage']}" if last.get("ErrorMessage") else ""
    )
    return LogExcerpt(
        what=f"Glue crawler {crawler}",
        group=group,
        stream=stream,
        lines=lines,
        console=f"{_console(diagnosis.region)}/glue/home?region={diagnosis.region}#/v2/data-catalog/crawlers/view/{crawler}",
        note="; ".join(filter(None, [status, missing])),
    )


def lambda_evidence(logs: Any, task: Task, region: str) -> LogExcerpt:
    arn = task.resource if task.resource.startswith("arn:") else str(task.parameters.get("FunctionName", ""))
    function = arn.split(":function:", 1)[-1].split(":", 1)[0]
    group = f"/aws/lambda/{function}"
    # the invocation's lines: the window from scheduling to its end (a second of slack each side)
    lines, missing = fetch_lines(
        logs,
        group,
        start=task.scheduled - timedelta(seconds=1),
        end=(task.ended or task.scheduled) + timedelta(seconds=1),
    )
    result = next((o for o in task.outputs if isinstance(o, dict)), None)
    note = f"returned {json.dumps(result)[:200]}" if result is not None else f"failed: {task.error}"
    return LogExcerpt(
        what=f"Lambda {function} ({task.state})",
        group=group,
        stream=None,
        lines=lines,
        console=log_console(region, group),
        note="; ".join(filter(None, [note, missing])),
    )


def state_machine_evidence(sfn: Any, logs: Any, diagnosis: Diagnosis) -> LogExcerpt:
    machine = sfn.describe_state_machine(stateMachineArn=diagnosis.state_machine_arn)
    destinations = machine.get("loggingConfiguration", {}).get("destinations", [])
    arns = [d.get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "") for d in destinations]
    group = next((a.split(":log-group:", 1)[1].removesuffix(":*") for a in arns if ":log-group:" in a), None)
    if group is None:
        return LogExcerpt(
            "the state machine's own log", "", None, [], "", "no log group configured on the state machine"
        )
    lines, missing = fetch_lines(
        logs,
        group,
        start=diagnosis.started,
        end=(diagnosis.stopped or datetime.now(UTC)) + timedelta(minutes=1),
        pattern=f'"{diagnosis.execution_arn}"',
        limit=LOG_LINES * 20,
    )
    failures = [line for line in lines if "Failed" in line or "TimedOut" in line or "Aborted" in line]
    return LogExcerpt(
        what="the state machine's own log (failure events)",
        group=group,
        stream=None,
        lines=failures[-3:],
        console=log_console(diagnosis.region, group),
        note=missing,
    )


def one_line(error: BaseException) -> str:
    """An error as one line: its class and first line (a Py4J error's stack trace stays out)."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _attempt(diagnosis: Diagnosis, what: str, call: Callable[[], Any]) -> Any:
    """`call()`, or None with a note on the diagnosis: `why` prints what it can, never a traceback."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - any failure to read evidence is reported, not raised
        diagnosis.problems.append(f"could not read {what}: {one_line(error)}")
        return None


def gather_logs(clients: dict[str, Any], events: list[dict[str, Any]], diagnosis: Diagnosis) -> None:
    """The log lines behind the failure: each Glue job run, crawler and Lambda the execution used."""
    seen: set[tuple[str, str]] = set()
    for task in tasks_of(events):
        excerpt: LogExcerpt | None = None
        if task.resource_type == "glue" and task.resource.startswith("startJobRun"):
            excerpt = _attempt(
                diagnosis,
                f"the Glue job run of {task.state!r}",
                partial(glue_job_evidence, clients["glue"], clients["logs"], task, diagnosis.region),
            )
        elif task.resource_type == "aws-sdk:glue" and task.resource in ("startCrawler", "getCrawler"):
            if ("crawler", str(task.parameters.get("Name"))) in seen:
                continue
            seen.add(("crawler", str(task.parameters.get("Name"))))
            excerpt = _attempt(
                diagnosis,
                f"the crawler of {task.state!r}",
                partial(crawl_evidence, clients["glue"], clients["logs"], task, diagnosis),
            )
        elif task.resource_type == "lambda":
            excerpt = _attempt(
                diagnosis,
                f"the Lambda log of {task.state!r}",
                partial(lambda_evidence, clients["logs"], task, diagnosis.region),
            )
        if excerpt is not None:
            diagnosis.logs.append(excerpt)
    own = _attempt(
        diagnosis,
        "the state machine's own log",
        lambda: state_machine_evidence(clients["stepfunctions"], clients["logs"], diagnosis),
    )
    if own is not None:
        diagnosis.logs.append(own)


# -- the diagnosis -----------------------------------------------------------------------------
def diagnose(clients: dict[str, Any], execution_arn: str, *, region: str, depth: int = 0) -> Diagnosis:
    """Walk an execution (and a failed stage's child execution) to the failure and its log lines.

    `clients`: boto3 clients "stepfunctions", "logs" and "glue" (AWS, a moto server, or in-process moto).
    """
    sfn = clients["stepfunctions"]
    execution = sfn.describe_execution(executionArn=execution_arn)
    diagnosis = Diagnosis(
        execution_arn=execution_arn,
        name=execution["name"],
        state_machine_arn=execution["stateMachineArn"],
        status=execution["status"],
        started=execution["startDate"],
        stopped=execution.get("stopDate"),
        region=region,
    )
    if diagnosis.status not in UNSUCCESSFUL:
        return diagnosis
    events = _attempt(diagnosis, "the execution history", lambda: history(sfn, execution_arn)) or []
    _attempt(diagnosis, "the failed state", lambda: locate_failure(events, diagnosis))
    child = child_execution(diagnosis.cause)
    if child and depth < 3:
        diagnosis.child = _attempt(
            diagnosis,
            f"the stage's execution {child}",
            lambda: diagnose(clients, child, region=region, depth=depth + 1),
        )
    if diagnosis.child is None:
        gather_logs(clients, events, diagnosis)
    if diagnosis.stage is None and depth == 0:
        diagnosis.stage = _notice_module().stage_of(diagnosis.failed_state, diagnosis.deepest().error)
    _attempt(diagnosis, "whether it can be redriven", lambda: _redrive(sfn, execution, diagnosis))
    return diagnosis


def _notice_module() -> Any:
    """lambda/failure_notice/handler.py (a deployment asset, not a package): the notice's own advice."""
    import importlib.util

    path = ROOT / "lambda" / "failure_notice" / "handler.py"
    spec = importlib.util.spec_from_file_location("failure_notice_handler", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_of(sfn: Any, diagnosis: Diagnosis) -> str | None:
    """The run a failed stage execution worked on (its input's run.name)."""
    if diagnosis.child is None:
        return None
    stage_input = _json(sfn.describe_execution(executionArn=diagnosis.child.execution_arn).get("input"))
    run = stage_input.get("run") if isinstance(stage_input, dict) else None
    return run.get("name") if isinstance(run, dict) else None


def _quarantine_location(sfn: Any, diagnosis: Diagnosis) -> str | None:
    """The folder the failed stage wrote its quarantine record to, from its own S3 PutObject call
    (the bucket is the stack's; the history names it, so no output or environment is read)."""
    for task in tasks_of(history(sfn, diagnosis.deepest().execution_arn)):
        bucket, key = task.parameters.get("Bucket"), task.parameters.get("Key")
        if task.resource == "putObject" and isinstance(bucket, str) and isinstance(key, str) and "run=" in key:
            return f"s3://{bucket}/{key.rsplit('run=', 1)[0]}"
    return None


def _redrive(sfn: Any, execution: dict[str, Any], diagnosis: Diagnosis) -> None:
    machine_type = sfn.describe_state_machine(stateMachineArn=diagnosis.state_machine_arn).get("type", "STANDARD")
    stopped = diagnosis.stopped or datetime.now(UTC)
    status = execution.get("redriveStatus")  # AWS reports it (and the local redrive shim)
    if status:
        redrivable, reason = status == "REDRIVABLE", execution.get("redriveStatusReason", status)
    elif machine_type != "STANDARD":
        redrivable, reason = False, f"{machine_type} workflows cannot be redriven"
    elif datetime.now(UTC) - stopped > REDRIVE_WINDOW:
        redrivable, reason = False, f"stopped {stopped:%Y-%m-%d}, more than 14 days ago"
    else:
        redrivable, reason = True, ""
    deepest = diagnosis.deepest()
    # A stage execution diagnosed itself (the MWAA loop's): its input names its run and, when the DAG
    # started it, says so in its trigger.
    own = started_with if isinstance(started_with := _json(execution.get("input")), dict) else {}
    advice = _notice_module().resume_advice(
        trigger=own.get("trigger"),
        status=diagnosis.status,
        state=diagnosis.failed_state,
        error=deepest.end_error if deepest.caught else deepest.error,
        execution=diagnosis.execution_arn,
        run=_run_of(sfn, diagnosis) or (own.get("run") or {}).get("name"),
        transform_machine=(diagnosis.child or diagnosis).state_machine_arn,
        **({"quarantine_location": location} if (location := _quarantine_location(sfn, diagnosis)) else {}),
    )
    if advice["action"] == "redrive" and redrivable:
        diagnosis.redrive = advice["command"]
        diagnosis.redrive_note = advice["why"]
    elif advice["action"] == "redrive":
        diagnosis.redrive_note = f"not redrivable: {reason}; upload the files again to start a new run"
    elif advice["action"] == "replay":
        # A redrive would run the job over the same rows and fail the same way: the replay decides.
        diagnosis.rerun = advice["command"]
        diagnosis.redrive_note = f"quarantine record: {advice['quarantine_record']}; {advice['why']}"
    elif advice["action"] == "clear":  # the DAG run's task resumes its stage, not a redrive behind it
        diagnosis.rerun = advice["command"]
        diagnosis.redrive_note = advice["why"]
    else:
        diagnosis.redrive_note = advice["why"]


def render(diagnosis: Diagnosis, *, width: int = 160) -> str:
    """The diagnosis, short: what failed where, the why from the logs, links, what to do next."""
    lines: list[str] = []

    def clip(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    def execution_lines(d: Diagnosis, indent: str) -> None:
        machine = d.state_machine_arn.rsplit(":", 1)[-1]
        lines.append(clip(f"{indent}execution {d.name} of {machine}: {d.status}"))
        if d.status not in UNSUCCESSFUL:
            return
        where = f"state {d.failed_state!r}: {d.error}"
        if d.caught or (d.end_state and d.end_state != d.failed_state):
            where += f" → ended in {d.end_state!r}: {d.end_error}"
        lines.append(clip(f"{indent}  {where}"))
        if d.cause and not d.child:
            lines.append(clip(f"{indent}  cause: {readable_cause(d.cause)}"))
        lines.append(f"{indent}  console: {d.console}")
        lines.extend(clip(f"{indent}  ! {problem}") for problem in d.problems)
        if d.child:
            lines.append(f"{indent}  ↳ the stage's own execution:")
            execution_lines(d.child, indent + "    ")
        for excerpt in d.logs:
            lines.append(clip(f"{indent}  ▸ {excerpt.what}"))
            if excerpt.note:
                lines.append(clip(f"{indent}    {excerpt.note}"))
            if excerpt.group:
                lines.append(clip(f"{indent}    {excerpt.group}" + (f" / {excerpt.stream}" if excerpt.stream else "")))
            lines.extend(clip(f"{indent}    │ {line}") for line in excerpt.lines)
            if excerpt.console:
                lines.append(f"{indent}    console: {excerpt.console}")

    root = diagnosis
    if root.status not in UNSUCCESSFUL:
        return f"execution {root.name}: {root.status}; nothing to diagnose\n"
    deepest = root.deepest()
    stage = f" at stage {root.stage}" if root.stage else ""
    error = deepest.end_error if deepest.caught else deepest.error  # the stage's own error, as in the notice
    lines.append(clip(f"✗ run {root.name} {root.status}{stage}: {error}"))
    lines.append(clip(f"  why: {readable_cause(deepest.cause or root.end_cause) or 'no cause recorded'}"))
    execution_lines(root, "  ")
    lines.append("  next:")
    if root.redrive:
        lines.append(f"    {root.redrive}")
    if root.rerun:
        lines.append(f"    {root.rerun}")
    if root.redrive_note:
        lines.append(f"    ({root.redrive_note})")
    return "\n".join(lines) + "\n"


# -- finding the execution ---------------------------------------------------------------------
def pipeline_state_machine(cloudformation: Any, stage: str) -> str:
    stack = f"GluePipeline-{stage}-Pipeline"
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output["OutputKey"] == "PipelineStateMachineArn":
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack} has no output PipelineStateMachineArn")


def latest_unsuccessful(sfn: Any, state_machine_arn: str) -> str | None:
    found = []
    for status in UNSUCCESSFUL:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter=status)
        for page in pages:
            found += page["executions"]
    if not found:
        return None
    latest = max(found, key=lambda e: e.get("stopDate") or e["startDate"])
    return str(latest["executionArn"])


def execution_arn_for(state_machine_arn: str, execution: str) -> str:
    if execution.startswith("arn:"):
        return execution
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{execution}"


def clients_for(session: Any, endpoint_url: str | None = None) -> dict[str, Any]:
    return {
        name: session.client(name, endpoint_url=endpoint_url)
        for name in ("stepfunctions", "logs", "glue", "cloudformation")
    }


def why(
    clients: dict[str, Any], *, region: str, state_machine_arn: str, execution: str | None = None
) -> tuple[str, int]:
    """The rendered diagnosis and an exit status (0 diagnosed, 1 nothing failed)."""
    arn = (
        execution_arn_for(state_machine_arn, execution)
        if execution
        else latest_unsuccessful(clients["stepfunctions"], state_machine_arn)
    )
    if arn is None:
        return f"no failed, timed-out or aborted execution of {state_machine_arn}\n", 1
    try:
        diagnosis = diagnose(clients, arn, region=region)
    except Exception as error:  # noqa: BLE001 - the execution itself cannot be read: say so, in one line
        return f"✗ could not read execution {arn}: {one_line(error)}\n", 2
    try:
        return render(diagnosis), 0
    except Exception as error:  # noqa: BLE001 - what was found, unrendered, rather than a traceback
        return f"✗ execution {arn} {diagnosis.status}: {diagnosis.error} ({one_line(error)} while rendering)\n", 2


# -- the MWAA loop: a DAG run ------------------------------------------------------------------
STAGE_OUTPUTS = {"admission": "AdmissionStage", "crawl": "CrawlStage", "transform": "TransformStage"}


def stage_state_machines(cloudformation: Any, stage: str) -> dict[str, str]:
    """The stage state machines the DAG runs, from the Pipeline stack's outputs."""
    stack = f"GluePipeline-{stage}-Pipeline"
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    }
    return {name: outputs[f"{prefix}StateMachineArn"] for name, prefix in STAGE_OUTPUTS.items()}


def dag_stages() -> tuple[list[str], Callable[[str, str, str, int], str]]:
    """The DAG's stages in order and its execution-naming function, from the deployed DAG folder."""
    dags = str(ROOT / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)
    import glue_pipeline_support as support  # the module MWAA runs: same names, same order

    return [stage.name for stage in support.STAGES], support.stage_execution_name


def why_dag_run(
    clients: dict[str, Any],
    *,
    region: str,
    dag_id: str,
    run_id: str,
    state_machines: dict[str, str],
    environment: str | None = None,
) -> tuple[str, int]:
    """The failed task of a DAG run, its stage execution's diagnosis and where its Airflow task log is.

    Each stage task starts its execution under a name fixed by (dag_id, run_id, stage), so the
    executions of a DAG run are found without asking Airflow.
    """
    stages, name_of = dag_stages()
    sfn, lines = clients["stepfunctions"], [f"DAG {dag_id}, run {run_id}"]
    group = f"airflow-{environment or '<environment>'}-Task"
    for stage in stages:
        arn, status = "", ""
        for attempt in itertools.count():  # the latest attempt: a cleared task may have started the next
            candidate = execution_arn_for(state_machines[stage], name_of(dag_id, run_id, stage, attempt))
            try:
                arn, status = candidate, sfn.describe_execution(executionArn=candidate)["status"]
            except sfn.exceptions.ExecutionDoesNotExist:
                arn = arn or candidate
                break
        if not status:
            lines += [
                f"  task {stage}: never started its execution ({arn.rsplit(':', 1)[-1]})",
                "  the run stopped before it: an earlier task failed or was skipped (nothing admitted),",
                f"  or its options were missing. Task log: {group}, streams dag_id={dag_id}/run_id={run_id}/",
                f"  {log_console(region, group)}",
            ]
            return "\n".join(lines) + "\n", 0
        lines.append(f"  task {stage}: stage execution {status}")
        if status in UNSUCCESSFUL:
            lines += [
                f"  Airflow task log: {group}, stream dag_id={dag_id}/run_id={run_id}/task_id={stage}/attempt=<n>.log",
                f"  {log_console(region, group)}",
                "",
            ]
            return "\n".join(lines) + "\n" + render(diagnose(clients, arn, region=region)), 0
        if status == "RUNNING":
            return "\n".join([*lines, "  still running: nothing has failed yet"]) + "\n", 1
    return "\n".join([*lines, "  every stage execution succeeded: nothing to diagnose"]) + "\n", 1


def _aws(args: argparse.Namespace) -> int:
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    region = session.region_name
    if not region:
        print("error: no region: pass --region or configure one (AWS_REGION, the profile)", file=sys.stderr)
        return 2
    clients = clients_for(session)
    if args.dag_run_id:
        machines = stage_state_machines(clients["cloudformation"], args.stage)
        text, status = why_dag_run(
            clients,
            region=region,
            dag_id=args.dag_id,
            run_id=args.dag_run_id,
            state_machines=machines,
            environment=args.environment,
        )
        print(text, end="")
        return status
    machine = args.state_machine or pipeline_state_machine(clients["cloudformation"], args.stage)
    text, status = why(clients, region=region, state_machine_arn=machine, execution=args.execution)
    print(text, end="")
    return status


def for_deployment(deployment: Any) -> str:
    """The diagnosis of a local deployment's latest unsuccessful pipeline run (inside its moto context)."""
    import boto3

    from localrun.assembly import REGION

    clients = clients_for(boto3.Session(region_name=REGION))
    return why(clients, region=REGION, state_machine_arn=deployment.state_machines["pipeline"])[0]


def _local(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    import boto3

    from localrun.assembly import REGION, AssemblyError
    from localrun.deployment import LocalDeployment, local_aws
    from localrun.runner import SCENARIOS, run_scenario

    if args.scenario not in SCENARIOS:
        print(f"error: {args.scenario!r} is not a scenario; one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    with local_aws():
        try:
            deployment = LocalDeployment.bring_up(args.assembly)
        except AssemblyError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        try:
            run_scenario(deployment, SCENARIOS[args.scenario])
        finally:
            deployment.stop_running()
        clients = clients_for(boto3.Session(region_name=REGION))
        text, status = why(clients, region=REGION, state_machine_arn=deployment.state_machines["pipeline"])
    out(text.rstrip("\n"))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun.why", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", help="whose Pipeline stack to read the state machine from")
    parser.add_argument("--execution", help="execution ARN or name (default: the latest unsuccessful one)")
    parser.add_argument("--state-machine", help="pipeline state machine ARN (default: from the stack's outputs)")
    parser.add_argument("--dag-run-id", help="the MWAA loop: diagnose this DAG run instead of an execution")
    parser.add_argument("--dag-id", default="glue_pipeline")
    parser.add_argument("--environment", help="the MWAA environment name (output MwaaEnvironmentName)")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--local", action="store_true", help="run --scenario on moto, then diagnose it")
    parser.add_argument("--scenario", default="job_failed")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)  # see localrun/__main__.py
    return _local(args) if args.local else _aws(args)


if __name__ == "__main__":
    sys.exit(main())
