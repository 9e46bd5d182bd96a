"""Pictures of the synthesized state machines: Mermaid flowcharts in Markdown, read from cdk.out.

`python -m ops.graphs --assembly cdk.out.dev --out docs/state-machines` (what `make graphs`
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrun.emulator.assembly import AssemblyError, CloudAssembly, StackTemplate
from ops.asl_graph import build, to_mermaid
from stacks.common.paths import REPO_ROOT

STATE_MACHINE = "AWS::StepFunctions::StateMachine"
_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")
README_REGION = re.compile(
    r"(<!-- state-machine: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /state-machine -->)", re.DOTALL
)


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
    parser = argparse.ArgumentParser(prog="python -m ops.graphs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.dev", help="cloud assembly (dev stage)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "state-machines")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", help="file with state-machine regions")
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
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    for path in obsolete:
        path.unlink()
        print(f"removed {path}")
    if not stale and not obsolete:
        print("pictures up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
