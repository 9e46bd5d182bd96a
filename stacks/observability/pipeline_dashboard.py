"""One CloudWatch dashboard per stage environment, and the alarms that sit next to the stage alarms.

  executions per state machine │ stage durations │ Distributed Map child runs │ Glue job duration
  files admitted / quarantined │ rows published / rejected │ DLQ depth │ the lease │ alarms

Metrics: AWS/States (per state machine; the admission Distributed Map's children under
"<admission ARN>/<map label>"), the embedded-metric-format figures the admission summary and the
transform check emit (stacks/pipeline_contract.py, dimension FunctionName), the Glue job metrics
(on by default: `--enable-metrics`) and the DLQ's depth. The lease has no metric: it is held by the
running pipeline execution and ends with it, so its age is that execution's; the dashboard links
the running executions and the lease item, and the pipeline's ExecutionTime is how long each lease
was held. Alarms: Glue job runs that fail or time out and crawls that fail, as EventBridge rules to
the alarm topic; the DLQ holding anything, as a CloudWatch alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import pipeline_contract as contract
from stacks.common.nag import acknowledge_grant_actions
from stacks.observability.alarms import alarm_on_any


def period() -> Duration:
    """The period of every metric and alarm here: 5 minutes (a function: no jsii call at import)."""
    return Duration.minutes(5)


# "Glue Job State Change" comes for SUCCEEDED, FAILED, TIMEOUT and STOPPED; "Glue Crawler State
# Change" for Started, Succeeded and Failed (AWS Glue guide, "Automating AWS Glue with EventBridge").
# STOPPED is left out: a run is stopped by an operator, or by Step Functions when the execution
# that ran it is stopped or times out, and that execution's own status change is notified already.
GLUE_JOB_FAILED_STATES = ["FAILED", "TIMEOUT"]
GLUE_CRAWLER_FAILED_STATES = ["Failed"]
GLUE_JOB_ELAPSED_TIME = "glue.driver.aggregate.elapsedTime"  # ms, per job run (JobRunId ALL, Type count)


def _metric(
    namespace: str, name: str, dimensions: dict[str, str], *, label: str, statistic: str = "Sum"
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period(),
        label=label,
    )


class PipelineDashboard(Construct):
    """`.dashboard` and the alarms: `.job_failed_rule`, `.crawler_failed_rule`, `.dead_letter_alarm`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machines: Mapping[str, sfn.IStateMachine],  # contract.STAGES and contract.PIPELINE
        admission_map_label: str,
        glue_job_name: str,
        crawler_name: str,
        dead_letter_queue: sqs.IQueue,
        lease_table: dynamodb.ITable,
        admission_summary_function: lambda_.IFunction,
        check_function: lambda_.IFunction,
        alarm_topic: sns.ITopic,
        stage_alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id_)
        missing = [name for name in (*contract.STAGES, contract.PIPELINE) if name not in state_machines]
        if missing:
            raise ValueError(
                f"state_machines: {sorted(state_machines)} lacks {missing}; give every stage and the pipeline"
            )
        self._machines = state_machines
        self._region = Stack.of(self).region
        self.job_failed_rule, self.crawler_failed_rule = self._build_glue_rules(
            glue_job_name, crawler_name, alarm_topic, dead_letter_queue
        )
        self.dead_letter_alarm = self._build_dead_letter_alarm(dead_letter_queue, alarm_topic)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(1),
            period_override=cloudwatch.PeriodOverride.INHERIT,
            widgets=[
                self._execution_widgets(),
                [
                    self._durations_widget(),
                    self._map_run_widget(admission_map_label),
                    self._glue_job_widget(glue_job_name),
                ],
                [
                    self._figures_widget(
                        "Files admitted and quarantined",
                        admission_summary_function,
                        (contract.FILES_ADMITTED_METRIC, contract.FILES_QUARANTINED_METRIC),
                    ),
                    self._figures_widget(
                        "Rows published and rejected",
                        check_function,
                        (contract.ROWS_PUBLISHED_METRIC, contract.ROWS_REJECTED_METRIC),
                    ),
                    self._dead_letter_widget(dead_letter_queue),
                    self._lease_widget(lease_table),
                ],
                [self._alarms_widget([*stage_alarms, self.dead_letter_alarm])],
            ],
        )

    # -- alarms ----------------------------------------------------------------------------------
    def _build_glue_rules(
        self, job_name: str, crawler_name: str, topic: sns.ITopic, dead_letter_queue: sqs.IQueue
    ) -> tuple[events.Rule, events.Rule]:
        """EventBridge rules on our job's and crawler's failures, publishing a readable line to the topic.

        EventBridge publishes as a role of its own: sns:Publish on the topic and, as the topic is
        encrypted, kms:Decrypt and kms:GenerateDataKey* on its key (the grant; the key policy lets
        the account's IAM policies allow it). Undeliverable alarms go to the DLQ (its depth alarms).
        """
        role = iam.Role(
            self,
            "GlueAlarmRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="Glue failure alarms: EventBridge publishes them to the encrypted alarm topic.",
        )
        acknowledge_grant_actions(role, "kms:GenerateDataKey*")

        def to_topic(text: str) -> targets.SnsTopic:
            return targets.SnsTopic(
                topic,
                role=role,
                message=events.RuleTargetInput.from_text(text),
                dead_letter_queue=dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(6),
            )

        def rule(id_: str, description: str, detail_type: str, detail: dict[str, list[str]], text: str) -> events.Rule:
            pattern = events.EventPattern(source=["aws.glue"], detail_type=[detail_type], detail=detail)
            return events.Rule(self, id_, description=description, event_pattern=pattern, targets=[to_topic(text)])

        field = events.EventField.from_path
        job_rule = rule(
            "GlueJobFailedRule",
            "Alarm: a run of the pipeline's Glue job failed or timed out.",
            "Glue Job State Change",
            {"jobName": [job_name], "state": GLUE_JOB_FAILED_STATES},
            f"Glue job {field('$.detail.jobName')} run {field('$.detail.jobRunId')} ended "
            f"{field('$.detail.state')}: {field('$.detail.message')}. "
            "If a pipeline run started it, its failure notice follows; `make why` diagnoses it.",
        )
        crawler_rule = rule(
            "GlueCrawlerFailedRule",
            "Alarm: a crawl of the pipeline's landing crawler failed.",
            "Glue Crawler State Change",
            {"crawlerName": [crawler_name], "state": GLUE_CRAWLER_FAILED_STATES},
            f"Glue crawler {field('$.detail.crawlerName')} failed: {field('$.detail.errorMessage')}. "
            f"Log: {field('$.detail.cloudWatchLogLink')}",
        )
        return job_rule, crawler_rule

    def _build_dead_letter_alarm(self, queue: sqs.IQueue, topic: sns.ITopic) -> cloudwatch.Alarm:
        """Anything in the DLQ is a start, a notice or an alarm that was never delivered."""
        return alarm_on_any(
            self,
            "DeadLetterAlarm",
            queue.metric_approximate_number_of_messages_visible(period=period(), statistic="Maximum"),
            description="Undelivered pipeline starts, failure notices or Glue alarms wait in the DLQ.",
            topic=topic,
        )

    # -- widgets ---------------------------------------------------------------------------------
    def _execution_widgets(self) -> list[cloudwatch.IWidget]:
        """Started, succeeded, failed, timed out and aborted executions, one graph per state machine."""
        widgets: list[cloudwatch.IWidget] = []
        for name in (*contract.STAGES, contract.PIPELINE):
            machine = self._machines[name]
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"Executions: {name}",
                    width=6,
                    left=[
                        machine.metric_started(label="started", period=period()),
                        machine.metric_succeeded(label="succeeded", period=period()),
                        machine.metric_failed(label="failed", period=period()),
                        machine.metric_timed_out(label="timed out", period=period()),
                        machine.metric_aborted(label="aborted", period=period()),
                    ],
                )
            )
        return widgets

    def _durations_widget(self) -> cloudwatch.IWidget:
        """The longest execution of each state machine per period; the pipeline's is the lease held."""
        return cloudwatch.GraphWidget(
            title="Stage durations (ExecutionTime, max)",
            width=8,
            left=[
                self._machines[name].metric_time(label=name, statistic="Maximum", period=period())
                for name in (*contract.STAGES, contract.PIPELINE)
            ],
        )

    def _map_run_widget(self, label: str) -> cloudwatch.IWidget:
        """The admission Distributed Map's child executions, one per batch of files (AWS/States has
        no per-item metric: a failed batch's files are counted in the stage's summary)."""
        children = {"StateMachineArn": f"{self._machines[contract.ADMISSION].state_machine_arn}/{label}"}
        return cloudwatch.GraphWidget(
            title="Distributed Map batches (admission)",
            width=8,
            left=[
                _metric("AWS/States", "ExecutionsSucceeded", children, label="succeeded"),
                _metric("AWS/States", "ExecutionsFailed", children, label="failed"),
                _metric("AWS/States", "ExecutionsTimedOut", children, label="timed out"),
                _metric("AWS/States", "ExecutionsAborted", children, label="aborted"),
            ],
        )

    def _glue_job_widget(self, job_name: str) -> cloudwatch.IWidget:
        return cloudwatch.GraphWidget(
            title="Glue job duration (elapsedTime, max)",
            width=8,
            left=[
                _metric(
                    "Glue",
                    GLUE_JOB_ELAPSED_TIME,
                    {"JobName": job_name, "JobRunId": "ALL", "Type": "count"},
                    statistic="Maximum",
                    label="elapsed ms",
                )
            ],
        )

    def _figures_widget(self, title: str, function: lambda_.IFunction, names: Sequence[str]) -> cloudwatch.IWidget:
        """The figures a Lambda emits in embedded metric format, summed per period."""
        return cloudwatch.GraphWidget(
            title=title,
            width=6,
            left=[
                _metric(contract.METRICS_NAMESPACE, name, {"FunctionName": function.function_name}, label=name)
                for name in names
            ],
        )

    def _dead_letter_widget(self, queue: sqs.IQueue) -> cloudwatch.IWidget:
        return cloudwatch.GraphWidget(
            title="Dead-letter queue depth",
            width=6,
            left=[
                queue.metric_approximate_number_of_messages_visible(
                    period=period(), statistic="Maximum", label="visible"
                )
            ],
        )

    def _lease_widget(self, table: dynamodb.ITable) -> cloudwatch.IWidget:
        """No metric holds the lease's age: where to read it, as links."""
        console = f"https://{self._region}.console.aws.amazon.com"
        pipeline = self._machines[contract.PIPELINE].state_machine_arn
        return cloudwatch.TextWidget(
            width=6,
            height=6,
            markdown="\n".join(
                [
                    "### Single-flight lease",
                    "Held by the running pipeline execution, released when it ends: its age is that "
                    "execution's running time (no metric holds it).",
                    "",
                    f"* [Running pipeline executions]({console}/states/home?region={self._region}"
                    f"#/statemachines/view/{pipeline}?statusFilter=RUNNING)",
                    f"* [The lease item]({console}/dynamodbv2/home?region={self._region}"
                    f"#item-explorer?table={table.table_name})",
                    "* Held before: the pipeline's line in *Stage durations*.",
                ]
            ),
        )

    def _alarms_widget(self, alarms: Sequence[cloudwatch.IAlarm]) -> cloudwatch.IWidget:
        return cloudwatch.AlarmStatusWidget(
            title="Alarms (Glue job and crawler failures notify the topic from EventBridge)",
            width=24,
            height=3,
            alarms=list(alarms),
        )
