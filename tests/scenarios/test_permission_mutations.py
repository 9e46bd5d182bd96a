"""Proof by mutation: the local runs enforce the grants the pipeline depends on.

Each case removes one grant from the synthesized local assembly (every statement of the role's
policies loses the action) and runs the scenario that needs it: the run fails with AccessDenied
naming that action. The unmutated assembly runs the same scenario to success (`happy_path`), so
the grant is what makes the difference. A mutation that removes nothing fails the test: the grant
moved, and the case must follow it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localrun.emulator import permissions
from localrun.emulator.deployment import LocalDeployment, local_aws
from localrun.runner import run_scenario
from localrun.scenarios.catalogue import SCENARIOS


@dataclass(frozen=True)
class Mutation:
    name: str
    role: str  # the role's logical id starts with this
    actions: tuple[str, ...]  # removed from every statement of the role's policies (as synthesized)
    denied: str  # the action AccessDenied must name


MUTATIONS = (
    # The Distributed Map's ResultWriter writes its manifest and result files into the SSE-KMS
    # landing bucket with the admission state machine's role (aws/aws-cdk#32144).
    Mutation(
        "result_writer_key",
        "AdmissionStageWorkflowStateMachineRole",
        ("kms:GenerateDataKey", "kms:GenerateDataKey*"),
        "kms:GenerateDataKey",
    ),
    Mutation(
        "admit_delete", "AdmissionStageAdmitFilesRole", ("s3:DeleteObject", "s3:DeleteObject*"), "s3:DeleteObject"
    ),
    Mutation("lease_put_item", "PipelineWorkflowStateMachineRole", ("dynamodb:PutItem",), "dynamodb:PutItem"),
    Mutation("job_staging_write", "TransformJobRole", ("s3:PutObject",), "s3:PutObject"),
)
MWAA_START = Mutation("mwaa_start_execution", "MwaaExecutionRole", ("states:StartExecution",), "states:StartExecution")


def without_grant(assembly: Path, into: Path, mutation: Mutation) -> Path:
    """A copy of `assembly` whose role named by `mutation` no longer has its actions."""
    copy = into / f"cdk.out.{mutation.name}"
    shutil.copytree(assembly, copy)
    removed = 0
    for template_file in copy.glob("*.template.json"):
        template = json.loads(template_file.read_text())
        resources = template.get("Resources", {})
        roles = {lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role" and lid.startswith(mutation.role)}
        if not roles:
            continue
        documents = [
            r["Properties"]["PolicyDocument"]
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy" and {ref.get("Ref") for ref in r["Properties"]["Roles"]} & roles
        ]
        documents += [p["PolicyDocument"] for lid in roles for p in resources[lid]["Properties"].get("Policies", [])]
        for document in documents:
            for statement in list(document["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                kept = [a for a in actions if a not in mutation.actions]
                removed += len(actions) - len(kept)
                if not kept:
                    document["Statement"].remove(statement)
                else:
                    statement["Action"] = kept
        template_file.write_text(json.dumps(template))
    assert removed, f"{mutation.name}: no statement of {mutation.role}* grants {mutation.actions}: the grant moved"
    return copy


def _report_text(report: dict[str, Any]) -> str:
    return json.dumps(report, default=str)


@pytest.fixture
def deployment_of() -> Iterator[Any]:
    started: list[LocalDeployment] = []

    def bring_up(assembly: Path) -> LocalDeployment:
        deployment = LocalDeployment.bring_up(assembly)
        started.append(deployment)
        return deployment

    with local_aws():
        try:
            yield bring_up
        finally:
            for deployment in started:
                deployment.stop_running()


def test_the_happy_path_needs_no_grant_it_lacks(local_assembly: Path, deployment_of: Any) -> None:
    """With every grant as synthesized, the run succeeds: nothing below fails for another reason."""
    report = run_scenario(deployment_of(local_assembly), SCENARIOS["happy_path"])
    assert report["as_expected"], _report_text(report)[:3000]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_a_run_without_the_grant_fails_with_access_denied(
    mutation: Mutation, local_assembly: Path, tmp_path: Path, deployment_of: Any
) -> None:
    report = run_scenario(deployment_of(without_grant(local_assembly, tmp_path, mutation)), SCENARIOS["happy_path"])
    assert report["statuses"] == ["FAILED"], _report_text(report)[:3000]
    store = permissions.policies()
    assert store is not None
    # The caller got AccessDenied naming the action (a Lambda's or a child workflow's error reaches
    # the pipeline's notice only as its stage failing, so the denial itself is read where it was raised).
    expected = f"is not authorized to perform: {mutation.denied} on resource: "
    assert any(expected in message for message in store.denied), store.denied
    assert report["pipeline_runs"][0]["status"] == "FAILED"


def _start_admission_as_mwaa(deployment: LocalDeployment) -> str:
    """What the DAG's StepFunctionStartExecutionOperator does, signed with the MWAA role's credentials."""
    store = permissions.policies()
    assert store is not None
    permissions.assume_by_access_key("mwaa-execution-role", permissions.Principal(store.role(MWAA_START.role)))
    sfn = boto3.client("stepfunctions", aws_access_key_id="mwaa-execution-role", aws_secret_access_key="x")
    machine = deployment.state_machines["admission"]
    return str(sfn.start_execution(stateMachineArn=machine, name="dag-run-admission", input="{}")["executionArn"])


def test_the_mwaa_role_starts_a_stage_only_with_its_grant(local_assembly: Path, tmp_path: Path) -> None:
    with local_aws():
        deployment = LocalDeployment.bring_up(local_assembly)
        deployment.wait(_start_admission_as_mwaa(deployment))  # started; how it ends is not the point
    with local_aws():
        mutated = LocalDeployment.bring_up(without_grant(local_assembly, tmp_path, MWAA_START))
        with pytest.raises(ClientError) as denied:
            _start_admission_as_mwaa(mutated)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: states:StartExecution on resource: " in str(denied.value)
