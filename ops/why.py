"""Why did a pipeline run fail? One command, from the execution history to the log lines.

    python -m ops.why [--stage dev] [--execution ARN|NAME] [--region R] [--profile P]
    python -m ops.why --local --scenario job_failed [--assembly cdk.out.local]

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
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ops.execution_history import (
    REDRIVE_WINDOW,
    UNSUCCESSFUL,
    Diagnosis,
    child_execution,
    console,
    history,
    json_value,
    locate_failure,
    log_console,
    readable_cause,
    tasks_of,
)
from ops.failure_logs import attempt, gather_logs, one_line
from stacks import pipeline_contract as contract
from stacks.common.paths import REPO_ROOT


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
    events = attempt(diagnosis, "the execution history", lambda: history(sfn, execution_arn)) or []
    attempt(diagnosis, "the failed state", lambda: locate_failure(events, diagnosis))
    child = child_execution(diagnosis.cause)
    if child and depth < 3:
        diagnosis.child = attempt(
            diagnosis,
            f"the stage's execution {child}",
            lambda: diagnose(clients, child, region=region, depth=depth + 1),
        )
    if diagnosis.child is None:
        gather_logs(clients, events, diagnosis)
    if diagnosis.stage is None and depth == 0:
        diagnosis.stage = _notice_module().stage_of(diagnosis.failed_state, diagnosis.deepest().error)
    attempt(diagnosis, "whether it can be redriven", lambda: _redrive(sfn, execution, diagnosis))
    return diagnosis


def _notice_module() -> Any:
    """lambda/failure_notice/handler.py (a deployment asset, not a package): the notice's own advice."""
    import importlib.util

    path = REPO_ROOT / "lambda" / "failure_notice" / "handler.py"
    spec = importlib.util.spec_from_file_location("failure_notice_handler", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_of(sfn: Any, diagnosis: Diagnosis) -> str | None:
    """The run a failed stage execution worked on (its input's run.name)."""
    if diagnosis.child is None:
        return None
    stage_input = json_value(sfn.describe_execution(executionArn=diagnosis.child.execution_arn).get("input"))
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
    own = started_with if isinstance(started_with := json_value(execution.get("input")), dict) else {}
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
    name = contract.state_machine_output(contract.PIPELINE)
    for output in outputs:
        if output["OutputKey"] == name:
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack} has no output {name}")


def dashboard_link(cloudformation: Any, stage: str, region: str) -> str | None:
    """The console URL of the stage's dashboard, from the Pipeline stack's output, if it has one."""
    try:
        outputs = cloudformation.describe_stacks(StackName=f"GluePipeline-{stage}-Pipeline")["Stacks"][0]["Outputs"]
    except Exception:  # noqa: BLE001 - the link is a courtesy: no stack or no access, no link
        return None
    name = next((o["OutputValue"] for o in outputs if o["OutputKey"] == contract.DASHBOARD_OUTPUT), None)
    return name and f"{console(region)}/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


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
def stage_state_machines(cloudformation: Any, stage: str) -> dict[str, str]:
    """The stage state machines the DAG runs, from the Pipeline stack's outputs."""
    stack = f"GluePipeline-{stage}-Pipeline"
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    }
    return {name: outputs[contract.state_machine_output(name)] for name in contract.STAGES}


class ExecutionNamer(Protocol):
    """The DAG's `stage_execution_name(dag_id, run_id, stage, attempt=0)`."""

    def __call__(self, dag_id: str, run_id: str, stage: str, attempt: int = 0) -> str: ...


def dag_stages() -> tuple[list[str], ExecutionNamer]:
    """The DAG's stages in order and its execution-naming function, from the deployed DAG folder."""
    dags = str(REPO_ROOT / "dags")
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
        for try_number in itertools.count():  # the latest attempt: a cleared task may have started the next
            candidate = execution_arn_for(state_machines[stage], name_of(dag_id, run_id, stage, try_number))
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
    if link := dashboard_link(clients["cloudformation"], args.stage, region):
        print(f"Dashboard: {link}")
    return status


def for_deployment(deployment: Any) -> str:
    """The diagnosis of a local deployment's latest unsuccessful pipeline run (inside its moto context)."""
    import boto3

    from localrun.emulator.assembly import REGION

    clients = clients_for(boto3.Session(region_name=REGION))
    return why(clients, region=REGION, state_machine_arn=deployment.state_machines[contract.PIPELINE])[0]


def _local(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    import boto3

    from localrun.emulator.assembly import REGION, AssemblyError
    from localrun.emulator.deployment import LocalDeployment, local_aws
    from localrun.runner import run_scenario
    from localrun.scenarios.catalogue import SCENARIOS

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
        text, status = why(clients, region=REGION, state_machine_arn=deployment.state_machines[contract.PIPELINE])
    out(text.rstrip("\n"))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.why", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)  # see localrun/console.py
    if args.local:
        return _local(args)
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return _aws(args)
    except NoCredentialsError as error:
        problem = f"no usable AWS credentials ({error}): configure a profile (PROFILE=...) or credentials"
    except ClientError as error:
        problem = aws_refusal(error, stage=args.stage, region=args.region)
    except BotoCoreError as error:
        problem = f"AWS could not be asked ({error})"
    except LookupError as error:
        problem = str(error).strip("'\"")
    print(f"error: {problem}", file=sys.stderr)
    return 2


def aws_refusal(error: Any, *, stage: str, region: str | None) -> str:
    """One line for what AWS refused: a stage that is not deployed there says so and how to deploy it."""
    details = error.response.get("Error", {})
    code, message = details.get("Code", "?"), details.get("Message", "")
    if code == "ValidationError" and "does not exist" in message:
        where = f" in {region}" if region else ""
        return f"{message}: stage {stage} is not deployed{where} (make deploy STAGE={stage}; REGION=... if elsewhere)"
    return f"{error.operation_name}: {code}: {message}"


if __name__ == "__main__":
    sys.exit(main())
