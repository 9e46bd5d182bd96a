"""Admission stage: every file under the incoming prefix admitted to the run's folder or quarantined.

Admit files (Distributed Map over the S3 listing of incoming/, ItemBatcher, EXPRESS children,
tolerated failures, ResultWriter)
  each child: admission Lambda over its batch: .csv name, not empty, size limit, UTF-8, header ==
              contract ─► copy to landing/run=<run>/... or quarantine/run=<run>/... (+ reason
              sidecar), then delete from incoming/
─► Summarize admission (Lambda over the ResultWriter's results) ─► Succeed with the counts

Input: {"run": {"name": <run name>, ...}, ...}. Output: the summary, {"run", "admitted",
"quarantined", "by_reason", "failed_batches", "failed_items", "examples"}. A standard Map over
10,000 files would cost 10,000+ state transitions; here each batch is one child workflow,
billed as an Express request (see `make cost`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
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
    rendered_state_machine_name,
)
from stacks.common.retries import LAMBDA_TRANSIENT
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline_contract import ADMISSION_RESULTS_PREFIX

# Express child workflows run for at most 5 minutes; a batch must finish well inside that.
ADMIT_TIMEOUT_MINUTES = 4
# Child workflows at once (MaxConcurrency), and so admission Lambdas at once.
MAX_CONCURRENT_BATCHES = 10
# Concurrency reserved for the summary Lambda when the stage reserves any: one summary per round.
SUMMARIZE_RESERVED_CONCURRENCY = 2
# What the Distributed Map's ResultWriter does with its prefix (the actions AWS documents for it):
# writes the result files and manifest, multipart for large ones; with SSE-KMS, a data key to
# encrypt each object and Decrypt for the parts of a multipart upload (aws/aws-cdk#32144).
RESULT_WRITER_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
    "kms:GenerateDataKey",
    "kms:Decrypt",
)
# What the admit Lambda calls (lambda/admission/handler.py): HeadObject / GetObject (with IfMatch),
# CopyObject (also as a multipart copy), PutObject of the reason sidecar, DeleteObject with IfMatch
# of the source. With SSE-KMS: Decrypt to read a source, GenerateDataKey (and Decrypt for multipart
# parts) to write. CopyObject copies an uploader's object tags: GetObjectTagging on the source,
# PutObjectTagging on the copy. No s3:DeleteObjectVersion: a delete leaves a delete marker.
ADMIT_SOURCE_ACTIONS = ("s3:GetObject", "s3:GetObjectTagging", "s3:DeleteObject", "kms:Decrypt")
ADMIT_DESTINATION_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "kms:GenerateDataKey",
    "kms:Decrypt",
)
# The Distributed Map's label: its child executions report their AWS/States metrics under the
# dimension StateMachineArn = "<admission machine ARN>/<label>" (a new UUID per run without one).
MAP_RUN_LABEL = "AdmitFiles"


class FileAdmissionStage(Construct):
    """The admission stage state machine (`.state_machine`) and its two Lambda functions."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.IBucket,
        incoming_prefix: str,
        landing_prefix: str,
        quarantine_prefix: str,
        contract_columns: Sequence[str],
        batch_size: int,
        max_batch_input_bytes: int,
        max_file_megabytes: int,
        tolerated_failure_percentage: int,
        reserve_concurrency: bool,
        timeout: Duration,
        observability: StageObservability,
    ) -> None:
        super().__init__(scope, id_)
        self._observability = observability
        self._reserve_concurrency = reserve_concurrency
        self.admit_function = self._build_admit_function(
            bucket, incoming_prefix, landing_prefix, quarantine_prefix, contract_columns, max_file_megabytes
        )
        self.summarize_function = self._build_summarize_function(bucket)
        admit = self._build_distributed_map(
            bucket,
            incoming_prefix,
            sfn.ItemBatcher(max_items_per_batch=batch_size, max_input_bytes_per_batch=max_batch_input_bytes),
            tolerated_failure_percentage,
        )
        definition = admit.next(self._build_summarize()).next(
            sfn.Succeed(self, "Admission done", output_path="$.admission")
        )
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=definition,
            timeout=timeout,
            observability=observability,
            comment="Admission stage: admit or quarantine every file under the incoming prefix.",
        )
        self.state_machine = observed.state_machine
        # The ResultWriter's grant, scoped to its prefix and with the bucket key (see _PrefixResultWriter).
        s3.BucketGrants.from_bucket(bucket).actions_on_object_keys(
            self.state_machine, f"{ADMISSION_RESULTS_PREFIX}*", *RESULT_WRITER_ACTIONS
        )
        self._acknowledge_machine_findings(bucket)
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm

    def _build_admit_function(
        self,
        bucket: s3.IBucket,
        incoming_prefix: str,
        landing_prefix: str,
        quarantine_prefix: str,
        contract_columns: Sequence[str],
        max_file_megabytes: int,
    ) -> lambda_.Function:
        function = self._build_function(
            "AdmitFiles",
            handler="handler.handler",
            description="Admits a batch of incoming files into the run's landing folder or quarantines them.",
            # Files are streamed in 1 MiB chunks to check their encoding: memory does not grow with size.
            memory_size=512,
            timeout=Duration.minutes(ADMIT_TIMEOUT_MINUTES),
            environment={
                "LANDING_BUCKET": bucket.bucket_name,
                "INCOMING_PREFIX": incoming_prefix,
                "LANDING_PREFIX": landing_prefix,
                "QUARANTINE_PREFIX": quarantine_prefix,
                "MAX_FILE_BYTES": str(max_file_megabytes * 1024 * 1024),
                "CONTRACT_COLUMNS": ",".join(contract_columns),
            },
            reserved_concurrency=MAX_CONCURRENT_BATCHES,  # one per child workflow at once
        )
        self._grant_moves(function, bucket, incoming_prefix, landing_prefix, quarantine_prefix)
        return function

    def _build_summarize_function(self, bucket: s3.IBucket) -> lambda_.Function:
        function = self._build_function(
            "SummarizeAdmission",
            handler="handler.summarize",
            description="Totals a run's admission from the Distributed Map's result files.",
            memory_size=256,
            timeout=Duration.minutes(2),
            environment={},
            reserved_concurrency=SUMMARIZE_RESERVED_CONCURRENCY,
        )
        bucket.grant_read(function, f"{ADMISSION_RESULTS_PREFIX}*")
        self._acknowledge_reads(function, bucket, ADMISSION_RESULTS_PREFIX)
        return function

    def _build_summarize(self) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            "Summarize admission",
            lambda_function=self.summarize_function,
            payload=sfn.TaskInput.from_object(
                {
                    "result_writer": sfn.JsonPath.object_at("$.admission_map.ResultWriterDetails"),
                    "run": sfn.JsonPath.string_at("$.run.name"),
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=True,
            result_path="$.admission",
        )

    def _acknowledge_machine_findings(self, bucket: s3.IBucket) -> None:
        role = self.state_machine.role
        for function in (self.admit_function, self.summarize_function):
            acknowledge(
                role,
                "CDK's LambdaInvoke grants invoke on the function's versions and aliases too (<arn>:*).",
                f"AwsSolutions-IAM5[Resource::{rendered_arn(self, function)}:*]",
            )
        executions = (
            "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{rendered_state_machine_name(self, self.state_machine)}"
        )
        acknowledge(
            self.state_machine,
            "A Distributed Map describes and stops its own map runs and child executions, whose names "
            "Step Functions makes at run time; CDK scopes them to this state machine.",
            f"AwsSolutions-IAM5[Resource::{executions}:*]",
            # Its map runs' child executions: "<machine>/<label>:<id>" (RedriveExecution).
            f"AwsSolutions-IAM5[Resource::{executions}/{MAP_RUN_LABEL}:*]",
        )
        acknowledge(
            role,
            f"The Distributed Map's ResultWriter names its result files and manifest itself, under "
            f"{ADMISSION_RESULTS_PREFIX}<map run id>/; the role may write there and nowhere else in the bucket.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, bucket)}/{ADMISSION_RESULTS_PREFIX}*]",
        )

    def _build_function(
        self,
        id_: str,
        *,
        handler: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: dict,
        reserved_concurrency: int,
    ) -> lambda_.Function:
        """A function from lambda/admission (the one recipe: its own log group and role)."""
        return PipelineFunction(
            self,
            id_,
            code="admission",
            handler=handler,
            description=description,
            memory_size=memory_size,
            timeout=timeout,
            environment=environment,
            function_logs=self._observability,
            reserved_concurrency=reserved_concurrency if self._reserve_concurrency else None,
            callers_bounded="Its callers are bounded anyway: the Distributed Map's MaxConcurrency, one summary "
            "per round.",
            why_no_vpc="Calls S3 only, through its role scoped to the admission prefixes, and reaches nothing inside "
            "a VPC; a VPC would add an S3 endpoint and ENIs for no isolation gained.",
        )

    def _grant_moves(
        self, function: lambda_.Function, bucket: s3.IBucket, incoming: str, landing: str, quarantine: str
    ) -> None:
        """Read and delete under incoming/; read and write under the landing and quarantine folders."""
        s3.BucketGrants.from_bucket(bucket).actions_on_object_keys(function, f"{incoming}*", *ADMIT_SOURCE_ACTIONS)
        for prefix in (landing, quarantine):
            # Read too: a retried batch looks for a file it already moved at its destination.
            s3.BucketGrants.from_bucket(bucket).actions_on_object_keys(
                function, f"{prefix}*", *ADMIT_DESTINATION_ACTIONS
            )
        # A HeadObject of a key that is not there answers 404 only to a caller that may list the
        # bucket (403 otherwise): the retried batch's lookup at the destination needs that answer.
        iam.Grant.add_to_principal(grantee=function, actions=["s3:ListBucket"], resource_arns=[bucket.bucket_arn])
        for prefix, why in (
            (incoming, "Files under the incoming prefix have the names their uploaders gave them."),
            (landing, "Admitted files and their records go under the run's folder, named at run time."),
            (quarantine, "Quarantined files and their reasons go under the run's folder, named at run time."),
        ):
            acknowledge(function.role, why, f"AwsSolutions-IAM5[Resource::{rendered_arn(self, bucket)}/{prefix}*]")  # type: ignore[arg-type]

    def _acknowledge_reads(self, function: lambda_.Function, bucket: s3.IBucket, prefix: str) -> None:
        acknowledge_grant_actions(function.role, *GRANT_READ_ACTIONS)  # type: ignore[arg-type]
        acknowledge(
            function.role,  # type: ignore[arg-type]
            f"Files under {prefix} are named at run time.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, bucket)}/{prefix}*]",
        )

    def _build_distributed_map(
        self,
        bucket: s3.IBucket,
        incoming_prefix: str,
        item_batcher: sfn.ItemBatcher,
        tolerated_failure_percentage: int,
    ) -> sfn.DistributedMap:
        admit = sfn.DistributedMap(
            self,
            "Admit files",
            item_reader=sfn.S3ObjectsItemReader(bucket=bucket, prefix=incoming_prefix),
            # Each listed object, with the run it is admitted into (the listing's dates are dropped).
            item_selector={
                "key": sfn.JsonPath.string_at("$$.Map.Item.Value.Key"),
                "size": sfn.JsonPath.number_at("$$.Map.Item.Value.Size"),
                "run": sfn.JsonPath.string_at("$.run.name"),
            },
            # At most batch_size files, and at most max_batch_input_bytes of input (keys escaped in
            # JSON can grow): a batch stays far below Step Functions' 256 KiB state limit.
            item_batcher=item_batcher,
            map_execution_type=sfn.StateMachineType.EXPRESS,
            tolerated_failure_percentage=tolerated_failure_percentage,
            result_writer_v2=_PrefixResultWriter(bucket=bucket, prefix=ADMISSION_RESULTS_PREFIX),
            max_concurrency=MAX_CONCURRENT_BATCHES,
            label=MAP_RUN_LABEL,
            result_path="$.admission_map",
        )
        admit_batch = tasks.LambdaInvoke(
            self,
            "Admit batch",
            lambda_function=self.admit_function,
            payload=sfn.TaskInput.from_object({"items": sfn.JsonPath.list_at("$.Items")}),
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        LAMBDA_TRANSIENT.apply(admit_batch)
        admit.item_processor(admit_batch)
        return admit


class _PrefixResultWriter(sfn.ResultWriterV2):
    """CDK's ResultWriterV2 without its own grant, which covers every object of the bucket and not
    the bucket's key (aws/aws-cdk#32144): the stage grants RESULT_WRITER_ACTIONS on its prefix."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return []
