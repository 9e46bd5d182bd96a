"""aws-cdk-lib's CloudFormation template validator, built in the background while the stacks import.

aws-cdk-lib validates every template at synth (`CloudFormationValidatePlugin`, default rules). Building
its WebAssembly engine takes about 0.9 s of Node's time, and synth would pay it at its very end. An app
that registers an instance itself gets the same plugin, the same rules and the same report, and aws-cdk-lib
then leaves its built-in one out. `start()`, called right after `import aws_cdk`, has Node build that
instance while Python imports the stacks' modules; `plugins()` returns it, one per process.

jsii's Python side talks to Node over one pipe and is not thread-safe. Until the engine is built, every
jsii call waits for the one before it to finish (a lock around jsii's send, removed as soon as it is
built), so the stacks' own calls simply queue behind the engine's. That lock goes around a private
class of jsii's (pinned in requirements): should a jsii upgrade rename it, `start()` builds the engine
on the caller's thread, as slow as before and just as correct (and tests/stacks/test_template_validator.py
fails, to say so).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

try:
    from jsii._kernel.providers.process import _NodeProcess
except ImportError:  # see the module's docstring
    _NodeProcess = None  # type: ignore[assignment, misc]

if TYPE_CHECKING:
    import aws_cdk as cdk

_started = threading.Lock()
_plugin: Future[cdk.CloudFormationValidatePlugin] | None = None


def wanted() -> bool:
    """aws-cdk-lib's own switch, read as it reads it: CDK_VALIDATION=false turns its built-in validator off,
    and so this one (an app that registers the plugin itself would otherwise validate regardless)."""
    return os.environ.get("CDK_VALIDATION") != "false"


def start() -> None:
    """Start building the validator on a thread of its own (once per process; later calls do nothing;
    nothing when not `wanted()`)."""
    global _plugin
    with _started:
        if _plugin is not None or not wanted():
            return
        _plugin = Future()
        if _NodeProcess is None or not callable(getattr(_NodeProcess, "send", None)):
            _build(_plugin, restore=lambda: None)  # no lock to take: built here, on the caller's thread
            return
        restore = _serialize_jsii_calls()
        threading.Thread(target=_build, args=(_plugin, restore), name="template-validator", daemon=True).start()


def plugins() -> list[cdk.CloudFormationValidatePlugin]:
    """What to register on an app (`Validations.of(app).add_plugins(*plugins(), ...)`): the validator, or
    nothing when not `wanted()`; raises what building it raised."""
    start()
    return [_plugin.result()] if _plugin is not None and wanted() else []


def _build(future: Future[cdk.CloudFormationValidatePlugin], restore: Callable[[], None]) -> None:
    try:
        import aws_cdk as cdk

        future.set_result(cdk.CloudFormationValidatePlugin())
    except BaseException as error:  # handed to the caller of plugins()
        future.set_exception(error)
    finally:
        restore()


def _serialize_jsii_calls() -> Callable[[], None]:
    """Make each jsii request and its response one step no other thread can enter; returns the undo."""
    original = _NodeProcess.send
    lock = threading.RLock()

    def send(self: _NodeProcess, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    _NodeProcess.send = send  # type: ignore[method-assign]

    def restore() -> None:
        with lock:
            _NodeProcess.send = original  # type: ignore[method-assign]

    return restore
