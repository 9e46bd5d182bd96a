"""Stateless resources: the Glue crawler and job, the stage and pipeline state machines, triggers."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from glue.contract import COLUMNS as CONTRACT_COLUMNS
from stacks import pipeline_contract as contract
from stacks.common.retention import log_retention, removal_policy
from stacks.config.deployment import DeploymentConfig
from stacks.config.settings import MAX_BATCH_INPUT_BYTES
from stacks.observability.failure_notice import FailureNotice
from stacks.observability.observed_state_machine import StageObservability
from stacks.observability.pipeline_dashboard import PipelineDashboard
from stacks.pipeline.front_door import FrontDoor
from stacks.pipeline.glue_resources import CuratedTransformJob, GlueSecurity, LandingCrawler
from stacks.pipeline.pipeline_triggers import PipelineTriggers
from stacks.pipeline.pipeline_workflow import IncomingFiles, PipelineStage, PipelineWorkflow
from stacks.pipeline.single_flight_lease import SingleFlightLease
from stacks.pipeline.stages.admission_stage import MAP_RUN_LABEL, FileAdmissionStage
from stacks.pipeline.stages.crawl_stage import GlueCrawlStage
from stacks.pipeline.stages.transform_stage import GlueTransformStage
from stacks.storage.storage_stack import StorageStack


class PipelineStack(Stack):
    """The pipeline's stages (admission, crawl, transform) over the Glue crawler and job, the
    workflow that runs them in rounds under a single-flight lease, and its triggers."""

    def __init__(
        self, scope: Construct, id_: str, *, config: DeploymentConfig, storage: StorageStack, **kwargs: object
    ) -> None:
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        self.observability = StageObservability(
            log_key=storage.key,
            log_retention=log_retention(config.log_retention_days),
            alarm_topic=storage.topic,
            removal_policy=removal_policy(config.removal_policy),
            log_level=sfn.LogLevel[config.state_machine_log_level],
            include_execution_data=config.state_machine_log_execution_data,
        )
        self._key = storage.key
        crawler, job = self._build_glue(config, storage)
        self.crawl_stage = self._build_crawl_stage(config, crawler)
        self.transform_stage = self._build_transform_stage(config, storage, job)
        self.admission_stage = self._build_admission_stage(config, storage)
        self.stages = [
            PipelineStage(
                name=contract.ADMISSION,
                state_machine=self.admission_stage.state_machine,
                # Nothing admitted (only quarantined files, or none at all): nothing to crawl.
                proceed_when=sfn.Condition.number_greater_than(f"$.stages.{contract.ADMISSION}.Output.admitted", 0),
            ),
            PipelineStage(name=contract.CRAWL, state_machine=self.crawl_stage.state_machine),
            PipelineStage(name=contract.TRANSFORM, state_machine=self.transform_stage.state_machine),
        ]
        self.lease = SingleFlightLease(
            self,
            "Lease",
            lease_name=contract.PIPELINE,
            key=storage.key,
            removal_policy=self.observability.removal_policy,
        )
        self.workflow = self._build_workflow(config, storage)
        self.triggers = PipelineTriggers(
            self,
            "Triggers",
            state_machine=self.workflow.state_machine,
            landing_bucket=storage.landing_bucket,
            incoming_prefix=config.incoming_prefix,
            schedule=config.schedule,
            key=storage.key,
            enabled=config.outer_loop == "eventbridge",
            uploads_through_door=True,
        )
        # Uploads reach the pipeline through an EXPRESS front door: one that finds a run in
        # progress ends there, costing no Standard transitions.
        self.front_door = FrontDoor(
            self,
            "FrontDoor",
            pipeline=self.workflow.state_machine,
            lease=self.lease,
            landing_bucket=storage.landing_bucket,
            incoming_prefix=config.incoming_prefix,
            dead_letter_queue=self.triggers.dead_letter_queue,
            observability=self.observability,
        )
        self.triggers.uploads_through(self.front_door.state_machine)
        # Every unsuccessful end of the pipeline, notified once from its status change.
        self.failure_notice = FailureNotice(
            self,
            "FailureNotice",
            state_machine=self.workflow.state_machine,
            quarantine_location=f"s3://{storage.curated_bucket.bucket_name}/{contract.QUARANTINE_RECORD_PREFIX}",
            dead_letter_queue=self.triggers.dead_letter_queue,
            observability=self.observability,
            reserve_concurrency=config.reserve_lambda_concurrency,
        )
        # What an operator watches, and the Glue failure alarms (stacks/observability/pipeline_dashboard.py).
        # Every machine's failure alarm on the alarm widget: the EXPRESS ones (the door, the crawl
        # callback) too.
        stages = (
            self.admission_stage,
            self.crawl_stage,
            self.transform_stage,
            self.workflow,
            self.front_door,
            self.crawl_stage.crawl_end,
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            state_machines={stage.name: stage.state_machine for stage in self.stages}
            | {contract.PIPELINE: self.workflow.state_machine},
            admission_map_label=MAP_RUN_LABEL,
            glue_job_name=job.job.job_name,
            crawler_name=crawler.crawler.ref,
            dead_letter_queue=self.triggers.dead_letter_queue,
            lease_table=self.lease.table,
            admission_summary_function=self.admission_stage.summarize_function,
            check_function=self.transform_stage.check_results_function,
            alarm_topic=self.observability.alarm_topic,
            stage_alarms=[stage.failure_alarm for stage in stages],
        )
        CfnOutput(self, contract.DASHBOARD_OUTPUT, value=self.dashboard.dashboard.dashboard_name)
        for name, construct in (
            (contract.ADMISSION, self.admission_stage),
            (contract.CRAWL, self.crawl_stage),
            (contract.TRANSFORM, self.transform_stage),
            (contract.PIPELINE, self.workflow),
        ):
            CfnOutput(self, contract.state_machine_output(name), value=construct.state_machine.state_machine_arn)
        for name, machine in (
            (contract.FRONT_DOOR, self.front_door.state_machine),
            (contract.CRAWL_CALLBACK, self.crawl_stage.crawl_end.state_machine),
        ):
            CfnOutput(self, contract.state_machine_output(name), value=machine.state_machine_arn)
        # Where files wait, are admitted and are quarantined (landing bucket): what local runs, `why`
        # and `cost` read instead of a rule's pattern or a function's environment.
        for name, value in (
            (contract.INCOMING_PREFIX_OUTPUT, config.incoming_prefix),
            (contract.LANDING_PREFIX_OUTPUT, config.landing_prefix),
            (contract.QUARANTINE_PREFIX_OUTPUT, config.quarantine_prefix),
        ):
            CfnOutput(self, name, value=value)

    def _build_glue(
        self, config: DeploymentConfig, storage: StorageStack
    ) -> tuple[LandingCrawler, CuratedTransformJob]:
        """The landing crawler and the transform job, under one Glue security configuration."""
        security = GlueSecurity(
            self, "GlueSecurity", key=storage.key, removal_policy=self.observability.removal_policy
        ).configuration
        crawler = LandingCrawler(
            self,
            "LandingCrawler",
            bucket=storage.landing_bucket,
            prefix=config.landing_prefix,
            database=storage.database,
            security_configuration=security,
        )
        job = CuratedTransformJob(
            self,
            "TransformJob",
            landing_bucket=storage.landing_bucket,
            landing_prefix=config.landing_prefix,
            curated_bucket=storage.curated_bucket,
            # Its staged output, rejected rows and manifests (the transform stage names them per run).
            curated_prefixes=(storage.curated_table.staging_prefix, contract.REJECTED_PREFIX, contract.MANIFEST_PREFIX),
            security_configuration=security,
            key=storage.key,
            worker_type=config.glue_job.worker_type,
            number_of_workers=config.glue_job.number_of_workers,
            timeout=Duration.minutes(config.glue_job.timeout_minutes),
        )
        return crawler, job

    def _build_crawl_stage(self, config: DeploymentConfig, crawler: LandingCrawler) -> GlueCrawlStage:
        return GlueCrawlStage(
            self,
            "CrawlStage",
            crawler=crawler.crawler,
            poll_interval=Duration.seconds(config.crawler.poll_interval_seconds),
            max_polls=config.crawler.max_polls,
            event_wait_polls=config.crawler.event_wait_polls,
            busy_retry_interval=Duration.seconds(config.crawler.busy_retry_interval_seconds),
            busy_retry_attempts=config.crawler.busy_retry_attempts,
            timeout=Duration.minutes(config.crawl_stage_timeout_minutes),
            observability=self.observability,
            token_key=self._key,
        )

    def _build_transform_stage(
        self, config: DeploymentConfig, storage: StorageStack, job: CuratedTransformJob
    ) -> GlueTransformStage:
        return GlueTransformStage(
            self,
            "TransformStage",
            job=job.job,
            manifest_bucket=storage.curated_bucket,
            curated_table=storage.curated_table,
            max_rejected_ratio=config.glue_job.max_rejected_ratio,
            busy_retry_interval=Duration.seconds(config.glue_job.busy_retry_interval_seconds),
            busy_retry_attempts=config.glue_job.busy_retry_attempts,
            timeout=Duration.minutes(config.transform_stage_timeout_minutes),
            observability=self.observability,
            reserve_concurrency=config.reserve_lambda_concurrency,
        )

    def _build_admission_stage(self, config: DeploymentConfig, storage: StorageStack) -> FileAdmissionStage:
        return FileAdmissionStage(
            self,
            "AdmissionStage",
            bucket=storage.landing_bucket,
            incoming_prefix=config.incoming_prefix,
            landing_prefix=config.landing_prefix,
            quarantine_prefix=config.quarantine_prefix,
            contract_columns=CONTRACT_COLUMNS,
            batch_size=config.admission.batch_size,
            max_batch_input_bytes=MAX_BATCH_INPUT_BYTES,
            max_file_megabytes=config.admission.max_file_megabytes,
            tolerated_failure_percentage=config.admission.tolerated_failure_percentage,
            reserve_concurrency=config.reserve_lambda_concurrency,
            timeout=Duration.minutes(config.admission_stage_timeout_minutes),
            observability=self.observability,
        )

    def _build_workflow(self, config: DeploymentConfig, storage: StorageStack) -> PipelineWorkflow:
        return PipelineWorkflow(
            self,
            "Pipeline",
            stages=self.stages,
            lease=self.lease,
            files=IncomingFiles(
                bucket=storage.landing_bucket,
                incoming_prefix=config.incoming_prefix,
                landing_prefix=config.landing_prefix,
            ),
            max_rounds=config.admission.max_rounds,
            timeout=Duration.minutes(config.pipeline_timeout_minutes),
            observability=self.observability,
        )
