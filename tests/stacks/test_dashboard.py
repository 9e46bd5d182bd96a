"""The stage's dashboard and the alarms beside it (stacks/observability/pipeline_dashboard.py), read
from the synthesized Pipeline stack: what the body graphs, and where the Glue failure alarms go."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from stacks import pipeline_contract as contract
from stacks.pipeline.stages.admission_stage import MAP_RUN_LABEL
from tests.helpers import as_list, one_resource, render, state_machine_logical_id
from tests.stacks.test_pipeline_template import MACHINES

if TYPE_CHECKING:
    from tests.conftest import Synthesized

DASHBOARD = "AWS::CloudWatch::Dashboard"


def _body(synthesized: Synthesized) -> dict[str, Any]:
    """The dashboard body as JSON, tokens as `${Ref:Id}` / `${GetAtt:Id.Attr}` placeholders."""
    _, dashboard = one_resource(synthesized.templates["pipeline"], DASHBOARD)
    return dict(json.loads(render(dashboard["Properties"]["DashboardBody"])))


def _glue_rule(synthesized: Synthesized, detail_type: str) -> dict[str, Any]:
    template = synthesized.templates["pipeline"].to_json()
    # The dashboard's own (the crawl callback's rule on crawl ends: test_crawl_callback_template.py).
    [rule] = [
        r["Properties"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::Events::Rule"
        and lid.startswith("Dashboard")
        and r["Properties"].get("EventPattern", {}).get("detail-type") == [detail_type]
    ]
    return dict(rule)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_stage_has_one_dashboard_named_by_cloudformation(synth: Callable[[str], Synthesized], stage: str) -> None:
    template = synth(stage).templates["pipeline"]
    logical_id, dashboard = one_resource(template, DASHBOARD)
    assert "DashboardName" not in dashboard["Properties"]  # no physical name: two stages never collide
    assert template.to_json()["Outputs"][contract.DASHBOARD_OUTPUT]["Value"] == {"Ref": logical_id}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_body_graphs_every_state_machine_and_the_figures(synth: Callable[[str], Synthesized], stage: str) -> None:
    synthesized = synth(stage)
    template = synthesized.templates["pipeline"]
    body = json.dumps(_body(synthesized))
    admission = state_machine_logical_id(template, MACHINES[0])
    for prefix in MACHINES:
        assert f"${{Ref:{state_machine_logical_id(template, prefix)}}}" in body, prefix
    # The Distributed Map's children report under "<admission ARN>/<label>".
    assert f"${{Ref:{admission}}}/{MAP_RUN_LABEL}" in body
    assert contract.METRICS_NAMESPACE in body
    for metric in (
        contract.FILES_ADMITTED_METRIC,
        contract.FILES_QUARANTINED_METRIC,
        contract.ROWS_PUBLISHED_METRIC,
        contract.ROWS_REJECTED_METRIC,
    ):
        assert metric in body
    dead_letter_queue, _ = one_resource(template, "AWS::SQS::Queue", "TriggersDeadLetterQueue")
    assert f"${{GetAtt:{dead_letter_queue}.QueueName}}" in body
    job, _ = one_resource(template, "AWS::Glue::Job")
    assert f"${{Ref:{job}}}" in body


def test_the_figures_are_read_where_the_lambdas_emit_them(dev: Synthesized) -> None:
    """Each embedded-metric figure under the FunctionName of the Lambda that emits it."""
    template = dev.templates["pipeline"]
    summary, _ = one_resource(template, "AWS::Lambda::Function", "AdmissionStageSummarize")
    check, _ = one_resource(template, "AWS::Lambda::Function", "TransformStageCheck")
    metrics = [
        m
        for widget in _body(dev)["widgets"]
        for m in widget.get("properties", {}).get("metrics", [])
        if m[0] == contract.METRICS_NAMESPACE
    ]
    emitted_by = {m[1]: m[3] for m in metrics}
    assert emitted_by == {
        contract.FILES_ADMITTED_METRIC: f"${{Ref:{summary}}}",
        contract.FILES_QUARANTINED_METRIC: f"${{Ref:{summary}}}",
        contract.ROWS_PUBLISHED_METRIC: f"${{Ref:{check}}}",
        contract.ROWS_REJECTED_METRIC: f"${{Ref:{check}}}",
    }
    assert {m[2] for m in metrics} == {"FunctionName"}


@pytest.mark.parametrize(
    ("detail_type", "name_field", "resource_type", "states"),
    [
        ("Glue Job State Change", "jobName", "AWS::Glue::Job", ["FAILED", "TIMEOUT"]),
        ("Glue Crawler State Change", "crawlerName", "AWS::Glue::Crawler", ["Failed"]),
    ],
)
def test_glue_failures_of_our_job_and_crawler_alarm_the_topic(
    dev: Synthesized, detail_type: str, name_field: str, resource_type: str, states: list[str]
) -> None:
    template = dev.templates["pipeline"]
    rule = _glue_rule(dev, detail_type)
    resource, _ = one_resource(template, resource_type)
    assert rule["EventPattern"]["source"] == ["aws.glue"]
    assert rule["EventPattern"]["detail"] == {name_field: [{"Ref": resource}], "state": states}
    [target] = rule["Targets"]
    assert render(target["Arn"]).startswith("${ImportValue:") and "NotificationTopic" in render(target["Arn"])
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    # The target's role may publish to the topic, with its key, and do nothing else.
    role = target["RoleArn"]["Fn::GetAtt"][0]
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    granted = {(a, render(s["Resource"])) for s in policy["Statement"] for a in as_list(s["Action"])}
    topic, key = render(target["Arn"]), next(r for a, r in granted if a == "kms:Decrypt")
    assert granted == {("sns:Publish", topic), ("kms:Decrypt", key), ("kms:GenerateDataKey*", key)}
    assert "DataKey" in key


def test_a_message_in_the_dead_letter_queue_alarms_the_topic(dev: Synthesized) -> None:
    template = dev.templates["pipeline"]
    dead_letter_queue, _ = one_resource(template, "AWS::SQS::Queue", "TriggersDeadLetterQueue")
    _, alarm = one_resource(template, "AWS::CloudWatch::Alarm", "DashboardDeadLetterAlarm")
    props = alarm["Properties"]
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_queue, "QueueName"]}}]
    assert props["Threshold"] == 1
    [action] = props["AlarmActions"]
    assert "NotificationTopic" in render(action)


def test_the_alarm_widget_shows_every_stage_alarm_and_the_dead_letter_alarm(dev: Synthesized) -> None:
    template = dev.templates["pipeline"]
    [widget] = [w for w in _body(dev)["widgets"] if w["type"] == "alarm"]
    shown = set(widget["properties"]["alarms"])
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert shown == {f"${{GetAtt:{logical_id}.Arn}}" for logical_id in alarms}
    assert len(alarms) == len(MACHINES) + len(contract.EXPRESS_MACHINES) + 1


class _Stacks:
    """A CloudFormation client that knows one stack's outputs, or none."""

    def __init__(self, outputs: list[dict[str, str]] | None) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        if self.outputs is None:
            raise LookupError(f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


def test_why_links_the_dashboard_the_stack_names() -> None:
    from ops.why import dashboard_link

    stack = _Stacks([{"OutputKey": contract.DASHBOARD_OUTPUT, "OutputValue": "Dashboard7A714131-Xy12"}])
    assert dashboard_link(stack, "dev", "eu-west-1") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards/dashboard/Dashboard7A714131-Xy12"
    )
    assert dashboard_link(_Stacks([]), "dev", "eu-west-1") is None  # deployed before the dashboard
    assert dashboard_link(_Stacks(None), "dev", "eu-west-1") is None  # no stack: no link, no error


def test_the_picture_follows_the_synthesized_dashboard(dev: Synthesized) -> None:
    """ops/dashboard_picture.py reads every widget, maps every line to a figure it gathers."""
    from localrun.emulator.assembly import CloudAssembly
    from ops.dashboard_picture import alarm_watches, dashboard_layout

    assembly = CloudAssembly.load(dev.outdir)
    widgets, watches = dashboard_layout(assembly), alarm_watches(assembly)
    assert len(widgets) == len(_body(dev)["widgets"])
    assert [w.title for w in widgets if w.title.startswith("Executions: ")] == [
        f"Executions: {name}" for name in (*contract.STAGES, contract.PIPELINE)
    ]
    stages = {*contract.STAGES, contract.PIPELINE, "map"}
    for widget in widgets:
        for key, _ in widget.lines:
            assert key[0] in stages or len(key) == 1, (widget.title, key)
        assert all(alarm in watches for alarm in widget.alarms)
    machines = [*contract.STAGES, contract.PIPELINE, *contract.EXPRESS_MACHINES]
    assert sorted(watches.values()) == sorted([(name,) for name in machines] + [("dlq",)])
