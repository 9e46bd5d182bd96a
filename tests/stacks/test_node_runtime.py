"""The Node that jsii runs aws-cdk-lib on (stacks/node_runtime.py, stacks/jsii_node_single_threaded.sh), as the
process shows it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stacks import node_runtime
from stacks.common.paths import REPO_ROOT
from stacks.node_runtime import wheel_node_bin

SHOW_JSII_NODE = textwrap.dedent(
    """
    import sys
    from stacks import node_runtime
    if sys.argv[1:] == ["single-threaded"]:
        node_runtime.use_single_threaded_node()
    import aws_cdk
    from jsii._runtime import kernel

    pid = kernel.provider._process._process.pid
    print(os.readlink(f"/proc/{pid}/exe"))
    print(" ".join(open(f"/proc/{pid}/cmdline").read().split("\\0")))
    """
)


def jsii_node(env: dict[str, str], *args: str) -> tuple[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", "import os\n" + SHOW_JSII_NODE, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    executable, command = result.stdout.splitlines()
    return executable, command


@pytest.mark.slow  # a fresh interpreter (see pyproject.toml)
@pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="reads the process from /proc")
def test_jsii_runs_the_venvs_node_24_single_threaded_only_where_asked() -> None:
    """The app's own Node keeps V8's threads (it builds the stacks); the validator's helper asks for none."""
    env = {key: value for key, value in os.environ.items() if key != "JSII_NODE"}
    for args, single_threaded in (((), False), (("single-threaded",), True)):
        executable, command = jsii_node(env, *args)
        assert Path(executable) == (wheel_node_bin() or Path("?")) / "node"
        assert ("--single-threaded" in command.split()) is single_threaded, command


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="reads the process from /proc")
def test_a_jsii_node_the_user_set_is_kept() -> None:
    node = str((wheel_node_bin() or Path("?")) / "node")
    executable, command = jsii_node({**os.environ, "JSII_NODE": node}, "single-threaded")
    assert executable == node
    assert "--single-threaded" not in command.split(), command


def test_without_any_node_on_path_jsii_keeps_its_own_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No venv Node and none on PATH: the wrapper would fail with `exec: node: not found` after a JSON
    traceback; left unset, jsii says `No such file or directory: 'node'`."""
    monkeypatch.setattr(node_runtime, "wheel_node_bin", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JSII_NODE", raising=False)
    node_runtime.use_wheel_node()
    node_runtime.use_single_threaded_node()
    assert "JSII_NODE" not in os.environ
    (tmp_path / "node").write_text("#!/bin/sh\n")
    (tmp_path / "node").chmod(0o755)
    node_runtime.use_single_threaded_node()
    assert os.environ["JSII_NODE"] == str(node_runtime.SINGLE_THREADED_JSII_NODE)
