"""A state machine's definition (ASL) as a graph, and the graph as a Mermaid flowchart.

Next and Choice edges are solid (Choice edges labelled with their condition), Catch edges dashed
and labelled with the errors they catch, Retry a dashed self-loop labelled with errors and
attempts; Map and Parallel states are subgraphs. ops/graphs.py draws the assembly's machines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


# -- the graph model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    id: str
    label: str
    shape: str  # "task" | "pass" | "wait" | "choice" | "succeed" | "fail" | "start" | "end"
    state: str | None = None  # the state's name, None for start/end markers


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "next" | "choice" | "default" | "catch" | "retry"
    label: str = ""


@dataclass
class Scope:
    """A subgraph: the whole machine, a Map's item processor, or one branch of a Parallel."""

    id: str
    title: str
    items: list[Node | Scope] = field(default_factory=list)
    state: str | None = None  # the Map/Parallel state this scope draws, if any


@dataclass
class Flowchart:
    root: Scope
    edges: list[Edge]
    ids: dict[tuple[str, ...], str]  # state path (names from the top) -> node or subgraph id

    def id_of(self, *path: str) -> str:
        return self.ids[path]


_SHAPES = {
    "task": ('["', '"]'),
    "pass": ('("', '")'),
    "wait": ('{{"', '"}}'),
    "choice": ('{"', '"}'),
    "succeed": ('(["', '"])'),
    "fail": ('(["', '"])'),
    "start": ('(("', '"))'),
    "end": ('((("', '")))'),
}
_CLASSES = {
    "succeed": "fill:#e3f6e5,stroke:#2e7d32",
    "fail": "fill:#fde7e7,stroke:#c62828",
    "start": "fill:#eeeeee,stroke:#666666",
    "end": "fill:#eeeeee,stroke:#666666",
}
_EDGE_STYLES = {"catch": "stroke:#c62828", "retry": "stroke:#ef6c00"}


def _escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label (`<br/>` is added by the caller, after escaping)."""
    return text.replace("&", "&amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


# -- ASL -> graph ------------------------------------------------------------------------------
_OPERATORS = {
    "Equals": "==",
    "LessThan": "<",
    "LessThanEquals": "≤",
    "GreaterThan": ">",
    "GreaterThanEquals": "≥",
    "Matches": "matches",
}
_TYPE_TESTS = {
    "IsPresent": "present",
    "IsNull": "null",
    "IsString": "is a string",
    "IsNumeric": "is a number",
    "IsBoolean": "is a boolean",
    "IsTimestamp": "is a timestamp",
}


def condition_text(rule: Mapping[str, Any]) -> str:
    """A Choice rule, briefly: `$.x == "A" and $.y present`; type guards on a compared path dropped."""
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"])
    if "Not" in rule:
        return f"not ({condition_text(rule['Not'])})"
    for junction in ("And", "Or"):
        if junction in rule:
            parts = _without_guards(rule[junction]) if junction == "And" else rule[junction]
            texts = [condition_text(p) for p in parts]
            joined = [f"({t})" if re.search(r"\s(and|or) ", t) else t for t in texts]
            separator = f" {junction.lower()} " if sum(map(len, joined)) <= 48 else f"\n{junction.lower()} "
            return separator.join(joined)
    variable = rule.get("Variable", "?")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key in _TYPE_TESTS:
            return f"{variable} {_TYPE_TESTS[key]}" if value else f"{variable} not {_TYPE_TESTS[key]}"
        base, is_path = (key[:-4], True) if key.endswith("Path") else (key, False)
        operator = next((_OPERATORS[s] for s in sorted(_OPERATORS, key=len, reverse=True) if base.endswith(s)), base)
        shown = f'"{value}"' if isinstance(value, str) and not is_path else str(value)
        shown = json.dumps(value) if isinstance(value, bool) else shown
        return f"{variable} {operator} {shown}"
    return variable


def _without_guards(parts: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop `IsPresent: true` / type tests on a path that another part of the And compares."""
    compared = {
        p["Variable"] for p in parts if "Variable" in p and not any(k in _TYPE_TESTS for k in p if k != "Variable")
    }

    def guards(part: Mapping[str, Any]) -> bool:
        variable = part.get("Variable")
        tests = [k for k in part if k in _TYPE_TESTS]
        if not variable or not tests or part[tests[0]] is not True:
            return False
        return any(c == variable or c.startswith(f"{variable}.") for c in compared)

    kept = [p for p in parts if not guards(p)]
    return kept or parts


def retry_text(retriers: list[Mapping[str, Any]]) -> str:
    """`retry ×6 (30 s, backoff 2, full jitter)` over the errors it retries, one line each, per retrier."""
    lines = []
    for retrier in retriers:
        attempts = retrier.get("MaxAttempts", 3)
        details = [f"{retrier.get('IntervalSeconds', 1)} s", f"backoff {retrier.get('BackoffRate', 2.0):g}"]
        if "MaxDelaySeconds" in retrier:
            details.append(f"max {retrier['MaxDelaySeconds']} s")
        if retrier.get("JitterStrategy") == "FULL":
            details.append("full jitter")
        lines += [f"retry ×{attempts} ({', '.join(details)})", *retrier["ErrorEquals"]]
    return "\n".join(lines)


def _ordered(states: Mapping[str, Any], start: str) -> list[str]:
    """States in breadth-first order from StartAt (Next, Choices, Default, Catch), then any others."""
    order, queue = [], [start]
    while queue:
        name = queue.pop(0)
        if name in order or name not in states:
            continue
        order.append(name)
        state = states[name]
        queue += [state["Next"]] if "Next" in state else []
        queue += [c["Next"] for c in state.get("Choices", [])]
        queue += [state["Default"]] if "Default" in state else []
        queue += [c["Next"] for c in state.get("Catch", [])]
    return order + [n for n in states if n not in order]


class _Builder:
    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases
        self.edges: list[Edge] = []
        self.ids: dict[tuple[str, ...], str] = {}
        self._used: set[str] = set()

    def new_id(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "_", hint).strip("_") or "state"
        base = base if base.startswith("s_") else f"s_{base}"
        candidate, number = base, 2
        while candidate in self._used:
            candidate, number = f"{base}_{number}", number + 1
        self._used.add(candidate)
        return candidate

    def scope(self, definition: Mapping[str, Any], *, scope_id: str, title: str, path: tuple[str, ...]) -> Scope:
        scope = Scope(id=scope_id, title=title, state=path[-1] if path else None)
        states: Mapping[str, Any] = definition["States"]
        order = _ordered(states, definition["StartAt"])
        for name in order:
            self.ids[(*path, name)] = self.new_id(f"{scope_id}_{name}" if path else name)
        start = Node(self.new_id(f"{scope_id}_start"), "start", "start")
        scope.items.append(start)
        self.edges.append(Edge(start.id, self.ids[(*path, definition["StartAt"])], "next"))
        end: Node | None = None
        for name in order:
            state, node_id = states[name], self.ids[(*path, name)]
            scope.items.append(self.state(name, state, node_id, (*path, name)))
            for target, kind, label in self.transitions(state, node_id, path):
                if target is None:
                    end = end or Node(self.new_id(f"{scope_id}_end"), "end", "end")
                    target = end.id
                self.edges.append(Edge(node_id, target, kind, label))
        if end is not None:
            scope.items.append(end)
        return scope

    def transitions(
        self, state: Mapping[str, Any], node_id: str, path: tuple[str, ...]
    ) -> Iterator[tuple[str | None, str, str]]:
        """(target id or None for the end, kind, label) of every edge leaving a state."""

        def target(name: str) -> str:
            return self.ids[(*path, name)]

        if state.get("Retry"):
            yield node_id, "retry", retry_text(state["Retry"])
        if "Next" in state:
            yield target(state["Next"]), "next", ""
        if state.get("End"):
            yield None, "next", ""
        for rule in state.get("Choices", []):
            yield target(rule["Next"]), "choice", condition_text(rule)
        if "Default" in state:
            yield target(state["Default"]), "default", "otherwise"
        for catcher in state.get("Catch", []):
            yield target(catcher["Next"]), "catch", f"catch {', '.join(catcher['ErrorEquals'])}"

    def state(self, name: str, state: Mapping[str, Any], node_id: str, path: tuple[str, ...]) -> Node | Scope:
        kind = state["Type"]
        if kind == "Map":
            processor = state.get("ItemProcessor") or state["Iterator"]
            config = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {})
            details = [config.get("Mode", "INLINE").lower()]
            if config.get("ExecutionType"):
                details.append(f"{config['ExecutionType'].lower()} children")
            if "ItemReader" in state:
                details.append(f"items from {self.resource(state['ItemReader'])}")
            if "ItemBatcher" in state:
                details.append("batched")
            if "MaxConcurrency" in state:
                details.append(f"max concurrency {state['MaxConcurrency']}")
            return self.scope(processor, scope_id=node_id, title=f"Map: {name} ({', '.join(details)})", path=path)
        if kind == "Parallel":
            scope = Scope(id=node_id, title=f"Parallel: {name}", state=name)
            for number, branch in enumerate(state["Branches"], start=1):
                branch_path = (*path, f"branch {number}")
                scope.items.append(
                    self.scope(branch, scope_id=f"{node_id}_b{number}", title=f"branch {number}", path=branch_path)
                )
            return scope
        lines = [name]
        shape = {"Task": "task", "Pass": "pass", "Wait": "wait", "Choice": "choice"}.get(kind, kind.lower())
        if kind == "Task":
            lines.append(self.resource(state))
        elif kind == "Wait":
            for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath"):
                if key in state:
                    lines.append(f"wait {state[key]}{' s' if key == 'Seconds' else ''}")
        elif kind == "Fail":
            lines.append(f"Error: {state.get('Error') or state.get('ErrorPath', '?')}")
        return Node(node_id, "\n".join(lines), shape, name)

    def resource(self, state: Mapping[str, Any]) -> str:
        resource = str(state.get("Resource", ""))
        shown = self.aliases.get(resource) or resource.split(":::", 1)[-1]
        if resource in self.aliases:
            return f"invoke {shown}"
        for key in ("StateMachineArn", "JobName", "Name", "FunctionName"):
            target = state.get("Parameters", {}).get(key)
            if isinstance(target, str) and target in self.aliases:
                return f"{shown} → {self.aliases[target]}"
        return shown


def build(definition: Mapping[str, Any], *, aliases: Mapping[str, str] | None = None) -> Flowchart:
    """The graph of an ASL definition; `aliases` maps placeholders (`${Id}`) to display names."""
    builder = _Builder(aliases or {})
    root = builder.scope(definition, scope_id="machine", title="", path=())
    return Flowchart(root=root, edges=builder.edges, ids=builder.ids)


def to_mermaid(chart: Flowchart) -> str:
    lines = ["flowchart TD"]

    def label(text: str) -> str:
        return "<br/>".join(_escape(line) for line in text.split("\n"))

    def emit(scope: Scope, indent: str) -> None:
        for item in scope.items:
            if isinstance(item, Scope):
                lines.append(f'{indent}subgraph {item.id}["{label(item.title)}"]')
                lines.append(f"{indent}  direction TB")
                emit(item, indent + "  ")
                lines.append(f"{indent}end")
            else:
                opening, closing = _SHAPES[item.shape]
                lines.append(f"{indent}{item.id}{opening}{label(item.label)}{closing}")

    emit(chart.root, "  ")
    styled: dict[str, list[int]] = {}
    for number, edge in enumerate(chart.edges):
        arrow = "-.->" if edge.kind in ("catch", "retry") else "-->"
        text = f'|"{label(edge.label)}"|' if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{text} {edge.target}")
        if edge.kind in _EDGE_STYLES:
            styled.setdefault(edge.kind, []).append(number)
    for kind, numbers in styled.items():
        lines.append(f"  linkStyle {','.join(map(str, numbers))} {_EDGE_STYLES[kind]}")
    nodes = [n for n in _nodes(chart.root)]
    for shape, style in _CLASSES.items():
        members = [n.id for n in nodes if n.shape == shape]
        if members:
            # class names are prefixed: `end` is a Mermaid keyword
            lines.append(f"  classDef sfn_{shape} {style}")
            lines.append(f"  class {','.join(members)} sfn_{shape}")
    return "\n".join(lines) + "\n"


def _nodes(scope: Scope) -> Iterator[Node]:
    for item in scope.items:
        if isinstance(item, Scope):
            yield from _nodes(item)
        else:
            yield item
