"""The pipeline state machine: runs the stage state machines in order and notifies the outcome.

Trigger recognised? ─► run stage 1 ─► run stage 2 ─► ... ─► notify success ─► Succeed
each stage: states:startExecution.sync:2, Catch States.ALL ─► note the stage ─► notify failure ─► Fail
An unrecognised trigger event is notified as a failure of stage "trigger".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.nag import acknowledge, acknowledge_grant_actions
from stacks.observed_state_machine import ObservedStateMachine

INVALID_TRIGGER = "InvalidTriggerEvent"
PIPELINE_FAILED = "PipelineFailed"
SNS_TRANSIENT_ERRORS = ["SNS.InternalErrorException", "SNS.ThrottledException", "SNS.KMSThrottlingException"]


@dataclass(frozen=True, kw_only=True)
class PipelineStage:
    """A stage of the pipeline: a short name (used in execution names and notices) and its machine."""

    name: str
    state_machine: sfn.IStateMachine


class PipelineWorkflow(Construct):
    """The pipeline state machine (`.state_machine`) over the given stages, in order."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        stages: Sequence[PipelineStage],
        topic: sns.ITopic,
        timeout: Duration,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        if not stages:
            raise ValueError("PipelineWorkflow stages = []: needs at least one stage")

        notify_failure = tasks.SnsPublish(
            self,
            "Notify failure",
            topic=topic,
            subject=sfn.JsonPath.format("Pipeline FAILED at stage {}", sfn.JsonPath.string_at("$.failed_stage")),
            message=sfn.TaskInput.from_object(
                {
                    "status": "FAILED",
                    "stage": sfn.JsonPath.string_at("$.failed_stage"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_failure.add_retry(errors=SNS_TRANSIENT_ERRORS, interval=Duration.seconds(2), max_attempts=3,
                                 backoff_rate=2, jitter_strategy=sfn.JitterType.FULL)
        notify_failure.next(
            # A custom error name: "States.*" names are reserved, and a failed stage arrives as
            # States.TaskFailed (its own Error and Cause inside the cause JSON).
            sfn.Fail(self, "Pipeline failed", error=PIPELINE_FAILED, cause_path="$.error.Cause")
        )

        notify_success = tasks.SnsPublish(
            self,
            "Notify success",
            topic=topic,
            subject="Pipeline SUCCEEDED",
            message=sfn.TaskInput.from_object(
                {
                    "status": "SUCCEEDED",
                    "execution": sfn.JsonPath.execution_id,
                    "stages": sfn.JsonPath.object_at("$.stages"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_success.add_retry(errors=SNS_TRANSIENT_ERRORS, interval=Duration.seconds(2), max_attempts=3,
                                 backoff_rate=2, jitter_strategy=sfn.JitterType.FULL)
        notify_success.next(sfn.Succeed(self, "Pipeline succeeded"))

        chain: sfn.Chain | None = None
        for stage in stages:
            run_stage = tasks.StepFunctionsStartExecution(
                self,
                f"Run {stage.name} stage",
                state_machine=stage.state_machine,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                # Deterministic child name: a redriven or retried parent cannot start a second child.
                name=sfn.JsonPath.format(f"{{}}-{stage.name}", sfn.JsonPath.execution_name),
                associate_with_parent=True,
                input=sfn.TaskInput.from_object({"trigger": sfn.JsonPath.object_at("$$.Execution.Input")}),
                result_selector={
                    "ExecutionArn.$": "$.ExecutionArn",
                    "Status.$": "$.Status",
                    "Output.$": "$.Output",
                },
                result_path=f"$.stages.{stage.name}",
            )
            note_stage = sfn.Pass(
                self,
                f"{stage.name.capitalize()} stage failed",
                result=sfn.Result.from_string(stage.name),
                result_path="$.failed_stage",
            )
            run_stage.add_catch(note_stage.next(notify_failure), errors=[sfn.Errors.ALL], result_path="$.error")
            chain = run_stage if chain is None else chain.next(run_stage)  # type: ignore[assignment]
        assert chain is not None
        chain = chain.next(notify_success)  # type: ignore[assignment]

        # Reject events the pipeline cannot have come from; stages get the event as `trigger`.
        has = sfn.Condition.is_present
        is_object_created = sfn.Condition.and_(
            has("$.detail-type"),
            sfn.Condition.string_equals("$.detail-type", "Object Created"),
            has("$.detail.bucket.name"),
            has("$.detail.object.key"),
        )
        is_schedule = sfn.Condition.and_(
            has("$.detail-type"), sfn.Condition.string_equals("$.detail-type", "Scheduled Event")
        )
        reject_trigger = sfn.Pass(
            self,
            "Reject trigger",
            parameters={
                "failed_stage": "trigger",
                "error": {
                    "Error": INVALID_TRIGGER,
                    "Cause": "expected an S3 Object Created event with detail.bucket.name and "
                    "detail.object.key, or a Scheduled Event",
                },
                "trigger.$": "$",
            },
        )
        definition = (
            sfn.Choice(self, "Trigger recognised?")
            .when(sfn.Condition.or_(is_object_created, is_schedule), chain)
            .otherwise(reject_trigger.next(notify_failure))
        )

        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=definition,
            timeout=timeout,
            log_key=log_key,
            log_retention=log_retention,
            alarm_topic=topic,
            removal_policy=removal_policy,
            comment="Pipeline: run each stage state machine in order and notify the outcome.",
        )
        self.state_machine = observed.state_machine
        # SnsPublish grants sns:Publish only; an encrypted topic also needs its key.
        topic.grant_publish(self.state_machine)
        acknowledge_grant_actions(self.state_machine.role, "kms:GenerateDataKey*")
        stack = Stack.of(self)
        for stage in stages:
            machine = stage.state_machine.node.default_child
            name = f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{stack.get_logical_id(machine)}"}}]}}]}}'  # type: ignore[arg-type]
            acknowledge(
                self.state_machine.role,
                "startExecution.sync:2 describes and stops the child executions it starts; their names "
                "are made at run time, under this one stage state machine.",
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}*]",
            )
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
