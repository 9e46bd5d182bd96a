"""What a first deployment needs that moto cannot check: asserted on the synthesized templates."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.helpers import as_list, render
from tests.rehearsal.assets import AssemblyAssets, s3_object_key

if TYPE_CHECKING:
    from tests.conftest import Synthesized


def _resources(synthesized: Synthesized, stack: str, type_: str) -> dict[str, dict[str, Any]]:
    return {lid: dict(r) for lid, r in synthesized.templates[stack].find_resources(type_).items()}


def _statements(policy_resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for r in policy_resources.values() for s in r["Properties"]["PolicyDocument"]["Statement"]]


def test_glue_job_gets_the_glue_package_as_one_zip_with_inner_names(dev: Synthesized) -> None:
    [job] = _resources(dev, "pipeline", "AWS::Glue::Job").values()
    urls = render(job["Properties"]["DefaultArguments"]["--extra-py-files"]).split(",")
    assert len(urls) == 1 and urls[0].endswith(".zip"), urls
    staged = AssemblyAssets(dev.outdir).file_for(s3_object_key(urls[0]), what="--extra-py-files")
    with zipfile.ZipFile(staged.source) as archive:
        names = set(archive.namelist())
    assert {"glue/__init__.py", "glue/transform.py", "glue/manifest.py"} <= names, names


def test_glue_job_may_publish_its_metrics_to_the_glue_namespace_only(dev: Synthesized) -> None:
    [(job_role, _)] = [(j["Properties"]["Role"], j) for j in _resources(dev, "pipeline", "AWS::Glue::Job").values()]
    role_id = job_role["Fn::GetAtt"][0]
    policies = {
        lid: p
        for lid, p in _resources(dev, "pipeline", "AWS::IAM::Policy").items()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    }
    metric = [s for s in _statements(policies) if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert metric == [
        {
            "Action": "cloudwatch:PutMetricData",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            "Effect": "Allow",
            "Resource": "*",
        }
    ]


def test_state_machine_log_groups_are_vended_log_groups(synth: Callable[[str], Synthesized]) -> None:
    for stage in ("dev", "prod"):
        synthesized = synth(stage)
        groups = _resources(synthesized, "pipeline", "AWS::Logs::LogGroup")
        machines = _resources(synthesized, "pipeline", "AWS::StepFunctions::StateMachine")
        for machine in machines.values():
            [destination] = machine["Properties"]["LoggingConfiguration"]["Destinations"]
            group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
            name = render(groups[group_id]["Properties"]["LogGroupName"])
            assert name.startswith("/aws/vendedlogs/states/"), f"{stage}: {name}"


def test_key_policy_lets_eventbridge_and_alarms_encrypt_as_aws_documents(dev: Synthesized) -> None:
    [key] = _resources(dev, "storage", "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]

    def for_service(service: str) -> dict[str, Any]:
        [statement] = [s for s in statements if s["Principal"].get("Service") == service]
        return statement

    events, alarms = for_service("events.amazonaws.com"), for_service("cloudwatch.amazonaws.com")
    # No aws:SourceAccount condition: AWS's documented statements have none, and a condition the
    # service does not satisfy drops dead-letter deliveries and alarm notices silently.
    assert "Condition" not in events and "Condition" not in alarms
    assert sorted(as_list(events["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert sorted(as_list(alarms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_mwaa_environment_waits_for_its_network(dev: Synthesized) -> None:
    template = dev.templates["orchestration"]
    [(_, environment)] = template.find_resources("AWS::MWAA::Environment").items()
    depends_on = set(as_list(environment.get("DependsOn", [])))
    network = {
        lid
        for type_ in (
            "AWS::EC2::VPCEndpoint",
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
            "AWS::EC2::SecurityGroup",
            "AWS::EC2::Subnet",
            "AWS::EC2::SubnetRouteTableAssociation",
        )
        for lid in template.find_resources(type_)
    }
    assert network, "no network resources found in the Orchestration template"
    missing = network - depends_on
    assert not missing, f"the MWAA environment does not wait for {sorted(missing)}"
    # Guard against a rendering change: every DependsOn names a resource of the template.
    assert depends_on <= set(json.loads(json.dumps(template.to_json()))["Resources"])
