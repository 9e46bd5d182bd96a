"""One recipe for every Lambda function of the pipeline (admission, summary, check, failure notice).

A Python function from `lambda/<code>/`, with its own KMS-encrypted log group, a role for that
function alone (it may write that log group; callers grant the rest), X-Ray tracing, its environment
encrypted with the stage's key, and reserved concurrency where the stage reserves any. Its cdk-nag
and checkov findings are acknowledged here, each with its reason: the caller says why its callers
are bounded, who invokes it and why it needs no VPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.common.nag import acknowledge, skip_checkov
from stacks.common.paths import REPO_ROOT

LAMBDA_CODE = REPO_ROOT / "lambda"
CODE_EXCLUDE = ["__pycache__", "*.pyc"]
NOT_RESERVED = (
    "No reserved concurrency in this stage (config reserve_lambda_concurrency): a reservation "
    "comes out of the account's pool, and a new account's quota refuses the deploy. "
)


class FunctionLogs(Protocol):
    """Where a function logs (StageObservability has these): the key, how long, kept or not."""

    @property
    def log_key(self) -> kms.IKey: ...

    @property
    def log_retention(self) -> logs.RetentionDays: ...

    @property
    def removal_policy(self) -> RemovalPolicy: ...


class PipelineFunction(lambda_.Function):
    """`lambda_.Function` made by the one recipe; `.log_group` is its own, `.execution_role` its role.

    The log group (`<id>Logs`) and role (`<id>Role`) are made in `scope`, next to the function,
    unless `log_group_id` / `role_id` name them otherwise. `environment`, even empty, is encrypted
    with the stage's key; without one the function has no key. `reserved_concurrency` None: this
    stage reserves none (`callers_bounded` says why that is safe). Without a `dead_letter_queue`
    the function is `invoked_by` a caller that handles its errors synchronously.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        code: str,
        handler: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        function_logs: FunctionLogs,
        reserved_concurrency: int | None,
        callers_bounded: str,
        why_no_vpc: str,
        environment: Mapping[str, str] | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        invoked_by: str = "a state machine",
        role_description: str | None = None,
        log_group_id: str | None = None,
        role_id: str | None = None,
    ) -> None:
        log_group = logs.LogGroup(
            scope,
            log_group_id or f"{id_}Logs",
            encryption_key=function_logs.log_key,
            retention=function_logs.log_retention,
            removal_policy=function_logs.removal_policy,
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: write to its own log group only.
        role = iam.Role(
            scope,
            role_id or f"{id_}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=role_description or description,
        )
        log_group.grant_write(role)
        super().__init__(
            scope,
            id_,
            runtime=lambda_.Runtime.PYTHON_3_14,
            role=role,
            handler=handler,
            code=lambda_.Code.from_asset(str(LAMBDA_CODE / code), exclude=CODE_EXCLUDE),
            description=description,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment=environment,
            # Bucket names, prefixes and ARNs are not secret, but encrypted at rest with the stage's key.
            environment_encryption=function_logs.log_key if environment is not None else None,
            dead_letter_queue=dead_letter_queue,
            # Where the stage reserves concurrency: capped at what its callers can ask for, so a runaway
            # caller cannot take the account's concurrency (and every reservation leaves the pool).
            reserved_concurrent_executions=reserved_concurrency,
        )
        self.execution_role = role
        self._acknowledge(
            reserved=reserved_concurrency is not None,
            callers_bounded=callers_bounded,
            invoked_by=None if dead_letter_queue is not None else invoked_by,
            why_no_vpc=why_no_vpc,
        )

    def _acknowledge(self, *, reserved: bool, callers_bounded: str, invoked_by: str | None, why_no_vpc: str) -> None:
        if not reserved:
            skip_checkov(self, NOT_RESERVED + callers_bounded, "CKV_AWS_115", resource_type="AWS::Lambda::Function")
        acknowledge(
            self.execution_role,
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        if invoked_by is not None:
            acknowledge(
                self,
                f"Invoked synchronously by {invoked_by}, which retries and catches its errors; an "
                "asynchronous-invocation DLQ would never receive anything.",
                "Serverless-LambdaDLQ",
            )
        skip_checkov(self, why_no_vpc, "CKV_AWS_117", resource_type="AWS::Lambda::Function")
