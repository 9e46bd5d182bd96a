"""Crawl completion by event: the crawl stage parks a task token; the crawler's end resumes it.

Crawl stage:  Wait for crawl end (aws-sdk:dynamodb:putItem.waitForTaskToken: {crawler, token})
Glue ─ "Glue Crawler State Change" (Succeeded | Failed, our crawler) ─► rule ─► this EXPRESS machine:
  Read crawl token ─ a token ─► Resume crawl stage (SendTaskSuccess, the event's detail as output)
                   └ none ────► Nobody waiting
  a token no task waits on any more (timed out, already resumed) ─► Nobody waiting

The event only wakes the stage: the stage then reads GetCrawler and judges the crawl from
LastCrawl as before, so a late or stale event can never pass a crawl that failed, and the
error names stay the stage's (CrawlerFailed, CrawlerTimedOut). EventBridge delivers AWS service
events best effort: the waiting task's timeout falls back to GetCrawler (stacks/pipeline/stages/crawl_stage.py).

The tokens have a small table of their own (one item per crawler: only the lease holder
crawls, so one waiter at a time) rather than an item in the lease table: this machine may then
read tokens and nothing else, and the lease table keeps its one item.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.nag import acknowledge
from stacks.common.retries import DYNAMODB_TRANSIENT, SFN_SDK_TRANSIENT
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline.single_flight_lease import TABLE_KEY_ACTIONS, control_table

# "Glue Crawler State Change" (EventBridge, AWS service events from Glue): detail.crawlerName,
# detail.state Started | Succeeded | Failed (Failed carries detail.errorMessage).
CRAWLER_STATE_CHANGE = "Glue Crawler State Change"
CRAWL_ENDED_STATES = ("Succeeded", "Failed")
# SendTaskSuccess for a token whose task no longer waits: nothing to resume.
TOKEN_SPENT_ERRORS = ["Sfn.TaskTimedOutException", "Sfn.InvalidTokenException", "Sfn.TaskDoesNotExistException"]


class CrawlEndEvents(Construct):
    """The token table (`.table`), the callback machine (`.state_machine`) and its rule (`.rule`)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        crawler_name: str,
        key: kms.IKey,
        observability: StageObservability,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        self._crawler_name, self._key = crawler_name, key
        self.table = control_table(
            self,
            "Tokens",
            partition_key="crawler",
            key=key,
            removal_policy=removal_policy,
            why_no_backup="One task token per crawler, useful only while a crawl stage waits; nothing to restore.",
        )
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=self._build_definition(),
            timeout=Duration.minutes(1),
            observability=observability,
            comment="Crawl callback: resume the crawl stage waiting for its crawler's end.",
            state_machine_type=sfn.StateMachineType.EXPRESS,
        )
        self.state_machine = observed.state_machine
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
        key.grant(self.state_machine, "kms:Decrypt", "kms:DescribeKey")
        self.rule = events.Rule(
            self,
            "CrawlEndedRule",
            description="Resume the crawl stage when its crawler's crawl ends.",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=[CRAWLER_STATE_CHANGE],
                detail={"crawlerName": [crawler_name], "state": list(CRAWL_ENDED_STATES)},
            ),
            # No dead-letter queue: an event that cannot be delivered is the lost event the stage's
            # fallback (GetCrawler after its wait times out) already covers.
            targets=[targets.SfnStateMachine(self.state_machine, retry_attempts=3, max_event_age=Duration.hours(1))],
        )
        acknowledge(
            self.rule,
            "An undeliverable crawl-end event is a lost event: the crawl stage's wait times out and it "
            "reads GetCrawler itself (stacks/pipeline/stages/crawl_stage.py); a parked event would resume nothing.",
            "Serverless-EventBusDLQ",
        )

    def _build_definition(self) -> sfn.IChainable:
        read = tasks.DynamoGetItem(
            self,
            "Read crawl token",
            table=self.table,
            key={"crawler": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.detail.crawlerName"))},
            consistent_read=True,
            result_path="$.waiting",
        )
        DYNAMODB_TRANSIENT.apply(read)
        nobody = sfn.Succeed(self, "Nobody waiting")
        resume = sfn.CustomState(
            self,
            "Resume crawl stage",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::aws-sdk:sfn:sendTaskSuccess",
                "Parameters": {
                    "TaskToken.$": "$.waiting.Item.token.S",
                    "Output.$": "States.JsonToString($.detail)",
                },
                "ResultPath": None,
            },
        )
        SFN_SDK_TRANSIENT.apply(resume)
        resume.add_catch(nobody, errors=TOKEN_SPENT_ERRORS, result_path=sfn.JsonPath.DISCARD)
        resume.next(sfn.Succeed(self, "Crawl stage resumed"))
        return read.next(
            sfn.Choice(self, "Crawl stage waiting?")
            .when(sfn.Condition.is_present("$.waiting.Item.token.S"), resume)
            .otherwise(nobody)
        )

    def wait_task(self, id_: str, *, timeout: Duration, result_path: str) -> sfn.CustomState:
        """The crawl stage's task: store its token under the crawler's name, wait for the resume,
        at most `timeout` (then States.Timeout)."""
        return sfn.CustomState(
            self,
            id_,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::aws-sdk:dynamodb:putItem.waitForTaskToken",
                "Parameters": {
                    "TableName": self.table.table_name,
                    "Item": {"crawler": {"S": self._crawler_name}, "token": {"S.$": "$$.Task.Token"}},
                },
                "TimeoutSeconds": int(timeout.to_seconds()),
                "ResultPath": result_path,
            },
        )

    def grant_wait(self, waiter: sfn.StateMachine) -> None:
        """Let the crawl stage park its token, and this machine resume it (SendTaskSuccess only)."""
        self.table.grant(waiter, "dynamodb:PutItem")
        self._key.grant(waiter, *TABLE_KEY_ACTIONS)
        iam.Grant.add_to_principal(
            grantee=self.state_machine,
            actions=["states:SendTaskSuccess"],
            resource_arns=[waiter.state_machine_arn],
        )
