"""Bursts, arrivals during a run, the lease and odd files: executed from the synthesized `local` stage.

Each scenario's own check (localrun/scenarios/actions.py) looks at the data once every run ended: nothing
left under incoming/, the lease free, every file admitted once or quarantined with its reason,
every row transformed once. These tests add what an operator would look at in the reports.
"""

from __future__ import annotations

import json
from typing import Any

from localrun.emulator.deployment import LocalDeployment
from localrun.runner import run_scenario
from localrun.scenarios.actions import MIXED_DROP
from localrun.scenarios.catalogue import SCENARIOS


def run(deployment: LocalDeployment, name: str) -> dict[str, Any]:
    report = run_scenario(deployment, SCENARIOS[name])
    assert report["problems"] == [], report["problems"]
    assert report["as_expected"], json.dumps(
        {k: report[k] for k in ("statuses", "dead_letters", "access_denied", "notifications")}, default=str
    )[:3000]
    return report


def paths(report: dict[str, Any]) -> list[list[str]]:
    return [r["path"] for r in report["pipeline_runs"]]


def test_a_burst_of_50_uploads_is_one_round_without_a_false_failure(deployment: LocalDeployment) -> None:
    report = run(deployment, "burst_50")
    working = [p for p in paths(report) if "Start round" in p]
    coalesced = [p for p in paths(report) if p[-1] == "Coalesced"]
    # Every upload passed the front door; only those that found no running holder started a run.
    assert len(deployment.door_executions) == 50
    # The 50 objects landed before their events: the first run's first round admits all of them,
    # it finds nothing more waiting, and a run started after the release would find nothing to crawl.
    assert sum(p.count("Run crawl stage") for p in paths(report)) == 1
    assert [s["stage"] for s in report["stage_runs"]].count("crawl") == 1
    assert [s["stage"] for s in report["stage_runs"]].count("transform") == 1
    assert len(working) + len(coalesced) <= 50
    assert all(n["subject"] == "Pipeline SUCCEEDED" for n in report["notifications"])
    coalesced_cost = {r["transitions"] for r in report["pipeline_runs"] if r["path"][-1] == "Coalesced"}
    # Trigger, First round, Take lease, Read lease, still held?, Describe holder, running?, Coalesced.
    assert coalesced_cost <= {8}


def test_a_file_arriving_during_a_run_is_admitted_by_its_next_round(deployment: LocalDeployment) -> None:
    report = run(deployment, "arrival_during_run")
    first, *later = paths(report)  # the second upload coalesced at the front door, or in the pipeline
    assert all(p[-1] == "Coalesced" for p in later)
    assert first.count("Start round") == 2  # the running execution picked it up
    assert [n["message"]["round"] for n in report["notifications"]] == [1, 2]


def test_a_file_arriving_as_the_lease_is_released_is_not_stranded(deployment: LocalDeployment) -> None:
    report = run(deployment, "arrival_at_release")
    rounds = sum(p.count("Start round") for p in paths(report))
    assert rounds == 2 and len(report["notifications"]) == 2


def test_a_lease_left_by_a_stopped_execution_is_taken_over(deployment: LocalDeployment) -> None:
    report = run(deployment, "stale_lease")
    [taker] = paths(report)
    assert "Take over lease" in taker and taker[-1] == "Pipeline succeeded"


def test_a_failed_transform_leaves_no_file_in_limbo_and_its_lease_expires(deployment: LocalDeployment) -> None:
    report = run(deployment, "transform_fails_lease_expires")
    [failed] = paths(report)
    assert failed[-1] == "Run transform stage"  # failed there, for a redrive to re-enter
    # The next upload is not coalesced into a run that no longer runs: it takes the lease over.
    second = deployment.put_landing_object(
        f"{deployment.incoming_prefix}next.csv",
        b"order_id,customer_id,order_date,amount,currency\nSO-9-1,C-1,2026-11-24,1.00,EUR\n",
    )
    deployment.faults.job_outcome = "SUCCEEDED"
    [execution] = second
    assert deployment.wait(execution)["status"] == "SUCCEEDED"
    assert "Take over lease" in [
        e["stateEnteredEventDetails"]["name"]
        for e in deployment.history(execution)
        if e["type"].endswith("StateEntered")
    ]


def test_a_mixed_drop_is_admitted_or_quarantined_file_by_file_with_reasons(deployment: LocalDeployment) -> None:
    report = run(deployment, "mixed_drop")
    [notice] = report["notifications"]
    admission = notice["message"]["stages"]["admission"]["Output"]
    assert admission["admitted"] == sum(1 for _, code in MIXED_DROP.values() if code is None)
    assert admission["quarantined"] == sum(1 for _, code in MIXED_DROP.values() if code)
    reasons = {
        example["key"].rsplit("/", 1)[-1] or example["key"]: example["reason"] for example in admission["examples"]
    }
    assert "order_id" in reasons["reordered.csv"] and "customer_id" in reasons["reordered.csv"]
    assert "UTF-8" in reasons["latin1.csv"]
    # Each quarantined file has its reason beside it, naming the run and where it came from.
    for key in deployment.keys_under("quarantine/"):
        if key.endswith(".reason.json"):
            body = json.loads(
                deployment.clients["s3"].get_object(Bucket=deployment.landing_bucket, Key=key)["Body"].read()
            )
            assert body["original_key"].startswith(deployment.incoming_prefix) and body["reason"] and body["run"]


def test_a_thousand_files_are_admitted_in_batches_by_one_run(deployment: LocalDeployment) -> None:
    report = run(deployment, "thousand_files")
    [notice] = report["notifications"]
    assert notice["message"]["stages"]["admission"]["Output"]["admitted"] == 1000
    admission = [s for s in report["stage_runs"] if s["stage"] == "admission"]
    assert [s["express_requests"] for s in admission] == [10]  # 1,000 files in batches of 100
    # Standard transitions grow with the batches, not the files: admission 3 + 10 children; the
    # pipeline (16), crawl (5) and transform (7) are those of a one-file run.
    assert [s["transitions"] for s in admission] == [3 + 10]
    assert report["transitions"] == 16 + (3 + 10) + 5 + 7


def test_a_schedule_tick_with_nothing_waiting_admits_nothing_and_crawls_nothing(deployment: LocalDeployment) -> None:
    [execution] = deployment.schedule_tick()
    assert deployment.wait(execution)["status"] == "SUCCEEDED"
    assert deployment.executions("crawl") == [] and deployment.executions("transform") == []
    [notice] = deployment.notifications()
    admission = notice["message"]["stages"]["admission"]["Output"]
    assert (admission["admitted"], admission["quarantined"]) == (0, 0)
