"""The log lines of a failed task, where AWS writes them: a Glue job run, a crawl, a Lambda invocation,
the state machine's own log group (for ops/why.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from ops.execution_history import LOG_LINES, Diagnosis, LogExcerpt, Task, console, json_value, log_console, tasks_of


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
    failed = json_value(task.cause)
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
        console=f"{console(region)}/gluestudio/home?region={region}#/job/{quote(job, safe='')}/run/{run_id}",
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
        console=f"{console(diagnosis.region)}/glue/home?region={diagnosis.region}#/v2/data-catalog/crawlers/view/{crawler}",
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


def attempt(diagnosis: Diagnosis, what: str, call: Callable[[], Any]) -> Any:
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
            excerpt = attempt(
                diagnosis,
                f"the Glue job run of {task.state!r}",
                partial(glue_job_evidence, clients["glue"], clients["logs"], task, diagnosis.region),
            )
        elif task.resource_type == "aws-sdk:glue" and task.resource in ("startCrawler", "getCrawler"):
            if ("crawler", str(task.parameters.get("Name"))) in seen:
                continue
            seen.add(("crawler", str(task.parameters.get("Name"))))
            excerpt = attempt(
                diagnosis,
                f"the crawler of {task.state!r}",
                partial(crawl_evidence, clients["glue"], clients["logs"], task, diagnosis),
            )
        elif task.resource_type == "lambda":
            excerpt = attempt(
                diagnosis,
                f"the Lambda log of {task.state!r}",
                partial(lambda_evidence, clients["logs"], task, diagnosis.region),
            )
        if excerpt is not None:
            diagnosis.logs.append(excerpt)
    own = attempt(
        diagnosis,
        "the state machine's own log",
        lambda: state_machine_evidence(clients["stepfunctions"], clients["logs"], diagnosis),
    )
    if own is not None:
        diagnosis.logs.append(own)
