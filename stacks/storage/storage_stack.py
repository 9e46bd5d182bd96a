"""Stateful resources: buckets, the KMS key, the Glue database and the notification topic.

Kept apart from the pipeline so that redeploying or destroying the stateless stack never
touches data. Logical IDs here are pinned by a test: renaming a construct replaces a bucket.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import pipeline_contract as contract
from stacks.common.nag import acknowledge
from stacks.common.physical_names import stack_instance_id
from stacks.common.retention import removal_policy
from stacks.config.deployment import DeploymentConfig
from stacks.storage.curated_table import CuratedOrdersTable
from stacks.storage.storage_constructs import AccessLogsBucket, DataBucket, DataKey, NotificationTopic

# CDK's bucket-notifications custom resource (a singleton Lambda), added by event_bridge_enabled.
BUCKET_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


class StorageStack(Stack):
    """`.key`, `.access_logs_bucket`, `.landing_bucket`, `.curated_bucket`, `.database`, `.topic`,
    `.notification_dead_letter_queue` (None without e-mail subscriptions)."""

    def __init__(self, scope: Construct, id_: str, *, config: DeploymentConfig, **kwargs: object) -> None:
        super().__init__(scope, id_, termination_protection=config.is_production, **kwargs)  # type: ignore[arg-type]
        removal = removal_policy(config.removal_policy)
        self.key = DataKey(self, "DataKey", removal_policy=removal)
        self.access_logs_bucket = AccessLogsBucket(
            self, "AccessLogsBucket", retention=Duration.days(config.log_retention_days), removal_policy=removal
        )
        # Object Created events go to EventBridge, where a rule starts the pipeline.
        self.landing_bucket = self._data_bucket("LandingBucket", removal, event_bridge_enabled=True)
        self.curated_bucket = self._data_bucket("CuratedBucket", removal)
        self._acknowledge_bucket_notifications_handler()
        self.landing_prefix = config.landing_prefix
        self.database = self._build_database(removal)
        self.curated_table = CuratedOrdersTable(  # the published view: one partition per valid run
            self, "CuratedOrdersTable", database=self.database, bucket=self.curated_bucket, removal_policy=removal
        )
        self.topic = NotificationTopic(self, "NotificationTopic", key=self.key)
        for name, value in (
            (contract.LANDING_BUCKET_OUTPUT, self.landing_bucket.bucket_name),
            (contract.CURATED_BUCKET_OUTPUT, self.curated_bucket.bucket_name),
            (contract.NOTIFICATION_TOPIC_OUTPUT, self.topic.topic_arn),
        ):
            CfnOutput(self, name, value=value)
        self.notification_dead_letter_queue = (
            self._subscribe(config.notification_emails, removal) if config.notification_emails else None
        )

    def _data_bucket(self, id_: str, removal: RemovalPolicy, *, event_bridge_enabled: bool = False) -> DataBucket:
        return DataBucket(
            self,
            id_,
            key=self.key,
            access_logs_bucket=self.access_logs_bucket,
            removal_policy=removal,
            event_bridge_enabled=event_bridge_enabled,
        )

    def _acknowledge_bucket_notifications_handler(self) -> None:
        acknowledge(
            self.node.find_child(BUCKET_NOTIFICATIONS_HANDLER_ID),
            "CDK's own bucket-notifications custom resource, which turns EventBridge delivery on; "
            "it runs only at deploy time and CDK fixes its role.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        )

    def _build_database(self, removal: RemovalPolicy) -> glue.Database:
        database = glue.Database(
            self,
            "Database",
            description="Tables the landing crawler discovers.",
            # Kept in production: a name unique to the stack instance lets the stack be destroyed
            # and deployed again (CDK's generated name would be taken by the kept database).
            database_name=None
            if removal == RemovalPolicy.DESTROY
            else Fn.join("_", [self.stack_name.lower().replace("-", "_"), stack_instance_id(without_hyphens=True)]),
        )
        database.apply_removal_policy(removal)  # CDK's default keeps it even in dev
        return database

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
        self.key.allow_service("AllowSnsDeadLetterQueue", "sns.amazonaws.com", "kms:GenerateDataKey*")
        self.topic.subscribe_emails(emails, dead_letter_queue=queue)
        return queue
