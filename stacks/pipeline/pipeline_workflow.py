"""The pipeline state machine: one run at a time, in rounds, each running the stage state machines.

Trigger recognised? ─► Take lease ─ held by a running execution ─► Coalesced (Succeed, no notice)
  ─► Start round (run = <execution name>-r<round>, its landing folder, its child-name key)
  ─► run each stage (states:startExecution.sync:2); a stage with `proceed_when` that does not hold
     (nothing admitted) skips the rest of the round
  ─► Notify round ─► Next round ─► Look at incoming ─ files waiting, rounds left, not redriven ─► Start round
  ─► Release lease ─► Look at incoming again ─ files waiting, rounds left ─► Retake lease ─► Start round
                                            └ files waiting, rounds spent ─► Continue in a new execution
  ─► Pipeline succeeded
An unrecognised trigger event fails at once (Trigger rejected, InvalidTriggerEvent), taking no lease.

A stage that fails fails the execution AT its task: nothing here catches it. So after the cause is
fixed, `aws stepfunctions redrive-execution` re-enters that stage task ("continues the failed
execution from the unsuccessful step", with the state's recorded input: the same run, files and
partition); the stages before it are not run again. The child is named after the round and
`$$.Execution.RedriveCount`, so the redrive starts a fresh child instead of finding the failed one.
Every unsuccessful end (FAILED, TIMED_OUT, ABORTED) is notified once, from the execution's status
change (stacks/observability/failure_notice.py), with the stage, the error and the command that resumes it.

The lease while a failed run waits for its redrive: released, in effect. The lease expires with its
holder (stacks/pipeline/single_flight_lease.py), so the next upload's execution takes it over and runs its
own files in its own run: the failed run's files are already in its run folder, out of incoming/,
so the two never share a file or a partition. A redriven execution finishes its round, then never
starts another round on the lease it once held: it releases the lease if it still holds it (and
goes on if another execution took it over meanwhile), looks at incoming/ once more and takes the
lease afresh before any new round, so it never runs beside the execution that holds it. Keeping
the lease instead would stall every upload behind a run that may never be redriven (a
ValidationFailed is resolved by a replay, not a redrive).

The look after the release closes the race with an upload that lands while the lease is being
released: its own execution coalesced into this one, so this one must see it. Files still waiting
when max_rounds is spent are handed to a new execution of this machine (Continue in a new
execution), so a long burst never strands files until the next schedule tick.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.nag import acknowledge, acknowledge_grant_actions, rendered_arn, rendered_state_machine_name
from stacks.common.retries import SNS_TRANSIENT
from stacks.common.s3_tasks import count_keys
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline.single_flight_lease import CONDITION_FAILED, SingleFlightLease
from stacks.pipeline_contract import run_folder

INVALID_TRIGGER = "InvalidTriggerEvent"
# Step Functions execution names: 1-80 characters; only these characters keep CloudWatch logging working.
# A stage execution is named <32-character key>-<redrive count>-<stage>: 40 leaves the redrive
# count 6 digits.
STAGE_NAME_PATTERN = r"[0-9A-Za-z_-]{1,40}"
# The state that runs a stage: what the failure notice and `make why` read the stage from.
STAGE_STATE = "Run {} stage"
# The trigger of an execution that continues another whose rounds were spent.
CONTINUATION_SOURCE = "glue-pipeline.continuation"


@dataclass(frozen=True, kw_only=True)
class PipelineStage:
    """A stage of the pipeline: a short name (used in execution names and notices) and its machine.

    `proceed_when`, over the stage's output at `$.stages.<name>.Output`: when it does not hold,
    the round ends after this stage (e.g. admission admitted no file: nothing to crawl).
    """

    name: str
    state_machine: sfn.IStateMachine
    proceed_when: sfn.Condition | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_NAME_PATTERN, self.name):
            raise ValueError(
                f"PipelineStage name = {self.name!r}: must match {STAGE_NAME_PATTERN} "
                f"(its stage executions are named <32-character hash>-<redrive count>-<name>, at most 80 characters)"
            )


def child_execution_name(stage: str) -> str:
    """The stage execution's name: the round's key (an MD5 of the run name), the redrive count, the stage.

    Deterministic per attempt: a retried pipeline finds its child instead of starting a second one,
    and each redrive of the pipeline (`$$.Execution.RedriveCount` 1, 2, ...) starts a fresh child of
    the stage it re-enters (the failed child keeps its name and its history). 32 + 1 + the count
    + 1 + at most 40 characters, all in [0-9A-Za-z_-], whatever the parent is called (EventBridge
    names executions <event id>_<uuid>, 73 characters: <parent>-<stage> would not fit the 80
    allowed). The console links child and parent (AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID).
    """
    return f"States.Format('{{}}-{{}}-{stage}', $.run.key, $$.Execution.RedriveCount)"


@dataclass(frozen=True, kw_only=True)
class IncomingFiles:
    """Where uploads wait for admission, and where admitted files go: the run folders' parent."""

    bucket: s3.IBucket
    incoming_prefix: str
    landing_prefix: str


class PipelineWorkflow(Construct):
    """The pipeline state machine (`.state_machine`) over the given stages, in order."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        stages: Sequence[PipelineStage],
        lease: SingleFlightLease,
        files: IncomingFiles,
        max_rounds: int,
        timeout: Duration,
        observability: StageObservability,  # its alarm topic also gets the pipeline's notices
    ) -> None:
        super().__init__(scope, id_)
        if not stages:
            raise ValueError("PipelineWorkflow stages = []: needs at least one stage")
        self._topic, self._lease, self._files = observability.alarm_topic, lease, files
        self._max_rounds = max_rounds

        done = sfn.Succeed(self, "Pipeline succeeded")
        start_round = self._build_round_start()
        round_end = self._build_round_end(start_round, done)
        start_round.next(self._build_stages(stages, round_end))
        coalesced = sfn.Succeed(
            self, "Coalesced", comment="Another execution holds the lease: its rounds admit these files."
        )
        begin = sfn.Pass(self, "First round", result=sfn.Result.from_object({"number": 1}), result_path="$.round")
        begin.next(lease.take(on_taken=start_round, on_held=coalesced))
        definition = (
            sfn.Choice(self, "Trigger recognised?")
            .when(self._trigger_recognised(), begin)
            .otherwise(self._build_reject_trigger())
        )

        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=definition,
            timeout=timeout,
            observability=observability,
            comment="Pipeline: one run at a time; each round admits, crawls and transforms, then notifies.",
        )
        self.state_machine = observed.state_machine
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
        self._grant_and_acknowledge(stages)

    # --- the round -------------------------------------------------------------------------------

    def _build_round_start(self) -> sfn.Pass:
        """The round's run: its name, the key its child executions are named by, its landing folder."""
        run_name = "States.Format('{}-r{}', $$.Execution.Name, $.round.number)"
        return sfn.Pass(
            self,
            "Start round",
            parameters={
                "name.$": run_name,
                "key.$": f"States.Hash({run_name}, 'MD5')",
                "landing_path": sfn.JsonPath.format(
                    "s3://{}/" + run_folder(self._files.landing_prefix, "{}-r{}"),
                    self._files.bucket.bucket_name,
                    sfn.JsonPath.execution_name,
                    sfn.JsonPath.string_at("$.round.number"),
                ),
            },
            result_path="$.run",
        )

    def _build_stages(self, stages: Sequence[PipelineStage], round_end: sfn.IChainable) -> sfn.IChainable:
        first: sfn.IChainable | None = None
        previous: sfn.INextable | _ChoiceBranch | None = None
        for stage in stages:
            # No Catch: a failed stage fails the execution here, so a redrive re-enters this task.
            run_stage = self._run_stage(stage)
            if previous is not None:
                previous.next(run_stage)
            first = first or run_stage
            previous = run_stage
            if stage.proceed_when is not None:
                proceed = sfn.Choice(self, f"Proceed after {stage.name}?")
                run_stage.next(proceed)
                proceed.otherwise(round_end)
                previous = _ChoiceBranch(proceed, stage.proceed_when)
        assert first is not None and previous is not None
        previous.next(round_end)
        return first

    def _run_stage(self, stage: PipelineStage) -> sfn.CustomState:
        """`states:startExecution.sync:2` of the stage's machine, as CDK's StepFunctionsStartExecution
        renders it. A raw state: that task grants Describe/StopExecution on `execution:<name>*`, which
        also matches every other machine whose name starts with this one's; `_grant_and_acknowledge`
        grants them on this machine's executions only (`execution:<name>:*`)."""
        return sfn.CustomState(
            self,
            STAGE_STATE.format(stage.name),
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::states:startExecution.sync:2",
                "Parameters": {
                    "Input": {
                        "trigger.$": "$$.Execution.Input",
                        "run.$": "$.run",
                        # The console links child and parent.
                        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                    },
                    "StateMachineArn": stage.state_machine.state_machine_arn,
                    # Deterministic child name: a redriven or retried parent cannot start a second child.
                    "Name.$": child_execution_name(stage.name),
                },
                "ResultSelector": {"ExecutionArn.$": "$.ExecutionArn", "Status.$": "$.Status", "Output.$": "$.Output"},
                "ResultPath": f"$.stages.{stage.name}",
            },
        )

    def _build_round_end(self, start_round: sfn.IChainable, done: sfn.IChainable) -> sfn.IChainable:
        """Notify the round; another round while files wait; release; look once more after the release."""
        notify = self._notify(
            "Notify round",
            {
                "status": "SUCCEEDED",
                "execution": sfn.JsonPath.execution_id,
                "run": sfn.JsonPath.string_at("$.run.name"),
                "round": sfn.JsonPath.number_at("$.round.number"),
                "stages": sfn.JsonPath.object_at("$.stages"),
            },
            subject="Pipeline SUCCEEDED",
        )
        next_round = sfn.Pass(
            self,
            "Next round",
            # A redriven execution's count is read here, after the stage it re-entered.
            parameters={
                "number.$": "States.MathAdd($.round.number, 1)",
                "redrive_count.$": "$$.Execution.RedriveCount",
            },
            result_path="$.round",
        )
        release = self._lease.release("Release lease")
        retake = self._lease.take(on_taken=start_round, on_held=done, prefix="After release: ")
        after_release = self._look_at_incoming("Look at incoming after release").next(
            sfn.Choice(self, "Files arrived during release?")
            .when(self._files_waiting_and_rounds_left(), retake)
            .when(sfn.Condition.number_greater_than("$.waiting.count", 0), self._build_continuation(done))
            .otherwise(done)
        )
        release.next(after_release)
        # Redriven after another execution took the lease over (it expired with this one): not ours to release.
        release.add_catch(after_release, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        look = self._look_at_incoming("Look at incoming")
        look.next(
            sfn.Choice(self, "Files waiting?")
            .when(
                sfn.Condition.and_(
                    self._files_waiting_and_rounds_left(),
                    # A redriven execution may have lost the lease while it waited: a new round
                    # only after taking it again (Release lease ─► ... ─► Retake lease).
                    sfn.Condition.number_equals("$.round.redrive_count", 0),
                ),
                start_round,
            )
            .otherwise(release)
        )
        notify.next(next_round).next(look)
        return notify

    def _build_continuation(self, done: sfn.IChainable) -> sfn.IChainable:
        """Rounds spent and files still waiting: a fresh execution of this machine takes over.

        Their own executions coalesced into this one, so without it they would wait for the next
        schedule tick. A new execution (not more rounds here) keeps each history short. Its name
        is derived from this one's: a retried or redriven execution cannot start a second one.
        """
        continuation = sfn.CustomState(
            self,
            "Continue in a new execution",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::states:startExecution",
                "Parameters": {
                    "StateMachineArn.$": "$$.StateMachine.Id",
                    "Name.$": "States.Format('{}-next', States.Hash($$.Execution.Name, 'MD5'))",
                    "Input": {
                        "detail-type": "Scheduled Event",
                        "source": CONTINUATION_SOURCE,
                        "detail": {"continues.$": "$$.Execution.Id"},
                    },
                },
                "ResultPath": None,
            },
        )
        # Started already (a retry or a redrive of this execution): the files are in its hands.
        continuation.add_catch(done, errors=["StepFunctions.ExecutionAlreadyExistsException"])
        continuation.next(done)
        return continuation

    def _look_at_incoming(self, id_: str) -> tasks.CallAwsService:
        files = self._files
        return count_keys(self, id_, bucket=files.bucket, prefix=files.incoming_prefix, result_path="$.waiting")

    def _files_waiting_and_rounds_left(self) -> sfn.Condition:
        return sfn.Condition.and_(
            sfn.Condition.number_greater_than("$.waiting.count", 0),
            sfn.Condition.number_less_than_equals("$.round.number", self._max_rounds),
        )

    # --- the trigger -------------------------------------------------------------------------------

    def _trigger_recognised(self) -> sfn.Condition:
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
        return sfn.Condition.or_(is_object_created, is_schedule)

    def _build_reject_trigger(self) -> sfn.IChainable:
        """Events the pipeline cannot have come from: fail at once, no lease taken (notified by the status change)."""
        return sfn.Fail(
            self,
            "Trigger rejected",
            error=INVALID_TRIGGER,
            cause="expected an S3 Object Created event with detail.bucket.name and detail.object.key, "
            "or a Scheduled Event",
        )

    def _notify(self, id_: str, message: dict[str, Any], subject: str) -> tasks.SnsPublish:
        """Publish a notice to the topic, retrying SNS's transient errors; the state's input passes through."""
        notify = tasks.SnsPublish(
            self,
            id_,
            topic=self._topic,
            subject=subject,
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        SNS_TRANSIENT.apply(notify)
        return notify

    def _grant_and_acknowledge(self, stages: Sequence[PipelineStage]) -> None:
        # SnsPublish grants sns:Publish only; an encrypted topic also needs its key.
        self._topic.grant_publish(self.state_machine)
        self._lease.grant_holder_lookup(self.state_machine)
        # A separate policy (the default one cannot name this machine: the machine depends on it).
        iam.Policy(
            self,
            "ContinueInNewExecution",
            statements=[
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn])
            ],
        ).attach_to_role(self.state_machine.role)
        acknowledge_grant_actions(self.state_machine.role, "kms:GenerateDataKey*")
        # The lease table is encrypted with the key: its states need the key explicitly.
        self._lease.grant_table_key(self.state_machine)
        role = self.state_machine.role
        for stage in stages:
            # startExecution.sync:2: start the stage's machine, then describe (and, when this
            # execution stops, stop) the child it started, which is one of that machine's executions.
            stage.state_machine.grant_start_execution(role)
            stage.state_machine.grant_execution(role, "states:DescribeExecution", "states:StopExecution")
            name = rendered_state_machine_name(self, stage.state_machine)
            acknowledge(
                role,
                "startExecution.sync:2 describes and stops the child executions it starts; their names "
                "are made at run time, under this one stage state machine.",
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}:*]",
            )
        # .sync learns that a child ended from this managed rule, which Step Functions creates on first use.
        managed_rule = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resource_arns=[Stack.of(self).format_arn(service="events", resource="rule", resource_name=managed_rule)],
        )
        acknowledge(
            self._lease,
            "The lease holder is one of this state machine's own executions, named at run time.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{rendered_arn(self, self.state_machine, attribute='Name')}:*]",
        )


class _ChoiceBranch:
    """`.next(x)` on this adds `when(condition, x)` to a Choice: chains a stage after a proceed test."""

    def __init__(self, choice: sfn.Choice, condition: sfn.Condition) -> None:
        self._choice, self._condition = choice, condition

    def next(self, state: sfn.IChainable) -> None:
        self._choice.when(self._condition, state)
