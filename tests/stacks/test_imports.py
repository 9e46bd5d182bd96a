"""Importing the stacks' modules makes no jsii call (the retry intervals, Durations and endpoint services
they once made at import are made where they are used).

Each would be a round trip to Node in every process that imports the stacks, before any stack is built.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from stacks.common.paths import REPO_ROOT


@pytest.mark.slow
def test_importing_the_stacks_modules_makes_no_jsii_call() -> None:
    """A module-level Duration, an enum member read, a static method called: each is a jsii call."""
    code = """
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
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [], "jsii calls at import time, at stacks/<these lines>"
