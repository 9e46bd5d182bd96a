"""Pictures of the synthesized state machines: Mermaid flowcharts in Markdown, read from cdk.out.

`python -m localrun.graphs --assembly cdk.out.dev --out docs/state-machines` (what `make graphs`
runs) writes one Markdown file per `AWS::StepFunctions::StateMachine` of the cloud assembly plus an
index, and refreshes every `<!-- state-machine: NAME -->` ... `<!-- /state-machine -->` region of
the README with that machine's diagram. `--check` writes nothing and exits 1 when a file is stale.

Nothing is drawn by hand: each picture is the `DefinitionString` of the template, its tokens shown
as placeholders (`${LogicalId}`, `${LogicalId.Arn}`, `${AWS::Partition}`). Next and Choice edges
are solid (Choice edges labelled with their condition), Catch edges dashed and labelled with the
errors they catch, Retry a dashed self-loop labelled with errors and attempts; Map and Parallel
states are subgraphs. The output depends only on the assembly, so it can be compared in a test.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrun.emulator.assembly import AssemblyError, CloudAssembly, StackTemplate

ROOT = Path(__file__).resolve().parent.parent
STATE_MACHINE = "AWS::StepFunctions::StateMachine"
_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")
README_REGION = re.compile(
    r"(<!-- state-machine: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /state-machine -->)", re.DOTALL
)


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


# -- the cloud assembly -> documents -----------------------------------------------------------
@dataclass(frozen=True)
class StateMachineSource:
    name: str  # kebab-case, from the stack output `<Name>StateMachineArn` or the logical id
    stack: str
    logical_id: str
    definition: dict[str, Any]


def short_id(logical_id: str) -> str:
    """A logical id without CDK's hash suffix: `TransformJob4CDA9AC1` -> `TransformJob`."""
    return _HASH_SUFFIX.sub("", logical_id) or logical_id


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def placeholder(assembly: CloudAssembly, stack: str, token: Any) -> str:
    """A CloudFormation token as readable, JSON-safe text; imports followed to their exporter."""
    if isinstance(token, str):
        return token
    if not isinstance(token, dict) or len(token) != 1:
        raise AssemblyError(f"stack {stack}: cannot show {token!r} in a definition")
    ((fn, arg),) = token.items()
    if fn == "Ref":
        return f"${{{arg}}}"
    if fn == "Fn::GetAtt":
        logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return f"${{{logical}.{attribute}}}"
    if fn == "Fn::Join":
        separator, parts = arg
        return str(separator).join(placeholder(assembly, stack, p) for p in parts)
    if fn == "Fn::ImportValue":
        for producer in assembly.stacks.values():
            for output in producer.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == arg:
                    return placeholder(assembly, producer.name, output["Value"])
        raise AssemblyError(f"stack {stack} imports {arg!r}, which no stack of the assembly exports")
    return f"${{{fn}}}"


def state_machines(assembly: CloudAssembly) -> list[StateMachineSource]:
    """Every state machine of the assembly, its definition with tokens as placeholders, by name."""
    found: list[StateMachineSource] = []
    for stack in sorted(assembly.stacks.values(), key=lambda s: s.name):
        output_names = _output_names(stack)
        for logical_id, resource in sorted(stack.resources(STATE_MACHINE).items()):
            properties = resource["Properties"]
            if "DefinitionString" not in properties:
                raise AssemblyError(f"stack {stack.name}: {logical_id} has no DefinitionString")
            text = placeholder(assembly, stack.name, properties["DefinitionString"])
            name = _kebab(output_names.get(logical_id) or short_id(logical_id).removesuffix("StateMachine"))
            found.append(StateMachineSource(name, stack.name, logical_id, json.loads(text)))
    names = [s.name for s in found]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise AssemblyError(f"state machines with the same picture name: {', '.join(duplicated)}")
    return found


def _output_names(stack: StackTemplate) -> dict[str, str]:
    """Logical id -> `Name` for outputs `<Name>StateMachineArn` whose value is a Ref to the machine."""
    names = {}
    for output_id, output in stack.template.get("Outputs", {}).items():
        ref = output.get("Value", {}).get("Ref") if isinstance(output.get("Value"), dict) else None
        if ref and output_id.endswith("StateMachineArn") and "Export" not in output:
            names[ref] = output_id.removesuffix("StateMachineArn")
    return names


def aliases_for(assembly: CloudAssembly, machines: list[StateMachineSource]) -> dict[str, str]:
    """Placeholder -> display name: resources by logical id without hash, state machines by picture name."""
    aliases = {}
    for stack in assembly.stacks.values():
        for logical_id in stack.template.get("Resources", {}):
            aliases[f"${{{logical_id}}}"] = aliases[f"${{{logical_id}.Arn}}"] = short_id(logical_id)
    for machine in machines:
        aliases[f"${{{machine.logical_id}}}"] = aliases[f"${{{machine.logical_id}.Arn}}"] = machine.name
    return aliases


def _children(machine: StateMachineSource, machines: list[StateMachineSource]) -> list[StateMachineSource]:
    text = json.dumps(machine.definition)
    return [m for m in machines if m is not machine and f"${{{m.logical_id}}}" in text]


def mermaid_block(machine: StateMachineSource, aliases: Mapping[str, str]) -> str:
    return f"```mermaid\n{to_mermaid(build(machine.definition, aliases=aliases))}```\n"


def render_markdown(machine: StateMachineSource, machines: list[StateMachineSource], aliases: Mapping[str, str]) -> str:
    definition = machine.definition
    lines = [
        f"# State machine `{machine.name}`",
        "",
        "<!-- Generated by `make graphs` from the synthesized dev stage; do not edit. -->",
        "",
        f"{definition.get('Comment', '')}".strip(),
        "",
        f"Stack `{machine.stack}`, resource `{machine.logical_id}`; "
        f"timeout {definition.get('TimeoutSeconds', 'none')} s; {len(definition['States'])} top-level states.",
        "",
        mermaid_block(machine, aliases).rstrip("\n"),
        "",
        "Solid edges: Next, and Choice rules with their condition. Dashed red: Catch (errors caught). "
        "Dashed orange self-loop: Retry (errors, attempts, first interval, backoff).",
    ]
    children = _children(machine, machines)
    if children:
        lines += ["", "Runs: " + ", ".join(f"[`{c.name}`]({c.name}.md)" for c in children) + "."]
    return "\n".join(lines) + "\n"


def render_index(machines: list[StateMachineSource]) -> str:
    lines = [
        "# State machines",
        "",
        "<!-- Generated by `make graphs` from the synthesized dev stage; do not edit. -->",
        "",
        "| state machine | stack | states | Retry | Catch | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for machine in machines:
        states = list(_all_states(machine.definition))
        retries = sum(len(s.get("Retry", [])) for s in states)
        catches = sum(len(s.get("Catch", [])) for s in states)
        lines.append(
            f"| [`{machine.name}`]({machine.name}.md) | `{machine.stack}` | {len(states)} | {retries} | {catches} | "
            f"{machine.definition.get('Comment', '')} |"
        )
    return "\n".join(lines) + "\n"


def _all_states(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for state in definition["States"].values():
        yield state
        for nested in ([state.get("ItemProcessor") or state.get("Iterator")] if state["Type"] == "Map" else []) + list(
            state.get("Branches", [])
        ):
            if nested:
                yield from _all_states(nested)


def render_all(assembly: CloudAssembly) -> dict[str, str]:
    """File name (relative to the output directory) -> Markdown, for every state machine and the index."""
    machines = state_machines(assembly)
    aliases = aliases_for(assembly, machines)
    files = {f"{m.name}.md": render_markdown(m, machines, aliases) for m in machines}
    files["README.md"] = render_index(machines)
    return files


def refresh_regions(text: str, assembly: CloudAssembly) -> str:
    """`text` with each `<!-- state-machine: NAME -->` region holding that machine's current diagram."""
    machines = {m.name: m for m in state_machines(assembly)}
    aliases = aliases_for(assembly, list(machines.values()))

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in machines:
            raise AssemblyError(f"README region names state machine {name!r}; the assembly has {sorted(machines)}")
        return f"{match[1]}{mermaid_block(machines[name], aliases)}{match[4]}"

    return README_REGION.sub(replace, text)


def stale_files(assembly: CloudAssembly, out_dir: Path, readme: Path | None) -> dict[Path, str]:
    """Path -> what it should hold, for every picture (and README region) that differs from the assembly."""
    wanted = {out_dir / name: text for name, text in render_all(assembly).items()}
    if readme is not None and readme.is_file():
        wanted[readme] = refresh_regions(readme.read_text(), assembly)
    return {path: text for path, text in wanted.items() if not path.is_file() or path.read_text() != text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun.graphs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.dev", help="cloud assembly (dev stage)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "state-machines")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="file with state-machine regions")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a picture is stale")
    args = parser.parse_args(argv)
    try:
        assembly = CloudAssembly.load(args.assembly)
        stale = stale_files(assembly, args.out, args.readme)
    except AssemblyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    wanted = render_all(assembly)
    obsolete = sorted(p for p in args.out.glob("*.md") if p.name not in wanted)
    if args.check:
        for path in sorted(stale) + obsolete:
            print(f"stale: {path}")
        return 1 if stale or obsolete else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path, text in sorted(stale.items()):
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    for path in obsolete:
        path.unlink()
        print(f"removed {path}")
    if not stale and not obsolete:
        print("pictures up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
