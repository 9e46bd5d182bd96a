"""The front door: an EXPRESS state machine between the uploads' rule and the Standard pipeline.

Read lease ─ no item ───────────────────────────────────────────────► Look at incoming
     └ held ─► Describe lease holder ─ RUNNING ─► Coalesced at the door (Succeed: no Standard execution)
                        ├ ended ──────────────────────────────────► Look at incoming
                        └ gone (Sfn.ExecutionDoesNotExistException) ► Look at incoming
Look at incoming (ListObjectsV2, the incoming prefix, 1 key) ─ files waiting ─► Start pipeline ─► Pipeline started
                                                              └ none ─► Nothing waiting (Succeed)
Start pipeline fails (after its retries) ─► Park the event (the rule's dead-letter queue) ─► Fail

Why: an upload that finds a run in progress used to start a Standard execution that coalesced
after 8 billed transitions; here it costs one Express request of a few states. The pipeline is
started with the event as its input and the door's own execution name (as EventBridge names it:
`<event id>_<uuid>`), so the pipeline behaves exactly as when the rule started it, and a retried
start finds the execution it started instead of starting a second one (StartExecution is
idempotent for the same name and input).

Nothing is stranded: the lease holder releases and then looks at incoming/ once more
(stacks/pipeline/pipeline_workflow.py), so a file whose door saw the lease held just before the release is
found by that look; a door that reads after the release starts a pipeline of its own.

An event can arrive after its file was taken in: EventBridge delivers late, and a burst's first run
admits every file that has landed, including those whose events are still on their way. Such a door
finds the lease free and would start a run with nothing to admit (about 25 billed transitions; a
burst of 1,000 whose events outlived its run made 2,801 instead of about 60). So before starting,
the door looks at incoming/ as the pipeline does: nothing waiting, it ends there. It lists the
prefix, not the event's key, so that no spelling of a key in an event (S3 URL-encodes keys in its
other notifications) can make it miss a waiting file. One S3 LIST request, only on this path.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.common.nag import acknowledge, rendered_arn
from stacks.common.retries import SFN_SDK_TRANSIENT, SFN_START_TRANSIENT
from stacks.common.s3_tasks import count_keys
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline.single_flight_lease import HOLDER_GONE, SingleFlightLease

ALREADY_STARTED = "StepFunctions.ExecutionAlreadyExistsException"
PIPELINE_NOT_STARTED = "PipelineNotStarted"
COALESCED_AT_THE_DOOR = "Coalesced at the door"
NOTHING_WAITING = "Nothing waiting"
LOOK_AT_INCOMING = "Look at incoming"
START_PIPELINE = "Start pipeline"


class FrontDoor(Construct):
    """The door's EXPRESS state machine (`.state_machine`) in front of `pipeline`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline: sfn.StateMachine,
        lease: SingleFlightLease,
        landing_bucket: s3.IBucket,
        incoming_prefix: str,
        dead_letter_queue: sqs.IQueue,
        observability: StageObservability,
        timeout: Duration | None = None,  # None: 1 minute
    ) -> None:
        super().__init__(scope, id_)
        self._pipeline, self._lease = pipeline, lease
        start = self._build_files_waiting(landing_bucket, incoming_prefix, self._build_start(dead_letter_queue))
        coalesced = sfn.Succeed(
            self, COALESCED_AT_THE_DOOR, comment="The lease holder is running: its rounds admit this file."
        )
        describe = lease.describe_holder(self, "Describe lease holder")
        SFN_SDK_TRANSIENT.apply(describe)
        describe.add_catch(start, errors=[HOLDER_GONE], result_path=sfn.JsonPath.DISCARD)
        describe.next(
            sfn.Choice(self, "Lease holder running?")
            .when(sfn.Condition.string_equals("$.lease.holder_state.status", "RUNNING"), coalesced)
            .otherwise(start)
        )
        read = lease.read(self, "Read lease")
        read.next(
            sfn.Choice(self, "Lease held?")
            .when(sfn.Condition.is_present("$.lease.Item.holder.S"), describe)
            .otherwise(start)
        )
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=read,
            timeout=timeout or Duration.minutes(1),
            observability=observability,
            comment="Front door: start the pipeline unless a running execution holds its lease.",
            state_machine_type=sfn.StateMachineType.EXPRESS,
        )
        self.state_machine = observed.state_machine
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
        self._grant()

    def _build_files_waiting(self, bucket: s3.IBucket, incoming_prefix: str, start: sfn.IChainable) -> sfn.IChainable:
        """Start the pipeline only while a file waits under incoming/ (an earlier run may have taken all in)."""
        look = count_keys(self, LOOK_AT_INCOMING, bucket=bucket, prefix=incoming_prefix, result_path="$.waiting")
        # Could not look (after the retries): start anyway; at worst a run finds nothing to admit.
        look.add_catch(start, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        look.next(
            sfn.Choice(self, "Files waiting?")
            .when(sfn.Condition.number_greater_than("$.waiting.count", 0), start)
            .otherwise(sfn.Succeed(self, NOTHING_WAITING, comment="An earlier run took every file in."))
        )
        return look

    def _build_start(self, dead_letter_queue: sqs.IQueue) -> sfn.IChainable:
        """StartExecution of the pipeline with the event; parked in the dead-letter queue if it cannot start."""
        start = sfn.CustomState(
            self,
            START_PIPELINE,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::states:startExecution",
                "Parameters": {
                    "StateMachineArn": self._pipeline.state_machine_arn,
                    "Name.$": "$$.Execution.Name",
                    "Input.$": "$$.Execution.Input",
                },
                "ResultSelector": {"ExecutionArn.$": "$.ExecutionArn"},
                "ResultPath": "$.started",
            },
        )
        SFN_START_TRANSIENT.apply(start)
        started = sfn.Succeed(self, "Pipeline started")
        start.next(started)
        # A retry whose first attempt did start it (same name, same input: AWS returns it; other
        # input under the name cannot happen, the name is this door's own).
        start.add_catch(started, errors=[ALREADY_STARTED], result_path=sfn.JsonPath.DISCARD)
        # A raw sqs:sendMessage: CDK's SqsSendMessage sets no message attributes.
        park = sfn.CustomState(
            self,
            "Park the event",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::sqs:sendMessage",
                "Parameters": {
                    "QueueUrl": dead_letter_queue.queue_url,
                    "MessageBody.$": "$$.Execution.Input",
                    # As EventBridge writes a dead letter: the event, and why it was not delivered.
                    "MessageAttributes": {
                        "TARGET_ARN": {"DataType": "String", "StringValue": self._pipeline.state_machine_arn},
                        "ERROR_CODE": {"DataType": "String", "StringValue.$": "$.error.Error"},
                        "ERROR_MESSAGE": {"DataType": "String", "StringValue.$": "$.error.Cause"},
                    },
                },
                "ResultPath": None,
            },
        )
        self._queue = dead_letter_queue
        park.next(
            sfn.Fail(
                self,
                "Pipeline not started",
                error=PIPELINE_NOT_STARTED,
                cause="the pipeline could not be started; the event is in the triggers' dead-letter queue",
            )
        )
        start.add_catch(park, errors=["States.ALL"], result_path="$.error")
        return start

    def _grant(self) -> None:
        # The lease read task grants its GetItem itself.
        role = self.state_machine.role
        # Park the event: SendMessage only (grant_send_messages adds GetQueueAttributes/GetQueueUrl
        # and kms:ReEncrypt*), and what SQS asks of a producer to an encrypted queue.
        iam.Grant.add_to_principal(grantee=role, actions=["sqs:SendMessage"], resource_arns=[self._queue.queue_arn])
        if self._queue.encryption_master_key is not None:
            self._queue.encryption_master_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        self._pipeline.grant_start_execution(role)
        self._lease.grant_table_key_read(role)
        # The raw describe task grants nothing: DescribeExecution on the pipeline's executions only.
        iam.Policy(
            self,
            "HolderLookup",
            statements=[
                iam.PolicyStatement(
                    actions=["states:DescribeExecution"],
                    resources=[SingleFlightLease.holder_executions_arn(self._pipeline)],
                )
            ],
        ).attach_to_role(role)
        acknowledge(
            self,
            "The lease holder is one of the pipeline's executions, named at run time.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{rendered_arn(self, self._pipeline, attribute='Name')}:*]",
        )
