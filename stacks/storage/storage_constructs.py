"""The stateful building blocks: the data key, the buckets and the notification topic.

Each is the CDK construct it extends with this app's settings built in, so a stack composes
them in a line each. They take the construct id they are given unchanged: the logical IDs of
the Storage stack's resources (pinned by tests/stacks/test_storage_template.py) stay the same.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.common.nag import acknowledge


class DataKey(kms.Key):
    """The customer managed key for the pipeline's data, logs, queues and notifications (rotated yearly).

    Its policy lets the services that encrypt with it on the pipeline's behalf do so: CloudWatch Logs
    (this account's log groups only), EventBridge (the encrypted dead-letter queues) and CloudWatch
    (alarms to the encrypted topic).
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(
            scope,
            id_,
            description="Encrypts the pipeline's data, logs, queues and notifications.",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        stack = Stack.of(self)
        self.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # EventBridge (the encrypted dead-letter queues) and CloudWatch (alarms to the encrypted topic)
        # with the statements AWS documents for them, no conditions: an aws:SourceAccount condition
        # that the service does not send with its KMS call would drop dead-letter deliveries and
        # alarm notices silently. What they may send where is limited by the queue and topic policies.
        self.allow_service("AllowEventBridgeDeadLetterQueues", "events.amazonaws.com", "kms:GenerateDataKey")
        self.allow_service("AllowCloudWatchAlarms", "cloudwatch.amazonaws.com", "kms:GenerateDataKey*")

    def allow_service(self, sid: str, service: str, generate_data_key: str) -> None:
        """Let an AWS service encrypt for a queue or topic under this key (decrypt + generate a data key)."""
        self.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal(service)],
                actions=["kms:Decrypt", generate_data_key],
                resources=["*"],
            )
        )


class AccessLogsBucket(s3.Bucket):
    """Where other buckets deliver their S3 server access logs; objects expire after `retention`.

    SSE-S3, as server access logging delivers only to SSE-S3 buckets; emptied on delete unless
    the removal policy keeps it.
    """

    def __init__(self, scope: Construct, id_: str, *, retention: Duration, removal_policy: RemovalPolicy) -> None:
        super().__init__(
            scope,
            id_,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=retention, noncurrent_version_expiration=Duration.days(7)),
            ],
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
        acknowledge(self, "This is the access-log bucket; logging it would recurse.", "AwsSolutions-S1")


class DataBucket(s3.Bucket):
    """A bucket of pipeline data: KMS-encrypted with `key`, versioned, private, TLS only.

    Server access logs go to `access_logs_bucket` under `<id>/`; noncurrent versions expire after
    30 days; emptied on delete unless the removal policy keeps it.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
        event_bridge_enabled: bool = False,
    ) -> None:
        super().__init__(
            scope,
            id_,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{id_}/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
            event_bridge_enabled=event_bridge_enabled,
        )


class NotificationTopic(sns.Topic):
    """The pipeline's notices (failure alarms, DAG failures), encrypted with `key`, TLS only.

    `enforce_ssl` gives the topic a policy of its own, which replaces the default one: the state
    machines' failure alarms (CloudWatch) get an explicit allow to publish, from this account only.
    """

    def __init__(self, scope: Construct, id_: str, *, key: kms.IKey) -> None:
        super().__init__(scope, id_, display_name="Glue pipeline notifications", master_key=key, enforce_ssl=True)
        self.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )

    def subscribe_emails(self, emails: tuple[str, ...], *, dead_letter_queue: sqs.IQueue) -> None:
        """E-mail subscriptions; notices SNS gives up delivering go to `dead_letter_queue`."""
        for email in emails:
            self.add_subscription(subscriptions.EmailSubscription(email, dead_letter_queue=dead_letter_queue))
