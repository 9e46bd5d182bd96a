"""The Node that jsii runs aws-cdk-lib on (stacks/node_runtime.py, stacks/jsii_node.sh), as the process shows it."""

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
    import stacks.node_runtime
    import aws_cdk
    from jsii._runtime import kernel

    pid = kernel.provider._process._process.pid
    print(os.readlink(f"/proc/{pid}/exe"))
    print(" ".join(open(f"/proc/{pid}/cmdline").read().split("\\0")))
    """
)


def jsii_node(env: dict[str, str]) -> tuple[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", "import os\n" + SHOW_JSII_NODE],
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
def test_jsii_runs_the_venvs_node_24_with_liftoff_only() -> None:
    env = {key: value for key, value in os.environ.items() if key != "JSII_NODE"}
    executable, command = jsii_node(env)
    assert Path(executable) == (wheel_node_bin() or Path("?")) / "node"
    assert "--liftoff-only" in command.split(), command


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="reads the process from /proc")
def test_a_jsii_node_the_user_set_is_kept() -> None:
    node = str((wheel_node_bin() or Path("?")) / "node")
    executable, command = jsii_node({**os.environ, "JSII_NODE": node})
    assert executable == node
    assert "--liftoff-only" not in command.split(), command


def test_without_any_node_on_path_jsii_keeps_its_own_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No venv Node and none on PATH: the wrapper would fail with `exec: node: not found` after a JSON
    traceback; left unset, jsii says `No such file or directory: 'node'`."""
    monkeypatch.setattr(node_runtime, "wheel_node_bin", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JSII_NODE", raising=False)
    node_runtime.use_wheel_node()
    assert "JSII_NODE" not in os.environ
    (tmp_path / "node").write_text("#!/bin/sh\n")
    (tmp_path / "node").chmod(0o755)
    node_runtime.use_wheel_node()
    assert os.environ["JSII_NODE"] == str(node_runtime.JSII_NODE)
