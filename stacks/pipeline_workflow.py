"""The pipeline state machine: runs the stage state machines in order and notifies the outcome.

Trigger recognised? ─► run stage 1 ─► run stage 2 ─► ... ─► notify success ─► Succeed
each stage: states:startExecution.sync:2, Catch States.ALL ─► note the stage ─► Stage error known?
  the stage execution failed (States.TaskFailed, its DescribeExecution JSON as the cause)
      ─► read the stage's own Error, Cause, ExecutionArn ─► notify stage failure ─► Fail PipelineFailed
  anything else ─► notify failure (the error and cause as caught) ─► Fail PipelineFailed
An unrecognised trigger event is notified as a failure of stage "trigger" (InvalidTriggerEvent).
Exactly one notice per run; the success path has no state beyond the trigger check, the stages and its notice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
# Step Functions execution names: 1-80 characters; only these characters keep CloudWatch logging working.
STAGE_NAME_PATTERN = r"[0-9A-Za-z_-]{1,47}"
SNS_TRANSIENT_ERRORS = ["SNS.InternalErrorException", "SNS.ThrottledException", "SNS.KMSThrottlingException"]


@dataclass(frozen=True, kw_only=True)
class PipelineStage:
    """A stage of the pipeline: a short name (used in execution names and notices) and its machine."""

    name: str
    state_machine: sfn.IStateMachine

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_NAME_PATTERN, self.name):
            raise ValueError(
                f"PipelineStage name = {self.name!r}: must match {STAGE_NAME_PATTERN} "
                f"(its stage executions are named <32-character hash>-<name>, at most 80 characters)"
            )


def child_execution_name(stage: str) -> str:
    """The stage execution's name: an MD5 of the pipeline execution's name, then the stage.

    Deterministic, so a retried or redriven pipeline finds its child instead of starting a second
    one; 32 + 1 + at most 47 characters, all in [0-9A-Za-z_-], whatever the parent is called
    (EventBridge names executions <event id>_<uuid>, 73 characters: <parent>-<stage> would not fit
    the 80 allowed). The console links child and parent (`associate_with_parent`).
    """
    return sfn.JsonPath.format(f"{{}}-{stage}", sfn.JsonPath.hash(sfn.JsonPath.execution_name, "MD5"))


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

        # The failure side. Every notice names the stage and its error; when a stage state machine
        # failed, its own Error and Cause (not States.TaskFailed and the DescribeExecution JSON).
        pipeline_failed = sfn.Fail(
            self,
            "Pipeline failed",
            # A custom error name: "States.*" names are reserved.
            error=PIPELINE_FAILED,
            cause_path="$.error.Cause",
        )
        failure_notice = {
            "status": "FAILED",
            "stage": sfn.JsonPath.string_at("$.failed_stage"),
            "error": sfn.JsonPath.string_at("$.error.Error"),
            "cause": sfn.JsonPath.string_at("$.error.Cause"),
            "execution": sfn.JsonPath.execution_id,
        }
        # Errors with no stage execution to read (trigger rejected, stage not started, a cause that
        # is not the stage execution's JSON) are notified as caught, without stage_execution.
        notify_failure = self._notify(topic, "Notify failure", failure_notice)
        notify_failure.next(pipeline_failed)
        notify_stage_failure = self._notify(
            topic,
            "Notify stage failure",
            {**failure_notice, "stage_execution": sfn.JsonPath.string_at("$.error.ExecutionArn")},
        )
        notify_stage_failure.next(pipeline_failed)
        # startExecution.sync:2 reports a failed stage execution as States.TaskFailed, with the
        # execution's DescribeExecution JSON (ExecutionArn, Error, Cause, ...) as the cause. The
        # stage's own Error and Cause are merged over the caught ones: a stage execution that ended
        # without them (aborted) keeps the caught ones, so the notice never reads a missing field.
        read_stage_error = sfn.Pass(
            self,
            "Read stage error",
            parameters={
                "failed_stage": sfn.JsonPath.string_at("$.failed_stage"),
                "error": sfn.JsonPath.json_merge(
                    sfn.JsonPath.object_at("$.error"),
                    sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.error.Cause")),
                ),
            },
        )
        read_stage_error.next(notify_stage_failure)
        # Only a cause that reads as a DescribeExecution JSON object reaches States.StringToJson: a
        # Pass state cannot catch, and an intrinsic failing there would end the run without a notice.
        # Any other error or cause (States.Timeout, a stage that could not start, ...) is notified as caught.
        cause = "$.error.Cause"
        stage_error_known = (
            sfn.Choice(self, "Stage error known?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.error.Error", sfn.Errors.TASKS_FAILED),
                    sfn.Condition.is_present(cause),
                    sfn.Condition.is_string(cause),
                    sfn.Condition.string_matches(cause, '{*"ExecutionArn"*}'),
                ),
                read_stage_error,
            )
            .otherwise(notify_failure)
        )

        notify_success = self._notify(
            topic,
            "Notify success",
            {
                "status": "SUCCEEDED",
                "execution": sfn.JsonPath.execution_id,
                "stages": sfn.JsonPath.object_at("$.stages"),
            },
            subject="Pipeline SUCCEEDED",
        )
        notify_success.next(sfn.Succeed(self, "Pipeline succeeded"))

        chain: sfn.Chain | None = None
        for stage in stages:
            run_stage = tasks.StepFunctionsStartExecution(
                self,
                f"Run {stage.name} stage",
                state_machine=stage.state_machine,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                # Deterministic child name: a redriven or retried parent cannot start a second child.
                name=child_execution_name(stage.name),
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
            run_stage.add_catch(note_stage.next(stage_error_known), errors=[sfn.Errors.ALL], result_path="$.error")
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

    def _notify(
        self, topic: sns.ITopic, id_: str, message: dict[str, Any], subject: str | None = None
    ) -> tasks.SnsPublish:
        """Publish a notice to the topic, retrying SNS's transient errors; the state's input passes through."""
        notify = tasks.SnsPublish(
            self,
            id_,
            topic=topic,
            # SNS subjects hold at most 100 characters: stage names and error names are short.
            subject=subject
            or sfn.JsonPath.format(
                "Pipeline FAILED at stage {}: {}",
                sfn.JsonPath.string_at("$.failed_stage"),
                sfn.JsonPath.string_at("$.error.Error"),
            ),
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify.add_retry(
            errors=SNS_TRANSIENT_ERRORS,
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return notify
