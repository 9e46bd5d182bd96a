"""Glue pipeline, outer loop: wait for landing data, then run each stage state machine in order.

The stage state machines (the inner loop) are the ones EventBridge runs through the pipeline
state machine; this DAG runs the same machines one task per stage. Nothing here calls AWS or
the network when the file is parsed:

- the state machine ARNs and the landing location are Airflow configuration options that the
  Orchestration stack sets on the MWAA environment (section `pipeline`, also readable as
  `AIRFLOW__PIPELINE__<KEY>`); templated fields read them when a task runs;
- the stage timeouts are read from the same local configuration at parse time (no network),
  because the wait limit of each task must be known when the task is built.

A failed task is reported like a failed run of the pipeline state machine: the notice "Pipeline
FAILED at stage <stage>" with the stage's error and cause goes to the pipeline's SNS topic.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.amazon.aws.triggers.step_function import StepFunctionsExecutionCompleteTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.sdk import DAG, chain, conf
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from airflow.sdk import Context

OPTIONS_SECTION = "pipeline"  # stacks/mwaa_environment.py sets pipeline.* on the environment
# Seconds between DescribeExecution polls while a stage runs (the operator's default).
WAITER_DELAY_SECONDS = conf.getint(OPTIONS_SECTION, "waiter_delay_seconds", fallback=60)
# Polls past the state machine's own timeout before the task gives up: Step Functions ends a
# timed-out execution as TIMED_OUT, which the provider's waiter does not treat as final.
GRACE_POLLS = 2
# Only used when the stack's options are missing; the ARNs would be missing too, so no task
# could start anyway.
FALLBACK_STAGE_TIMEOUT_SECONDS = 2 * 3600
SENSOR_POKE_INTERVAL = timedelta(minutes=5)
SENSOR_TIMEOUT = timedelta(hours=6)
EXECUTION_NAME_MAX = 80  # Step Functions execution names: 1-80 characters


@dataclass(frozen=True, kw_only=True)
class Stage:
    """A pipeline stage; `name` is PipelineStage.name in the CDK app (stacks/pipeline_stack.py)."""

    name: str
    doc_md: str

    @property
    def state_machine_arn_option(self) -> str:
        return f"{self.name}_state_machine_arn"

    @property
    def timeout_option(self) -> str:
        return f"{self.name}_timeout_seconds"


STAGES: tuple[Stage, ...] = (
    Stage(name="crawl", doc_md="Runs the crawl stage state machine: the Glue crawler over the landing prefix."),
    Stage(name="transform", doc_md="Runs the transform stage state machine: the Glue job, then the results check."),
)


def pipeline_option(key: str) -> str:
    """A `pipeline.<key>` configuration option (a user macro: evaluated when a task renders)."""
    return conf.get(OPTIONS_SECTION, key)


def stage_execution_name(dag_id: str, run_id: str, stage: str) -> str:
    """The one execution name of `stage` in a DAG run, so no retry can start a second execution.

    Readable run id (characters Step Functions refuses become '-'), a hash of the exact DAG and
    run id (so different runs never share a name), and the stage; at most 80 characters.
    """
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^0-9A-Za-z_.+=@-]+", "-", run_id).strip("-")
    room = EXECUTION_NAME_MAX - len(digest) - len(stage) - 2
    return f"{readable[:room]}-{digest}-{stage}"


def stage_wait_limit(timeout_seconds: int, delay_seconds: int = WAITER_DELAY_SECONDS) -> int:
    """Polls to wait for a stage: as long as its state machine may run, plus GRACE_POLLS."""
    return math.ceil(timeout_seconds / delay_seconds) + GRACE_POLLS


class StageFailed(AirflowFailException):
    """A stage execution ended FAILED, TIMED_OUT or ABORTED, or outlived the task's wait limit."""

    def __init__(self, stage: str, status: str, error: str, cause: str, execution_arn: str) -> None:
        super().__init__(stage, status, error, cause, execution_arn)  # all in args: picklable
        self.stage, self.status, self.error, self.cause, self.execution_arn = stage, status, error, cause, execution_arn

    def __str__(self) -> str:
        return f"Stage {self.stage} {self.status}: {self.error}: {self.cause} (execution {self.execution_arn})"


def notify_failure(context: Context) -> None:
    """on_failure_callback: the pipeline state machine's failure notice, for a task of this DAG."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    ti, failure = context["ti"], context.get("exception")
    if isinstance(failure, StageFailed):
        error, cause, execution = failure.error, failure.cause, failure.execution_arn
    else:
        error, cause, execution = type(failure).__name__, str(failure), None
    # The pipeline state machine's notice, field for field; the DAG run stands in for its execution.
    message = {
        "status": "FAILED",
        "stage": ti.task_id,
        "error": error,
        "cause": cause,
        "stage_execution": execution,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
    }
    SnsHook(aws_conn_id="aws_default").publish_to_target(
        target_arn=pipeline_option("notification_topic_arn"),
        subject=f"Pipeline FAILED at stage {ti.task_id}: {error}"[:100],  # SNS subjects: 100 characters
        message=json.dumps(message),
    )


def _execution_arn(state_machine_arn: str, name: str) -> str:
    prefix, _, machine = state_machine_arn.partition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


class StageExecutionOperator(StepFunctionStartExecutionOperator):
    """StepFunctionStartExecutionOperator for one stage, safe under Airflow retries and re-runs.

    The execution name is fixed per DAG run and stage. If that execution exists already (a retry
    or a cleared task), the task follows it instead of starting another: it waits while the
    execution runs, succeeds if it succeeded, fails with its error otherwise. A stage that ends
    FAILED, TIMED_OUT or ABORTED fails the task at once, with the stage's error and cause and
    without Airflow retries: the same execution cannot run again under its name.
    """

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Context) -> str:
        try:
            return super().execute(context)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
        execution_arn = _execution_arn(self.state_machine_arn, self.name or "")
        self.log.info("Stage %s: execution %s exists already; following it", self.stage, execution_arn)
        execution = self.hook.describe_execution(execution_arn)
        if execution["status"] == "SUCCEEDED":
            return execution_arn
        if execution["status"] != "RUNNING":
            raise self._stage_failed(execution)
        self.defer(
            trigger=StepFunctionsExecutionCompleteTrigger(
                execution_arn=execution_arn,
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

    # The provider annotates None but returns the execution ARN (the task's XCom); so does this.
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:  # type: ignore[override]
        validated = validate_execute_complete_event(event)
        execution_arn: str = validated["execution_arn"]
        if validated["status"] == "success":
            self.log.info("Stage %s succeeded: %s", self.stage, execution_arn)
            return execution_arn
        execution = self.hook.describe_execution(execution_arn)
        if execution["status"] == "SUCCEEDED":
            return execution_arn
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

    def _stage_failed(self, execution: dict[str, Any]) -> StageFailed:
        return StageFailed(
            stage=self.stage,
            status=execution["status"],
            error=execution.get("error", "-"),
            cause=execution.get("cause", "-"),
            execution_arn=execution["executionArn"],
        )


with DAG(
    dag_id="glue_pipeline",
    description="Outer loop: wait for landing data, then run the Glue pipeline's stage state machines.",
    doc_md=__doc__,
    schedule="0 2 * * *",  # the EventBridge schedule's default; run one outer loop, not both
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # two runs would race for the one crawler and job
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": notify_failure,
    },
    user_defined_macros={"pipeline_option": pipeline_option, "stage_execution_name": stage_execution_name},
    tags=["glue-pipeline", "outer-loop", "step-functions"],
) as dag:
    wait_for_data = S3KeySensor(
        task_id="wait_for_data",
        doc_md="Waits (deferred, in the triggerer) until an object exists under the landing prefix.",
        bucket_name="{{ pipeline_option('landing_bucket') }}",
        bucket_key="{{ pipeline_option('landing_prefix') }}*",
        wildcard_match=True,
        deferrable=True,
        poke_interval=SENSOR_POKE_INTERVAL.total_seconds(),
        timeout=SENSOR_TIMEOUT.total_seconds(),
    )
    stage_tasks = []
    for stage in STAGES:
        timeout_seconds = conf.getint(OPTIONS_SECTION, stage.timeout_option, fallback=FALLBACK_STAGE_TIMEOUT_SECONDS)
        attempts = stage_wait_limit(timeout_seconds)
        stage_tasks.append(
            StageExecutionOperator(
                task_id=stage.name,
                stage=stage.name,
                doc_md=stage.doc_md,
                state_machine_arn=f"{{{{ pipeline_option('{stage.state_machine_arn_option}') }}}}",
                name=f"{{{{ stage_execution_name(dag.dag_id, run_id, '{stage.name}') }}}}",
                # The same input on every try: Step Functions treats a repeated start as the same one.
                state_machine_input={
                    "trigger": {
                        "source": "airflow",
                        "dag_id": "{{ dag.dag_id }}",
                        "run_id": "{{ run_id }}",
                        "stage": stage.name,
                    }
                },
                deferrable=True,
                waiter_delay=WAITER_DELAY_SECONDS,
                waiter_max_attempts=attempts,
                execution_timeout=timedelta(seconds=(attempts + 1) * WAITER_DELAY_SECONDS),
            )
        )
    chain(wait_for_data, *stage_tasks)
