"""CloudWatch Logs lines for a local run, under the group and stream names AWS writes them to.

On AWS the why of a failure is in CloudWatch Logs: a Glue job run's errors in `/aws-glue/jobs/error`
(stream = job run id), a crawl's in `/aws-glue/crawlers` (stream = crawler name, each line prefixed
with the crawl's id), a Lambda's in `/aws/lambda/<function>`. moto runs neither Glue nor Lambda, so
the local stand-ins call these functions and the lines land in moto's logs backend, where
`ops.why` (and boto3's `filter_log_events`) finds them exactly as it would on AWS.

Lines go straight to moto's in-process backend, which serves both `mock_aws` and a moto server
started in the same process; group and stream are created on first use, as AWS does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator

from localrun.emulator.assembly import ACCOUNT_ID, REGION

GLUE_JOB_ERRORS = "/aws-glue/jobs/error"
GLUE_JOB_OUTPUT = "/aws-glue/jobs/output"
GLUE_CRAWLERS = "/aws-glue/crawlers"


def lambda_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def put_lines(group: str, stream: str, lines: list[str], *, account: str = ACCOUNT_ID, region: str = REGION) -> None:
    """Append lines (one log event each, timestamped now) to a stream, creating group and stream if new."""
    from moto.logs.models import logs_backends

    backend = logs_backends[account][region]
    if group not in backend.groups:
        backend.create_log_group(group, tags={})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])


def glue_job_run_ended(*, job_name: str, run_id: str, state: str, error_message: str | None) -> None:
    """What Glue logs when a run ends: errors to the error group; a summary line to the output group."""
    if error_message:
        put_lines(
            GLUE_JOB_ERRORS,
            run_id,
            [
                f"ERROR GlueJobRunner: job {job_name} run {run_id} ended {state}",
                f"ERROR GlueJobRunner: {error_message}",
            ],
        )
    put_lines(GLUE_JOB_OUTPUT, run_id, [f"INFO GlueJobRunner: job {job_name} run {run_id} ended {state}"])


def crawl_ended(*, crawler_name: str, crawl_id: str, status: str, error_message: str | None) -> None:
    """A crawl's lines as Glue writes them: `[<crawl id>] LEVEL : message`, stream = crawler name."""
    lines = [f"[{crawl_id}] BENCHMARK : Running Start Crawl for Crawler {crawler_name}"]
    if error_message:
        lines.append(f"[{crawl_id}] ERROR : {error_message}")
    lines.append(f"[{crawl_id}] BENCHMARK : Crawler has finished running and is in state {status}")
    put_lines(GLUE_CRAWLERS, crawler_name, lines)


class _ThreadLines(logging.Handler):
    """Collects the records logged on one thread (executions run concurrently, one thread each)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


@contextlib.contextmanager
def lambda_invocation(function_name: str, logger: str = "localrun.lambda") -> Iterator[None]:
    """One invocation's log as Lambda writes it: START, what the handler logged, errors, END, REPORT.

    The in-process handler's output goes to the `logger` tree (see localrun/emulator/deployment.py); lines
    logged on this thread while the block runs are this invocation's.
    """
    request_id = str(uuid.uuid4())
    error: Exception | None
    capture, parent = _ThreadLines(), logging.getLogger(logger)
    if parent.getEffectiveLevel() > logging.INFO:
        parent.setLevel(logging.INFO)  # the handler's lines are INFO; CloudWatch keeps them all
    parent.addHandler(capture)
    started, error = time.monotonic(), None
    try:
        yield
    except Exception as raised:  # the runtime logs an unhandled error, then reports it
        error = raised
        raise
    finally:
        parent.removeHandler(capture)
        lines = [f"START RequestId: {request_id} Version: $LATEST", *capture.lines]
        if error is not None:
            lines.append(f"[ERROR] {type(error).__name__}: {error}")
        lines += [
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms",
        ]
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{request_id.replace('-', '')}"
        put_lines(lambda_group(function_name), stream, lines)
