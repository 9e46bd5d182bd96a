"""Stateful resources: buckets, the KMS key, the Glue database and the notification topic.

Kept apart from the pipeline so that redeploying or destroying the stateless stack never
touches data. Logical IDs here are pinned by a test: renaming a construct replaces a bucket.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import DeploymentConfig
from stacks.nag import acknowledge
from stacks.physical_names import stack_instance_id


class StorageStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: DeploymentConfig, **kwargs: object) -> None:
        super().__init__(scope, id_, termination_protection=config.is_production, **kwargs)  # type: ignore[arg-type]
        removal = RemovalPolicy.RETAIN if config.is_production else RemovalPolicy.DESTROY
        auto_delete = not config.is_production

        self.key = kms.Key(
            self,
            "DataKey",
            description="Encrypts the pipeline's data, logs, queues and notifications.",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        # Services that encrypt with this key on the pipeline's behalf: CloudWatch Logs (log
        # groups), EventBridge (the encrypted dead-letter queue) and CloudWatch (alarms to the
        # topic). Only from this account; CloudWatch Logs only for this account's log groups.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
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
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
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
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeDeadLetterQueues",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            # S3 server access logging only delivers to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(config.log_retention_days), noncurrent_version_expiration=Duration.days(7)
                )
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        acknowledge(
            self.access_logs_bucket, "This is the access-log bucket; logging it would recurse.", "AwsSolutions-S1"
        )

        def data_bucket(id_: str, **extra: object) -> s3.Bucket:
            return s3.Bucket(
                self,
                id_,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.access_logs_bucket,
                server_access_logs_prefix=f"{id_}/",
                lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
                removal_policy=removal,
                auto_delete_objects=auto_delete,
                **extra,  # type: ignore[arg-type]
            )

        # Object Created events go to EventBridge, where a rule starts the pipeline.
        self.landing_bucket = data_bucket("LandingBucket", event_bridge_enabled=True)
        self.curated_bucket = data_bucket("CuratedBucket")
        # event_bridge_enabled adds CDK's bucket-notifications custom resource (a singleton Lambda).
        acknowledge(
            self.node.find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834"),
            "CDK's own bucket-notifications custom resource, which turns EventBridge delivery on; "
            "it runs only at deploy time and CDK fixes its role.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        )
        self.landing_prefix = config.landing_prefix

        self.database = glue.Database(
            self,
            "Database",
            description="Tables the landing crawler discovers.",
            # Kept in production: a name unique to the stack instance lets the stack be destroyed
            # and deployed again (CDK's generated name would be taken by the kept database).
            database_name=None
            if removal == RemovalPolicy.DESTROY
            else Fn.join("_", [self.stack_name.lower().replace("-", "_"), stack_instance_id(without_hyphens=True)]),
        )
        self.database.apply_removal_policy(removal)  # CDK's default keeps it even in dev

        self.topic = sns.Topic(
            self,
            "NotificationTopic",
            display_name="Glue pipeline notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        # enforce_ssl gives the topic a policy of its own, which replaces the default one: the
        # state machines' failure alarms (CloudWatch) need an explicit allow to publish.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        for name, value in (
            ("LandingBucketName", self.landing_bucket.bucket_name),
            ("CuratedBucketName", self.curated_bucket.bucket_name),
            ("NotificationTopicArn", self.topic.topic_arn),
        ):
            CfnOutput(self, name, value=value)
        self.notification_dead_letter_queue = (
            self._subscribe(config.notification_emails, removal) if config.notification_emails else None
        )

    def _subscribe(self, emails: tuple[str, ...], removal: RemovalPolicy) -> sqs.Queue:
        """E-mail subscriptions, with a dead-letter queue for the notices SNS gives up delivering."""
        queue = sqs.Queue(
            self,
            "NotificationDeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal,
        )
        acknowledge(
            queue,
            "This queue is itself the dead-letter queue of the topic's e-mail subscriptions.",
            "AwsSolutions-SQS3",
            "Serverless-SQSRedrivePolicy",
        )
        # SNS encrypts what it moves to the queue with the queue's key (the statement AWS documents);
        # the queue policy CDK adds lets only this topic send.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSnsDeadLetterQueue",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email, dead_letter_queue=queue))
        return queue
