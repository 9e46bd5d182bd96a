"""What the glue_pipeline DAG is built from: its stages, options, run, execution names, operator, notice.

Deployed next to the DAG file: Airflow puts the DAG folder on `sys.path` (the DAG processor and
the task runner parse the folder as a bundle), so the DAG file imports this module by name;
`.airflowignore` keeps Airflow from parsing it as a DAG file. Importing it reads no configuration
and calls nothing: the DAG file reads its parse-time options through `parse_time_seconds` and
`optional_option`, and tasks read theirs through the `pipeline_option` macro when they run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.amazon.aws.triggers.step_function import StepFunctionsExecutionCompleteTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

OPTIONS_SECTION = "pipeline"  # stacks/orchestration/mwaa_environment.py sets pipeline.* on the environment
# Polls past the state machine's own timeout before the task gives up: Step Functions ends a
# timed-out execution as TIMED_OUT, which the provider's waiter does not treat as final.
GRACE_POLLS = 2
EXECUTION_NAME_MAX = 80  # Step Functions: 1-80 characters; [0-9A-Za-z_-] only, or CloudWatch logging breaks
_NOT_IN_EXECUTION_NAMES = re.compile(r"[^0-9A-Za-z_-]+")
SNS_SUBJECT_MAX = 100
OUTPUT_XCOM = "output"  # a stage task's XCom key for its execution's output (parsed JSON)
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")
VALIDATION_FAILED = "ValidationFailed"  # stacks/transform_stage.py: the check refused the run's output
# Attempts of one stage in one DAG run at most (each a re-run after the previous ended unsuccessfully).
MAX_STAGE_ATTEMPTS = 50
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """A pipeline stage; `name` is PipelineStage.name in the CDK app (stacks/pipeline/pipeline_stack.py)."""

    name: str
    doc_md: str

    @property
    def state_machine_arn_option(self) -> str:
        return f"{self.name}_state_machine_arn"

    @property
    def timeout_option(self) -> str:
        return f"{self.name}_timeout_seconds"


STAGES: tuple[Stage, ...] = (
    Stage(
        name="admission",
        doc_md="Runs the admission stage state machine: every file under the incoming prefix is moved into "
        "this run's landing folder or quarantined with a reason. Its summary is the task's `output` XCom.",
    ),
    Stage(name="crawl", doc_md="Runs the crawl stage state machine: the Glue crawler over the landing prefix."),
    Stage(
        name="transform",
        doc_md="Runs the transform stage state machine: the Glue job over this run's landing folder, then the "
        "results check.",
    ),
)
# The stage whose summary says whether the later stages have anything to do (`admitted`).
ADMISSION_STAGE = "admission"


# -- configuration options ----------------------------------------------------------------------


def _described(key: str) -> str:
    return f"Airflow configuration option {OPTIONS_SECTION}.{key} (AIRFLOW__{OPTIONS_SECTION.upper()}__{key.upper()})"


class PipelineOptionMissing(AirflowFailException):
    """A `pipeline.*` option the task needs is not set: fails the task at once, without retries."""


class PipelineOptionInvalid(ValueError):
    """A parse-time `pipeline.*` option has a value the DAG cannot use: an import error of one line."""


def pipeline_option(key: str) -> str:
    """A `pipeline.<key>` option (a user macro: read when a task renders its fields)."""
    value = conf.get(OPTIONS_SECTION, key, fallback=None)
    if not value:
        raise PipelineOptionMissing(
            f"{_described(key)} is not set: the Orchestration stack sets it on the MWAA environment"
        )
    return str(value)


def optional_option(key: str) -> str | None:
    """A parse-time option that may be missing (then None)."""
    return conf.get(OPTIONS_SECTION, key, fallback=None) or None


def parse_time_seconds(key: str, *, default: int) -> int:
    """A whole number of seconds > 0 read when the DAG is parsed; `default` when the option is missing."""
    return int(_parse_seconds(key, default, int, "must be a whole number of seconds > 0"))


def parse_poll_seconds(key: str, *, default: float) -> float:
    """Seconds between polls (> 0, decimals allowed: a local run polls every 0.2 s) read when the DAG
    is parsed; `default` when the option is missing."""
    return _parse_seconds(key, default, float, "must be a number of seconds > 0, such as 60 or 0.2")


def _parse_seconds(key: str, default: float, number: Callable[[str], float], allowed: str) -> float:
    value = conf.get(OPTIONS_SECTION, key, fallback=None)
    if value is None or value == "":
        return default
    try:
        seconds = number(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds < math.inf:  # also refuses nan
        raise PipelineOptionInvalid(f"{_described(key)} = {value!r}: {allowed}")
    return seconds


# -- the run, execution names and waits ---------------------------------------------------------


def _named(dag_id: str, run_id: str, suffix: str) -> str:
    """The run id made readable, a hash of the exact DAG and run id, and `suffix`: 1-80 of [0-9A-Za-z_-].

    Every run of characters outside [0-9A-Za-z_-] in the run id becomes one '-'; the hash keeps
    different runs (and DAGs) apart whatever the readable part keeps.
    """
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:16]
    room = EXECUTION_NAME_MAX - len(digest) - len(suffix) - 2
    readable = _NOT_IN_EXECUTION_NAMES.sub("-", run_id).strip("-")[:room].rstrip("-")
    return "-".join(part for part in (readable, digest, suffix) if part)


def run_name(dag_id: str, run_id: str) -> str:
    """The pipeline run of a DAG run: names its landing folder (`run=<name>`) and its admitted files.

    The same for every stage and every try of the DAG run (the pipeline state machine names its
    runs `<execution name>-r<round>`); 1-80 characters of [0-9A-Za-z_-], as the admission stage wants.
    """
    return _named(dag_id, run_id, "")


def pipeline_run(dag_id: str, run_id: str) -> dict[str, str]:
    """The `run` every stage of a DAG run gets, as the pipeline state machine's round gives it (a user macro).

    {"name", "key": MD5 hex of the name, "landing_path": s3://<landing bucket>/<landing prefix>run=<name>/};
    reads the `landing_bucket` and `landing_prefix` options, so it fails naming whichever is missing.
    """
    name = run_name(dag_id, run_id)
    bucket, prefix = pipeline_option("landing_bucket"), pipeline_option("landing_prefix")
    return {
        "name": name,
        "key": hashlib.md5(name.encode()).hexdigest(),  # noqa: S324 - a name, not a secret
        "landing_path": f"s3://{bucket}/{prefix}run={name}/",
    }


def stage_input(stage: str) -> dict[str, Any]:
    """The templated input of a stage execution: what started it, and the DAG run's pipeline run.

    The same on every try of the DAG run: Step Functions treats a repeated start as the same one.
    """
    run = "pipeline_run(dag.dag_id, run_id)"
    return {
        "trigger": {"source": "airflow", "dag_id": "{{ dag.dag_id }}", "run_id": "{{ run_id }}", "stage": stage},
        "run": {field: f"{{{{ {run}['{field}'] }}}}" for field in ("name", "key", "landing_path")},
    }


def stage_execution_name(dag_id: str, run_id: str, stage: str, attempt: int = 0) -> str:
    """The execution name of `stage` in a DAG run, per attempt, so no retry can start a second execution.

    The run id made readable (every run of characters outside [0-9A-Za-z_-] becomes one '-'), a hash
    of the exact DAG and run id (so different runs never share a name), then the stage (attempt 0)
    or `<attempt>-<stage>` (the execution a re-run starts after attempt - 1 ended in the stage's own
    Fail state, as the pipeline's redrive names its new child): 1-80 characters of [0-9A-Za-z_-].
    """
    if attempt < 0:
        raise ValueError(f"attempt = {attempt}: must be 0 or more")
    stage_part = _NOT_IN_EXECUTION_NAMES.sub("-", stage).strip("-")[:24] or "stage"
    return _named(dag_id, run_id, f"{attempt}-{stage_part}" if attempt else stage_part)


def stage_wait_limit(timeout_seconds: int, delay_seconds: float) -> int:
    """Polls to wait for a stage: as long as its state machine may run, plus GRACE_POLLS."""
    return math.ceil(timeout_seconds / delay_seconds) + GRACE_POLLS


# -- failures and the notice --------------------------------------------------------------------


class StageFailed(AirflowFailException):
    """A stage execution ended FAILED, TIMED_OUT or ABORTED, or outlived the task's wait limit."""

    def __init__(self, stage: str, status: str, error: str, cause: str, execution_arn: str) -> None:
        super().__init__(stage, status, error, cause, execution_arn)  # all in args: picklable
        self.stage, self.status, self.error, self.cause, self.execution_arn = stage, status, error, cause, execution_arn

    def __str__(self) -> str:
        return f"Stage {self.stage} {self.status}: {self.error}: {self.cause} (execution {self.execution_arn})"


def _error_cause_execution(exception: object) -> tuple[str, str, str | None]:
    if isinstance(exception, StageFailed):
        return exception.error, exception.cause, exception.execution_arn
    if isinstance(exception, BaseException):
        return type(exception).__name__, str(exception), None
    return "Unknown", "the task failed without an exception (e.g. marked failed, or its worker was lost)", None


def failure_subject(ti: Any, exception: object = None) -> str:
    """The pipeline state machine's failure subject, for a task of this DAG (a user macro)."""
    error = _error_cause_execution(exception)[0]
    return f"Pipeline FAILED at stage {ti.task_id}: {error}"[:SNS_SUBJECT_MAX]


def failure_message(ti: Any, exception: object = None) -> str:
    """The pipeline state machine's failure notice, field for field; the DAG run stands in for its execution."""
    error, cause, execution = _error_cause_execution(exception)
    message = {
        "status": "FAILED",
        "stage": ti.task_id,
        "error": error,
        "cause": cause,
        "stage_execution": execution,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "resume": resume_advice(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, error=error),
    }
    return json.dumps(message)


def resume_advice(*, dag_id: str, run_id: str, task_id: str, error: str) -> dict[str, Any]:
    """What finishes the DAG run's work (the notice's `resume`): clear the failed task; after ValidationFailed, replay.

    The command is the one lambda/failure_notice/handler.py gives for a stage execution the DAG
    started (a test pins the two). Not a new DAG run: it is a new pipeline run, and this run's
    admitted files are in this run's landing folder, where a new run never looks.
    """
    if error == VALIDATION_FAILED:
        return {
            "action": "replay",
            "command": None,
            "why": f"the check refused the run's rows: clearing {task_id!r} would run the job over the same rows and "
            f"be refused again. `make why DAG_RUN='{run_id}'` prints the replay command and the quarantine record; "
            "after the replay publishes the run, mark the task success",
        }
    body = {
        "dag_run_id": run_id,
        "task_ids": [task_id],
        "include_downstream": True,
        "only_failed": True,
        "dry_run": False,
    }
    return {
        "action": "clear",
        "command": "aws mwaa invoke-rest-api --name <MwaaEnvironmentName output> --method POST "
        f"--path /dags/{dag_id}/clearTaskInstances --body '{json.dumps(body, separators=(',', ':'))}'",
        "why": f"after fixing the cause, clear {task_id!r} (the Airflow UI's Clear, or this command): its new try "
        "resumes the stage (redrives its execution, or starts the next attempt when the stage ended in its own "
        "Fail state); the tasks before it are not run again and the run keeps its files and partition",
    }


def failure_notice() -> SnsNotifier:
    """on_failure_callback: the notice on the pipeline's topic. One per task: a notifier renders in place.

    Without `pipeline.notification_topic_arn` it raises PipelineOptionMissing naming the option,
    which Airflow logs with the task ("Failed to send notification").
    """
    return SnsNotifier(
        aws_conn_id="aws_default",
        target_arn="{{ pipeline_option('notification_topic_arn') }}",
        subject="{{ failure_subject(ti, exception) }}",
        message="{{ failure_message(ti, exception) }}",
    )


# -- after admission ----------------------------------------------------------------------------


def anything_admitted(summary: Any) -> bool:
    """ShortCircuitOperator's callable: go on to the later stages only if admission admitted a file.

    `summary` is the admission stage's output. False, when nothing was admitted (nothing under
    incoming, or every file quarantined), skips the later stages, as the pipeline state machine's
    "Proceed after admission?" does: there is no new file to crawl or transform.
    """
    if not isinstance(summary, dict) or not isinstance(summary.get("admitted"), int):
        raise AirflowFailException(f"the admission stage's output has no count 'admitted': {summary!r}")
    run, admitted, quarantined = summary.get("run"), summary["admitted"], summary.get("quarantined", 0)
    if admitted > 0:
        log.info("Run %s: %d file(s) admitted, %d quarantined: the later stages run", run, admitted, quarantined)
        return True
    log.warning(
        "Run %s: nothing admitted (%d quarantined, by reason %s): SKIPPING the later stages, nothing new to process",
        run,
        quarantined,
        summary.get("by_reason", {}),
    )
    return False


MACROS = {
    "pipeline_option": pipeline_option,
    "pipeline_run": pipeline_run,
    "stage_execution_name": stage_execution_name,
    "failure_subject": failure_subject,
    "failure_message": failure_message,
}


# -- the stage operator -------------------------------------------------------------------------


def _execution_arn(state_machine_arn: str, name: str) -> str:
    prefix, _, machine = state_machine_arn.partition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


class StageExecutionOperator(StepFunctionStartExecutionOperator):
    """StepFunctionStartExecutionOperator for one stage, safe under Airflow retries, and resuming on a re-run.

    Its XCom is the execution ARN; a stage that succeeded also pushes its output (parsed) as the
    `output` XCom, so a later task can read, say, how many files admission admitted.

    Each try looks at the stage's latest attempt in this DAG run (`stage_execution_name`, attempt
    0, 1, ...): none yet, it starts attempt 0; running, it waits for it; succeeded, it succeeds
    without starting anything. Ended FAILED, TIMED_OUT or ABORTED, the task failed with the
    stage's error and no Airflow retries (StageFailed), so a new try means the task was cleared (or
    a try broke before it saw the end): it resumes the stage. It redrives that execution when
    redriving resumes the work (the execution stopped in a step that failed; RedriveExecution runs
    the unsuccessful step again, keeping the history and results of the steps that succeeded);
    when the stage ended in its own Fail state (GlueJobFailed, CrawlerFailed, ...), a redrive
    would enter that Fail state and fail again at once, so it starts the next attempt instead,
    under the next name, as the pipeline's redrive starts a new child. Nothing else redrives a
    stage execution a DAG run started: the notices and `make why` advise clearing the task.
    """

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Context) -> str:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        attempt, execution = self._latest_attempt(dag_id, run_id)
        if execution is None:
            self.name = stage_execution_name(dag_id, run_id, self.stage, attempt)
            return super().execute(context)  # starts it and defers until it ends
        arn, status = execution["executionArn"], execution["status"]
        if status == "SUCCEEDED":
            return self._succeeded(context, execution)
        if status in UNSUCCESSFUL and self._redrive_resumes(execution):
            self.log.info("Stage %s: %s ended %s in a failed step; redriving it", self.stage, arn, status)
            self.name, self.is_redrive_execution = execution["name"], True
            return super().execute(context)  # RedriveExecution (the provider's), then defers
        if status in UNSUCCESSFUL:
            self.name = stage_execution_name(dag_id, run_id, self.stage, attempt + 1)
            self.log.info("Stage %s: %s ended %s in its Fail state; starting %s", self.stage, arn, status, self.name)
            return super().execute(context)
        self.log.info("Stage %s: execution %s is %s; following it", self.stage, arn, status)
        self.defer(
            trigger=StepFunctionsExecutionCompleteTrigger(
                execution_arn=arn,
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                botocore_config=self.botocore_config,
                verify=self.verify,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.waiter_max_attempts * self.waiter_delay),
        )

    def _latest_attempt(self, dag_id: str, run_id: str) -> tuple[int, dict[str, Any] | None]:
        """(attempt, its DescribeExecution) of the latest attempt; (0, None) when none was started."""
        latest: tuple[int, dict[str, Any] | None] = (0, None)
        for attempt in range(MAX_STAGE_ATTEMPTS):
            name = stage_execution_name(dag_id, run_id, self.stage, attempt)
            try:
                latest = (attempt, self.hook.describe_execution(_execution_arn(self.state_machine_arn, name)))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                    raise
                return latest
        raise AirflowFailException(
            f"stage {self.stage}: {MAX_STAGE_ATTEMPTS} attempts in DAG run {run_id}; start a new DAG run"
        )

    def _redrive_resumes(self, execution: dict[str, Any]) -> bool:
        """Redrivable (Standard, within 14 days) and stopped in a step that failed, not in a Fail state."""
        if execution.get("redriveStatus", "REDRIVABLE") != "REDRIVABLE":
            return False
        events = self.hook.conn.get_execution_history(
            executionArn=execution["executionArn"], reverseOrder=True, maxResults=20
        )["events"]
        latest_first = sorted(events, key=lambda event: event["id"], reverse=True)  # whatever order came back
        entered = next((event["type"] for event in latest_first if event["type"].endswith("StateEntered")), None)
        return entered not in (None, "FailStateEntered")

    # The provider annotates None but returns the execution ARN (the task's XCom); so does this.
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:  # type: ignore[override]
        validated = validate_execute_complete_event(event)
        execution_arn: str = validated["execution_arn"]
        execution = self.hook.describe_execution(execution_arn)  # its output, or its error and cause
        if execution["status"] == "SUCCEEDED":
            return self._succeeded(context, execution)
        if execution["status"] == "RUNNING":
            raise StageFailed(
                stage=self.stage,
                status="RUNNING",
                error="WaitLimitExceeded",
                cause=f"still running after {self.waiter_max_attempts} polls {self.waiter_delay} s apart "
                f"(its state machine's timeout plus {GRACE_POLLS} polls)",
                execution_arn=execution_arn,
            )
        raise self._stage_failed(execution)

    def _succeeded(self, context: Context, execution: dict[str, Any]) -> str:
        """The execution ARN (the task's XCom); its output goes to the `output` XCom, for later tasks."""
        self.log.info("Stage %s succeeded: %s", self.stage, execution["executionArn"])
        output = execution.get("output")
        context["ti"].xcom_push(key=OUTPUT_XCOM, value=json.loads(output) if output else None)
        return str(execution["executionArn"])

    def _stage_failed(self, execution: dict[str, Any]) -> StageFailed:
        return StageFailed(
            stage=self.stage,
            status=execution["status"],
            error=execution.get("error", "-"),
            cause=execution.get("cause", "-"),
            execution_arn=execution["executionArn"],
        )


class IncomingDataSensor(S3KeySensor):
    """`S3KeySensor` for which a day without files is not a failure: its timeout skips the run.

    Only the timeout: an error (the bucket cannot be read, an option is missing) still fails the
    task and sends the FAILED notice. `soft_fail` would skip those too, and hide them.
    """

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as timeout:
            raise AirflowSkipException(
                f"no file matching {self.bucket_key} arrived within {timedelta(seconds=self.timeout)}: "
                "nothing to run; the next scheduled run looks again"
            ) from timeout
