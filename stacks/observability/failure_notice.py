"""One notice for every unsuccessful end of a state machine, from its own status change.

"Step Functions Execution Status Change" (FAILED | TIMED_OUT | ABORTED) of this machine ─► rule
  ─► formatter Lambda (lambda/failure_notice: the stage, the error, the command that resumes it) ─► topic

A run that fails, times out or is stopped is notified once, however it ended: nothing inside the
machine has to catch the error (so a redrive can re-enter the failed state). The rule's target
retries and parks undeliverable events in the given dead-letter queue; a notice the function
cannot publish goes to the same queue (Lambda's asynchronous-invocation DLQ).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.common.nag import GRANT_KMS_ACTIONS, acknowledge, acknowledge_grant_actions, rendered_arn, skip_checkov
from stacks.common.paths import REPO_ROOT
from stacks.observability.observed_state_machine import StageObservability

FAILURE_NOTICE_CODE = REPO_ROOT / "lambda" / "failure_notice"
STATUS_CHANGE = "Step Functions Execution Status Change"
UNSUCCESSFUL_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


class FailureNotice(Construct):
    """`.rule` on `state_machine`'s unsuccessful ends and `.function`, which publishes the notice."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.StateMachine,
        quarantine_location: str,
        dead_letter_queue: sqs.IQueue,
        observability: StageObservability,  # its alarm topic gets the notices
        reserve_concurrency: bool,
        retry_attempts: int = 8,
        max_event_age: Duration = Duration.hours(6),
    ) -> None:
        super().__init__(scope, id_)
        role = self._build_role(observability)
        self.function = self._build_function(
            role,
            observability=observability,
            quarantine_location=quarantine_location,
            dead_letter_queue=dead_letter_queue,
            reserve_concurrency=reserve_concurrency,
        )
        observability.alarm_topic.grant_publish(role)
        self._grant_history_reads(role, state_machine)
        self.rule = self._build_rule(
            state_machine,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        self._acknowledge(role, state_machine)

    def _build_role(self, observability: StageObservability) -> iam.Role:
        """The function's role, and the encrypted log group it may write to."""
        self._log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=observability.log_key,
            retention=observability.log_retention,
            removal_policy=observability.removal_policy,
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="failure notice Lambda: read the failed execution's history, publish the notice.",
        )
        self._log_group.grant_write(role)
        return role

    def _build_function(
        self,
        role: iam.Role,
        *,
        observability: StageObservability,
        quarantine_location: str,
        dead_letter_queue: sqs.IQueue,
        reserve_concurrency: bool,
    ) -> lambda_.Function:
        function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            role=role,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(FAILURE_NOTICE_CODE), exclude=["__pycache__", "*.pyc"]),
            description="Notifies an unsuccessful pipeline execution: its stage, error and how to resume it.",
            memory_size=256,
            timeout=Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self._log_group,
            environment={
                "TOPIC_ARN": observability.alarm_topic.topic_arn,
                "QUARANTINE_LOCATION": quarantine_location,
            },
            environment_encryption=observability.log_key,
            dead_letter_queue=dead_letter_queue,
            # Where the stage reserves concurrency: one notice per unsuccessful execution, two is
            # headroom, and the cap keeps a burst of failures from taking the account's concurrency.
            reserved_concurrent_executions=2 if reserve_concurrency else None,
        )
        if not reserve_concurrency:
            skip_checkov(
                function,
                "No reserved concurrency in this stage (config reserve_lambda_concurrency): a reservation "
                "comes out of the account's pool, and a new account's quota refuses the deploy. Its "
                "callers are bounded anyway: one notice per unsuccessful pipeline execution.",
                "CKV_AWS_115",
                resource_type="AWS::Lambda::Function",
            )
        return function

    def _grant_history_reads(self, role: iam.Role, state_machine: sfn.StateMachine) -> None:
        """GetExecutionHistory on the pipeline's executions only (`execution:<name>:*`)."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:GetExecutionHistory"],
                resources=[
                    Stack.of(self).format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{state_machine.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )

    def _build_rule(
        self,
        state_machine: sfn.StateMachine,
        *,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> events.Rule:
        return events.Rule(
            self,
            "Rule",
            description="Notify every execution of the pipeline that failed, timed out or was aborted.",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={"status": UNSUCCESSFUL_STATUSES, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=retry_attempts,
                    max_event_age=max_event_age,
                )
            ],
        )

    def _acknowledge(self, role: iam.Role, state_machine: sfn.StateMachine) -> None:
        acknowledge_grant_actions(role, *GRANT_KMS_ACTIONS)
        acknowledge(
            role,
            "Reads the history of any execution of the pipeline state machine; executions are named at run time.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{rendered_arn(self, state_machine, attribute='Name')}:*]",
        )
        acknowledge(
            role,
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        skip_checkov(
            self.function,
            "Reads one execution history and publishes to one topic; a VPC would add endpoints and ENIs "
            "for no isolation gained.",
            "CKV_AWS_117",
            resource_type="AWS::Lambda::Function",
        )
