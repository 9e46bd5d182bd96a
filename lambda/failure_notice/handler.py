"""One notice for an execution of the pipeline that ended unsuccessfully (FAILED, TIMED_OUT, ABORTED).

Event: EventBridge's "Step Functions Execution Status Change" (source aws.states), whose detail holds
executionArn, status, error and cause. The state the execution stopped in is read from the end of
its history (the event does not name it); a stage execution's own error and cause are read from the
cause of a failed `Run <stage> stage` task (startExecution.sync:2 reports the child's
DescribeExecution JSON there). Publishes to TOPIC_ARN:

    subject  Pipeline FAILED at stage transform: GlueJobFailed
    message  {"status", "stage", "state", "error", "cause", "execution", "stage_execution"?, "run"?,
              "redrive_count", "resume": {"action": "redrive" | "replay" | "none", "command", "why"}}

`resume_advice` is the one place that decides whether redriving helps; `make why` reads it too.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import boto3

STAGE_STATE = re.compile(r"Run (?P<stage>[0-9A-Za-z_-]+) stage")  # stacks/pipeline/pipeline_workflow.py STAGE_STATE
TRIGGER_REJECTED = "InvalidTriggerEvent"
VALIDATION_FAILED = "ValidationFailed"  # stacks/pipeline/stages/transform_stage.py: the check refused the run's output
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")
AIRFLOW_SOURCE = "airflow"  # dags/glue_pipeline_support.py stage_input: trigger.source of the DAG's executions
AIRFLOW_AFTER_REPLAY = (
    ". Under Airflow the DAG run's transform task stays failed: after the replay mark it success "
    "(clearing it would run the job over the same rows and be refused again)"
)
SUBJECT_LIMIT = 100  # SNS subjects


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def stopped_in(events: list[dict[str, Any]]) -> str | None:
    """The state the execution was in when it ended: the last state entered."""
    for event in sorted(events, key=lambda e: e["id"], reverse=True):
        if event["type"].endswith("StateEntered"):
            return str(event["stateEnteredEventDetails"]["name"])
    return None


def stage_of(state: str | None, error: str | None) -> str:
    if error == TRIGGER_REJECTED:
        return "trigger"
    match = STAGE_STATE.fullmatch(state or "")
    return match["stage"] if match else (state or "unknown")


def resume_advice(
    *,
    status: str,
    state: str | None,
    error: str | None,
    execution: str,
    run: str | None = None,
    quarantine_location: str = "s3://<CuratedBucketName output>/quarantine/orders/",
    transform_machine: str | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What finishes the run's work: redrive it, replay its quarantined output, clear its Airflow task, or nothing.

    `trigger`: the failed execution's input `trigger`. A stage execution the DAG started
    (`"source": "airflow"`) is resumed by clearing its task, never redriven behind the DAG run.
    """
    airflow = isinstance(trigger, dict) and trigger.get("source") == AIRFLOW_SOURCE
    if airflow and error != VALIDATION_FAILED and status in UNSUCCESSFUL:
        return airflow_clear_advice(trigger or {})
    if error == TRIGGER_REJECTED:
        return {
            "action": "none",
            "command": None,
            "why": "the event was not a pipeline trigger: no lease was taken, no file moved; find who started it",
        }
    if error == VALIDATION_FAILED:
        record = f"{quarantine_location}run={run}.json" if run else f"{quarantine_location}run=<run>.json"
        command = (
            f"aws stepfunctions start-execution --state-machine-arn {transform_machine or '<transform state machine>'} "
            f"--name {run or '<run>'}-replay "
            f'--input "$(aws s3 cp {record} - | jq -c .replay_input)"'
        )
        return {
            "action": "replay",
            "command": command,
            "quarantine_record": record,
            "why": "the check refused the run's rows: a redrive runs the job over the same files and fails the "
            "same way. Read the quarantine record; to publish the run as it is, replay it (publishes once, "
            "deletes the record); to reject it, delete the record, then upload the fixed file as a new file "
            "(a replay is then refused: the rows are never published twice)"
            + (AIRFLOW_AFTER_REPLAY if airflow else ""),
        }
    if status not in UNSUCCESSFUL:
        return {"action": "none", "command": None, "why": f"the execution is {status}"}
    return {
        "action": "redrive",
        "command": f"aws stepfunctions redrive-execution --execution-arn {execution}",
        "why": f"after fixing the cause, a redrive re-enters {state or 'the state it stopped in'!r} with the "
        "run's recorded input: the stages before it are not run again, the run keeps its files and "
        "partition, and its stage is started under a new name. Within 14 days of the end",
    }


def airflow_clear_advice(trigger: dict[str, Any]) -> dict[str, Any]:
    """Clear the failed stage task of the DAG run (the same advice as the DAG's own notice, which a test pins).

    Airflow's clearTaskInstances through the MWAA REST proxy, with the tasks after it (they are
    upstream_failed) and dry_run off (the API's default is a dry run).
    """
    dag_id, run_id, stage = (str(trigger.get(key, f"<{key}>")) for key in ("dag_id", "run_id", "stage"))
    body = {
        "dag_run_id": run_id,
        "task_ids": [stage],
        "include_downstream": True,
        "only_failed": True,
        "dry_run": False,
    }
    return {
        "action": "clear",
        "command": "aws mwaa invoke-rest-api --name <MwaaEnvironmentName output> --method POST "
        f"--path /dags/{dag_id}/clearTaskInstances --body '{json.dumps(body, separators=(',', ':'))}'",
        "why": f"the DAG run {run_id} started this stage execution: after fixing the cause, clear its task "
        f"{stage!r} (the Airflow UI's Clear, or this command). The task resumes its stage: it redrives the "
        "execution when it stopped in a step that failed, or starts the next attempt when the stage ended in its "
        "own Fail state (a redrive would fail there again); the tasks before it are not run again, the run keeps "
        "its files and partition. Do not redrive it by hand: the DAG run would not know. A new DAG run is a new "
        "run: it would not find this run's files (they are in its landing folder, not under incoming/)",
    }


def notice(
    detail: dict[str, Any], events: list[dict[str, Any]], *, quarantine_location: str = ""
) -> tuple[str, dict[str, Any]]:
    """(subject, message) for the status-change event's `detail` and the end of the execution's history."""
    status, execution = detail["status"], detail["executionArn"]
    state = stopped_in(events)
    error, cause = detail.get("error") or status, detail.get("cause") or ""
    message: dict[str, Any] = {"status": status}
    described = _json(cause)
    run = None
    if error == "States.TaskFailed" and isinstance(described, dict) and "ExecutionArn" in described:
        # A stage execution failed: its own error and cause (an aborted one has neither: keep the caught).
        message["stage_execution"] = described["ExecutionArn"]
        error, cause = described.get("Error", error), described.get("Cause", cause)
        stage_input = described.get("Input")  # sync:2 gives it as JSON; a string would be parsed
        stage_input = _json(stage_input) if isinstance(stage_input, str) else stage_input
        if isinstance(stage_input, dict) and isinstance(stage_input.get("run"), dict):
            run = stage_input["run"].get("name")
    stage = stage_of(state, error)
    transform_machine = None
    if "stage_execution" in message:  # ...:execution:<machine>:<name> -> ...:stateMachine:<machine>
        arn = str(message["stage_execution"]).split(":")
        transform_machine = ":".join([*arn[:5], "stateMachine", arn[6]]) if len(arn) >= 8 else None
    message |= {
        "stage": stage,
        "state": state,
        "error": error,
        "cause": cause,
        "execution": execution,
        **({"run": run} if run else {}),
        "redrive_count": detail.get("redriveCount", 0),
        "resume": resume_advice(
            status=status,
            state=state,
            error=error,
            execution=execution,
            run=run,
            quarantine_location=quarantine_location,
            transform_machine=transform_machine,
            trigger=(_json(detail.get("input")) or {}).get("trigger"),  # the event carries the execution's input
        ),
    }
    subject = f"Pipeline {status} at stage {stage}: {error}"
    # SNS subjects: ASCII, at most 100 characters.
    return subject[: SUBJECT_LIMIT - 3] + "..." if len(subject) > SUBJECT_LIMIT else subject, message


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    detail = event.get("detail")
    if not isinstance(detail, dict) or "executionArn" not in detail or "status" not in detail:
        raise ValueError(f"event detail = {detail!r}: expected a Step Functions Execution Status Change")
    history = boto3.client("stepfunctions").get_execution_history(
        executionArn=detail["executionArn"], reverseOrder=True, maxResults=20
    )["events"]
    subject, message = notice(detail, history, quarantine_location=os.environ.get("QUARANTINE_LOCATION", ""))
    boto3.client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Subject=subject, Message=json.dumps(message))
    print(json.dumps({"notice": subject, "execution": detail["executionArn"]}))
    return {"subject": subject}
