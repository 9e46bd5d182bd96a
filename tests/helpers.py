"""Reading synthesized templates: CloudFormation values as text, state machines as ASL graphs.

- `render` turns a CloudFormation value into text, intrinsic functions becoming placeholders
  (`${Ref:Id}`, `${GetAtt:Id.Attr}`, `${ImportValue:name}`), so ARNs and policies can be compared.
- `state_machine_definition` parses a state machine's `DefinitionString` into its ASL dict.
- `successors`, `reachable` and `choose` walk the ASL graph; `simulate` runs a definition on
  given task results: enough of the ASL semantics (paths, Parameters, ResultSelector, ResultPath,
  Catch, Choice rules, the intrinsics our machines use) to test behaviour without AWS. Anything it
  does not model raises NotImplementedError, so a test can never pass by skipping a construct.
  Retry is not simulated: a task error reaching `simulate` is the error after retries ran out.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk.assertions import Template

STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"


# --- CloudFormation values ------------------------------------------------------------------


def render(value: Any) -> str:
    """A CloudFormation value as text; intrinsic functions become `${...}` placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        function, args = next(iter(value.items()))
        if function == "Ref":
            return f"${{Ref:{args}}}"
        if function == "Fn::GetAtt":
            logical_id, attribute = args.split(".", 1) if isinstance(args, str) else args
            return f"${{GetAtt:{logical_id}.{render(attribute)}}}"
        if function == "Fn::ImportValue":
            return f"${{ImportValue:{render(args)}}}"
        if function == "Fn::Join":
            separator, parts = args
            if not isinstance(parts, list):  # a list-valued token (Fn::Split, ...)
                return f"${{Join:{separator},{render(parts)}}}"
            return separator.join(render(part) for part in parts)
        if function == "Fn::Sub":
            text, variables = (args, {}) if isinstance(args, str) else args

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return render(variables[name])
                return f"${{GetAtt:{name}}}" if "." in name else f"${{Ref:{name}}}"

            return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
        short = function.removeprefix("Fn::")
        rendered = ",".join(render(arg) for arg in args) if isinstance(args, list) else render(args)
        return f"${{{short}:{rendered}}}"
    raise ValueError(f"not a CloudFormation value: {value!r}")


def refs_in(value: Any) -> set[str]:
    """Logical IDs referenced (Ref, Fn::GetAtt) anywhere inside a CloudFormation value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner.split(".", 1)[0] if isinstance(inner, str) else inner[0])
            else:
                found |= refs_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs_in(inner)
    return found


def exported_value(templates: Iterable[Template], import_value: Any) -> Any:
    """The value behind `{"Fn::ImportValue": name}`: the output of the stack that exports `name`."""
    assert isinstance(import_value, dict) and set(import_value) == {"Fn::ImportValue"}, import_value
    name = import_value["Fn::ImportValue"]
    for template in templates:
        for output in template.to_json().get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == name:
                return output["Value"]
    raise AssertionError(f"no stack exports {name!r}")


def as_list(value: Any) -> list[Any]:
    """IAM's `str | list[str]` fields (Action, Resource, ...) as a list."""
    return value if isinstance(value, list) else [value]


def one_resource(template: Template, type_: str, logical_id_prefix: str = "") -> tuple[str, dict[str, Any]]:
    """The single resource of a type whose logical ID starts with the prefix: (logical ID, resource)."""
    found = {lid: r for lid, r in template.find_resources(type_).items() if lid.startswith(logical_id_prefix)}
    assert len(found) == 1, f"expected one {type_} starting with {logical_id_prefix!r}, found {sorted(found)}"
    [(logical_id, resource)] = found.items()
    return logical_id, dict(resource)


# --- State machine definitions ----------------------------------------------------------------


def state_machine_logical_id(template: Template, logical_id_prefix: str) -> str:
    return one_resource(template, STATE_MACHINE_TYPE, logical_id_prefix)[0]


def state_machine_definition(template: Template, logical_id_prefix: str) -> dict[str, Any]:
    """The ASL of the state machine whose logical ID starts with the prefix.

    `DefinitionString` is a string or an Fn::Join of strings and tokens; each token becomes a
    placeholder string (`${Ref:LogicalId}`, `${GetAtt:LogicalId.Attr}`, `${ImportValue:name}`).
    Tokens sit inside JSON strings in CDK's rendering, so the placeholders must be JSON-safe.
    """
    _, machine = one_resource(template, STATE_MACHINE_TYPE, logical_id_prefix)
    return definition_of(machine)


def definition_of(machine: Mapping[str, Any]) -> dict[str, Any]:
    """The ASL of a state machine resource (see `state_machine_definition` for the placeholders)."""
    definition = machine["Properties"]["DefinitionString"]
    if isinstance(definition, str):
        return json.loads(definition)
    if not (isinstance(definition, dict) and set(definition) == {"Fn::Join"}):
        raise NotImplementedError(f"DefinitionString is neither a string nor an Fn::Join: {definition!r}")
    separator, parts = definition["Fn::Join"]
    texts = []
    for part in parts:
        text = render(part)
        if not isinstance(part, str) and ('"' in text or "\\" in text):
            raise NotImplementedError(f"token {part!r} does not render JSON-safe: {text!r}")
        texts.append(text)
    return json.loads(separator.join(texts))


def all_states(asl: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of a definition by name, those inside Map and Parallel states included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in asl["States"].items():
        found[name] = state
        for inner in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                found.update(all_states(inner))
    return found


def successors(state: Mapping[str, Any]) -> list[str]:
    """States a state can go to next: Next, Choices[].Next, Default, Catch[].Next."""
    names = [state["Next"]] if "Next" in state else []
    names += [choice["Next"] for choice in state.get("Choices", [])]
    names += [state["Default"]] if "Default" in state else []
    names += [catcher["Next"] for catcher in state.get("Catch", [])]
    return names


def reachable(asl: Mapping[str, Any], start: str) -> set[str]:
    """Every state reachable from `start` (included) by any transition."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += successors(asl["States"][name])
    return seen


def states_of(asl: Mapping[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in asl["States"].items() if predicate(state)}


def task_resource_endswith(suffix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda state: state["Type"] == "Task" and str(state.get("Resource", "")).endswith(suffix)


# --- Paths, intrinsics, Choice rules ----------------------------------------------------------

MISSING = object()


class StateError(Exception):
    """An error raised by a state (or given to `simulate` as a task's outcome)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


def json_path(data: Any, path: str) -> Any:
    """A reference path ($, $.a.b): the value, or MISSING. No filters or array indexes."""
    if path == "$":
        return data
    if not path.startswith("$.") or "[" in path:
        raise NotImplementedError(f"path {path!r}")
    value = data
    for key in path[2:].split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def _split_arguments(text: str) -> list[str]:
    args, depth, quoted, current = [], 0, False, ""
    i = 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\":
            current += text[i : i + 2]
            i += 2
            continue
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and not quoted and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += char
        i += 1
    if current.strip():
        args.append(current.strip())
    return args


def evaluate(expression: str, data: Any, context: Any) -> Any:
    """A `.$` value: a path into the input ($), the context object ($$) or an intrinsic function."""
    if expression.startswith("$$"):
        value = json_path(context, "$" + expression[2:])
    elif expression.startswith("$"):
        value = json_path(data, expression)
    elif expression.startswith("States."):
        return _intrinsic(expression, data, context)
    else:
        raise NotImplementedError(f"expression {expression!r}")
    if value is MISSING:
        raise StateError("States.Runtime", f"path {expression!r} not found in the input")
    return value


def _intrinsic(expression: str, data: Any, context: Any) -> Any:
    match = re.fullmatch(r"(States\.\w+)\((.*)\)", expression.strip(), flags=re.DOTALL)
    if not match:
        raise NotImplementedError(f"intrinsic {expression!r}")
    name, raw_args = match.groups()
    args: list[Any] = []
    for raw in _split_arguments(raw_args):
        if raw.startswith("'"):
            args.append(raw[1:-1].replace("\\'", "'").replace("\\{", "{").replace("\\}", "}"))
        elif raw.startswith("$") or raw.startswith("States."):
            args.append(evaluate(raw, data, context))
        else:
            args.append(json.loads(raw))
    if name == "States.Format":
        template, *values = args
        pieces = template.split("{}")
        assert len(pieces) == len(values) + 1, f"{expression}: {len(values)} values for {len(pieces) - 1} slots"
        out = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            out += (value if isinstance(value, str) else json.dumps(value)) + piece
        return out
    if name == "States.Hash":
        text, algorithm = args
        if not isinstance(text, str):
            raise StateError("States.Runtime", f"{expression}: the data to hash must be a string")
        algorithms = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
        return hashlib.new(algorithms[algorithm], text.encode()).hexdigest()
    if name == "States.MathAdd":
        return args[0] + args[1]
    if name == "States.Array":
        return list(args)
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.StringToJson":
        [text] = args
        try:  # AWS fails the state; a Pass state cannot catch it, so the execution fails
            return json.loads(text)
        except (TypeError, ValueError) as error:
            raise StateError("States.Runtime", f"{expression}: {error}") from None
    if name == "States.JsonMerge":
        first, second, deep = args
        if deep is not False:
            raise NotImplementedError(f"{expression}: AWS supports the shallow merge (false) only")
        if not (isinstance(first, dict) and isinstance(second, dict)):
            raise StateError("States.Runtime", f"{expression}: both arguments must be JSON objects")
        return {**first, **second}  # shallow: the second object's keys win
    raise NotImplementedError(f"intrinsic {name}")


def resolve_parameters(template: Any, data: Any, context: Any) -> Any:
    """Parameters / ResultSelector: keys ending in `.$` are evaluated, everything else is literal."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = evaluate(value, data, context)
            else:
                out[key] = resolve_parameters(value, data, context)
        return out
    if isinstance(template, list):
        return [resolve_parameters(item, data, context) for item in template]
    return template


def string_matches(value: str, pattern: str) -> bool:
    r"""Choice StringMatches: `*` matches any run of characters, `\*` is a literal * and `\\` a literal \."""
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if char == "*" else re.escape(char)
        i += 1
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda v, x: isinstance(v, str) and v == x,
    "StringMatches": lambda v, x: isinstance(v, str) and string_matches(v, x),
    "BooleanEquals": lambda v, x: isinstance(v, bool) and v == x,
    "NumericEquals": lambda v, x: _number(v) and v == x,
    "NumericGreaterThan": lambda v, x: _number(v) and v > x,
    "NumericGreaterThanEquals": lambda v, x: _number(v) and v >= x,
    "NumericLessThan": lambda v, x: _number(v) and v < x,
    "NumericLessThanEquals": lambda v, x: _number(v) and v <= x,
    "IsNull": lambda v, x: (v is None) == x,
    "IsString": lambda v, x: isinstance(v, str) == x,
    "IsBoolean": lambda v, x: isinstance(v, bool) == x,
    "IsNumeric": lambda v, x: _number(v) == x,
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rule_matches(rule: Mapping[str, Any], data: Any) -> bool:
    """One Choice rule. And/Or short-circuit, as on AWS (IsPresent guards rely on it)."""
    if "And" in rule:
        return all(rule_matches(inner, data) for inner in rule["And"])
    if "Or" in rule:
        return any(rule_matches(inner, data) for inner in rule["Or"])
    if "Not" in rule:
        return not rule_matches(rule["Not"], data)
    value = json_path(data, rule["Variable"])
    if "IsPresent" in rule:
        return (value is not MISSING) == rule["IsPresent"]
    if value is MISSING:  # AWS fails the execution: a Choice rule on a path that is not there
        raise StateError("States.Runtime", f"Choice rule on missing path {rule['Variable']!r}")
    comparators = [key for key in rule if key not in ("Variable", "Next")]
    if len(comparators) != 1 or comparators[0] not in _COMPARATORS:
        raise NotImplementedError(f"Choice rule {rule!r}")
    return _COMPARATORS[comparators[0]](value, rule[comparators[0]])


def choose(state: Mapping[str, Any], data: Any) -> str:
    """The state a Choice state goes to for this input."""
    for choice in state["Choices"]:
        if rule_matches(choice, data):
            return choice["Next"]
    if "Default" in state:
        return state["Default"]
    raise StateError("States.NoChoiceMatched", json.dumps(data))


def error_matches(error_equals: Iterable[str], error: str) -> bool:
    """Retry/Catch matching: States.ALL is everything, States.TaskFailed all but States.Timeout."""
    if error == "States.Runtime":  # never retried or caught
        return False
    names = set(error_equals)
    return error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


# --- Simulation -------------------------------------------------------------------------------


@dataclass
class Run:
    """What `simulate` saw: the states entered, task calls with their Parameters, the outcome."""

    trace: list[str] = field(default_factory=list)
    task_calls: list[tuple[str, Any]] = field(default_factory=list)
    status: str = "RUNNING"
    output: Any = None
    error: str = ""
    cause: str = ""
    # Where a failed run stopped and the input that state was entered with: what a redrive resumes.
    stopped_in: str = ""
    stopped_input: Any = None

    def calls_to(self, state_name: str) -> list[Any]:
        return [params for name, params in self.task_calls if name == state_name]


def _with_result(data: Any, result: Any, result_path: str | None) -> Any:
    if result_path is None:
        return data
    if result_path == "$":
        return result
    if not result_path.startswith("$.") or "[" in result_path:
        raise NotImplementedError(f"ResultPath {result_path!r}")
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = out
    *parents, last = result_path[2:].split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = result
    return out


TaskHandler = Callable[[str, dict[str, Any], Any], Any]


def simulate(
    asl: Mapping[str, Any],
    execution_input: Any,
    on_task: TaskHandler,
    *,
    execution_name: str = "run-1",
    max_steps: int = 10_000,
    redrive_of: Run | None = None,
    redrive_count: int = 0,
) -> Run:
    """Run a definition. `on_task(name, state, parameters)` returns a task's result or raises StateError.

    `redrive_of`: resume that failed run as RedriveExecution does, at the state it stopped in with
    that state's recorded input, `$$.Execution.RedriveCount` = `redrive_count`.
    """
    context = {
        "Execution": {
            "Name": execution_name,
            "Input": execution_input,
            "Id": f"arn:aws:states:us-east-1:111122223333:execution:machine:{execution_name}",
            "RedriveCount": redrive_count,
        },
        "State": {"EnteredTime": "2026-11-24T10:00:00.000Z"},
        "Task": {"Token": "task-token"},  # what a .waitForTaskToken task hands out
        "StateMachine": {"Id": "arn:aws:states:us-east-1:111122223333:stateMachine:machine"},
    }
    run, data, name = Run(), execution_input, asl["StartAt"]
    if redrive_of is not None:
        assert redrive_of.status == "FAILED" and redrive_count > 0, "only a failed run is redriven"
        data, name = redrive_of.stopped_input, redrive_of.stopped_in
    for _ in range(max_steps):
        state = asl["States"][name]
        run.trace.append(name)
        run.stopped_in, run.stopped_input = name, copy.deepcopy(data)
        kind = state["Type"]
        for unsupported in ("InputPath", "Items", "ItemProcessor", "Branches", "Arguments", "Output", "Assign"):
            if unsupported in state:
                raise NotImplementedError(f"{name}: {unsupported}")
        try:
            if kind == "Task":
                params = resolve_parameters(state["Parameters"], data, context) if "Parameters" in state else data
                run.task_calls.append((name, params))
                try:
                    result = on_task(name, state, params)
                except StateError as failure:
                    catchers = [c for c in state.get("Catch", []) if error_matches(c["ErrorEquals"], failure.error)]
                    catcher = catchers[0] if catchers else None
                    if catcher is None:
                        raise
                    data = _with_result(
                        data, {"Error": failure.error, "Cause": failure.cause}, catcher.get("ResultPath", "$")
                    )
                    name = catcher["Next"]
                    continue
                if "ResultSelector" in state:
                    result = resolve_parameters(state["ResultSelector"], result, context)
                data = _with_result(data, result, state.get("ResultPath", "$"))
            elif kind == "Pass":
                if "Result" in state:
                    result = state["Result"]
                elif "Parameters" in state:
                    result = resolve_parameters(state["Parameters"], data, context)
                else:
                    result = data
                data = _with_result(data, result, state.get("ResultPath", "$"))
            elif kind == "Wait":
                pass
            elif kind == "Choice":
                name = choose(state, data)
                continue
            elif kind == "Fail":
                run.status = "FAILED"
                run.error = state["Error"] if "Error" in state else evaluate(state["ErrorPath"], data, context)
                if "Cause" in state:
                    run.cause = state["Cause"]
                elif "CausePath" in state:
                    run.cause = evaluate(state["CausePath"], data, context)
                return run
            elif kind == "Succeed":
                pass
            else:
                raise NotImplementedError(f"{name}: state type {kind}")
        except StateError as failure:
            run.status, run.error, run.cause = "FAILED", failure.error, failure.cause
            return run
        if "OutputPath" in state:
            data = json_path(data, state["OutputPath"])
        if kind == "Succeed" or state.get("End"):
            run.status, run.output = "SUCCEEDED", data
            return run
        name = state["Next"]
    raise AssertionError(f"no end after {max_steps} states: {run.trace[-10:]}")
