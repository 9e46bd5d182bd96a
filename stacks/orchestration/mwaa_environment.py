"""An Amazon MWAA environment that runs the pipeline's stage state machines from a DAG.

What it creates:
- the DAG bucket (versioned, encrypted, TLS only, no public access) with `dags/` deployed under
  `dags/` and `dags/requirements.txt` deployed as `requirements.txt`;
- the execution role: start only the given stage state machines and describe only their
  executions, read only the DAG bucket (plus listing the incoming prefix, for the S3 sensor),
  write only the environment's own `airflow-<name>-*` log groups, use only MWAA's
  `airflow-celery-*` queues, and use KMS only through SQS (`kms:ViaService`); publish failure
  notices to the pipeline's topic (and use its key for that);
- `CfnEnvironment` with all five log types on, the web server private by default, and the
  stage ARNs, stage timeouts, incoming and landing locations as Airflow configuration options (section
  `pipeline`), which the DAG reads through templated fields when a task runs. MWAA exposes them to
  Airflow as `AIRFLOW__PIPELINE__<KEY>`.

The Airflow version, environment class and worker counts are checked (mwaa_settings.py) against
what Amazon MWAA offers, so a construct reused outside this app fails synth with one line, too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_mwaa as mwaa
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.common.nag import (
    GRANT_READ_ACTIONS,
    GRANT_WRITE_ACTIONS,
    acknowledge,
    acknowledge_grant_actions,
    rendered_arn,
    rendered_state_machine_name,
)
from stacks.common.paths import REPO_ROOT
from stacks.config.mwaa_facts import MWAA_LOG_TYPES
from stacks.orchestration.mwaa_settings import airflow_options, check_mwaa_settings, check_wiring
from stacks.storage.storage_constructs import AccessLogsBucket

DAGS_DIRECTORY = REPO_ROOT / "dags"
# Files in dags/ that are not DAG code: the requirements go to the bucket root, docs stay here.
DAGS_EXCLUDE = ["requirements.txt", "*.md", "__pycache__", "*.pyc", ".pytest_cache"]
_NAME = re.compile(r"^[a-zA-Z][0-9a-zA-Z-_]{0,79}$")


class MwaaEnvironment(Construct):
    """`.environment` (CfnEnvironment), `.environment_name`, `.execution_role`, `.dag_bucket`.

    Plain props only: the stage state machines by stage name (the DAG's `<name>_state_machine_arn`
    options) with a timeout each, the landing bucket and prefixes, the topic, the MWAA settings.
    `access_logs_bucket`: where the DAG bucket's server access logs go; a bucket of this stack
    (default: one of its own). Needs the `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` flag
    (cdk.json), as the buckets own their objects (no ACLs).
    `install_requirements`: point MWAA at requirements.txt (needs a route to PyPI and GitHub: a
    NAT gateway or a mirror).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        stage_state_machines: Mapping[str, sfn.IStateMachine],
        stage_timeouts: Mapping[str, Duration],
        landing_bucket: s3.IBucket,
        incoming_prefix: str,
        landing_prefix: str,
        notification_topic: sns.ITopic,
        schedule: str,
        airflow_version: str,
        environment_class: str,
        min_workers: int,
        max_workers: int,
        web_server_access: str = "PRIVATE_ONLY",
        install_requirements: bool = True,
        access_logs_bucket: s3.IBucket | None = None,
        access_log_retention_days: int = 30,
        dags_directory: Path = DAGS_DIRECTORY,
        log_level: str = "INFO",
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        requirements = (dags_directory / "requirements.txt").read_text()
        check_mwaa_settings(
            airflow_version=airflow_version,
            environment_class=environment_class,
            min_workers=min_workers,
            max_workers=max_workers,
            web_server_access=web_server_access,
            requirements=requirements,
        )
        check_wiring(subnets, stage_state_machines, stage_timeouts)
        self.environment_name = self._build_environment_name()
        # A bucket of another stack (e.g. Storage's) would get a log-delivery statement without
        # aws:SourceArn or aws:SourceAccount (CDK cannot reference this stack's bucket there, it
        # would be a cycle), so the default is a bucket of this construct's own.
        self.access_logs_bucket = access_logs_bucket or AccessLogsBucket(
            self, "AccessLogsBucket", retention=Duration.days(access_log_retention_days), removal_policy=removal_policy
        )
        self.dag_bucket = self._build_dag_bucket(removal_policy)
        self._deploy_dags(dags_directory, requirements)
        requirements_version = self._build_requirements_version(requirements) if install_requirements else None
        self.execution_role = self._build_execution_role(
            stage_state_machines, landing_bucket, incoming_prefix, notification_topic
        )
        self._acknowledge_deploy_time_functions()
        self.airflow_configuration_options = airflow_options(
            stage_state_machines,
            stage_timeouts,
            landing_bucket_name=landing_bucket.bucket_name,
            incoming_prefix=incoming_prefix,
            landing_prefix=landing_prefix,
            notification_topic_arn=notification_topic.topic_arn,
            schedule=schedule,
        )
        self.environment = self._build_environment(
            subnets=subnets,
            security_group=security_group,
            airflow_version=airflow_version,
            environment_class=environment_class,
            min_workers=min_workers,
            max_workers=max_workers,
            web_server_access=web_server_access,
            requirements_version=requirements_version,
            log_level=log_level,
        )

    def _build_environment_name(self) -> str:
        """Generated once, from the construct path: MWAA needs a name, and the role's log-group
        ARNs (airflow-<name>-*) need the same one. 1-80 characters, ^[a-zA-Z][0-9a-zA-Z-_]*$."""
        name = Names.unique_resource_name(self, max_length=80, separator="-", allowed_special_characters="-_")
        if not _NAME.match(name):
            raise ValueError(f"MwaaEnvironment name {name!r}: must match {_NAME.pattern}")
        return name

    # -- DAG bucket and its contents ------------------------------------------------------
    def _build_dag_bucket(self, removal_policy: RemovalPolicy) -> s3.Bucket:
        return s3.Bucket(
            self,
            "DagBucket",
            # SSE-S3: MWAA reads it with the execution role alone, no key policy to keep in step.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,  # MWAA refuses buckets without it
            enforce_ssl=True,
            versioned=True,  # MWAA requires it, and pins requirements.txt by object version
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="DagBucket/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )

    def _deploy_dags(self, dags_directory: Path, requirements: str) -> None:
        """dags/ under `dags/`, dags/requirements.txt as `requirements.txt` at the bucket root."""
        self.dags_deployment = s3deploy.BucketDeployment(
            self,
            "DeployDags",
            destination_bucket=self.dag_bucket,
            destination_key_prefix="dags/",
            sources=[s3deploy.Source.asset(str(dags_directory), exclude=DAGS_EXCLUDE)],
            prune=True,
        )
        self.requirements_deployment = s3deploy.BucketDeployment(
            self,
            "DeployRequirements",
            destination_bucket=self.dag_bucket,
            sources=[s3deploy.Source.data("requirements.txt", requirements)],
            prune=False,  # the bucket root also holds dags/
        )

    def _build_requirements_version(self, requirements: str) -> cr.AwsCustomResource:
        """MWAA pins requirements.txt by S3 object version; BucketDeployment does not report
        versions, so read the version after each upload. The call's physical id carries the
        content hash: changed requirements -> a new call -> a new version -> MWAA updates."""
        requirements_arn = self.dag_bucket.arn_for_objects("requirements.txt")
        requirements_version = cr.AwsCustomResource(
            self,
            "RequirementsVersion",
            on_update=cr.AwsSdkCall(
                service="S3",
                action="headObject",
                parameters={"Bucket": self.dag_bucket.bucket_name, "Key": "requirements.txt"},
                physical_resource_id=cr.PhysicalResourceId.of(hashlib.sha256(requirements.encode()).hexdigest()),
                output_paths=["VersionId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[requirements_arn])]
            ),
            install_latest_aws_sdk=False,
            memory_size=256,
        )
        requirements_version.node.add_dependency(self.requirements_deployment)
        return requirements_version

    # -- execution role -------------------------------------------------------------------
    def _build_execution_role(
        self,
        stage_state_machines: Mapping[str, sfn.IStateMachine],
        landing_bucket: s3.IBucket,
        incoming_prefix: str,
        notification_topic: sns.ITopic,
    ) -> iam.Role:
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("airflow.amazonaws.com"), iam.ServicePrincipal("airflow-env.amazonaws.com")
            ),
            description="Amazon MWAA execution role: run the pipeline's stage state machines.",
        )
        for state_machine in stage_state_machines.values():
            state_machine.grant_start_execution(role)
            # Follow a stage execution; resume a failed one when its task is cleared (dags/glue_pipeline_support.py).
            state_machine.grant_execution(
                role, "states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"
            )
        self.dag_bucket.grant_read(role)
        # A failed task sends the pipeline's failure notice (the topic's key comes with the grant).
        notification_topic.grant_publish(role)
        # The S3 sensor lists keys under the incoming prefix; it reads no object.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListIncomingPrefix",
                actions=["s3:ListBucket"],
                resources=[landing_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{incoming_prefix}*"]}},
            )
        )
        for statement in self._mwaa_service_statements():
            role.add_to_principal_policy(statement)
        self._acknowledge_role_findings(role, stage_state_machines)
        return role

    def _mwaa_service_statements(self) -> list[iam.PolicyStatement]:
        """What MWAA itself needs (execution role policy of the MWAA User Guide), scoped to this environment."""
        stack = Stack.of(self)
        environment_arn = stack.format_arn(
            service="airflow", resource="environment", resource_name=self.environment_name
        )
        self._log_groups_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"airflow-{self.environment_name}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # MWAA's Celery queues live in the service's own account, hence account "*".
        self._celery_queues_arn = stack.format_arn(service="sqs", account="*", resource="airflow-celery-*")
        return [
            iam.PolicyStatement(sid="PublishMetrics", actions=["airflow:PublishMetrics"], resources=[environment_arn]),
            iam.PolicyStatement(
                sid="OwnLogGroups",
                actions=[
                    "logs:CreateLogStream",
                    "logs:CreateLogGroup",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:GetLogRecord",
                    "logs:GetLogGroupFields",
                    "logs:GetQueryResults",
                ],
                resources=[self._log_groups_arn],
            ),
            iam.PolicyStatement(
                sid="NoResourceLevelPermissions",
                actions=["logs:DescribeLogGroups", "cloudwatch:PutMetricData", "s3:GetAccountPublicAccessBlock"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CeleryQueues",
                actions=[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                resources=[self._celery_queues_arn],
            ),
            # The Celery queues are encrypted with an AWS owned key (no key of this account).
            iam.PolicyStatement(
                sid="CeleryQueueEncryption",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
                not_resources=[stack.format_arn(service="kms", region="*", resource="key", resource_name="*")],
                conditions={"StringLike": {"kms:ViaService": [f"sqs.{stack.region}.amazonaws.com"]}},
            ),
        ]

    # -- the environment --------------------------------------------------------------------
    def _build_environment(
        self,
        *,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        airflow_version: str,
        environment_class: str,
        min_workers: int,
        max_workers: int,
        web_server_access: str,
        requirements_version: cr.AwsCustomResource | None,
        log_level: str,
    ) -> mwaa.CfnEnvironment:
        log = mwaa.CfnEnvironment.ModuleLoggingConfigurationProperty(enabled=True, log_level=log_level)
        environment = mwaa.CfnEnvironment(
            self,
            "Environment",
            name=self.environment_name,
            airflow_version=airflow_version,
            environment_class=environment_class,
            min_workers=min_workers,
            max_workers=max_workers,
            execution_role_arn=self.execution_role.role_arn,
            source_bucket_arn=self.dag_bucket.bucket_arn,
            dag_s3_path="dags",
            requirements_s3_path="requirements.txt" if requirements_version else None,
            requirements_s3_object_version=(
                requirements_version.get_response_field("VersionId") if requirements_version else None
            ),
            network_configuration=mwaa.CfnEnvironment.NetworkConfigurationProperty(
                subnet_ids=[subnet.subnet_id for subnet in subnets],
                security_group_ids=[security_group.security_group_id],
            ),
            webserver_access_mode=web_server_access,
            endpoint_management="SERVICE",
            logging_configuration=mwaa.CfnEnvironment.LoggingConfigurationProperty(
                **{log_type: log for log_type in MWAA_LOG_TYPES}
            ),
            airflow_configuration_options=self.airflow_configuration_options,
        )
        # The role's policy must exist before MWAA validates it, and the DAGs before the first parse.
        environment.node.add_dependency(self.execution_role, self.dags_deployment)
        if requirements_version:
            environment.node.add_dependency(requirements_version)
        # Always deleted with its stack: it holds no data (the DAG bucket does) and a kept
        # environment would bill by the hour and hold its name against the next deploy.
        environment.apply_removal_policy(RemovalPolicy.DESTROY)
        return environment

    # -- cdk-nag acknowledgements -----------------------------------------------------------
    def _acknowledge_role_findings(self, role: iam.Role, stage_state_machines: Mapping[str, sfn.IStateMachine]) -> None:
        acknowledge_grant_actions(role, *GRANT_READ_ACTIONS)
        acknowledge(
            role,
            "bucket.grant_read: every object of the DAG bucket, which holds only DAGs and requirements.txt.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self.dag_bucket)}/*]",
        )
        acknowledge(
            role,
            "logs:DescribeLogGroups, cloudwatch:PutMetricData and s3:GetAccountPublicAccessBlock "
            "support no resource-level permissions (MWAA execution role policy).",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge(
            role,
            "MWAA names its log groups airflow-<environment>-<log type>; only this environment's.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self._log_groups_arn)}]",
        )
        acknowledge(
            role,
            "MWAA's Celery queues are named airflow-celery-<id> in the service's account.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self._celery_queues_arn)}]",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        )
        for name, state_machine in stage_state_machines.items():
            if state_machine.node.default_child is None:  # imported: cdk-nag spells it another way
                continue
            machine_name = rendered_state_machine_name(self, state_machine)
            acknowledge(
                role,
                f"DescribeExecution, GetExecutionHistory and RedriveExecution on the executions of the {name} "
                "stage state machine only; execution names are made per DAG run.",
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"{machine_name}:*]",
            )

    def _acknowledge_deploy_time_functions(self) -> None:
        """CDK's own deploy-time Lambdas (BucketDeployment, AwsCustomResource): singletons per stack."""
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    child,
                    "CDK's BucketDeployment handler: runs only at deploy time to copy dags/ and requirements.txt "
                    "from the CDK asset bucket into the DAG bucket. CDK fixes its runtime and role, and its grants "
                    "are on those two buckets only; errors fail the deployment, so a DLQ would stay empty.",
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    *(f"AwsSolutions-IAM5[Action::{action}]" for action in (*GRANT_READ_ACTIONS, *GRANT_WRITE_ACTIONS)),
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
                    f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self.dag_bucket)}/*]",
                    "AwsSolutions-L1",
                    "Serverless-LambdaDLQ",
                    "Serverless-LambdaLatestVersion",
                    "Serverless-LambdaTracing",
                )
            elif child.node.id == "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""):
                acknowledge(
                    child,
                    "CDK's AwsCustomResource handler: runs only at deploy time to read the version of "
                    "requirements.txt (s3:GetObject on that one key). CDK fixes its runtime and role; errors fail "
                    "the deployment, so a DLQ would stay empty.",
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "Serverless-LambdaDLQ",
                    "Serverless-LambdaTracing",
                )
