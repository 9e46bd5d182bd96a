"""The state machine pictures: drawn from the synthesized dev stage, every Retry and Catch visible, kept fresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localrun.emulator.assembly import CloudAssembly
from ops import asl_graph, graphs
from tests.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "state-machines"


@pytest.fixture(scope="module")
def assembly(dev: Synthesized) -> CloudAssembly:
    return CloudAssembly.load(dev.outdir)


@pytest.fixture(scope="module")
def machines(assembly: CloudAssembly) -> list[graphs.StateMachineSource]:
    return graphs.state_machines(assembly)


def test_committed_pictures_match_the_synthesized_state_machines(assembly: CloudAssembly) -> None:
    stale = graphs.stale_files(assembly, DOCS, ROOT / "README.md")
    obsolete = sorted(p.name for p in DOCS.glob("*.md") if p.name not in graphs.render_all(assembly))
    assert not stale and not obsolete, (
        f"state machine pictures are stale ({', '.join(str(p.relative_to(ROOT)) for p in sorted(stale))}"
        f"{'; obsolete: ' + ', '.join(obsolete) if obsolete else ''}): run `make graphs` and commit docs/ and README.md"
    )


def test_readme_shows_the_pipeline_near_the_top() -> None:
    text = (ROOT / "README.md").read_text()
    regions = {m["name"]: m.start() for m in graphs.README_REGION.finditer(text)}
    assert "pipeline" in regions, "README.md has no <!-- state-machine: pipeline --> region"
    assert text[: regions["pipeline"]].count("\n## ") <= 1, "the pipeline's picture belongs near the top of README.md"


def test_one_picture_per_state_machine_of_the_templates(dev: Synthesized, machines: list[Any]) -> None:
    in_templates = sum(len(t.find_resources("AWS::StepFunctions::StateMachine")) for t in dev.templates.values())
    assert len(machines) == in_templates
    assert {m.name for m in machines} >= {"pipeline", "crawl-stage", "transform-stage"}


def _states(definition: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every state with its path, the states inside Map (ItemProcessor, Iterator) and Parallel included."""
    for name, state in definition["States"].items():
        yield (*path, name), state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor, (*path, name))
        for number, branch in enumerate(state.get("Branches", []), start=1):
            yield from _states(branch, (*path, name, f"branch {number}"))


def test_every_retry_catch_choice_and_next_is_an_edge(machines: list[graphs.StateMachineSource]) -> None:
    for machine in machines:
        chart = asl_graph.build(machine.definition)
        edges = {(e.source, e.target, e.kind): e.label for e in chart.edges}
        for path, state in _states(machine.definition):
            node = chart.id_of(*path)
            for retrier in state.get("Retry", []):
                label = edges[(node, node, "retry")]  # a self-loop
                assert f"×{retrier['MaxAttempts']}" in label
                assert all(error in label for error in retrier["ErrorEquals"])
            for catcher in state.get("Catch", []):
                label = edges[(node, chart.id_of(catcher["Next"]), "catch")]
                assert all(error in label for error in catcher["ErrorEquals"])
            if "Next" in state:
                assert (node, chart.id_of(state["Next"]), "next") in edges
            for rule in state.get("Choices", []):
                assert edges[(node, chart.id_of(rule["Next"]), "choice")], f"{path}: choice edge without condition"
            if "Default" in state:
                assert edges[(node, chart.id_of(state["Default"]), "default")] == "otherwise"
        drawn = sum(1 for e in chart.edges if e.kind in ("retry", "catch"))
        states = [s for _, s in _states(machine.definition)]
        declared = sum(1 for s in states if s.get("Retry")) + sum(len(s.get("Catch", [])) for s in states)
        assert drawn == declared, f"{machine.name}: {drawn} Retry/Catch edges for {declared} declared"


def test_retry_and_catch_edges_are_dashed_and_coloured(machines: list[graphs.StateMachineSource]) -> None:
    pipeline = next(m for m in machines if m.name == "pipeline")
    chart = asl_graph.build(pipeline.definition)
    lines = asl_graph.to_mermaid(chart).splitlines()
    edge_lines = [line.strip() for line in lines if " --> " in line or "-.->" in line or "-->|" in line]
    assert len(edge_lines) == len(chart.edges)
    for edge, line in zip(chart.edges, edge_lines, strict=True):
        assert line.startswith(f"{edge.source} ") and line.endswith(f" {edge.target}")
        assert ("-.->" in line) == (edge.kind in ("retry", "catch"))
    catch_numbers = [str(i) for i, e in enumerate(chart.edges) if e.kind == "catch"]
    assert f"  linkStyle {','.join(catch_numbers)} stroke:#c62828" in lines


def test_stage_tasks_name_the_state_machine_they_run(machines: list[graphs.StateMachineSource]) -> None:
    assembly_aliases = {f"${{{m.logical_id}}}": m.name for m in machines}
    pipeline = next(m for m in machines if m.name == "pipeline")
    chart = asl_graph.build(pipeline.definition, aliases=assembly_aliases)
    labels = {n.state: n.label for n in asl_graph._nodes(chart.root)}
    assert labels["Run crawl stage"].endswith("startExecution.sync:2 → crawl-stage")
    assert labels["Run transform stage"].endswith("startExecution.sync:2 → transform-stage")


def test_tokens_become_placeholders_and_nothing_stage_specific_leaks(
    machines: list[graphs.StateMachineSource],
) -> None:
    import json

    for machine in machines:
        text = json.dumps(machine.definition)
        assert "Fn::" not in text and '{"Ref"' not in text
        assert "${AWS::Partition}" in text
        assert "GluePipeline-" not in text, "imports are shown as the exporter's resource, not a stage's export name"


DISTRIBUTED = {
    "StartAt": "Fan out",
    "States": {
        "Fan out": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
            ],
            "Next": "Admit files",
        },
        "Admit files": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}},
            "ItemBatcher": {"MaxItemsPerBatch": 10},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Check file",
                "States": {
                    "Check file": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 2}],
                        "End": True,
                    }
                },
            },
            "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Too many bad files"}],
            "End": True,
        },
        "Too many bad files": {"Type": "Fail", "Error": "AdmissionFailed"},
    },
}


def test_map_and_parallel_are_subgraphs_with_their_own_edges() -> None:
    chart = asl_graph.build(DISTRIBUTED)
    scopes = {item.state: item for item in chart.root.items if isinstance(item, asl_graph.Scope)}
    assert set(scopes) == {"Fan out", "Admit files"}
    assert "distributed" in scopes["Admit files"].title and "express children" in scopes["Admit files"].title
    assert [b.title for b in scopes["Fan out"].items if isinstance(b, asl_graph.Scope)] == ["branch 1", "branch 2"]
    edges = {(e.source, e.target, e.kind) for e in chart.edges}
    check = chart.id_of("Admit files", "Check file")
    assert (check, check, "retry") in edges  # Retry inside the item processor
    assert (chart.id_of("Fan out"), chart.id_of("Admit files"), "next") in edges  # subgraph to subgraph
    assert (chart.id_of("Admit files"), chart.id_of("Too many bad files"), "catch") in edges
    mermaid = asl_graph.to_mermaid(chart)
    opened = sum(1 for line in mermaid.splitlines() if line.strip().startswith("subgraph "))
    closed = sum(1 for line in mermaid.splitlines() if line.strip() == "end")
    assert opened == closed == 4  # Parallel, its two branches, Map


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ({"Variable": "$.n", "NumericGreaterThanEquals": 60}, "$.n ≥ 60"),
        ({"Variable": "$.n", "NumericLessThanPath": "$.max"}, "$.n < $.max"),
        ({"Variable": "$.ok", "BooleanEquals": True}, "$.ok == true"),
        (
            {
                "And": [
                    {"Variable": "$.a", "IsPresent": True},
                    {"Variable": "$.a.b", "StringEquals": "X"},
                    {"Variable": "$.c", "IsPresent": True},
                ]
            },
            '$.a.b == "X" and $.c present',
        ),
        ({"Not": {"Variable": "$.a", "IsNull": True}}, "not ($.a null)"),
    ],
)
def test_choice_conditions_are_brief(rule: dict[str, Any], text: str) -> None:
    assert asl_graph.condition_text(rule) == text


def test_check_mode_reports_stale_pictures_and_writing_fixes_them(assembly: CloudAssembly, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- state-machine: pipeline -->\nSTALE-PICTURE\n<!-- /state-machine -->\n")
    args = ["--assembly", str(assembly.directory), "--out", str(tmp_path / "docs"), "--readme", str(readme)]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "gone.md").write_text("a state machine that no longer exists\n")
    assert graphs.main([*args, "--check"]) == 1
    assert graphs.main(args) == 0
    assert graphs.main([*args, "--check"]) == 0
    assert not (tmp_path / "docs" / "gone.md").exists()
    assert "```mermaid\nflowchart TD\n" in readme.read_text() and "STALE-PICTURE" not in readme.read_text()
    assert graphs.render_all(assembly) == graphs.render_all(assembly)  # deterministic
