"""The front door and crawl completion by event, executed from the synthesized `local` stage.

Standard transitions of a burst, counted from the local histories, are held to the formula

    Standard = W + 8 x c

W: the working pipeline executions and their stage executions (what the burst's rounds cost, the
same for 1 upload or N); c: pipeline executions the door started that then found the lease taken
(a door that read the lease just before the holder took it) and coalesced after 8 states. The
uploads themselves cost N Express requests at the door, no Standard transition: before the door,
every upload was a Standard execution, W + 8 x (N - runs).
"""

from __future__ import annotations

import time
from typing import Any

from localrun import runner
from localrun.emulator.deployment import LocalDeployment
from localrun.scenarios import actions
from ops.cost_model import PIPELINE_COALESCED

BURST = 200


def executions_of(deployment: LocalDeployment, machine: str) -> list[dict[str, Any]]:
    return [runner.describe_execution(deployment, e["executionArn"]) for e in deployment.executions(machine)]


def settle(deployment: LocalDeployment, started: list[str]) -> None:
    for arn in started:
        deployment.wait(arn, timeout_s=600)
    for machine in ("pipeline", "admission", "crawl", "transform"):  # continuations and stages too
        for execution in deployment.executions(machine):
            deployment.wait(execution["executionArn"], timeout_s=600)


def test_a_burst_costs_what_its_runs_cost_and_the_uploads_cost_the_door(deployment: LocalDeployment) -> None:
    started = actions.upload(deployment, BURST)
    settle(deployment, started)
    pipelines = executions_of(deployment, "pipeline")
    stages = [s for m in ("admission", "crawl", "transform") for s in executions_of(deployment, m)]
    crawls = len(deployment.executions("crawl"))
    coalesced = [p for p in pipelines if p["path"][-1] == "Coalesced"]
    working = [p for p in pipelines if p not in coalesced]
    standard = sum(p["transitions"] for p in pipelines) + sum(s["transitions"] for s in stages)
    w = sum(p["transitions"] for p in working) + sum(s["transitions"] for s in stages)
    assert all(p["transitions"] == PIPELINE_COALESCED for p in coalesced)
    assert standard == w + PIPELINE_COALESCED * len(coalesced)
    doors = [runner.describe_execution(deployment, arn) for arn in deployment.door_executions]
    assert len(doors) == BURST and {d["status"] for d in doors} == {"SUCCEEDED"}
    at_the_door = sum(1 for d in doors if d["path"][-1] == "Coalesced at the door")
    # An event that arrives after a run took its file in ends at the door too (no run to start).
    taken_in = sum(1 for d in doors if d["path"][-1] == "Nothing waiting")
    assert at_the_door + taken_in + len(started) == BURST  # each door coalesced, ended, or started one
    # Most uploads ended at the door: at most a handful raced the first holder's Take lease.
    assert len(coalesced) <= BURST // 20, len(coalesced)
    # One crawl per round that admitted files (rounds follow the uploads' pace; slow on moto).
    assert crawls <= sum(p["path"].count("Start round") for p in working)
    assert actions._drained(deployment, BURST) == []
    before = w + PIPELINE_COALESCED * (BURST - len(working))
    print(
        f"\nburst {BURST}: Standard {standard} (W {w} + 8 x {len(coalesced)}), before the door {before}; "
        f"door: {len(doors)} Express requests, {at_the_door} coalesced at the door"
    )


def test_a_file_arriving_during_the_release_is_not_stranded(deployment: LocalDeployment) -> None:
    [first] = actions.upload(deployment, 1, "first")
    actions._wait_for_state(deployment, first, "Release lease", timeout_s=600)  # a busy machine: minutes
    late = actions.upload(deployment, 1, "late")  # its door sees the lease held, or already free
    settle(deployment, [first, *late])
    assert actions._drained(deployment, 2) == []
    rounds = sum(p["path"].count("Start round") for p in executions_of(deployment, "pipeline"))
    assert rounds == 2


def crawl_stage(deployment: LocalDeployment) -> dict[str, Any]:
    [crawl] = executions_of(deployment, "crawl")
    return crawl


def test_the_crawl_stage_ends_within_two_seconds_of_the_crawl(deployment: LocalDeployment) -> None:
    deployment.faults.crawl_seconds = 3.0  # longer than a poll interval: ended by the event, not a poll
    [pipeline] = actions.put("orders.csv")(deployment)
    settle(deployment, [pipeline])
    [crawl_execution] = deployment.executions("crawl")
    stopped = deployment.clients["stepfunctions"].describe_execution(executionArn=crawl_execution["executionArn"])
    [crawl_ended] = _crawls_ended()
    lag = (stopped["stopDate"] - crawl_ended).total_seconds()
    crawl = crawl_stage(deployment)
    assert crawl["path"] == ["Start crawler", "Wait for crawl end", "Get crawler", "Crawl finished?", "Crawl succeeded"]
    assert lag <= 2.0, lag
    [callback] = executions_of(deployment, "crawl_callback")
    assert callback["path"][-1] == "Crawl stage resumed"
    print(f"\ncrawl stage ended {lag:.2f} s after the crawl; {crawl['transitions']} transitions")


def _crawls_ended() -> list[Any]:
    from localrun.emulator import moto as moto_patches

    return moto_patches.active().glue.crawls_ended


def test_a_lost_crawler_event_is_covered_by_the_fallback(deployment: LocalDeployment) -> None:
    deployment.faults.drop_crawl_events = True
    started = time.monotonic()
    [pipeline] = actions.put("orders.csv")(deployment)
    settle(deployment, [pipeline])
    assert deployment.wait(pipeline)["status"] == "SUCCEEDED"
    crawl = crawl_stage(deployment)
    assert crawl["path"] == ["Start crawler", "Wait for crawl end", "Get crawler", "Crawl finished?", "Crawl succeeded"]
    assert crawl["duration_s"] >= 4  # the local wait's timeout (1 s x 5), then GetCrawler
    assert executions_of(deployment, "crawl_callback") == []
    assert time.monotonic() - started < 300


def test_a_failed_crawl_fails_the_stage_crawler_failed(deployment: LocalDeployment) -> None:
    deployment.faults.crawl_outcome = "FAILED"
    [pipeline] = actions.put("orders.csv")(deployment)
    settle(deployment, [pipeline])
    crawl = crawl_stage(deployment)
    assert (crawl["status"], crawl["error"]) == ("FAILED", "CrawlerFailed")
    assert "could not read s3 objects" in crawl["cause"]
    assert [c["path"][-1] for c in executions_of(deployment, "crawl_callback")] == ["Crawl stage resumed"]
    # The same end event trips the crawler alarm (stacks/observability/pipeline_dashboard.py): one
    # line on the alarm topic, with Glue's message and the link to the crawl's log.
    notices = deployment.notifications()
    assert [n["message"]["status"] for n in notices] == ["FAILED"]
    [alarm] = deployment.alarms
    assert "failed: " in alarm["text"] and "could not read s3 objects" in alarm["text"], alarm
    assert "logEventViewer:group=/aws-glue/crawlers" in alarm["text"]
