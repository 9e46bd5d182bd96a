"""The Orchestration stack as synthesized: the MWAA controls no scanner checks, and the role.

cdk-nag has no MWAA rules, so this file asserts them: the web server is private, there is no
internet gateway (by default), all five log types are on, the execution role has exactly the
statements it needs. The stage ARNs and timeouts the DAG reads are checked against the stage
state machines of the Pipeline stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from app import FEATURE_FLAGS
from stacks.config.mwaa_facts import MWAA_AIRFLOW_VERSIONS, MWAA_PRICES
from stacks.config.stages import config_for
from stacks.orchestration.mwaa_environment import DAGS_DIRECTORY, MwaaEnvironment
from stacks.orchestration.mwaa_network import MWAA_INTERFACE_ENDPOINTS, MwaaNetwork
from stacks.orchestration.mwaa_settings import check_mwaa_settings
from tests.conftest import Synthesized, stage_config
from tests.helpers import as_list, exported_value, one_resource, render, state_machine_definition

MWAA = "AWS::MWAA::Environment"
STAGES = {"admission": "AdmissionStageWorkflow", "crawl": "CrawlStageWorkflow", "transform": "TransformStageWorkflow"}
LOG_TYPES = ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs")
INTERFACE_ENDPOINTS = {
    "airflow.api",
    "airflow.env",
    "airflow.ops",
    "sqs",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "kms",
    "states",
    "sns",
}
NO_RESOURCE_LEVEL = {"logs:DescribeLogGroups", "cloudwatch:PutMetricData", "s3:GetAccountPublicAccessBlock"}
REQUIREMENTS = (DAGS_DIRECTORY / "requirements.txt").read_text()


@pytest.fixture(scope="module")
def template(dev: Synthesized) -> Template:
    return dev.templates["orchestration"]


def resources(template: Template, type_: str) -> dict[str, Any]:
    return dict(template.find_resources(type_))


def environment(template: Template) -> dict[str, Any]:
    return one_resource(template, MWAA)[1]["Properties"]


def role_statements(template: Template) -> list[dict[str, Any]]:
    role_id = render(environment(template)["ExecutionRoleArn"]).removeprefix("${GetAtt:").removesuffix(".Arn}")
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# --- network ---------------------------------------------------------------------------------


def test_exactly_two_private_subnets_in_two_zones(template: Template) -> None:
    subnets = resources(template, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert {render(s["Properties"]["AvailabilityZone"]) for s in subnets.values()} == {
        "${Select:0,${GetAZs:}}",
        "${Select:1,${GetAZs:}}",
    }
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    assert sorted(render(s) for s in environment(template)["NetworkConfiguration"]["SubnetIds"]) == sorted(
        f"${{Ref:{lid}}}" for lid in subnets
    )


def test_no_internet_gateway_or_nat_and_no_route_out_by_default(template: Template) -> None:
    for type_ in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
    ):
        assert resources(template, type_) == {}, type_
    assert resources(template, "AWS::EC2::Route") == {}  # only the local route and the S3 endpoint's


def test_vpc_endpoints_for_mwaa_and_step_functions(template: Template) -> None:
    endpoints = resources(template, "AWS::EC2::VPCEndpoint").values()
    by_type: dict[str, set[str]] = {}
    for endpoint in endpoints:
        service = render(endpoint["Properties"]["ServiceName"]).removeprefix("com.amazonaws.${Ref:AWS::Region}.")
        by_type.setdefault(endpoint["Properties"]["VpcEndpointType"], set()).add(service)
    assert by_type == {"Gateway": {"s3"}, "Interface": INTERFACE_ENDPOINTS}
    interfaces = [e["Properties"] for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"]
    subnets = sorted(f"${{Ref:{lid}}}" for lid in resources(template, "AWS::EC2::Subnet"))
    for endpoint in interfaces:
        assert endpoint["PrivateDnsEnabled"] is True
        assert sorted(render(s) for s in endpoint["SubnetIds"]) == subnets


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group(template: Template) -> None:
    (flow_log,) = resources(template, "AWS::EC2::FlowLog").values()
    props = flow_log["Properties"]
    assert props["ResourceType"] == "VPC" and props["TrafficType"] == "ALL"
    assert props["ResourceId"] == {"Ref": one_resource(template, "AWS::EC2::VPC")[0]}
    group_id = render(props["LogGroupName"]).removeprefix("${Ref:").removesuffix("}")
    assert "KmsKeyId" in resources(template, "AWS::Logs::LogGroup")[group_id]["Properties"]


def test_mwaa_security_group_references_itself(template: Template) -> None:
    (group,) = environment(template)["NetworkConfiguration"]["SecurityGroupIds"]
    group_id = group["Fn::GetAtt"][0]
    self_rules = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == group and r["Properties"].get("SourceSecurityGroupId") == group
    ]
    assert [r["IpProtocol"] for r in self_rules] == ["-1"]
    ingress = resources(template, "AWS::EC2::SecurityGroup")[group_id]["Properties"].get("SecurityGroupIngress", [])
    assert ingress == []  # nothing reaches the environment from outside the group


# --- environment ------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_environment_settings_come_from_config(synth: Callable[[str], Synthesized], stage: str) -> None:
    props, mwaa = environment(synth(stage).templates["orchestration"]), stage_config(stage).mwaa
    assert props["AirflowVersion"] == mwaa.airflow_version
    assert props["EnvironmentClass"] == mwaa.environment_class
    assert (props["MinWorkers"], props["MaxWorkers"]) == (mwaa.min_workers, mwaa.max_workers)
    assert props["WebserverAccessMode"] == mwaa.web_server_access == "PRIVATE_ONLY"


def test_all_five_log_types_are_on(template: Template) -> None:
    logging = environment(template)["LoggingConfiguration"]
    assert set(logging) == set(LOG_TYPES)
    assert all(logging[t]["Enabled"] is True and logging[t]["LogLevel"] == "INFO" for t in LOG_TYPES)


def test_generated_name_is_valid_and_not_a_literal_of_the_code(template: Template) -> None:
    name = environment(template)["Name"]
    assert re.fullmatch(r"[a-zA-Z][0-9a-zA-Z_-]{0,79}", name)
    assert name.startswith("GluePipeline-dev-Orchestration-")


def test_dag_reads_stage_arns_and_timeouts_set_from_the_stage_state_machines(
    dev: Synthesized, template: Template
) -> None:
    options = environment(template)["AirflowConfigurationOptions"]
    per_stage = {f"pipeline.{s}_{key}" for s in STAGES for key in ("state_machine_arn", "timeout_seconds")}
    assert set(options) == {
        "pipeline.schedule",
        "pipeline.landing_bucket",
        "pipeline.incoming_prefix",
        "pipeline.landing_prefix",
        "pipeline.notification_topic_arn",
        *per_stage,
    }
    pipeline = dev.templates["pipeline"]
    for stage, prefix in STAGES.items():
        machine_id = one_resource(pipeline, "AWS::StepFunctions::StateMachine", prefix)[0]
        assert exported_value(dev.templates.values(), options[f"pipeline.{stage}_state_machine_arn"]) == {
            "Ref": machine_id
        }
        timeout = state_machine_definition(pipeline, prefix)["TimeoutSeconds"]
        assert options[f"pipeline.{stage}_timeout_seconds"] == str(timeout)
    storage = dev.templates["storage"]
    landing = one_resource(storage, "AWS::S3::Bucket", "LandingBucket")[0]
    assert exported_value(dev.templates.values(), options["pipeline.landing_bucket"]) == {"Ref": landing}
    assert options["pipeline.landing_prefix"] == config_for("dev").landing_prefix
    assert options["pipeline.incoming_prefix"] == config_for("dev").incoming_prefix
    # The EventBridge schedule as Airflow's cron: the DAG runs when the rule would have.
    assert (config_for("dev").schedule, options["pipeline.schedule"]) == ("cron(0 2 * * ? *)", "0 2 * * *")
    topic = one_resource(storage, "AWS::SNS::Topic")[0]
    assert exported_value(dev.templates.values(), options["pipeline.notification_topic_arn"]) == {"Ref": topic}


# --- DAG bucket --------------------------------------------------------------------------------


def dag_bucket_id(template: Template) -> str:
    return environment(template)["SourceBucketArn"]["Fn::GetAtt"][0]


def test_dag_bucket_is_versioned_encrypted_private_and_tls_only(template: Template) -> None:
    bucket_id = dag_bucket_id(template)
    props = resources(template, "AWS::S3::Bucket")[bucket_id]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "LoggingConfiguration" in props
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_dags_and_requirements_are_deployed_to_the_dag_bucket(dev: Synthesized, template: Template) -> None:
    deployments = [d["Properties"] for d in resources(template, "Custom::CDKBucketDeployment").values()]
    assert all(d["DestinationBucketName"] == {"Ref": dag_bucket_id(template)} for d in deployments)
    by_prefix = {d.get("DestinationBucketKeyPrefix", ""): d for d in deployments}
    assert set(by_prefix) == {"dags/", ""}
    assert by_prefix["dags/"]["Prune"] is True and by_prefix[""]["Prune"] is False  # root keeps dags/
    # The staged dags/ asset: the DAG code, without requirements, docs or caches.
    (staged,) = [p for p in Path(dev.outdir).glob("asset.*") if (p / "glue_pipeline.py").is_file()]
    names = {p.name for p in staged.rglob("*")}
    assert "glue_pipeline.py" in names
    assert not names & {"requirements.txt", "__pycache__"}
    # The requirements asset holds exactly dags/requirements.txt.
    requirements = [p for p in Path(dev.outdir).glob("asset.*") if (p / "requirements.txt").is_file()]
    assert [(p / "requirements.txt").read_text() for p in requirements] == [REQUIREMENTS]


def test_requirements_are_not_installed_without_internet_egress(template: Template) -> None:
    props = environment(template)
    assert "RequirementsS3Path" not in props and "RequirementsS3ObjectVersion" not in props


# --- execution role --------------------------------------------------------------------------


def test_role_is_assumed_by_mwaa_only(template: Template) -> None:
    role_id = environment(template)["ExecutionRoleArn"]["Fn::GetAtt"][0]
    trust = resources(template, "AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]
    principals = {p for s in trust["Statement"] for p in as_list(s["Principal"]["Service"])}
    assert principals == {"airflow.amazonaws.com", "airflow-env.amazonaws.com"}
    assert resources(template, "AWS::IAM::Role")[role_id]["Properties"].get("ManagedPolicyArns") is None


def test_role_may_start_only_the_stage_machines_and_describe_and_redrive_only_their_executions(
    dev: Synthesized, template: Template
) -> None:
    statements = role_statements(template)
    states = [s for s in statements if any(a.startswith("states:") for a in as_list(s["Action"]))]
    assert sorted(a for s in states for a in as_list(s["Action"])) == [
        "states:DescribeExecution",
        "states:GetExecutionHistory",  # where a failed stage stopped: redrive it, or start the next attempt
        "states:RedriveExecution",
        "states:StartExecution",
    ]
    start = next(s for s in states if s["Action"] == "states:StartExecution")
    machines = {exported_value(dev.templates.values(), r)["Ref"] for r in as_list(start["Resource"])}
    pipeline = dev.templates["pipeline"]
    assert machines == {one_resource(pipeline, "AWS::StepFunctions::StateMachine", p)[0] for p in STAGES.values()}
    execution_actions = ["states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"]
    describe = next(s for s in states if as_list(s["Action"]) == execution_actions)
    rendered = sorted(render(r) for r in as_list(describe["Resource"]))
    assert len(rendered) == len(STAGES)
    for arn in rendered:
        assert re.fullmatch(
            r"arn:\$\{Ref:AWS::Partition\}:states:\$\{Ref:AWS::Region\}:\$\{Ref:AWS::AccountId\}"
            r":execution:\$\{Select:6,\$\{Split::,\$\{ImportValue:GluePipeline-dev-Pipeline:"
            r"ExportsOutputRef(AdmissionStage|CrawlStage|TransformStage)Workflow\w+\}\}\}:\*",
            arn,
        ), arn


def test_role_reads_only_the_dag_bucket_and_lists_only_the_incoming_prefix(
    dev: Synthesized, template: Template
) -> None:
    s3_statements = [
        s
        for s in role_statements(template)
        if any(a.startswith("s3:") for a in as_list(s["Action"])) and s.get("Sid") != "NoResourceLevelPermissions"
    ]
    bucket = dag_bucket_id(template)
    read, listing = s3_statements
    assert read["Action"] == ["s3:GetBucket*", "s3:GetObject*", "s3:List*"]
    assert sorted(render(r) for r in read["Resource"]) == [f"${{GetAtt:{bucket}.Arn}}", f"${{GetAtt:{bucket}.Arn}}/*"]
    landing = one_resource(dev.templates["storage"], "AWS::S3::Bucket", "LandingBucket")[0]
    assert listing["Action"] == "s3:ListBucket"
    assert exported_value(dev.templates.values(), listing["Resource"]) == {"Fn::GetAtt": [landing, "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{config_for('dev').incoming_prefix}*"]}}
    actions = {a for s in role_statements(template) for a in as_list(s["Action"])}
    assert not {a for a in actions if re.match(r"s3:(Put|Delete|Abort|Replicate|Restore)", a)}


def test_role_writes_only_its_own_log_groups_and_uses_only_the_celery_queues(template: Template) -> None:
    statements = {s.get("Sid"): s for s in role_statements(template)}
    name = environment(template)["Name"]
    logs = statements["OwnLogGroups"]
    assert render(logs["Resource"]) == (
        f"arn:${{Ref:AWS::Partition}}:logs:${{Ref:AWS::Region}}:${{Ref:AWS::AccountId}}:log-group:airflow-{name}-*"
    )
    assert all(a.startswith("logs:") for a in logs["Action"])
    sqs = statements["CeleryQueues"]
    assert render(sqs["Resource"]) == "arn:${Ref:AWS::Partition}:sqs:${Ref:AWS::Region}:*:airflow-celery-*"
    kms = statements["CeleryQueueEncryption"]
    assert "Resource" not in kms
    assert render(kms["NotResource"]) == "arn:${Ref:AWS::Partition}:kms:*:${Ref:AWS::AccountId}:key/*"
    assert render(kms["Condition"]["StringLike"]["kms:ViaService"][0]) == "sqs.${Ref:AWS::Region}.amazonaws.com"
    metrics = statements["PublishMetrics"]
    assert render(metrics["Resource"]).endswith(f":environment/{name}")


def test_role_may_publish_only_to_the_pipeline_topic_with_its_key(dev: Synthesized, template: Template) -> None:
    storage = dev.templates["storage"]
    statements = role_statements(template)
    publish = [s for s in statements if any(a.startswith("sns:") for a in as_list(s["Action"]))]
    assert [(s["Action"], exported_value(dev.templates.values(), s["Resource"])) for s in publish] == [
        ("sns:Publish", {"Ref": one_resource(storage, "AWS::SNS::Topic")[0]})
    ]
    key = {"Fn::GetAtt": [one_resource(storage, "AWS::KMS::Key")[0], "Arn"]}
    keyed = [s for s in statements if "Resource" in s and any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert [exported_value(dev.templates.values(), s["Resource"]) for s in keyed] == [key]


def test_only_actions_without_resource_level_permissions_are_on_every_resource(template: Template) -> None:
    on_everything = {a for s in role_statements(template) if s.get("Resource") == "*" for a in as_list(s["Action"])}
    assert on_everything == NO_RESOURCE_LEVEL
    assert all(not a.endswith(":*") and a != "*" for s in role_statements(template) for a in as_list(s["Action"]))


# --- the constructs on their own ---------------------------------------------------------------


def standalone(*, egress: str = "nat-gateway", **settings: Any) -> Template:
    """Network and environment in a stack of their own, over imported state machines and bucket."""
    stack = Stack(App(context=FEATURE_FLAGS), "Standalone")  # cdk.json's flags, as in a `cdk init` project
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_logs as logs

    network = MwaaNetwork(
        stack,
        "Network",
        egress=egress,
        flow_log_key=kms.Key(stack, "Key"),
        flow_log_retention=logs.RetentionDays.ONE_WEEK,
    )
    stage_state_machines = {name: sfn.StateMachine.from_state_machine_name(stack, name, name) for name in STAGES}
    MwaaEnvironment(
        stack,
        "Mwaa",
        subnets=network.subnets,
        security_group=network.security_group,
        stage_state_machines=stage_state_machines,
        stage_timeouts={name: Duration.minutes(30) for name in STAGES},
        landing_bucket=s3.Bucket.from_bucket_name(stack, "Landing", "landing"),
        incoming_prefix="drop/",
        landing_prefix="in/",
        notification_topic=sns.Topic(stack, "Topic"),
        schedule="cron(0 2 * * ? *)",
        install_requirements=egress == "nat-gateway",
        **{
            "airflow_version": "3.3.1",
            "environment_class": "mw1.small",
            "min_workers": 1,
            "max_workers": 2,
            **settings,
        },
    )
    return Template.from_stack(stack)


def test_nat_gateway_egress_installs_the_pinned_requirements_by_object_version() -> None:
    template = standalone(egress="nat-gateway", web_server_access="PUBLIC_ONLY")
    assert len(resources(template, "AWS::EC2::NatGateway")) == 1
    private = [
        s for s in resources(template, "AWS::EC2::Subnet").values() if s["Properties"]["MapPublicIpOnLaunch"] is False
    ]
    assert len(private) == 2
    assert not [
        e
        for e in resources(template, "AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Interface"
    ]
    props = environment(template)
    assert props["WebserverAccessMode"] == "PUBLIC_ONLY"
    assert props["RequirementsS3Path"] == "requirements.txt"
    version_id = render(props["RequirementsS3ObjectVersion"])
    assert re.fullmatch(r"\$\{GetAtt:MwaaRequirementsVersion\w+\.VersionId\}", version_id)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("airflow_version", "2.10.3", "Amazon MWAA supports " + ", ".join(MWAA_AIRFLOW_VERSIONS)),
        ("airflow_version", "3.2.1", "dags/requirements.txt pins the constraints of Airflow 3.3.1"),
        ("environment_class", "mw1.huge", "must be one of mw1.micro, mw1.small"),
        ("max_workers", 26, "must be an integer between 1 and 25"),
        ("web_server_access", "PUBLIC", "must be one of PRIVATE_ONLY, PUBLIC_ONLY"),
    ],
)
def test_unsupported_settings_fail_synth_with_one_line(setting: str, value: Any, expected: str) -> None:
    settings = {
        "airflow_version": "3.3.1",
        "environment_class": "mw1.small",
        "min_workers": 1,
        "max_workers": 2,
        "web_server_access": "PRIVATE_ONLY",
        "requirements": REQUIREMENTS,
        setting: value,
    }
    with pytest.raises(ValueError) as raised:
        check_mwaa_settings(**settings)
    message = str(raised.value)
    assert "\n" not in message and expected in message and f"{setting} = {value!r}" in message
    with pytest.raises(ValueError, match=re.escape(expected)):
        standalone(**{setting: value})


# --- the outer-loop docs --------------------------------------------------------------------------


def test_cost_table_in_the_docs_is_computed_from_the_dated_price_parameters() -> None:
    readme = (DAGS_DIRECTORY.parent / "README.md").read_text()
    assert "](docs/mwaa-costs.md)" in readme  # the runbook links the cost detail
    docs = (DAGS_DIRECTORY.parent / "docs" / "mwaa-costs.md").read_text()
    prices = MWAA_PRICES
    assert f"as of {prices.as_of}" in docs and prices.region in docs and prices.source in docs
    for environment_class, hourly in prices.environment_per_hour.items():
        monthly = round(prices.environment_per_month(environment_class))
        extra = round(prices.environment_per_month(environment_class, extra_workers=1))
        checked = "yes" if environment_class in prices.confirmed else "no"
        row = f"| {environment_class} | {hourly:.2f} | {monthly} | {extra}"
        assert row in docs and docs.split(row, 1)[1].split("\n", 1)[0].endswith(f"| {checked} |"), row
    endpoints = prices.network_per_month("vpc-endpoints", interface_endpoints=len(MWAA_INTERFACE_ENDPOINTS))
    assert f"{len(MWAA_INTERFACE_ENDPOINTS)} interface endpoints" in docs and f"**${round(endpoints)}**" in docs
    assert f"**${round(prices.network_per_month('nat-gateway', interface_endpoints=0))}**" in docs
    dev = config_for("dev").mwaa
    total = prices.environment_per_month(dev.environment_class) + endpoints
    assert f"about **${round(total)}/month**" in docs
