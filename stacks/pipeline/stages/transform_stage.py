"""Transform stage: write, audit, publish (or quarantine) one run.

Replay? ─► (a replay) quarantine record there? staged output there? ─ no ─► Fail ReplayRefused (a mistyped
          run name, a run rejected by deleting its record, the output deleted; nothing is written)
          ─► check again with its own threshold ─► valid, rows written ─► publish (below) | else Fail ReplayRefused
glue:startJobRun.sync (writes the run's staged output + manifest) ─► check results (Lambda) ─► Choice
  valid, rows written ─► publish: glue:CreatePartition (the run's partition of the curated table;
                         metadata only, atomic for readers; already there = published)
                         ─► clear quarantine record ─► Succeed
  valid, no rows      ─► Succeed (nothing to publish)
  invalid             ─► quarantine: the check's verdict and the replay input to quarantine/orders/run=<run>.json
                         (the staged output stays, unpublished) ─► Fail ValidationFailed (cause: the check's reason)
A job run that ends FAILED, TIMEOUT or STOPPED fails the stage GlueJobFailed: nothing is published.

Input: {"run": {"name": <run>, "landing_path": s3://...}, ...}; a replay of a quarantined run:
{"run": {"name": <run>}, "replay": {"max_rejected_ratio": <number>}} (the quarantine record holds it).
Every location is named after the run: a redriven or replayed run finds and replaces its own.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.lambda_function import PipelineFunction
from stacks.common.nag import (
    GRANT_READ_ACTIONS,
    acknowledge,
    acknowledge_grant_actions,
    rendered_arn,
)
from stacks.common.retries import GLUE_JOB_BUSY_ERRORS, GLUE_TRANSIENT, S3_TRANSIENT, busy_retry
from stacks.common.s3_tasks import count_keys
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline_contract import MANIFEST_PREFIX, QUARANTINE_RECORD_PREFIX, REJECTED_PREFIX, run_folder, run_record
from stacks.storage.curated_table import CuratedOrdersTable, storage_descriptor

GLUE_JOB_FAILED = "GlueJobFailed"
VALIDATION_FAILED = "ValidationFailed"
REPLAY_REFUSED = "ReplayRefused"


class GlueTransformStage(Construct):
    """The transform stage state machine (`.state_machine`) and its check-results Lambda."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        job: glue.IJob,
        manifest_bucket: s3.IBucket,
        curated_table: CuratedOrdersTable,
        max_rejected_ratio: float,
        busy_retry_interval: Duration,
        busy_retry_attempts: int,
        timeout: Duration,
        observability: StageObservability,
        reserve_concurrency: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self._reserve_concurrency = reserve_concurrency
        # One manifest, one staged output, one quarantine record per run, named after it: a redriven
        # or replayed run finds its own. The job writes them, the check reads the manifest.
        run_name = sfn.JsonPath.string_at("$.run.name")
        # The contract's run folders and records, with `{}` for the run (a JsonPath.format template).
        manifest_key = sfn.JsonPath.format(run_record(MANIFEST_PREFIX, "{}"), run_name)
        staged_path = sfn.JsonPath.format(
            "s3://{}/" + run_folder(curated_table.staging_prefix, "{}"), curated_table.bucket.bucket_name, run_name
        )
        rejected_path = sfn.JsonPath.format(
            "s3://{}/" + run_folder(REJECTED_PREFIX, "{}"), manifest_bucket.bucket_name, run_name
        )
        quarantine_key = sfn.JsonPath.format(run_record(QUARANTINE_RECORD_PREFIX, "{}"), run_name)

        self.check_results_function = self._build_check_results_function(manifest_bucket, observability)
        run_job = self._build_run_job(
            job, manifest_key, staged_path, rejected_path, busy_retry_interval, busy_retry_attempts
        )
        check_results = self._build_check("Check results", manifest_bucket, manifest_key, max_rejected_ratio)
        check_replay = self._build_check(
            "Check replayed run",
            manifest_bucket,
            manifest_key,
            sfn.JsonPath.number_at("$.replay.max_rejected_ratio"),
        )
        definition = self._build_definition(
            run_job, check_results, check_replay, manifest_bucket, curated_table, run_name, staged_path, quarantine_key
        )
        self._build_state_machine(definition, timeout, observability, manifest_bucket)

    def _build_check_results_function(
        self, manifest_bucket: s3.IBucket, observability: StageObservability
    ) -> PipelineFunction:
        check_results_function = PipelineFunction(
            self,
            "CheckResults",
            code="check_results",
            handler="handler.handler",
            description="Reads the Glue job's manifest and decides whether its output is valid.",
            role_description="check-results Lambda: read manifests, write its logs.",
            memory_size=256,
            timeout=Duration.seconds(30),
            function_logs=observability,
            # One check per transform run, and the job runs one at a time: two is headroom.
            reserved_concurrency=2 if self._reserve_concurrency else None,
            callers_bounded="One check runs per transform run.",
            invoked_by="the state machine",
            why_no_vpc="Reads one manifest from S3 with a role scoped to the manifest prefix and reaches nothing "
            "inside a VPC; a VPC would add an S3 endpoint and ENIs for no isolation gained.",
        )
        check_results_role = check_results_function.execution_role
        manifest_bucket.grant_read(check_results_function, f"{MANIFEST_PREFIX}*")
        acknowledge_grant_actions(check_results_role, *GRANT_READ_ACTIONS)
        acknowledge(
            check_results_role,
            "Reads any run's manifest; manifest keys are named per execution.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, manifest_bucket)}/{MANIFEST_PREFIX}*]",
        )
        return check_results_function

    def _build_run_job(
        self,
        job: glue.IJob,
        manifest_key: str,
        staged_path: str,
        rejected_path: str,
        busy_retry_interval: Duration,
        busy_retry_attempts: int,
    ) -> tasks.GlueStartJobRun:
        run_job = tasks.GlueStartJobRun(
            self,
            "Run transform job",
            glue_job_name=job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            # The job reads exactly this run's admitted files (a redriven run, the same set).
            arguments=sfn.TaskInput.from_object(
                {
                    "--manifest_key": manifest_key,
                    "--landing_path": sfn.JsonPath.string_at("$.run.landing_path"),
                    "--curated_path": staged_path,
                    "--rejected_path": rejected_path,
                }
            ),
            result_selector={
                "Id.$": "$.Id",
                "JobRunState.$": "$.JobRunState",
                "ExecutionTime.$": "$.ExecutionTime",
            },
            result_path="$.job_run",
        )
        # The config's transform_stage_worst_case budgets exactly this retry (stage timeout check).
        busy_retry(GLUE_JOB_BUSY_ERRORS, interval=busy_retry_interval, attempts=busy_retry_attempts).apply(run_job)
        job_failed = sfn.Fail(self, "Transform job failed", error=GLUE_JOB_FAILED, cause_path="$.error.Cause")
        run_job.add_catch(job_failed, errors=["States.TaskFailed"], result_path="$.error")
        return run_job

    def _build_check(
        self, name: str, manifest_bucket: s3.IBucket, manifest_key: str, ratio: float | str
    ) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.check_results_function,
            payload=sfn.TaskInput.from_object(
                {"bucket": manifest_bucket.bucket_name, "key": manifest_key, "max_rejected_ratio": ratio}
            ),
            payload_response_only=True,
            result_path="$.check",
        )

    def _build_definition(
        self,
        run_job: tasks.GlueStartJobRun,
        check_results: tasks.LambdaInvoke,
        check_replay: tasks.LambdaInvoke,
        manifest_bucket: s3.IBucket,
        curated_table: CuratedOrdersTable,
        run_name: str,
        staged_path: str,
        quarantine_key: str,
    ) -> sfn.Choice:
        valid = sfn.Succeed(self, "Results valid", output_path="$.check")
        invalid = sfn.Fail(self, "Results invalid", error=VALIDATION_FAILED, cause_path="$.check.reason")
        publish, clear_quarantine = self._build_publish(
            manifest_bucket, curated_table, run_name, staged_path, quarantine_key
        )
        quarantine, note_quarantine = self._build_quarantine(manifest_bucket, run_name, staged_path, quarantine_key)
        results_valid = (
            sfn.Choice(self, "Results valid?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.boolean_equals("$.check.valid", True),
                    sfn.Condition.number_greater_than("$.check.output_rows", 0),
                ),
                publish.next(clear_quarantine).next(valid),
            )
            .when(sfn.Condition.boolean_equals("$.check.valid", True), valid)
            .otherwise(note_quarantine.next(quarantine).next(invalid))
        )
        definition = (
            sfn.Choice(self, "Replay?")
            .when(
                sfn.Condition.is_present("$.replay.max_rejected_ratio"),
                self._build_replay_guard(
                    curated_table, run_name, check_replay, publish, manifest_bucket, quarantine_key
                ),
            )
            .otherwise(run_job.next(check_results).next(results_valid))
        )
        return definition

    def _build_replay_guard(
        self,
        curated_table: CuratedOrdersTable,
        run_name: str,
        check_replay: tasks.LambdaInvoke,
        publish: tasks.CallAwsService,
        manifest_bucket: s3.IBucket,
        quarantine_key: str,
    ) -> sfn.IChainable:
        """A replay publishes only a quarantined run (its record is there) whose staged output is
        there and passes its own check.

        Anything else fails ReplayRefused and writes nothing: a mistyped run name leaves no
        quarantine record behind; a run rejected by deleting its record (its fixed file uploaded
        again as a new run) is not published a second time; a run whose staged output was deleted
        is never published as an empty partition.
        """
        record = count_keys(
            self,
            "Look at quarantine record",
            bucket=manifest_bucket,
            prefix=quarantine_key,
            result_path="$.quarantined",
        )
        not_quarantined = sfn.Fail(
            self,
            "Not quarantined",
            error=REPLAY_REFUSED,
            cause="no quarantine record for this run name: a mistyped name, a run that was never "
            "quarantined, or one rejected (its record deleted) and uploaded again as a new run",
        )
        staged = tasks.CallAwsService(
            self,
            "Look at staged output",
            service="s3",
            action="listObjectsV2",
            parameters={
                "Bucket": curated_table.bucket.bucket_name,
                "Prefix": sfn.JsonPath.format(run_folder(curated_table.staging_prefix, "{}"), run_name),
                "MaxKeys": 1,
            },
            iam_action="s3:ListBucket",
            iam_resources=[curated_table.bucket.bucket_arn],
            result_selector={"count.$": "$.KeyCount"},
            result_path="$.staged",
        )
        S3_TRANSIENT.apply(staged)
        no_output = sfn.Fail(
            self,
            "No staged output",
            error=REPLAY_REFUSED,
            cause="no staged output for this run name: nothing to publish (a mistyped run name, or the "
            "output was deleted; rerun the pipeline over the run's files instead)",
        )
        refused = sfn.Fail(self, "Replay refused", error=REPLAY_REFUSED, cause_path="$.check.reason")
        replay_valid = (
            sfn.Choice(self, "Replay valid?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.boolean_equals("$.check.valid", True),
                    sfn.Condition.number_greater_than("$.check.output_rows", 0),
                ),
                publish,
            )
            .otherwise(refused)
        )
        staged.next(
            sfn.Choice(self, "Staged output there?")
            .when(sfn.Condition.number_greater_than("$.staged.count", 0), check_replay.next(replay_valid))
            .otherwise(no_output)
        )
        return record.next(
            sfn.Choice(self, "Quarantined?")
            .when(sfn.Condition.number_greater_than("$.quarantined.count", 0), staged)
            .otherwise(not_quarantined)
        )

    def _build_publish(
        self,
        manifest_bucket: s3.IBucket,
        curated_table: CuratedOrdersTable,
        run_name: str,
        staged_path: str,
        quarantine_key: str,
    ) -> tuple[tasks.CallAwsService, tasks.CallAwsService]:
        publish = tasks.CallAwsService(
            self,
            "Publish run",
            service="glue",
            action="createPartition",
            parameters={
                "DatabaseName": curated_table.database_name,
                "TableName": curated_table.table_name,
                "PartitionInput": {
                    "Values": sfn.JsonPath.array(run_name),
                    "StorageDescriptor": storage_descriptor(staged_path),
                },
            },
            iam_resources=curated_table.catalog_arns,
            iam_action="glue:CreatePartition",
            result_path=sfn.JsonPath.DISCARD,
        )
        GLUE_TRANSIENT.apply(publish)
        clear_quarantine = tasks.CallAwsService(
            self,
            "Clear quarantine record",
            service="s3",
            action="deleteObject",
            parameters={"Bucket": manifest_bucket.bucket_name, "Key": quarantine_key},
            iam_resources=[manifest_bucket.arn_for_objects(f"{QUARANTINE_RECORD_PREFIX}*")],
            iam_action="s3:DeleteObject",
            result_path=sfn.JsonPath.DISCARD,
        )
        S3_TRANSIENT.apply(clear_quarantine)
        # Published before (a redrive or replay after a publish): the partition is this run's.
        publish.add_catch(clear_quarantine, errors=["Glue.AlreadyExistsException"], result_path=sfn.JsonPath.DISCARD)
        return publish, clear_quarantine

    def _build_quarantine(
        self, manifest_bucket: s3.IBucket, run_name: str, staged_path: str, quarantine_key: str
    ) -> tuple[tasks.CallAwsService, sfn.Pass]:
        quarantine = tasks.CallAwsService(
            self,
            "Quarantine run",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": manifest_bucket.bucket_name,
                "Key": quarantine_key,
                "ContentType": "application/json",
                "Body": sfn.JsonPath.json_to_string(
                    sfn.JsonPath.object_at("$.quarantine")  # set by the Pass state below
                ),
            },
            iam_resources=[manifest_bucket.arn_for_objects(f"{QUARANTINE_RECORD_PREFIX}*")],
            iam_action="s3:PutObject",
            result_path=sfn.JsonPath.DISCARD,
        )
        S3_TRANSIENT.apply(quarantine)
        note_quarantine = sfn.Pass(
            self,
            "Note quarantine",
            parameters={
                "run.$": "$.run",
                "check.$": "$.check",
                "staged_path": staged_path,
                # Start the transform stage with this input, max_rejected_ratio raised, to publish it.
                "replay_input": {
                    "run": {"name": run_name},
                    "replay": {"max_rejected_ratio": sfn.JsonPath.number_at("$.check.rejected_ratio")},
                },
            },
            result_path="$.quarantine",
        )
        return quarantine, note_quarantine

    def _build_state_machine(
        self,
        definition: sfn.IChainable,
        timeout: Duration,
        observability: StageObservability,
        manifest_bucket: s3.IBucket,
    ) -> None:
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=definition,
            timeout=timeout,
            observability=observability,
            comment="Transform stage: the Glue job writes the run's staged output, the check audits its "
            "manifest, a valid run is published (its catalog partition), an invalid one quarantined.",
        )
        self.state_machine = observed.state_machine
        acknowledge(
            self.state_machine.role,
            "CDK's LambdaInvoke grants invoke on the function's versions "
            "and aliases too (<arn>:*); it is this one function.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self.check_results_function)}:*]",
        )
        acknowledge(
            self.state_machine.role,
            "Writes and deletes the quarantine record of any run; records are named per run.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, manifest_bucket)}/{QUARANTINE_RECORD_PREFIX}*]",
        )
        if manifest_bucket.encryption_key is not None:  # the quarantine record is written under the bucket's key
            # A single-part PutObject with SSE-KMS asks KMS for a data key and nothing else.
            manifest_bucket.encryption_key.grant(self.state_machine.role, "kms:GenerateDataKey")
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
