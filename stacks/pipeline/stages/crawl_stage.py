"""Crawl stage: start a Glue crawler and wait, woken by the crawler's end event, until its crawl ends.

Start crawler ─► Wait for crawl end (task token parked, stacks/pipeline/stages/crawl_callback.py; at most
  `poll_interval` x `event_wait_polls`) ─ woken by the event, or timed out (a lost event) ─►
  Get crawler ─► Crawl finished?
    READY + LastCrawl SUCCEEDED ─► Succeed
    READY + anything else       ─► Fail CrawlerFailed
    still running, waits left   ─► count the wait ─► woken by an event? ─► settle poll (Wait, Get crawler)
                                                   └ timed out ─────────► Wait for crawl end
    still running, no waits left ─► Fail CrawlerTimedOut
A crawl that ends within one wait costs 5 transitions (Start crawler, Wait for crawl end, Get
crawler, Crawl finished?, Crawl succeeded), whether its event arrived or was lost; each wait a crawl
outlasts adds 5 (ops/cost_model.py CRAWL_PER_EXTRA_LOOK). The bound is max_polls x poll_interval.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.retries import CRAWLER_BUSY_ERRORS, DYNAMODB_TRANSIENT, GLUE_THROTTLING, busy_retry
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability
from stacks.pipeline.stages.crawl_callback import CrawlEndEvents

CRAWLER_FAILED = "CrawlerFailed"
CRAWLER_TIMED_OUT = "CrawlerTimedOut"


class GlueCrawlStage(Construct):
    """The crawl stage state machine (`.state_machine`) for one Glue crawler."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        crawler: glue.CfnCrawler,
        poll_interval: Duration,
        max_polls: int,
        event_wait_polls: int,
        busy_retry_interval: Duration,
        busy_retry_attempts: int,
        timeout: Duration,
        observability: StageObservability,
        token_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        self.crawler_name = crawler.ref
        self.crawler_arn = Stack.of(self).format_arn(service="glue", resource="crawler", resource_name=crawler.ref)
        # Each wait for the end event lasts at most event_wait_polls intervals; as many waits as fit
        # in max_polls intervals, so the stage's bound stays max_polls x poll_interval.
        polls_per_wait = min(event_wait_polls, max_polls)
        self.event_wait = Duration.seconds(poll_interval.to_seconds() * polls_per_wait)
        self.max_waits = max_polls // polls_per_wait
        self.crawl_end = CrawlEndEvents(
            self,
            "CrawlEnd",
            crawler_name=self.crawler_name,
            key=token_key,
            observability=observability,
            removal_policy=observability.removal_policy,
        )
        start_crawler = self._build_start_crawler(busy_retry_interval, busy_retry_attempts)
        get_crawler = self._build_get_crawler()
        wait_for_end = self.crawl_end.wait_task("Wait for crawl end", timeout=self.event_wait, result_path="$.woken")
        DYNAMODB_TRANSIENT.apply(wait_for_end)
        # No event within the wait (delivery is best effort): look at the crawler itself.
        wait_for_end.add_catch(get_crawler, errors=["States.Timeout"], result_path="$.woken")
        settle = sfn.Pass(self, "Crawler still stopping", result=sfn.Result.from_object({}), result_path="$.woken")
        settle.next(sfn.Wait(self, "Wait for crawler to settle", time=sfn.WaitTime.duration(poll_interval))).next(
            get_crawler
        )
        crawl_finished = self._build_crawl_finished(wait_for_end=wait_for_end, settle=settle)
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=start_crawler.next(wait_for_end).next(get_crawler).next(crawl_finished),
            timeout=timeout,
            observability=observability,
            comment="Crawl stage: run the landing crawler and wait for it to finish.",
        )
        self.state_machine = observed.state_machine
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm
        self.crawl_end.grant_wait(self.state_machine)

    def _build_start_crawler(self, busy_retry_interval: Duration, busy_retry_attempts: int) -> tasks.CallAwsService:
        """StartCrawler, retried while the crawler is busy (another crawl) or Glue throttles."""
        start_crawler = tasks.CallAwsService(
            self,
            "Start crawler",
            service="glue",
            action="startCrawler",
            parameters={"Name": self.crawler_name},
            iam_resources=[self.crawler_arn],
            # Starts the wait count; StartCrawler's own response is empty.
            result_selector={"count": 1},
            result_path="$.wait",
        )
        busy_retry(CRAWLER_BUSY_ERRORS, interval=busy_retry_interval, attempts=busy_retry_attempts).apply(start_crawler)
        GLUE_THROTTLING.apply(start_crawler)
        return start_crawler

    def _build_get_crawler(self) -> tasks.CallAwsService:
        get_crawler = tasks.CallAwsService(
            self,
            "Get crawler",
            service="glue",
            action="getCrawler",
            parameters={"Name": self.crawler_name},
            iam_resources=[self.crawler_arn],
            # LastCrawl is absent until a crawler's first crawl ends, so keep the whole object.
            result_selector={"State.$": "$.Crawler.State", "Crawler.$": "$.Crawler"},
            result_path="$.crawler",
        )
        GLUE_THROTTLING.apply(get_crawler)
        return get_crawler

    def _build_crawl_finished(self, *, wait_for_end: sfn.CustomState, settle: sfn.Pass) -> sfn.Choice:
        """READY ends the stage (succeeded or failed, by the last crawl); otherwise wait again, up to max_waits."""
        count_wait = sfn.Pass(
            self,
            "Count wait",
            parameters={"count.$": "States.MathAdd($.wait.count, 1)"},
            result_path="$.wait",
        )
        # Woken by an end event but not READY yet (STOPPING, or a late event of an earlier crawl):
        # one poll interval, then look again; timed out: wait for the event again.
        count_wait.next(
            sfn.Choice(self, "Woken by an end event?")
            .when(sfn.Condition.is_present("$.woken.state"), settle)
            .otherwise(wait_for_end)
        )
        is_ready = sfn.Condition.string_equals("$.crawler.State", "READY")
        last_crawl_status = "$.crawler.Crawler.LastCrawl.Status"
        succeeded = sfn.Succeed(self, "Crawl succeeded", output_path="$.crawler.Crawler.LastCrawl")
        failed_with_message = sfn.Fail(
            self,
            "Crawl failed",
            error=CRAWLER_FAILED,
            cause_path="$.crawler.Crawler.LastCrawl.ErrorMessage",
        )
        failed_without_message = sfn.Fail(
            self,
            "Crawl ended without success",
            error=CRAWLER_FAILED,
            cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.crawler.Crawler.LastCrawl")),
        )
        timed_out = sfn.Fail(
            self,
            "Crawl timed out",
            error=CRAWLER_TIMED_OUT,
            cause=f"crawler still running after {self.max_waits} waits for its end, "
            f"{self.event_wait.to_seconds()} s each at most",
        )
        return (
            sfn.Choice(self, "Crawl finished?")
            .when(
                sfn.Condition.and_(
                    is_ready,
                    sfn.Condition.is_present(last_crawl_status),
                    sfn.Condition.string_equals(last_crawl_status, "SUCCEEDED"),
                ),
                succeeded,
            )
            .when(
                sfn.Condition.and_(is_ready, sfn.Condition.is_present("$.crawler.Crawler.LastCrawl.ErrorMessage")),
                failed_with_message,
            )
            .when(
                sfn.Condition.and_(is_ready, sfn.Condition.is_present("$.crawler.Crawler.LastCrawl")),
                failed_without_message,
            )
            .when(sfn.Condition.number_greater_than_equals("$.wait.count", self.max_waits), timed_out)
            .otherwise(count_wait)
        )
