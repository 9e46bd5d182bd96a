"""The outer loop: an Amazon MWAA environment whose DAG runs the pipeline's stage state machines."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import pipeline_contract as contract
from stacks.common.retention import log_retention, removal_policy
from stacks.config.deployment import DeploymentConfig
from stacks.orchestration.mwaa_environment import MwaaEnvironment
from stacks.orchestration.mwaa_network import MwaaNetwork
from stacks.pipeline.pipeline_stack import PipelineStack
from stacks.storage.storage_stack import StorageStack


class OrchestrationStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        storage: StorageStack,
        pipeline: PipelineStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        removal = removal_policy(config.removal_policy)
        retention = log_retention(config.log_retention_days)
        self.network = MwaaNetwork(
            self,
            "Network",
            egress=config.mwaa.egress,
            flow_log_key=storage.key,
            flow_log_retention=retention,
            removal_policy=removal,
        )
        # The DAG waits for each stage as long as the stage's state machine may run.
        stage_timeouts = {
            contract.ADMISSION: Duration.minutes(config.admission_stage_timeout_minutes),
            contract.CRAWL: Duration.minutes(config.crawl_stage_timeout_minutes),
            contract.TRANSFORM: Duration.minutes(config.transform_stage_timeout_minutes),
        }
        self.mwaa = MwaaEnvironment(
            self,
            "Mwaa",
            subnets=self.network.subnets,
            security_group=self.network.security_group,
            stage_state_machines={stage.name: stage.state_machine for stage in pipeline.stages},
            stage_timeouts=stage_timeouts,
            landing_bucket=storage.landing_bucket,
            incoming_prefix=config.incoming_prefix,
            landing_prefix=config.landing_prefix,
            notification_topic=storage.topic,
            schedule=config.schedule,  # the DAG runs on the EventBridge schedule (pipeline.schedule)
            airflow_version=config.mwaa.airflow_version,
            environment_class=config.mwaa.environment_class,
            min_workers=config.mwaa.min_workers,
            max_workers=config.mwaa.max_workers,
            web_server_access=config.mwaa.web_server_access,
            # Without internet egress MWAA cannot reach PyPI; the image already has the pins.
            install_requirements=config.mwaa.egress == "nat-gateway",
            access_log_retention_days=config.log_retention_days,
            removal_policy=removal,
        )
        # Creating the environment validates its network: the endpoints it talks to (or the NAT
        # route) and the security-group rules must exist first, not race it.
        self.mwaa.environment.node.add_dependency(self.network)
        # CDK makes the DAG upload handler's log group itself (useCdkManagedLogGroup) and keeps it
        # by default: it follows the stage's removal policy like every other log group here.
        for node in self.node.find_all():
            if isinstance(node, logs.CfnLogGroup):
                node.apply_removal_policy(removal)
        CfnOutput(self, contract.MWAA_ENVIRONMENT_OUTPUT, value=self.mwaa.environment_name)
        CfnOutput(self, contract.DAG_BUCKET_OUTPUT, value=self.mwaa.dag_bucket.bucket_name)
