"""`why` on every failing scenario: from the FAILED notice to the failed state and its log lines.

The runs are the local scenarios on in-process moto; `why` reads them through plain boto3 clients
(get_execution_history, get_job_run, get_crawler, filter_log_events), as it reads AWS.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest

from localrun.emulator import local_logs
from localrun.emulator.assembly import REGION
from localrun.emulator.deployment import LocalDeployment
from localrun.runner import run_scenario
from localrun.scenarios.catalogue import SCENARIOS
from ops import execution_history, why

FAILING = [name for name, s in SCENARIOS.items() if "FAILED" in s.expected_statuses]


def _clients() -> dict[str, Any]:
    return why.clients_for(boto3.Session(region_name=REGION))


def _all_lines(diagnosis: execution_history.Diagnosis) -> str:
    return "\n".join(line for excerpt in diagnosis.logs for line in excerpt.lines)


def test_every_failing_scenario_is_covered() -> None:
    assert set(FAILING) >= {"crawl_failed", "crawl_never_finishes", "job_failed", "job_timeout", "empty_output"}


@pytest.mark.parametrize("scenario", FAILING)
def test_why_finds_the_failed_state_and_its_log_lines(deployment: LocalDeployment, scenario: str) -> None:
    report = run_scenario(deployment, SCENARIOS[scenario])
    assert report["as_expected"]
    [notice] = [n["message"] for n in report["notifications"]]
    [run] = report["pipeline_runs"]

    arn = why.latest_unsuccessful(deployment.clients["stepfunctions"], deployment.state_machines["pipeline"])
    assert arn is not None and arn.endswith(f":{run['name']}")
    diagnosis = why.diagnose(_clients(), arn, region=REGION)

    # the same stage, error and cause the FAILED notice carries
    deepest = diagnosis.deepest()
    assert diagnosis.stage == notice["stage"]
    assert (deepest.end_error if deepest.caught else deepest.error) == notice["error"]
    assert execution_history.readable_cause(notice["cause"])[:100] in why.render(diagnosis)
    if notice["stage"] == "trigger":
        assert diagnosis.child is None  # nothing ran: the event itself was wrong
    else:  # followed into the stage's own execution, named after the pipeline run and the stage
        assert diagnosis.child is not None and diagnosis.child.name.endswith(f"-{notice['stage']}")
        # not caught: the pipeline failed in the stage's task, which a redrive re-enters
        assert not diagnosis.caught and diagnosis.error == "States.TaskFailed"
        assert diagnosis.failed_state == f"Run {notice['stage']} stage"
        assert diagnosis.child.logs, "no log excerpt for the failed stage"

    # the why, from CloudWatch Logs, under the groups AWS writes to
    groups = {excerpt.group for excerpt in deepest.logs}
    if notice["stage"] == "crawl":
        assert "/aws-glue/crawlers" in groups
    if notice["stage"] == "transform":
        assert groups & {"/aws-glue/jobs/error", "/aws-glue/jobs/output"}
    if notice["error"] == "CrawlerTimedOut":  # the crawl never ended: it is still running, and says so
        assert any("crawler RUNNING" in excerpt.note for excerpt in deepest.logs)
    elif notice["stage"] != "trigger":
        assert execution_history.readable_cause(notice["cause"]) in _all_lines(deepest)
    if notice["error"] == "ValidationFailed":
        [check] = [e for e in deepest.logs if e.group.startswith("/aws/lambda/")]
        assert check.lines[0].split(" ", 1)[1].startswith("START RequestId: ")
        assert check.lines[-1].split(" ", 1)[1].startswith("REPORT RequestId: ")

    # what to do next, as the notice says it: redrive (Standard, failed minutes ago) unless the
    # check refused the rows, which a redrive would repeat: then the replay and its record
    if notice["error"] == "ValidationFailed":
        assert diagnosis.redrive is None and diagnosis.rerun == notice["resume"]["command"]
        assert f"run={notice['run']}.json" in diagnosis.redrive_note and "replay_input" in diagnosis.rerun
        assert "redrive-execution" not in why.render(diagnosis)
    elif notice["stage"] == "trigger":  # nothing ran: nothing to resume
        assert diagnosis.redrive is None and notice["resume"]["action"] == "none"
    else:
        assert diagnosis.redrive == f"aws stepfunctions redrive-execution --execution-arn {arn}"
        assert diagnosis.redrive == notice["resume"]["command"] and diagnosis.rerun == ""
    # no "start a new run with the same input": it would find nothing and leave the run's files unpublished
    assert "describe-execution" not in why.render(diagnosis)


def test_aws_mode_finds_the_latest_failure_from_the_stack_outputs(deployment: LocalDeployment) -> None:
    run_scenario(deployment, SCENARIOS["job_failed"])
    # What `make deploy` leaves behind, as far as `why` is concerned: the stack output.
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"PipelineStateMachineArn": {"Value": deployment.state_machines["pipeline"]}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="GluePipeline-sandbox-Pipeline", TemplateBody=json.dumps(template)
    )
    out = io.StringIO()
    with redirect_stdout(out):  # boto3's default credential chain, as on AWS
        status = why.main(["--stage", "sandbox", "--region", REGION])
    text = out.getvalue()
    assert status == 0, text
    [failed] = deployment.executions("transform")
    assert text.startswith("✗ run ") and "at stage transform: GlueJobFailed" in text.splitlines()[0]
    assert failed["name"] in text and "/aws-glue/jobs/error" in text
    assert "aws stepfunctions redrive-execution --execution-arn " in text

    by_name = io.StringIO()
    [pipeline] = deployment.executions("pipeline")
    with redirect_stdout(by_name):
        assert why.main(["--stage", "sandbox", "--region", REGION, "--execution", pipeline["name"]]) == 0
    assert by_name.getvalue() == text


def test_nothing_to_diagnose_after_a_happy_run(deployment: LocalDeployment) -> None:
    run_scenario(deployment, SCENARIOS["happy_path"])
    text, status = why.why(_clients(), region=REGION, state_machine_arn=deployment.state_machines["pipeline"])
    assert status == 1 and text.startswith("no failed, timed-out or aborted execution")


def test_the_state_machines_own_log_group_is_read_for_the_execution(deployment: LocalDeployment) -> None:
    sfn, logs = deployment.clients["stepfunctions"], boto3.client("logs", region_name=REGION)
    group = "/aws/vendedlogs/states/pipeline-logs"
    logs.create_log_group(logGroupName=group)
    machine = sfn.create_state_machine(
        name="logged",
        definition=json.dumps({"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom"}}}),
        roleArn="arn:aws:iam::123456789012:role/r",
        loggingConfiguration={
            "level": "ALL",
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"}}
            ],
        },
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="one")["executionArn"]
    other = arn.replace(":one", ":two")
    for execution in (arn, other):  # as Step Functions logs: one JSON event per history event
        event = {"type": "ExecutionFailed", "execution_arn": execution, "details": {"error": "Boom"}}
        local_logs.put_lines(group, "states/logged/2026-11-26/abc", [json.dumps(event)])
    diagnosis = why.diagnose(_clients(), deployment.wait(arn)["executionArn"], region=REGION)
    [own] = [e for e in diagnosis.logs if e.group == group]
    assert len(own.lines) == 1 and arn in own.lines[0] and other not in own.lines[0]
    assert (diagnosis.failed_state, diagnosis.error) == ("Boom", "Boom")


def test_console_links_escape_log_groups_as_the_console_does() -> None:
    link = execution_history.log_console("eu-west-1", "/aws-glue/jobs/error", "jr_1")
    assert link.endswith("#logsV2:log-groups/log-group/$252Faws-glue$252Fjobs$252Ferror/log-events/jr_1")
    assert why.execution_arn_for("arn:aws:states:r:1:stateMachine:m", "run-1") == "arn:aws:states:r:1:execution:m:run-1"


def _start_stage(deployment: LocalDeployment, stage: str, name: str, run: dict[str, Any]) -> str:
    """What a DAG task does: start its stage's execution under the name the DAG gives it."""
    sfn = deployment.clients["stepfunctions"]
    arn = sfn.start_execution(
        stateMachineArn=deployment.state_machines[stage],
        name=name,
        input=json.dumps({"trigger": {"source": "airflow"}, "run": run}),
    )["executionArn"]
    deployment.wait(arn)
    return str(arn)


def test_mwaa_mode_finds_the_failed_task_of_a_dag_run_and_its_stage_execution(deployment: LocalDeployment) -> None:
    stages, name_of = why.dag_stages()
    assert stages == ["admission", "crawl", "transform"]
    dag_id, run_id = "glue_pipeline", "scheduled__2026-11-24T02:00:00+00:00"
    run = {"name": "dagrun-r1", "key": "0" * 32, "landing_path": f"s3://{deployment.landing_bucket}/landing/run=x/"}
    deployment.faults.crawl_outcome = "FAILED"
    for stage in ("admission", "crawl"):  # what the DAG ran before the crawl task failed
        _start_stage(deployment, stage, name_of(dag_id, run_id, stage), run)
    text, status = why.why_dag_run(
        _clients(),
        region=REGION,
        dag_id=dag_id,
        run_id=run_id,
        state_machines=deployment.state_machines,
        environment="GluePipeline-dev-Mwaa",
    )
    assert status == 0
    assert "task admission: stage execution SUCCEEDED" in text and "task crawl: stage execution FAILED" in text
    assert f"airflow-GluePipeline-dev-Mwaa-Task, stream dag_id={dag_id}/run_id={run_id}/task_id=crawl/" in text
    assert "CrawlerFailed" in text  # the stage execution's own diagnosis follows
    assert "task transform" not in text


def test_mwaa_mode_names_the_task_that_never_started(deployment: LocalDeployment) -> None:
    dag_id, run_id = "glue_pipeline", "manual__2026-11-26T03:00:00+00:00"
    text, status = why.why_dag_run(
        _clients(), region=REGION, dag_id=dag_id, run_id=run_id, state_machines=deployment.state_machines
    )
    assert status == 0 and "task admission: never started its execution" in text
    assert "airflow-<environment>-Task" in text
