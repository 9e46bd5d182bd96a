"""Crawl completion by event, as synthesized: the crawl stage parks a task token and waits; a rule
on "Glue Crawler State Change" starts an EXPRESS callback that resumes it; a wait that times out
(a lost event) falls back to GetCrawler (stacks/pipeline/stages/crawl_stage.py,
stacks/pipeline/stages/crawl_callback.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config.stages import config_for
from stacks.pipeline.stages.crawl_callback import TOKEN_SPENT_ERRORS
from tests.helpers import (
    STATE_MACHINE_TYPE,
    Run,
    StateError,
    as_list,
    one_resource,
    render,
    simulate,
    state_machine_definition,
    state_machine_logical_id,
)
from tests.stacks.test_front_door_template import table_arns
from tests.stacks.test_pipeline_template import CRAWL, crawler, crawler_ref, lower_actions, machine_role_statements

CALLBACK = "CrawlStageCrawlEndWorkflow"
SUCCEEDED = {"Status": "SUCCEEDED"}
WOKEN = {"crawlerName": "c", "state": "Succeeded"}


@pytest.fixture(scope="module")
def template(dev: Any) -> Template:
    return dev.templates["pipeline"]


def run_crawl(template: Template, wakes: Iterator[Any], crawlers: Iterator[dict[str, Any]]) -> Run:
    """The crawl stage: each wait ends as `wakes` says (an event's detail, or a StateError), each
    GetCrawler answers the next of `crawlers`."""

    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        resource = state["Resource"]
        if resource.endswith(":glue:startCrawler"):
            return {}
        if resource.endswith(":dynamodb:putItem.waitForTaskToken"):
            wake = next(wakes)
            if isinstance(wake, StateError):
                raise wake
            return wake
        if resource.endswith(":glue:getCrawler"):
            return {"Crawler": next(crawlers)}
        raise AssertionError(f"unexpected task {name}")

    return simulate(state_machine_definition(template, CRAWL), {"trigger": {}}, on_task)


def test_the_stage_parks_its_token_under_the_crawler_and_waits_a_bounded_time(template: Template) -> None:
    config = config_for("dev").crawler
    wait = state_machine_definition(template, CRAWL)["States"]["Wait for crawl end"]
    table, _ = one_resource(template, "AWS::DynamoDB::Table", "CrawlStageCrawlEndTokens")
    assert wait["Resource"].endswith(":states:::aws-sdk:dynamodb:putItem.waitForTaskToken")
    assert wait["Parameters"]["TableName"] == f"${{Ref:{table}}}"
    assert wait["Parameters"]["Item"] == {"crawler": {"S": crawler_ref(template)}, "token": {"S.$": "$$.Task.Token"}}
    assert wait["TimeoutSeconds"] == config.poll_interval_seconds * config.event_wait_polls
    [catch] = wait["Catch"]
    assert catch["ErrorEquals"] == ["States.Timeout"] and catch["Next"] == "Get crawler"


def test_an_end_event_ends_the_stage_in_the_same_transitions_however_long_the_crawl(template: Template) -> None:
    run = run_crawl(template, iter([WOKEN]), iter([crawler("READY", SUCCEEDED)]))
    assert run.trace == ["Start crawler", "Wait for crawl end", "Get crawler", "Crawl finished?", "Crawl succeeded"]


def test_a_lost_event_falls_back_to_get_crawler(template: Template) -> None:
    run = run_crawl(template, iter([StateError("States.Timeout")]), iter([crawler("READY", SUCCEEDED)]))
    assert run.status == "SUCCEEDED" and run.trace.count("Wait for crawl end") == 1


def test_a_crawl_still_running_after_a_timeout_waits_for_the_event_again(template: Template) -> None:
    wakes = iter([StateError("States.Timeout"), WOKEN])
    run = run_crawl(template, wakes, iter([crawler("RUNNING"), crawler("READY", SUCCEEDED)]))
    assert run.status == "SUCCEEDED" and run.trace.count("Wait for crawl end") == 2


def test_an_event_before_the_crawler_is_ready_polls_once_more(template: Template) -> None:
    run = run_crawl(template, iter([WOKEN]), iter([crawler("STOPPING"), crawler("READY", SUCCEEDED)]))
    assert run.status == "SUCCEEDED"
    assert "Wait for crawler to settle" in run.trace and run.trace.count("Wait for crawl end") == 1


def test_a_failed_crawl_fails_crawler_failed_with_its_message(template: Template) -> None:
    failed = {"Status": "FAILED", "ErrorMessage": "Internal Service Exception"}
    run = run_crawl(template, iter([{"crawlerName": "c", "state": "Failed"}]), iter([crawler("READY", failed)]))
    assert (run.status, run.error, run.cause) == ("FAILED", "CrawlerFailed", "Internal Service Exception")


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_a_crawl_that_never_ends_times_out_within_the_configured_bound(synth: Any, stage: str) -> None:
    config = config_for(stage).crawler
    template = synth(stage).templates["pipeline"]
    run = run_crawl(template, itertools.repeat(StateError("States.Timeout")), itertools.repeat(crawler("RUNNING")))
    assert (run.status, run.error) == ("FAILED", "CrawlerTimedOut")
    waits = run.trace.count("Wait for crawl end")
    timeout = state_machine_definition(template, CRAWL)["States"]["Wait for crawl end"]["TimeoutSeconds"]
    assert waits * timeout <= config.max_polls * config.poll_interval_seconds < (waits + 1) * timeout


def callback(template: Template, token: str | None, resume_error: str | None = None) -> Run:
    def on_task(name: str, state: dict[str, Any], params: Any) -> Any:
        if state["Resource"].endswith(":dynamodb:getItem"):
            return {"Item": {"crawler": {"S": "c"}, "token": {"S": token}}} if token else {}
        if state["Resource"].endswith(":aws-sdk:sfn:sendTaskSuccess"):
            if resume_error:
                raise StateError(resume_error)
            return {}
        raise AssertionError(f"unexpected task {name}")

    event = {"source": "aws.glue", "detail-type": "Glue Crawler State Change", "detail": WOKEN}
    return simulate(state_machine_definition(template, CALLBACK), event, on_task)


def test_the_callback_resumes_the_waiting_stage_with_the_events_detail(template: Template) -> None:
    run = callback(template, "token-1")
    [params] = run.calls_to("Resume crawl stage")
    assert params["TaskToken"] == "token-1" and params["Output"] == '{"crawlerName":"c","state":"Succeeded"}'
    assert run.status == "SUCCEEDED"


@pytest.mark.parametrize("error", TOKEN_SPENT_ERRORS)
def test_a_token_nobody_waits_on_is_not_a_failure(template: Template, error: str) -> None:
    assert callback(template, "old", resume_error=error).trace[-1] == "Nobody waiting"
    assert callback(template, None).trace[-1] == "Nobody waiting"


def test_the_rule_matches_our_crawlers_end_only_and_targets_the_express_callback(template: Template) -> None:
    callback_id = state_machine_logical_id(template, CALLBACK)
    _, machine = one_resource(template, STATE_MACHINE_TYPE, CALLBACK)
    assert machine["Properties"]["StateMachineType"] == "EXPRESS"
    _, rule = one_resource(template, "AWS::Events::Rule", "CrawlStageCrawlEnd")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.glue"] and pattern["detail-type"] == ["Glue Crawler State Change"]
    assert pattern["detail"]["crawlerName"] == [{"Ref": one_resource(template, "AWS::Glue::Crawler")[0]}]
    assert pattern["detail"]["state"] == ["Succeeded", "Failed"]
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Ref": callback_id}]


def test_grants_the_stage_puts_tokens_and_the_callback_reads_them_and_resumes_only_the_stage(
    template: Template,
) -> None:
    table, _ = one_resource(template, "AWS::DynamoDB::Table", "CrawlStageCrawlEndTokens")
    stage_id = state_machine_logical_id(template, CRAWL)
    stage, _ = machine_role_statements(template, CRAWL)
    puts = [s for s in stage if "dynamodb:putitem" in lower_actions(s)]
    assert [render(r) for s in puts for r in as_list(s["Resource"])] == [f"${{GetAtt:{table}.Arn}}"]
    assert not any(a.startswith("dynamodb:") and a != "dynamodb:putitem" for s in stage for a in lower_actions(s))
    resumer, _ = machine_role_statements(template, CALLBACK)
    actions = {a: as_list(s["Resource"]) for s in resumer for a in lower_actions(s)}
    assert actions.pop("states:sendtasksuccess") == [{"Ref": stage_id}]
    assert {render(r) for r in actions.pop("dynamodb:getitem")} <= table_arns(table)
    assert set(actions) <= {"kms:decrypt", "kms:describekey"}, actions
