"""aws-cdk-lib's CloudFormation template validator, run in a helper process beside the synth.

aws-cdk-lib validates every template at synth (`CloudFormationValidatePlugin`, default rules). Building
its WebAssembly engine takes about a second of Node's time, and Node is single-threaded: in the app's
own process that second was added to every synth. `start()`, called before the app imports aws_cdk,
starts a helper process (`python -m stacks.template_validator`) that builds aws-cdk-lib's own plugin,
with its default rules, on the other core while the app builds its stacks; synth hands it the templates.

`plugins()` is the app's side: a plugin with aws-cdk-lib's plugin name, version and rule ids that passes
each validation to the helper and returns the helper's report as it is. aws-cdk-lib treats a report by
its plugin's name (its errors become warnings unless the app opts in) and writes the rule ids and version
into the stacks' metadata, so templates and validation report are the built-in one's. The app turns the
built-in one off (`App(builtin_cloud_formation_validation=False)`); with CDK_VALIDATION=false, aws-cdk-lib's
switch for it, neither runs. A helper that fails fails the synth, with the helper's own error lines.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aws_cdk as cdk

PLUGIN_NAME = "CloudFormation Validate"  # aws-cdk-lib's CloudFormationValidatePlugin.PLUGIN_NAME
# The helper runs this module by its name, from the folder its package is in (wherever the app runs from,
# and whatever a project that copies the package calls it).
_MODULE = __name__
_IMPORT_ROOT = Path(__file__).resolve().parents[__name__.count(".")]
# The report's fields, as aws-cdk-lib's struct constructors name them.
_REPORT_FIELDS = ("success", "metadata", "plugin_version")
_VIOLATION_FIELDS = ("rule_name", "description", "fix", "severity", "rule_metadata")
_RESOURCE_FIELDS = ("locations", "construct_path", "resource_logical_id", "template_path")

_started = threading.Lock()
_helper: _Helper | None = None


class TemplateValidatorError(RuntimeError):
    """The helper could not build the validator or validate; the message ends with its last stderr lines."""


def wanted() -> bool:
    """aws-cdk-lib's own switch, read as it reads it: CDK_VALIDATION=false turns its built-in validator off,
    and so this one."""
    return os.environ.get("CDK_VALIDATION") != "false"


def start() -> None:
    """Start the helper (once per process; later calls do nothing; nothing when not `wanted()`)."""
    global _helper
    with _started:
        if _helper is None and wanted():
            _helper = _Helper()


def plugins() -> list[cdk.IPolicyValidationPlugin]:
    """What to register on an app built with `builtin_cloud_formation_validation=False`
    (`Validations.of(app).add_plugins(*plugins(), ...)`): the validator, or nothing when not `wanted()`."""
    if not wanted():
        return []
    start()
    assert _helper is not None
    return [_plugin_class()(_helper)]


class _Helper:
    """The helper process: a JSON line on its stdin per request, a JSON line on its stdout per answer."""

    def __init__(self, command: tuple[str, ...] = (sys.executable, "-m", _MODULE)) -> None:
        # Its stderr goes to a file, not to the app's: `cdk synth` waits until nothing holds the app's open.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        python_path = os.pathsep.join(filter(None, [str(_IMPORT_ROOT), os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONPATH": python_path},
            text=True,
        )
        self._lock = threading.Lock()  # one request and its answer at a time
        self._built: dict[str, Any] | None = None
        self._build_failed: TemplateValidatorError | None = None
        atexit.register(self.close)

    def built(self) -> dict[str, Any]:
        """The validator's version and rule ids, once the helper has built it (waits for that); raises the
        build's failure, every time."""
        with self._lock:
            if self._build_failed is not None:
                raise self._build_failed
            if self._built is None:
                try:
                    self._built = self._answer()
                except TemplateValidatorError as error:
                    self._build_failed = error
                    raise
            return self._built

    def validate(self, request: dict[str, Any]) -> dict[str, Any]:
        """The helper's report (aws-cdk-lib's `PolicyValidationPluginReport` fields) for the request's stacks."""
        self.built()
        with self._lock:
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(request) + "\n")
                self._process.stdin.flush()
            except OSError:
                pass  # it has ended; _answer says why
            return self._answer()["report"]

    def close(self) -> None:
        """End the helper: it exits at the end of its input. Nothing waits for it."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()

    def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        answer: dict[str, Any] = json.loads(line) if line else {"error": self._ended()}
        if "error" in answer:
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-20:]
            raise TemplateValidatorError("\n".join([f"template validator: {answer['error']}", *tail]))
        return answer

    def _ended(self) -> str:
        try:
            return f"the helper process ended (exit status {self._process.wait(timeout=10)})"
        except subprocess.TimeoutExpired:
            return "the helper process closed its output"


@functools.cache
def _plugin_class() -> type:
    """The app's side, an `IPolicyValidationPlugin` (a jsii class: defined once aws_cdk is imported)."""
    import aws_cdk as cdk
    import jsii

    @jsii.implements(cdk.IPolicyValidationPlugin)
    class CloudFormationValidateInHelper:
        def __init__(self, helper: _Helper) -> None:
            self._helper = helper

        @property
        def name(self) -> str:
            return PLUGIN_NAME

        @property
        def version(self) -> str | None:
            return self._helper.built().get("version")

        @property
        def rule_ids(self) -> list[str] | None:
            return self._helper.built().get("rule_ids")

        def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
            stacks = [
                {
                    "stack_construct_path": stack.stack_construct_path,
                    "template_path": stack.template_path,
                    "account_id": stack.account_id,
                    "region": stack.region,
                }
                for stack in context.stack_templates
            ]
            request = {"stack_templates": stacks, "account_id": context.account_id, "region": context.region}
            report = self._helper.validate(request)
            # Structs, not dicts: jsii would hand a dict in a list to Node as a map with Python's key names.
            violations = [
                cdk.PolicyViolation(
                    **{
                        **violation,
                        "violating_resources": [
                            cdk.PolicyViolatingResource(**resource) for resource in violation["violating_resources"]
                        ],
                    }
                )
                for violation in report["violations"]
            ]
            return cdk.PolicyValidationPluginReport(**{**report, "violations": violations})

    return CloudFormationValidateInHelper


def _fields(struct: Any, names: tuple[str, ...]) -> dict[str, Any]:
    values = {name: getattr(struct, name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def _report_as_json(report: cdk.PolicyValidationPluginReport) -> dict[str, Any]:
    violations = [
        {
            **_fields(violation, _VIOLATION_FIELDS),
            "violating_resources": [_fields(resource, _RESOURCE_FIELDS) for resource in violation.violating_resources],
        }
        for violation in report.violations
    ]
    return {**_fields(report, _REPORT_FIELDS), "violations": violations}


def serve(requests: IO[str], answers: IO[str]) -> None:
    """The helper: build aws-cdk-lib's plugin, answer with its version and rule ids, then answer each
    request with its report until the input ends. Errors are answered too, for the app to raise."""

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    try:
        from . import node_runtime  # noqa: F401, I001  (Node 24 for jsii, before aws_cdk is imported)
        import aws_cdk as cdk
        import jsii

        plugin = cdk.CloudFormationValidatePlugin()
        # The context's app construct: the interface requires one, this plugin reads none. Never synthesized
        # (under `cdk synth` an App would otherwise synthesize itself into the CLI's output folder at exit).
        app = cdk.App(auto_synth=False)
        answer({"version": plugin.version, "rule_ids": plugin.rule_ids})
    except Exception as error:
        answer({"error": f"could not build aws-cdk-lib's CloudFormationValidatePlugin: {error}"})
        raise

    @jsii.implements(cdk.IPolicyValidationContext)
    class Context:
        def __init__(self, request: dict[str, Any]) -> None:
            self._request = request

        @property
        def stack_templates(self) -> list[cdk.PolicyValidationStack]:
            return [cdk.PolicyValidationStack(**stack) for stack in self._request["stack_templates"]]

        @property
        def template_paths(self) -> list[str]:
            return [stack["template_path"] for stack in self._request["stack_templates"]]

        @property
        def account_id(self) -> str | None:
            return self._request["account_id"]

        @property
        def region(self) -> str | None:
            return self._request["region"]

        @property
        def app_construct(self) -> cdk.App:
            return app

    for line in filter(str.strip, requests):
        try:
            answer({"report": _report_as_json(plugin.validate(Context(json.loads(line))))})
        except Exception as error:  # answered: the app's synth fails with it
            answer({"error": f"validating failed: {error}"})


if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(10)  # the app's own process first on a busy machine: this one has until synth validates
    from . import node_runtime

    node_runtime.use_single_threaded_node()  # before serve() imports aws_cdk
    serve(sys.stdin, sys.stdout)
