"""Every execution name the state machines generate, checked against AWS's rules.

StartExecution takes names of 1-80 characters; CloudWatch logging (our machines log at ALL)
needs them inside [0-9A-Za-z_-]. moto accepts longer names, so a child name built from a long
parent name passes every local run and fails on AWS: evaluate each startExecution's Name over
the longest parent names AWS can give, from the synthesized definitions of every stage.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import all_states, definition_of, evaluate, resolve_parameters
from tests.rehearsal.assets import templates_of

AWS_EXECUTION_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")
# What parents can be called: EventBridge's generated names (<event id>_<uuid>, 73 characters),
# the longest name allowed, names with every character the logs accept, and the shortest.
PARENT_NAMES = (
    f"{uuid.uuid4()}_{uuid.uuid4()}",
    "x" * 80,
    (string.ascii_letters + string.digits + "-_" * 9)[:80],
    "1",
)


def _child_names(outdir: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(stack, state name, the state's Parameters, its machine's ASL) of every state starting a child."""
    found = []
    for stack, template in templates_of(outdir).items():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::StepFunctions::StateMachine":
                continue
            asl = definition_of(resource)
            for name, state in all_states(asl).items():
                if ":states:::states:startExecution" in state.get("Resource", ""):
                    found.append((stack, name, state["Parameters"], asl))
    return found


ROUNDS = (1, 2, 20)  # a pipeline's rounds, up to the largest admission.max_rounds allowed
# $$.Execution.RedriveCount: never redriven, redriven once, and a count far past any real one.
REDRIVES = (0, 1, 99_999)


def _name_for(parameters: dict[str, Any], asl: dict[str, Any], parent: str, round_: int = 1, redrive: int = 0) -> str:
    """The child's name as Step Functions computes it: from the context, and from what the machine
    put in its state data on the way (the round's run, made by the Pass state that writes $.run)."""
    context = {
        "Execution": {"Name": parent, "Id": f"arn:aws:states:::execution:pipeline:{parent}", "RedriveCount": redrive}
    }
    data: dict[str, Any] = {"round": {"number": round_}}
    for state in all_states(asl).values():
        if state.get("Type") == "Pass" and state.get("ResultPath") == "$.run":
            data["run"] = resolve_parameters(state["Parameters"], data, context)
    if "Name.$" in parameters:
        return str(evaluate(parameters["Name.$"], data, context))
    assert "Name" in parameters, "a child execution without a name: moto and retries need one"
    return str(parameters["Name"])


def test_child_execution_names_fit_aws_rules_for_any_parent_name(assembly: tuple[str, Path]) -> None:
    stage, outdir = assembly
    starts = _child_names(outdir)
    assert starts, f"{stage}: no state starts a child execution"
    for stack, state, parameters, asl in starts:
        names = {(parent, r): _name_for(parameters, asl, parent, r) for parent in PARENT_NAMES for r in ROUNDS}
        for (parent, round_), child in names.items():
            assert AWS_EXECUTION_NAME.fullmatch(child), (
                f"{stage}: {stack} state {state!r} names the child of {parent!r} ({len(parent)} characters), "
                f"round {round_}, {child!r} ({len(child)} characters): AWS needs 1-80 characters of [0-9A-Za-z_-]"
            )
            assert _name_for(parameters, asl, parent, round_) == child, f"{state}: the child name is not deterministic"
        for round_ in ROUNDS:  # different parents never share a child
            per_parent = {names[(parent, round_)] for parent in PARENT_NAMES}
            assert len(per_parent) == len(PARENT_NAMES), f"{state}: different parents, same child name"
        if "$.run" in json.dumps(parameters):  # started in every round: each round its own child
            for parent in PARENT_NAMES:
                per_round = {names[(parent, round_)] for round_ in ROUNDS}
                assert len(per_round) == len(ROUNDS), f"{state}: different rounds, same child name"
        if "RedriveCount" in json.dumps(parameters):  # re-entered by a redrive: each attempt its own child
            for parent in PARENT_NAMES:
                attempts = [_name_for(parameters, asl, parent, max(ROUNDS), r) for r in REDRIVES]
                for child in attempts:
                    assert AWS_EXECUTION_NAME.fullmatch(child), f"{state}: {child!r} ({len(child)} characters)"
                assert len(set(attempts)) == len(REDRIVES), f"{state}: different redrives, same child name"
                assert attempts == [_name_for(parameters, asl, parent, max(ROUNDS), r) for r in REDRIVES]


def test_every_stage_a_redrive_reenters_starts_a_new_child(assembly: tuple[str, Path]) -> None:
    stage, outdir = assembly
    stage_tasks = [
        (stack, state, parameters)
        for stack, state, parameters, _asl in _child_names(outdir)
        if state.startswith("Run ") and state.endswith(" stage")  # stacks/pipeline_workflow.py STAGE_STATE
    ]
    assert stage_tasks, f"{stage}: no stage task"
    for stack, state, parameters in stage_tasks:
        assert "$$.Execution.RedriveCount" in parameters.get("Name.$", ""), (
            f"{stage}: {stack} {state!r} names its child without the redrive count: a redrive would find the "
            "failed child under the same name and fail again"
        )


def test_stage_names_of_each_pipeline_are_distinct(assembly: tuple[str, Path]) -> None:
    stage, outdir = assembly
    by_stack: dict[str, set[str]] = {}
    for stack, _state, parameters, asl in _child_names(outdir):
        child = _name_for(parameters, asl, PARENT_NAMES[0])
        assert child not in by_stack.setdefault(stack, set()), f"{stage}: two stages share the child name {child}"
        by_stack[stack].add(child)
