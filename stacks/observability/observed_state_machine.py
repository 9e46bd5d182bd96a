"""A Step Functions state machine with the controls every one of ours has.

Timeout, logging (at the stack's level: ALL with execution data in dev, ERROR without in prod) to
its own KMS-encrypted log group, X-Ray, and an alarm on failed or timed-out executions that
notifies a topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.common.nag import acknowledge
from stacks.common.physical_names import physical_name
from stacks.observability.alarms import alarm_on_any


@dataclass(frozen=True, kw_only=True)
class StageObservability:
    """What every state machine construct of a stack shares: the key and retention of its logs, the
    topic its failure alarm (and the pipeline's notices) go to, whether its logs outlive the stack,
    and what the machines log (level; every state's input and output, or not)."""

    log_key: kms.IKey
    log_retention: logs.RetentionDays
    alarm_topic: sns.ITopic
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    log_level: sfn.LogLevel = sfn.LogLevel.ALL
    include_execution_data: bool = True


class ObservedStateMachine(Construct):
    """`sfn.StateMachine` plus its log group and failure alarm; the machine is `.state_machine`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        definition: sfn.IChainable,
        timeout: Duration,
        observability: StageObservability,
        comment: str | None = None,
        state_machine_type: sfn.StateMachineType = sfn.StateMachineType.STANDARD,
    ) -> None:
        super().__init__(scope, id_)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # AWS's guidance for vended logs: under /aws/vendedlogs/, one resource policy covers
            # every such group; elsewhere each group grows the account's CloudWatch Logs resource
            # policy, which is capped at 5,120 characters.
            log_group_name=physical_name(
                self, prefix="/aws/vendedlogs/states/", max_length=512, removal_policy=observability.removal_policy
            ),
            encryption_key=observability.log_key,
            retention=observability.log_retention,
            removal_policy=observability.removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            # EXPRESS for the short, high-volume doors (billed per request, not per transition).
            state_machine_type=state_machine_type,
            timeout=timeout,
            tracing_enabled=True,
            comment=comment,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=observability.log_level,
                include_execution_data=observability.include_execution_data,
            ),
        )
        if observability.log_level != sfn.LogLevel.ALL:
            acknowledge(
                self.state_machine,
                "The stage's config logs failures only (state_machine_log_level): every event with its "
                "data would log each file key and bill each event; X-Ray and the execution history "
                "still show every state, and the failure alarm fires.",
                "AwsSolutions-SF1",
            )
        acknowledge(
            self.state_machine.role,
            "X-Ray tracing and CloudWatch Logs vended delivery (logs:CreateLogDelivery ...) "
            "support no resource-level permissions; CDK adds exactly those actions on '*'.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        # Timed-out executions are not caught inside the machine: the alarm notifies them (the pipeline's
        # unsuccessful ends also get a notice each, from their status change: stacks/observability/failure_notice.py).
        unsuccessful = cloudwatch.MathExpression(
            expression="failed + timedOut + aborted",
            using_metrics={
                "failed": self.state_machine.metric_failed(),
                "timedOut": self.state_machine.metric_timed_out(),
                "aborted": self.state_machine.metric_aborted(),
            },
            period=Duration.minutes(5),
        )
        self.failure_alarm = alarm_on_any(
            self,
            "UnsuccessfulExecutionsAlarm",
            unsuccessful,
            description="Executions of this state machine failed, timed out or were aborted.",
            topic=observability.alarm_topic,
        )
