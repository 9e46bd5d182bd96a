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
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.common.lambda_function import PipelineFunction
from stacks.common.nag import GRANT_KMS_ACTIONS, acknowledge, acknowledge_grant_actions, rendered_arn
from stacks.observability.observed_state_machine import StageObservability

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
        max_event_age: Duration | None = None,  # None: 6 hours
    ) -> None:
        super().__init__(scope, id_)
        self.function = PipelineFunction(
            self,
            "Function",
            log_group_id="Logs",
            role_id="Role",
            code="failure_notice",
            handler="handler.handler",
            description="Notifies an unsuccessful pipeline execution: its stage, error and how to resume it.",
            role_description="failure notice Lambda: read the failed execution's history, publish the notice.",
            memory_size=256,
            timeout=Duration.seconds(30),
            environment={
                "TOPIC_ARN": observability.alarm_topic.topic_arn,
                "QUARANTINE_LOCATION": quarantine_location,
            },
            dead_letter_queue=dead_letter_queue,
            function_logs=observability,
            # One notice per unsuccessful execution: two is headroom.
            reserved_concurrency=2 if reserve_concurrency else None,
            callers_bounded="Its callers are bounded anyway: one notice per unsuccessful pipeline execution.",
            why_no_vpc="Reads one execution history and publishes to one topic; a VPC would add endpoints and ENIs "
            "for no isolation gained.",
        )
        role = self.function.execution_role
        observability.alarm_topic.grant_publish(role)
        self._grant_history_reads(role, state_machine)
        self.rule = self._build_rule(
            state_machine,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age or Duration.hours(6),
        )
        self._acknowledge(role, state_machine)

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
