"""One outer loop at a time: EventBridge rules, or the MWAA DAG, never both racing for the crawler."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

import app
from localrun.emulator.deployment import LocalDeployment, local_aws
from stacks.config.checks import ConfigError
from stacks.config.stages import DEV, LOCAL

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "orders.csv"


@pytest.fixture(scope="module")
def mwaa_driven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Template]:
    """The local stage with MWAA as the outer loop, synthesized once for this module."""
    outdir = tmp_path_factory.mktemp("mwaa-driven")
    cdk_app, stacks = app.build_app(config=replace(LOCAL, outer_loop="mwaa"), outdir=str(outdir))
    cdk_app.synth()
    return outdir, Template.from_stack(stacks["pipeline"])


def test_unknown_outer_loop_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as raised:
        replace(DEV, outer_loop="airflow")  # type: ignore[arg-type]
    assert str(raised.value) == "config dev.outer_loop = 'airflow': must be one of eventbridge, mwaa"


def test_make_deploy_adds_mwaa_only_when_it_is_the_outer_loop() -> None:
    assert app.deployed_stack_ids(DEV) == ["GluePipeline-dev-Storage", "GluePipeline-dev-Pipeline"]
    assert app.deployed_stack_ids(replace(DEV, outer_loop="mwaa"))[-1] == "GluePipeline-dev-Orchestration"


def _trigger_rules(template: Template) -> dict:
    """The two rules that start the pipeline (upload, schedule); not the failure notice's rule."""
    rules = template.find_resources("AWS::Events::Rule")
    return {logical_id: rule for logical_id, rule in rules.items() if logical_id.startswith("Triggers")}


def test_rules_are_enabled_by_default(synth) -> None:
    rules = _trigger_rules(synth("dev").templates["pipeline"])
    assert len(rules) == 2 and {r["Properties"]["State"] for r in rules.values()} == {"ENABLED"}


def test_mwaa_outer_loop_disables_both_rules(mwaa_driven: tuple[Path, Template]) -> None:
    rules = _trigger_rules(mwaa_driven[1])
    assert len(rules) == 2 and {r["Properties"]["State"] for r in rules.values()} == {"DISABLED"}
    # The other rules stay enabled: the failure notice's only listens to the pipeline machine (which
    # MWAA does not run), the Glue failure alarms watch the job and crawler under either loop, and
    # the crawl stage (which MWAA runs too) waits for its crawler's end event through the callback's.
    others = mwaa_driven[1].find_resources("AWS::Events::Rule")
    kept = {lid: r["Properties"] for lid, r in others.items() if lid not in rules}
    assert sorted(lid.rstrip("0123456789ABCDEF") for lid in kept) == [
        "CrawlStageCrawlEndCrawlEndedRule",
        "DashboardGlueCrawlerFailedRule",
        "DashboardGlueJobFailedRule",
        "FailureNoticeRule",
    ]
    assert {r.get("State", "ENABLED") for r in kept.values()} == {"ENABLED"}


def test_disabled_rules_start_nothing_locally(mwaa_driven: tuple[Path, Template]) -> None:
    with local_aws():
        deployment = LocalDeployment.bring_up(mwaa_driven[0])
        try:
            key = f"{deployment.landing_prefix}orders.csv"
            assert deployment.put_landing_object(key, SAMPLE.read_bytes()) == []
            assert deployment.schedule_tick() == []
            assert deployment.executions("pipeline") == []
        finally:
            deployment.stop_running()
