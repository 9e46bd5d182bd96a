"""Read a synthesized cloud assembly (cdk.out) and resolve its CloudFormation tokens locally.

Physical names follow CloudFormation's pattern (stack name, logical id) but without the random
suffix, so a run is reproducible; account, region and partition are those of the moto account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.common.paths import REPO_ROOT

ACCOUNT_ID = "123456789012"  # moto's default account
# What an assembly is synthesized from: a newer one makes it stale. The Makefile's APP_SOURCES (what
# `make demo` resynthesizes for) names the same files (tests/localrun/test_assembly_sources.py).
APP_SOURCES = (
    "app.py",
    "cdk.json",
    "stacks/**/*.py",
    "lambda/*/*.py",
    "glue/*.py",
    "dags/*.py",
    "dags/*.txt",
    "dags/.airflowignore",
)
RESYNTHESIZE = "synthesize it again: `make demo` does (cdk synth -c stage=local --output cdk.out.local)"
REGION = "us-east-1"
PARTITION = "aws"


class AssemblyError(RuntimeError):
    """The cloud assembly is missing, unreadable, or lacks what the local run needs."""


@dataclass
class StackTemplate:
    name: str
    template: dict[str, Any]

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.template.get("Resources", {}).items() if r.get("Type") == type_}

    def output(self, name: str) -> Any:
        """The unresolved value of the stack output `name` (what consumers read, never logical ids)."""
        try:
            return self.template["Outputs"][name]["Value"]
        except KeyError:
            raise AssemblyError(f"stack {self.name}: no output {name!r}: {RESYNTHESIZE}") from None

    def one(self, type_: str) -> tuple[str, dict[str, Any]]:
        """The stack's one resource of `type_` (its topic, its crawler, its job)."""
        found = list(self.resources(type_).items())
        if len(found) != 1:
            raise AssemblyError(f"stack {self.name}: expected one {type_}, found {len(found)}")
        return found[0]


@dataclass
class CloudAssembly:
    directory: Path
    stacks: dict[str, StackTemplate] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> CloudAssembly:
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise AssemblyError(f"no cloud assembly at {directory}: {RESYNTHESIZE}")
        assembly = cls(directory=directory)
        try:
            manifest = json.loads(manifest_path.read_text())
            for name, artifact in manifest.get("artifacts", {}).items():
                if artifact.get("type") != "aws:cloudformation:stack":
                    continue
                template_file = directory / artifact["properties"]["templateFile"]
                assembly.stacks[name] = StackTemplate(name, json.loads(template_file.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            detail = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
            raise AssemblyError(f"cloud assembly {directory} is unreadable ({detail}): {RESYNTHESIZE}") from error
        if not assembly.stacks:
            raise AssemblyError(f"cloud assembly {directory} holds no stacks")
        return assembly

    def stack_ending(self, suffix: str) -> StackTemplate:
        found = [s for name, s in self.stacks.items() if name.endswith(suffix)]
        if len(found) != 1:
            raise AssemblyError(f"expected one stack named *{suffix} in {self.directory}, found {len(found)}")
        return found[0]


def newer_sources(directory: Path, root: Path = REPO_ROOT) -> list[Path]:
    """App sources changed since the assembly in `directory` was synthesized (its manifest.json), newest first."""
    synthesized = (directory / "manifest.json").stat().st_mtime
    newer = [path for pattern in APP_SOURCES for path in root.glob(pattern) if path.stat().st_mtime > synthesized]
    return sorted(newer, key=lambda path: path.stat().st_mtime, reverse=True)


def physical_name(stack: str, logical_id: str, *, max_length: int = 63) -> str:
    """Deterministic stand-in for CloudFormation's generated names (lower-case, S3-safe)."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical_id}".lower())
    return name[:max_length].rstrip("-")


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Join / Fn::ImportValue ... against local physical ids."""

    def __init__(self, assembly: CloudAssembly) -> None:
        self.assembly = assembly
        self.physical: dict[tuple[str, str], dict[str, str]] = {}  # (stack, logical) -> {"Ref", "Arn", ...}
        self.exports: dict[str, tuple[str, Any]] = {}
        for stack in assembly.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export:
                    self.exports[export] = (stack.name, output["Value"])

    def register(self, stack: str, logical_id: str, **attributes: str) -> None:
        self.physical[(stack, logical_id)] = attributes

    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(stack, v) for k, v in value.items()}
        ((fn, arg),) = value.items()
        if fn == "Ref":
            pseudo = {
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": REGION,
                "AWS::Partition": PARTITION,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": stack,
            }
            if arg in pseudo:
                return pseudo[arg]
            return self._attribute(stack, arg, "Ref")
        if fn == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._attribute(stack, logical, attribute)
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self.resolve(stack, p)) for p in parts)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(stack, items)[int(index)]
        if fn == "Fn::Split":
            separator, text = arg
            return str(self.resolve(stack, text)).split(separator)
        if fn == "Fn::Sub":  # ${Name} is a Ref, ${Logical.Attribute} a GetAtt (CDK's AWS managed policy ARNs)
            text, variables = (arg, {}) if isinstance(arg, str) else arg

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return str(self.resolve(stack, variables[name]))
                if "." in name:
                    return self._attribute(stack, *name.split(".", 1))
                return str(self.resolve(stack, {"Ref": name}))

            return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
        if fn == "Fn::ImportValue":
            name = self.resolve(stack, arg)
            if name not in self.exports:
                raise AssemblyError(f"stack {stack} imports {name!r}, which no stack of the assembly exports")
            producer, exported = self.exports[name]
            return self.resolve(producer, exported)
        return {fn: self.resolve(stack, arg)}

    def _attribute(self, stack: str, logical_id: str, attribute: str) -> str:
        try:
            return self.physical[(stack, logical_id)][attribute]
        except KeyError:
            raise AssemblyError(
                f"stack {stack}: {logical_id}.{attribute} is used by the pipeline but has no local stand-in"
            ) from None
