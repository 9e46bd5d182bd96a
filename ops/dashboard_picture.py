"""A picture of the stage dashboard, drawn from a local run's figures (the README's docs/dashboard.png).

    python -m ops.dashboard_picture --assembly cdk.out.local --out docs/dashboard.png [--scenario S ...]

The layout is the synthesized dashboard's own (stacks/observability/pipeline_dashboard.py): each
widget at its place, with its title and one bar per line it graphs, so the picture follows the
construct. The figures come from the local run of the given scenarios (by default a clean upload,
a mixed drop with quarantined files and a failed job), one fresh deployment each, summed:
executions and their durations from moto's Step Functions, the Distributed Map's batches from its
map runs, files and rows from the embedded-metric lines the Lambdas log where there are any, else
from the stage outputs that carry the same counts, the Glue job task's time (Step Functions' view of
the job run), the DLQ's messages.
A bar is a run's total, not a time series: CloudWatch draws the same lines over time.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrun.emulator.assembly import CloudAssembly, StackTemplate
from stacks import pipeline_contract as contract
from stacks.common.paths import REPO_ROOT

DEFAULT_SCENARIOS = ("happy_path", "mixed_drop", "job_failed")
_STATUS_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}
_MAP_COUNTS = {
    "succeeded": "ExecutionsSucceeded",
    "failed": "ExecutionsFailed",
    "timedOut": "ExecutionsTimedOut",
    "aborted": "ExecutionsAborted",
}
_MAXIMA = ("ExecutionTime", "glue.driver.aggregate.elapsedTime", "ApproximateNumberOfMessagesVisible")


@dataclass
class Widget:
    """One widget of the body: where it sits, what it is titled, and the keys of the lines it graphs."""

    kind: str  # metric | text | alarm
    title: str
    x: int
    y: int
    width: int
    height: int
    lines: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (figure key, label)
    text: str = ""
    alarms: list[str] = field(default_factory=list)  # alarm logical IDs


# -- the layout, from the synthesized dashboard ------------------------------------------------
def _placeholders(value: Any) -> str:
    """The body's Fn::Join with each token as `${LogicalId}` or `${LogicalId.Attribute}`."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_placeholders(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"${{{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise ValueError(f"dashboard body: {value!r} is not a Ref, GetAtt or Join")


def _stage_of_machine(pipeline: StackTemplate) -> dict[str, str]:
    """State machine logical ID -> stage name, from the stack outputs the contract names."""
    outputs = pipeline.template.get("Outputs", {})
    return {
        outputs[contract.state_machine_output(name)]["Value"]["Ref"]: name
        for name in (*contract.STAGES, contract.PIPELINE, *contract.EXPRESS_MACHINES)
    }


def _figure_key(metric: list[Any], stages: dict[str, str]) -> tuple[str, ...]:
    namespace, name, *dimensions = [m for m in metric if not isinstance(m, dict)]
    if namespace == "AWS/States":
        machine = re.fullmatch(r"\$\{(\w+)\}(/.+)?", dimensions[1])
        assert machine, f"StateMachineArn {dimensions[1]!r} is not a state machine of the stack"
        return ("map" if machine.group(2) else stages[machine.group(1)], name)
    return (name,)


def dashboard_layout(assembly: CloudAssembly) -> list[Widget]:
    pipeline = assembly.stack_ending("-Pipeline")
    _, dashboard = pipeline.one("AWS::CloudWatch::Dashboard")
    body = json.loads(_placeholders(dashboard["Properties"]["DashboardBody"]))
    stages, widgets = _stage_of_machine(pipeline), []
    for raw in body["widgets"]:
        props = raw["properties"]
        widget = Widget(raw["type"], props.get("title", ""), raw["x"], raw["y"], raw["width"], raw["height"])
        if widget.kind == "metric":
            widget.lines = [(_figure_key(m, stages), m[-1].get("label", m[1])) for m in props["metrics"]]
        elif widget.kind == "text":
            widget.title, _, rest = props["markdown"].partition("\n")
            widget.title = widget.title.lstrip("# ")
            widget.text = re.sub(r"\[([^]]+)\]\([^)]*\)", r"\1", rest).replace("*", "").strip()
        elif widget.kind == "alarm":
            widget.alarms = [re.fullmatch(r"\$\{(\w+)\.Arn\}", a).group(1) for a in props["alarms"]]  # type: ignore[union-attr]
        widgets.append(widget)
    return widgets


def alarm_watches(assembly: CloudAssembly) -> dict[str, tuple[str, ...]]:
    """Alarm logical ID -> what it watches: ("<stage>",) for a stage alarm, ("dlq",) for the DLQ's."""
    pipeline = assembly.stack_ending("-Pipeline")
    stages, found = _stage_of_machine(pipeline), dict[str, tuple[str, ...]]()
    for logical_id, alarm in pipeline.resources("AWS::CloudWatch::Alarm").items():
        refs = set(re.findall(r'"Ref": "(\w+)"', json.dumps(alarm["Properties"])))
        machines = [stages[r] for r in refs if r in stages]
        found[logical_id] = (machines[0],) if machines else ("dlq",)
    return found


# -- the figures, from a local run -------------------------------------------------------------
def _emf_figures(logs: Any) -> dict[str, float]:
    """Sums of the embedded-metric-format lines the Lambdas logged in our namespace."""
    found: defaultdict[str, float] = defaultdict(float)
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]:
            try:
                line = json.loads(event["message"])
                directives = line["_aws"]["CloudWatchMetrics"]
            except (ValueError, KeyError, TypeError):
                continue
            for directive in directives:
                if directive.get("Namespace") == contract.METRICS_NAMESPACE:
                    for metric in directive.get("Metrics", []):
                        found[metric["Name"]] += float(line.get(metric["Name"], 0))
    return found


def _output_figures(outputs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """The same counts from the stage outputs: the admission summary, the transform check."""
    found: defaultdict[str, float] = defaultdict(float)
    for summary in outputs["admission"]:
        found[contract.FILES_ADMITTED_METRIC] += summary.get("admitted", 0)
        found[contract.FILES_QUARANTINED_METRIC] += summary.get("quarantined", 0)
    for check in outputs["transform"]:
        found[contract.ROWS_PUBLISHED_METRIC] += check.get("output_rows", 0) if check.get("valid") else 0
        found[contract.ROWS_REJECTED_METRIC] += check.get("rejected_rows", 0)
    return found


def gather(deployment: Any, report: dict[str, Any], logs: Any) -> dict[tuple[str, ...], float]:
    """One scenario's figures, keyed as `dashboard_layout` keys the lines."""
    sfn, figures = deployment.clients["stepfunctions"], defaultdict[tuple[str, ...], float](float)
    outputs: dict[str, list[dict[str, Any]]] = {name: [] for name in (*contract.STAGES, contract.PIPELINE)}
    for name in outputs:
        for listed in deployment.executions(name):
            execution = sfn.describe_execution(executionArn=listed["executionArn"])
            figures[(name, "ExecutionsStarted")] += 1
            if execution["status"] in _STATUS_METRICS:
                figures[(name, _STATUS_METRICS[execution["status"]])] += 1
            if execution.get("stopDate"):
                ms = (execution["stopDate"] - execution["startDate"]).total_seconds() * 1000
                figures[(name, "ExecutionTime")] = max(figures[(name, "ExecutionTime")], ms)
            if execution["status"] == "SUCCEEDED":
                outputs[name].append(json.loads(execution.get("output") or "{}"))
            for event in deployment.history(listed["executionArn"]) if name == contract.ADMISSION else ():
                if event["type"] == "MapRunStarted":
                    run = sfn.describe_map_run(mapRunArn=event["mapRunStartedEventDetails"]["mapRunArn"])
                    for count, metric in _MAP_COUNTS.items():
                        figures[("map", metric)] += run["executionCounts"][count]
    emitted = _emf_figures(logs)
    for name, value in (emitted or _output_figures(outputs)).items():
        figures[(name,)] += value
    for listed in deployment.executions(contract.TRANSFORM):
        key = ("glue.driver.aggregate.elapsedTime",)
        figures[key] = max(figures[key], _glue_task_ms(deployment.history(listed["executionArn"])))
    figures[("ApproximateNumberOfMessagesVisible",)] = len(report["dead_letters"])
    return dict(figures)


def _glue_task_ms(history: list[dict[str, Any]]) -> float:
    """The longest Glue job task of a stage execution, started to ended, as Step Functions saw it
    (the local stand-in runs the job in-process; moto's job run times are only its bookkeeping)."""
    longest, started = 0.0, None
    for event in history:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        if details.get("resourceType") != "glue":
            continue
        if event["type"] == "TaskStarted":
            started = event["timestamp"]
        elif event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and started is not None:
            longest, started = max(longest, (event["timestamp"] - started).total_seconds() * 1000), None
    return longest


def combine(runs: list[dict[tuple[str, ...], float]]) -> dict[tuple[str, ...], float]:
    """Counts add up across runs; durations and queue depth keep their maximum."""
    total: dict[tuple[str, ...], float] = {}
    for figures in runs:
        for key, value in figures.items():
            total[key] = max(total.get(key, 0), value) if key[-1] in _MAXIMA else total.get(key, 0) + value
    return total


def run_scenarios(assembly_dir: Path, names: list[str]) -> dict[tuple[str, ...], float]:
    import boto3

    from localrun.emulator.assembly import REGION
    from localrun.emulator.deployment import LocalDeployment, local_aws
    from localrun.emulator.glue_standin import start_spark_in_background
    from localrun.runner import run_scenario
    from localrun.scenarios.catalogue import SCENARIOS

    # Up before the first run, not while it waits: on busy cores the first job's JVM start alone
    # can outlast a run's wait.
    start_spark_in_background(log_file=REPO_ROOT / "reports" / "dashboard_picture.log").join()
    runs = []
    for name in names:
        with local_aws():
            deployment = LocalDeployment.bring_up(assembly_dir)
            try:
                report = run_scenario(deployment, SCENARIOS[name])
            finally:
                deployment.stop_running()
            runs.append(gather(deployment, report, boto3.client("logs", region_name=REGION)))
        print(f"  {name}: {', '.join(report['statuses']) or 'no run'}", flush=True)
    return combine(runs)


# -- the picture -------------------------------------------------------------------------------
UNIT = 0.6  # inches per grid unit: CloudWatch's grid is 24 units wide
CAPTION = 0.5  # inches above the grid for the caption
RED, BLUE, GREEN = "#d62728", "#1f77b4", "#2ca02c"
_FAILURE_WORDS = ("fail", "timed", "abort", "Reject", "Quarantin", "visible")


def _alarm_state(watches: tuple[str, ...], figures: dict[tuple[str, ...], float]) -> bool:
    if watches == ("dlq",):
        return figures.get(("ApproximateNumberOfMessagesVisible",), 0) > 0
    return any(figures.get((watches[0], m), 0) for m in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"))


def _widget_axes(fig: Any, w: Widget, rows: int, *, left_units: float) -> Any:
    """A framed, titled cell at the widget's place, and the axes inside it (`left_units` for labels)."""
    import matplotlib.patches as patches

    sx, sy = 1 / 24, 1 / (rows + CAPTION / UNIT)  # one grid unit, in figure fractions

    def rect(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
        return (x * sx, 1 - (CAPTION / UNIT + y + height) * sy, width * sx, height * sy)

    fig.patches.append(
        patches.Rectangle(
            rect(w.x + 0.08, w.y + 0.08, w.width - 0.16, w.height - 0.16)[:2],
            *rect(0, 0, w.width - 0.16, w.height - 0.16)[2:],
            transform=fig.transFigure,
            fill=False,
            edgecolor="#bbb",
        )
    )
    x, y, _, _ = rect(w.x + 0.25, w.y + 0.2, 0, 0)
    fig.text(x, y, w.title, fontsize=9, fontweight="bold", va="top")
    return fig.add_axes(rect(w.x + left_units, w.y + 0.9, w.width - left_units - 0.5, w.height - 1.6))


def _bars(ax: Any, w: Widget, figures: dict[tuple[str, ...], float]) -> None:
    labels = [label for _, label in w.lines]
    values = [figures.get(key, 0) for key, _ in w.lines]
    ax.barh(labels, values, color=[RED if any(x in label for x in _FAILURE_WORDS) else BLUE for label in labels])
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax.set_xlim(0, max([*values, 1]) * 1.35)
    for index, value in enumerate(values):
        ax.text(value, index, f" {value:,.0f}", va="center", fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)


def _alarms(ax: Any, w: Widget, figures: dict[tuple[str, ...], float], watches: dict[str, tuple[str, ...]]) -> None:
    import matplotlib.patches as patches

    share = 1 / len(w.alarms)
    for index, alarm in enumerate(w.alarms):
        firing = _alarm_state(watches[alarm], figures)
        name = "dead-letter queue" if watches[alarm] == ("dlq",) else f"{watches[alarm][0]}: unsuccessful executions"
        ax.add_patch(
            patches.Rectangle((index * share + 0.005, 0.05), share - 0.01, 0.9, color=RED if firing else GREEN)
        )
        ax.text(
            (index + 0.5) * share,
            0.5,
            f"{name}\n{'ALARM' if firing else 'OK'}",
            ha="center",
            va="center",
            color="white",
            fontsize=8,
        )


def draw(
    widgets: list[Widget],
    figures: dict[tuple[str, ...], float],
    watches: dict[str, tuple[str, ...]],
    out: Path,
    *,
    caption: str,
) -> None:
    """The widget grid as a PNG: bars for metric widgets, the text and alarm widgets as they read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(w.y + w.height for w in widgets)
    fig = plt.figure(figsize=(24 * UNIT, rows * UNIT + CAPTION))
    fig.text(0.005, 1 - 0.1 / (rows * UNIT + CAPTION), caption, va="top", fontsize=10, color="#444")
    for w in widgets:
        ax = _widget_axes(fig, w, rows, left_units=2.2 if w.kind == "metric" else 0.25)
        if w.kind == "metric":
            _bars(ax, w, figures)
            continue
        ax.set_axis_off()
        if w.kind == "text":
            wrapped = "\n".join(textwrap.fill(line, width=w.width * 10) for line in w.text.splitlines())
            ax.text(0, 1, wrapped, va="top", ha="left", fontsize=7.5)
        else:
            _alarms(ax, w, figures, watches)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.dashboard_picture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "dashboard.png")
    parser.add_argument(
        "--scenario", action="append", help=f"scenario to run (repeatable; default {DEFAULT_SCENARIOS})"
    )
    args = parser.parse_args(argv)
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)  # see localrun/console.py
    from localrun.emulator.assembly import AssemblyError
    from localrun.scenarios.catalogue import SCENARIOS

    names = args.scenario or list(DEFAULT_SCENARIOS)
    if unknown := [n for n in names if n not in SCENARIOS]:
        print(f"error: --scenario {unknown[0]!r} is not a scenario; one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    try:
        assembly = CloudAssembly.load(args.assembly)
        widgets, watches = dashboard_layout(assembly), alarm_watches(assembly)
    except AssemblyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"▶ local run of {', '.join(names)} for the dashboard picture")
    figures = run_scenarios(args.assembly, names)
    draw(widgets, figures, watches, args.out, caption=f"Rendered from a local run (moto) of: {', '.join(names)}")
    print(f"✓ {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
