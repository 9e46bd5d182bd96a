"""The network an Amazon MWAA environment runs in: a VPC with exactly two private subnets.

MWAA takes exactly two private subnets in two Availability Zones and one or more security groups
that reference themselves. How the environment reaches AWS services is a choice (`egress`):

- "vpc-endpoints" (default): no NAT gateway and no internet gateway at all; only isolated
  subnets, interface endpoints for what MWAA itself needs plus Step Functions (the DAG starts
  the stage state machines) and SNS (its failure notices), and an S3 gateway endpoint. Nothing in the VPC can reach the
  internet, so MWAA cannot pip-install from PyPI either (see MwaaEnvironment).
- "nat-gateway": one NAT gateway in a public subnet (plus the free S3 gateway endpoint).

Flow logs of all traffic go to a KMS-encrypted log group.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config.mwaa_facts import MWAA_EGRESS

# What MWAA needs in a VPC without internet access (Amazon MWAA User Guide, "Creating the
# required VPC service endpoints in an Amazon VPC with private routing"), plus Step Functions. By the
# service's name on ec2.InterfaceVpcEndpointAwsService, read when the endpoints are made (no jsii call
# at import: tests/stacks/test_imports.py).
MWAA_INTERFACE_ENDPOINTS: dict[str, str] = {
    "AirflowApi": "AIRFLOW_API",
    "AirflowEnv": "AIRFLOW_ENV",
    "AirflowOps": "AIRFLOW_OPS",
    "Sqs": "SQS",
    "Logs": "CLOUDWATCH_LOGS",
    "Monitoring": "CLOUDWATCH_MONITORING",
    "EcrApi": "ECR",
    "EcrDocker": "ECR_DOCKER",
    "Kms": "KMS",
    "StepFunctions": "STEP_FUNCTIONS",
    "Sns": "SNS",  # the DAG's failure notices
}


class MwaaNetwork(Construct):
    """`.vpc`, `.subnets` (exactly two private subnets) and `.security_group` for MWAA."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        egress: str,
        flow_log_key: kms.IKey,
        flow_log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        cidr: str = "10.0.0.0/16",
    ) -> None:
        super().__init__(scope, id_)
        if egress not in MWAA_EGRESS:
            raise ValueError(f"MwaaNetwork egress = {egress!r}: must be one of {', '.join(MWAA_EGRESS)}")
        self.egress = egress
        private = ec2.SubnetType.PRIVATE_ISOLATED if egress == "vpc-endpoints" else ec2.SubnetType.PRIVATE_WITH_EGRESS
        subnets = [ec2.SubnetConfiguration(name="Private", subnet_type=private, cidr_mask=24)]
        if egress == "nat-gateway":
            subnets.append(ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24))
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=2,  # MWAA: exactly two subnets, in two Availability Zones
            subnet_configuration=subnets,
            nat_gateways=1 if egress == "nat-gateway" else 0,
        )
        self.subnet_selection = ec2.SubnetSelection(subnet_type=private)
        self.subnets = self.vpc.select_subnets(subnet_type=private).subnets

        flow_logs = logs.LogGroup(
            self, "FlowLogs", encryption_key=flow_log_key, retention=flow_log_retention, removal_policy=removal_policy
        )
        self.flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        # MWAA's components (scheduler, workers, web server, its own endpoints) talk to each other
        # over this group; the MWAA User Guide's reference group allows all outbound traffic. With
        # "vpc-endpoints" nothing routes out of the VPC, so outbound ends at the endpoints.
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="Amazon MWAA environment: members may reach each other (self-referencing)",
        )
        self.security_group.add_ingress_rule(
            self.security_group, ec2.Port.all_traffic(), "MWAA components reach each other"
        )

        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnet_selection]
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        if egress == "vpc-endpoints":
            endpoint_security_group = ec2.SecurityGroup(
                self,
                "EndpointSecurityGroup",
                vpc=self.vpc,
                allow_all_outbound=False,
                description="Interface endpoints: HTTPS from the MWAA environment only",
            )
            endpoint_security_group.add_ingress_rule(
                self.security_group, ec2.Port.tcp(443), "HTTPS from the MWAA environment"
            )
            for name, service in MWAA_INTERFACE_ENDPOINTS.items():
                self.interface_endpoints[name] = self.vpc.add_interface_endpoint(
                    name,
                    service=getattr(ec2.InterfaceVpcEndpointAwsService, service),
                    subnets=self.subnet_selection,
                    private_dns_enabled=True,
                    security_groups=[endpoint_security_group],
                    open=False,
                )
