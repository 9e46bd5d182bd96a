"""Glue pipeline, outer loop: wait for incoming data, then run each stage state machine in order.

The stage state machines (the inner loop) are the ones EventBridge runs through the pipeline
state machine; this DAG runs the same machines one task per stage, with the same input: what
started it, and the run (`{"trigger": {...}, "run": {"name", "key", "landing_path"}}`; one run
per DAG run, named from the DAG and run id). Admission moves the incoming files into the run's
landing folder; when it admitted none, `proceed_after_admission` skips crawl and transform, as the
pipeline state machine does. Nothing here calls AWS or the network when the file is parsed:

- the state machine ARNs, the incoming and landing locations and the notification topic are Airflow
  configuration options that the Orchestration stack sets on the MWAA environment (section
  `pipeline`, also readable as `AIRFLOW__PIPELINE__<KEY>`); templated fields read them when a task
  runs, and a task whose option is missing fails at once, naming it;
- the schedule and the stage timeouts are read from the same local configuration at parse time
  (no network): the schedule is the pipeline's EventBridge cron, and the wait limit of each task
  must be known when the task is built.

A failed task is reported like a failed run of the pipeline state machine: the notice "Pipeline
FAILED at stage <stage>" with the stage's error and cause, and `resume`, goes to the pipeline's SNS
topic. Operator, names and notice: glue_pipeline_support.py, deployed beside this file.

After a stage failed and its cause is fixed, **clear the failed task** (with downstream; the notice's
`resume.command`): the same pipeline run resumes at that stage (its execution redriven, or its next
attempt started when it ended in its own Fail state). Not a new DAG run: that is a new pipeline run,
which never looks in this run's landing folder. After ValidationFailed, replay the run (`make why
DAG_RUN=<run id>`), then mark the task success. Never redrive by hand a stage execution the DAG started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, XComArg, chain
from glue_pipeline_support import (
    ADMISSION_STAGE,
    MACROS,
    OUTPUT_XCOM,
    STAGES,
    IncomingDataSensor,
    StageExecutionOperator,
    anything_admitted,
    failure_notice,
    optional_option,
    parse_poll_seconds,
    parse_time_seconds,
    stage_input,
    stage_wait_limit,
)

# Seconds between DescribeExecution polls while a stage runs (the operator's default).
WAITER_DELAY_SECONDS = parse_poll_seconds("waiter_delay_seconds", default=60)
# Only used when the stack's options are missing; the ARNs are missing then too, and every
# task fails at once naming the option.
FALLBACK_STAGE_TIMEOUT_SECONDS = 2 * 3600
SENSOR_POKE_INTERVAL = timedelta(minutes=5)
SENSOR_TIMEOUT = timedelta(hours=6)

with DAG(
    dag_id="glue_pipeline",
    description="Outer loop: wait for incoming data, then run the Glue pipeline's stage state machines.",
    doc_md=__doc__,
    # The config's EventBridge schedule, as the stack sets it; without it, runs start only by hand.
    schedule=optional_option("schedule"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # two runs would race for the one crawler and job
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    user_defined_macros=MACROS,
    tags=["glue-pipeline", "outer-loop", "step-functions"],
) as dag:
    wait_for_data = IncomingDataSensor(
        task_id="wait_for_data",
        doc_md="Waits (deferred, in the triggerer) until a .csv file exists under the incoming prefix; "
        "a day without one skips the run (not a failure, no notice).",
        bucket_name="{{ pipeline_option('landing_bucket') }}",
        bucket_key="{{ pipeline_option('incoming_prefix') }}*.csv",
        wildcard_match=True,
        deferrable=True,
        poke_interval=SENSOR_POKE_INTERVAL.total_seconds(),
        timeout=SENSOR_TIMEOUT.total_seconds(),
        on_failure_callback=failure_notice(),
    )
    stage_tasks = {}
    for stage in STAGES:
        timeout_seconds = parse_time_seconds(stage.timeout_option, default=FALLBACK_STAGE_TIMEOUT_SECONDS)
        attempts = stage_wait_limit(timeout_seconds, WAITER_DELAY_SECONDS)
        stage_tasks[stage.name] = StageExecutionOperator(
            task_id=stage.name,
            stage=stage.name,
            doc_md=stage.doc_md,
            state_machine_arn=f"{{{{ pipeline_option('{stage.state_machine_arn_option}') }}}}",
            name=f"{{{{ stage_execution_name(dag.dag_id, run_id, '{stage.name}') }}}}",
            state_machine_input=stage_input(stage.name),  # the same on every try
            deferrable=True,
            waiter_delay=WAITER_DELAY_SECONDS,
            waiter_max_attempts=attempts,
            execution_timeout=timedelta(seconds=(attempts + 1) * WAITER_DELAY_SECONDS),
            on_failure_callback=failure_notice(),
        )
    admission = stage_tasks.pop(ADMISSION_STAGE)
    # Nothing admitted: the later stages are marked skipped and the DAG run succeeds.
    proceed_after_admission = ShortCircuitOperator(
        task_id="proceed_after_admission",
        doc_md="Skips crawl and transform when admission admitted no file (its log says what was quarantined).",
        python_callable=anything_admitted,
        op_kwargs={"summary": XComArg(admission, key=OUTPUT_XCOM)},
        on_failure_callback=failure_notice(),
    )
    chain(wait_for_data, admission, proceed_after_admission, *stage_tasks.values())
