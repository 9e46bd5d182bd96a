"""Crawl stage: start a Glue crawler and wait, with a bounded poll loop, until its crawl ends.

StartCrawler ─► Wait ─► GetCrawler ─► Choice
  READY + LastCrawl SUCCEEDED ─► Succeed
  READY + anything else       ─► Fail CrawlerFailed
  still running, polls left    ─► count the poll ─► Wait
  still running, no polls left ─► Fail CrawlerTimedOut
Every poll costs four state transitions (Wait, GetCrawler, Choice, count).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.retries import CRAWLER_BUSY_ERRORS, GLUE_THROTTLING, busy_retry
from stacks.observability.observed_state_machine import ObservedStateMachine, StageObservability

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
        busy_retry_interval: Duration,
        busy_retry_attempts: int,
        timeout: Duration,
        observability: StageObservability,
    ) -> None:
        super().__init__(scope, id_)
        self.crawler_name = crawler.ref
        self.crawler_arn = Stack.of(self).format_arn(service="glue", resource="crawler", resource_name=crawler.ref)
        start_crawler = self._build_start_crawler(busy_retry_interval, busy_retry_attempts)
        wait = sfn.Wait(self, "Wait for crawler", time=sfn.WaitTime.duration(poll_interval))
        get_crawler = self._build_get_crawler()
        crawl_finished = self._build_crawl_finished(
            count_poll_then=wait, max_polls=max_polls, poll_interval=poll_interval
        )
        observed = ObservedStateMachine(
            self,
            "Workflow",
            definition=start_crawler.next(wait).next(get_crawler).next(crawl_finished),
            timeout=timeout,
            observability=observability,
            comment="Crawl stage: run the landing crawler and wait for it to finish.",
        )
        self.state_machine = observed.state_machine
        self.log_group = observed.log_group
        self.failure_alarm = observed.failure_alarm

    def _build_start_crawler(self, busy_retry_interval: Duration, busy_retry_attempts: int) -> tasks.CallAwsService:
        """StartCrawler, retried while the crawler is busy (another crawl) or Glue throttles."""
        start_crawler = tasks.CallAwsService(
            self,
            "Start crawler",
            service="glue",
            action="startCrawler",
            parameters={"Name": self.crawler_name},
            iam_resources=[self.crawler_arn],
            # Starts the poll count; StartCrawler's own response is empty.
            result_selector={"count": 1},
            result_path="$.poll",
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

    def _build_crawl_finished(
        self, *, count_poll_then: sfn.Wait, max_polls: int, poll_interval: Duration
    ) -> sfn.Choice:
        """READY ends the stage (succeeded or failed, by the last crawl); otherwise poll again, up to max_polls."""
        count_poll = sfn.Pass(
            self,
            "Count poll",
            parameters={"count.$": "States.MathAdd($.poll.count, 1)"},
            result_path="$.poll",
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
            cause=f"crawler still running after {max_polls} polls, {poll_interval.to_seconds()} s apart",
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
            .when(sfn.Condition.number_greater_than_equals("$.poll.count", max_polls), timed_out)
            .otherwise(count_poll.next(count_poll_then))
        )
