"""Run a Glue job script the way Glue loads it (executed in a fresh `python -I` interpreter).

    python -I glue_job_runner.py <layout.json>

layout.json: {"script": path, "python_paths": [paths], "stub": dir, "argv": [...]}. Like Glue:
the script runs as __main__ from the directory it was downloaded to; each `--extra-py-files`
object is on sys.path under its object name (a .zip as an archive, a .py through its folder).
Nothing of the repository is on the path (`-I`: no current directory, no PYTHONPATH): only
the assets, the awsglue stand-in and the interpreter's installed packages (boto3 and pyspark
are on Glue too). A failure prints one line naming what failed and exits 1. Where each top-level
module the script imported came from goes to the file named by $GLUE_REHEARSAL_MODULES, so the
test can tell a library shipped in an asset from one that merely happens to be installed here.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path


def main() -> int:
    layout = json.loads(Path(sys.argv[1]).read_text())
    script = Path(layout["script"])
    sys.path[:0] = [str(script.parent), *layout["python_paths"], layout["stub"]]
    sys.argv = [str(script), *layout["argv"]]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:  # the awsglue stand-in stops after argument parsing
        origins = {name: getattr(module, "__file__", None) for name, module in sys.modules.items() if "." not in name}
        Path(os.environ["GLUE_REHEARSAL_MODULES"]).write_text(json.dumps(origins))
        return int(stop.code or 0)
    except Exception as error:  # noqa: BLE001 - reported as one line for the test to show
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("the script ended without resolving its options (getResolvedOptions never ran)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
