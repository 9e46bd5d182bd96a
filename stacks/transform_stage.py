"""Transform stage: run the Glue ETL job to completion, then check what it wrote.

glue:startJobRun.sync ─► check results (Lambda) ─► Choice
  valid   ─► Succeed
  invalid ─► Fail ValidationFailed (cause: the check's reason)
A job run that ends FAILED, TIMEOUT or STOPPED fails the stage GlueJobFailed.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.nag import GRANT_READ_ACTIONS, acknowledge, acknowledge_grant_actions, rendered_arn, skip_checkov
from stacks.observed_state_machine import ObservedStateMachine

GLUE_JOB_FAILED = "GlueJobFailed"
VALIDATION_FAILED = "ValidationFailed"
# glue:startJobRun refuses a run while max concurrent runs are going, or when throttled.
GLUE_BUSY_ERRORS = ["Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException"]
CHECK_RESULTS_CODE = Path(__file__).resolve().parent.parent / "lambda" / "check_results"
MANIFEST_PREFIX = "manifests/"


class GlueTransformStage(Construct):
    """The transform stage state machine (`.state_machine`) and its check-results Lambda."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        job: glue.IJob,
        manifest_bucket: s3.IBucket,
        max_rejected_ratio: float,
        busy_retry_interval: Duration,
        busy_retry_attempts: int,
        timeout: Duration,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        alarm_topic: sns.ITopic,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        # One manifest per stage execution: the job writes it, the check reads it.
        manifest_key = sfn.JsonPath.format(f"{MANIFEST_PREFIX}{{}}.json", sfn.JsonPath.execution_name)

        check_results_logs = logs.LogGroup(
            self, "CheckResultsLogs", encryption_key=log_key, retention=log_retention, removal_policy=removal_policy
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: write to its own log group only.
        check_results_role = iam.Role(
            self,
            "CheckResultsRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="check-results Lambda: read manifests, write its logs.",
        )
        check_results_logs.grant_write(check_results_role)
        self.check_results_function = lambda_.Function(
            self,
            "CheckResults",
            runtime=lambda_.Runtime.PYTHON_3_14,
            role=check_results_role,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(CHECK_RESULTS_CODE), exclude=["__pycache__", "*.pyc"]),
            description="Reads the Glue job's manifest and decides whether its output is valid.",
            memory_size=256,
            timeout=Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=check_results_logs,
            # One check per transform run, and the job runs one at a time: two is headroom, and the
            # cap keeps a runaway caller from taking the account's concurrency.
            reserved_concurrent_executions=2,
        )
        manifest_bucket.grant_read(self.check_results_function, f"{MANIFEST_PREFIX}*")
        acknowledge_grant_actions(check_results_role, *GRANT_READ_ACTIONS)
        acknowledge(
            check_results_role,
            "Reads any run's manifest; manifest keys are named per execution.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, manifest_bucket)}/{MANIFEST_PREFIX}*]",
        )
        acknowledge(
            check_results_role,
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge(
            self.check_results_function,
            "Invoked synchronously by the state machine, which retries and "
            "catches its errors; an asynchronous-invocation DLQ would never receive anything.",
            "Serverless-LambdaDLQ",
        )
        skip_checkov(
            self.check_results_function,
            "Reads one manifest from S3 with a role scoped to the manifest prefix and reaches nothing "
            "inside a VPC; a VPC would add an S3 endpoint and ENIs for no isolation gained.",
            "CKV_AWS_117",
            resource_type="AWS::Lambda::Function",
        )

        run_job = tasks.GlueStartJobRun(
            self,
            "Run transform job",
            glue_job_name=job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            # The job reads exactly this run's admitted files (a redriven run, the same set).
            arguments=sfn.TaskInput.from_object(
                {"--manifest_key": manifest_key, "--landing_path": sfn.JsonPath.string_at("$.run.landing_path")}
            ),
            result_selector={
                "Id.$": "$.Id",
                "JobRunState.$": "$.JobRunState",
                "ExecutionTime.$": "$.ExecutionTime",
            },
            result_path="$.job_run",
        )
        run_job.add_retry(
            errors=GLUE_BUSY_ERRORS,
            interval=busy_retry_interval,
            max_attempts=busy_retry_attempts,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        job_failed = sfn.Fail(self, "Transform job failed", error=GLUE_JOB_FAILED, cause_path="$.error.Cause")
        run_job.add_catch(job_failed, errors=["States.TaskFailed"], result_path="$.error")

        check_results = tasks.LambdaInvoke(
            self,
            "Check results",
            lambda_function=self.check_results_function,
            payload=sfn.TaskInput.from_object(
                {
                    "bucket": manifest_bucket.bucket_name,
                    "key": manifest_key,
                    "max_rejected_ratio": max_rejected_ratio,
                }
            ),
            payload_response_only=True,
            result_path="$.check",
        )
        valid = sfn.Succeed(self, "Results valid", output_path="$.check")
        invalid = sfn.Fail(self, "Results invalid", error=VALIDATION_FAILED, cause_path="$.check.reason")
        results_valid = (
            sfn.Choice(self, "Results valid?")
            .when(sfn.Condition.boolean_equals("$.check.valid", True), valid)
            .otherwise(invalid)
        )
        definition = run_job.next(check_results).next(results_valid)

        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=definition,
            timeout=timeout,
            log_key=log_key,
            log_retention=log_retention,
            alarm_topic=alarm_topic,
            removal_policy=removal_policy,
            comment="Transform stage: run the Glue job, then check its manifest.",
        )
        self.state_machine = observed.state_machine
        acknowledge(
            self.state_machine.role,
            "CDK's LambdaInvoke grants invoke on the function's versions "
            "and aliases too (<arn>:*); it is this one function.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, self.check_results_function)}:*]",
        )
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
