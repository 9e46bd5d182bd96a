"""The template validator built in the background (stacks/template_validator.py).

The cases about building it run in a fresh interpreter (marked slow): in the test session the validator
may be built already, and the point is what happens while it is being built.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from jsii._kernel.providers.process import _NodeProcess

from stacks import template_validator
from stacks.common.paths import REPO_ROOT


def run_fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_while_the_lock_is_on_one_jsii_request_at_a_time_is_on_the_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    inside, most_inside = 0, 0

    def slow_send(self: Any, request: Any, response_type: Any) -> Any:  # a request Node takes 20 ms to answer
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        time.sleep(0.02)
        inside -= 1
        return request

    monkeypatch.setattr(_NodeProcess, "send", slow_send)
    restore = template_validator._serialize_jsii_calls()
    callers = [
        threading.Thread(target=lambda: [_NodeProcess.send(None, n, None) for n in range(5)])  # type: ignore[arg-type]
        for _ in range(3)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    restore()
    assert most_inside == 1, "two requests on the pipe at once"
    assert _NodeProcess.send is slow_send, "the lock outlived restore()"


@pytest.mark.slow
def test_jsii_calls_made_while_the_engine_builds_each_get_their_own_answer() -> None:
    result = run_fresh(
        """
        import stacks.node_runtime
        import aws_cdk as cdk
        from jsii._kernel.providers.process import _NodeProcess
        from stacks import template_validator

        original = _NodeProcess.send
        template_validator.start()
        assert _NodeProcess.send is not original, "no lock around jsii's send while the engine builds"
        # Node is building the engine (about a second): these calls queue behind it, one at a time.
        answers = [cdk.Duration.seconds(n).to_seconds() for n in range(200)]
        assert answers == list(range(200)), answers[:10]
        plugin = template_validator.plugins()[0]
        assert isinstance(plugin, cdk.CloudFormationValidatePlugin), type(plugin)
        assert template_validator.plugins()[0] is plugin, "one engine per process"
        assert _NodeProcess.send is original, "the lock outlived the build"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
def test_a_failure_to_build_the_engine_reaches_the_caller_and_removes_the_lock() -> None:
    result = run_fresh(
        """
        import stacks.node_runtime
        import aws_cdk as cdk
        from jsii._kernel.providers.process import _NodeProcess
        from stacks import template_validator

        original = _NodeProcess.send

        def broken():
            raise RuntimeError("engine would not build")

        cdk.CloudFormationValidatePlugin = broken
        try:
            template_validator.plugins()[0]
        except RuntimeError as error:
            print(error)
        assert _NodeProcess.send is original, "the lock outlived the failed build"
        assert cdk.Duration.minutes(2).to_seconds() == 120  # jsii still answers
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "engine would not build"


@pytest.mark.slow
def test_without_jsiis_private_class_the_engine_is_built_on_the_callers_thread() -> None:
    result = run_fresh(
        """
        import threading
        import stacks.node_runtime
        import aws_cdk as cdk
        import jsii._kernel.providers.process as process

        del process._NodeProcess  # as if a jsii upgrade had renamed it
        from stacks import template_validator

        cdk.CloudFormationValidatePlugin = lambda: threading.current_thread().name  # the engine's stand-in
        template_validator.start()
        assert template_validator._plugin is not None and template_validator._plugin.done()
        print(template_validator.plugins()[0])
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "MainThread"


def test_the_app_registers_the_one_background_validator(tmp_path: Path) -> None:
    """aws-cdk-lib refuses a second CloudFormationValidatePlugin on an app: registering the background one
    again on the app that build_app made fails synth, so build_app registered it (and aws-cdk-lib left
    out its built-in one)."""
    import aws_cdk as cdk

    from app import build_app
    from stacks.config.stages import config_for

    built, _ = build_app(config=config_for("dev"), outdir=str(tmp_path))
    cdk.Validations.of(built).add_plugins(*template_validator.plugins())
    with pytest.raises(Exception, match="only one instance of CloudFormationValidatePlugin"):
        built.synth()


def test_cdk_validation_false_turns_the_validator_off_as_it_does_aws_cdk_libs(monkeypatch: pytest.MonkeyPatch) -> None:
    """CDK_VALIDATION=false is aws-cdk-lib's switch for its built-in validator: then the app registers none
    (app.py adds `*template_validator.plugins()`), and none is built."""
    monkeypatch.setattr(template_validator, "_plugin", None)
    monkeypatch.setenv("CDK_VALIDATION", "false")
    assert template_validator.plugins() == []
    assert template_validator._plugin is None, "an engine was started"
    built: Future[Any] = Future()  # one built before the switch was set (tests build several apps)
    built.set_result("the engine")
    monkeypatch.setattr(template_validator, "_plugin", built)
    assert template_validator.plugins() == []


@pytest.mark.slow
def test_importing_the_stacks_modules_makes_no_jsii_call() -> None:
    """build_app imports the stacks while Node builds the validator: a jsii call made at import time
    (a module-level Duration, an enum member read) would wait for the engine and stall the imports."""
    result = run_fresh(
        """
        import importlib, pkgutil, traceback
        import stacks, stacks.node_runtime
        import aws_cdk
        from jsii._kernel.providers.process import _NodeProcess

        original, calls = _NodeProcess.send, []

        def send(self, request, response_type):
            frames = [f for f in traceback.extract_stack() if "/stacks/" in f.filename]
            calls.append(f"{frames[-1].filename.rsplit('/stacks/', 1)[1]}:{frames[-1].lineno}" if frames else "?")
            return original(self, request, response_type)

        _NodeProcess.send = send
        for module in pkgutil.walk_packages(stacks.__path__, "stacks."):
            importlib.import_module(module.name)
        print(" ".join(calls))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [], "jsii calls at import time, at stacks/<these lines>"
