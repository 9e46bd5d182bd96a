"""EventBridge rules that start a state machine: on a .csv arriving under a prefix, and on a schedule.

Both targets retry delivery and park undeliverable events in an encrypted dead-letter queue, so
no trigger is lost silently.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.common.nag import acknowledge


class PipelineTriggers(Construct):
    """`.object_created_rule`, `.schedule_rule` and `.dead_letter_queue` for one state machine."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.IStateMachine,
        landing_bucket: s3.IBucket,
        incoming_prefix: str,
        schedule: str,
        key: kms.IKey,
        enabled: bool = True,
        uploads_through_door: bool = False,
        retry_attempts: int = 8,
        max_event_age: Duration | None = None,  # None: 6 hours
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "This queue is itself the dead-letter queue of the rule targets.",
            "AwsSolutions-SQS3",
            "Serverless-SQSRedrivePolicy",
        )

        def target(machine: sfn.IStateMachine = state_machine) -> targets.SfnStateMachine:
            return targets.SfnStateMachine(
                machine,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=retry_attempts,
                max_event_age=max_event_age or Duration.hours(6),
            )

        self._target = target

        # Only what admission could accept starts a run: a .csv with content under the incoming
        # prefix. Anything else landing there (folder markers, empty or other files) starts
        # nothing; the next run quarantines it with a reason.
        self.object_created_rule = events.Rule(
            self,
            "ObjectCreatedRule",
            description="Start the pipeline when a non-empty .csv lands under the incoming prefix.",
            enabled=enabled,
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [landing_bucket.bucket_name]},
                    "object": {
                        # Under the prefix and ending in .csv: one wildcard (a prefix and a suffix
                        # filter on the same field would match either, not both).
                        "key": [{"wildcard": f"{incoming_prefix}*.csv"}],
                        "size": [{"numeric": [">", 0]}],
                    },
                },
            ),
            # None when uploads go through a front door: `uploads_through` adds it.
            targets=None if uploads_through_door else [target()],
        )
        self.schedule_rule = events.Rule(
            self,
            "ScheduleRule",
            description="Start the pipeline on the configured schedule.",
            enabled=enabled,
            schedule=events.Schedule.expression(schedule),
            targets=[target()],
        )

    def uploads_through(self, door: sfn.IStateMachine) -> None:
        """Target the Object Created rule at `door` (stacks/pipeline/front_door.py), with the same retries and
        dead-letter queue; the schedule still starts the pipeline itself."""
        self.object_created_rule.add_target(self._target(door))
