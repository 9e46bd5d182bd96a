"""`getResolvedOptions` as Glue resolves job arguments; the rehearsal stops right after it.

Glue's behaviour, as documented ("Accessing parameters using getResolvedOptions") and as
aws-glue-libs implements it:
- every name asked for is a required `--name value` option; a missing one is an error;
- names Glue sets itself are reserved and may not be asked for (asking raises RuntimeError):
  JOB_ID, JOB_RUN_ID, SECURITY_CONFIGURATION, job-bookmark-option, continuation-option,
  job-bookmark-from/-to, encryption-type. JOB_NAME may be asked for. Glue passes the reserved
  ones anyway, so they are in the result whether asked for or not;
- anything else on the command line (Glue's special parameters) is ignored.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

_RESERVED = (
    "JOB_ID",
    "JOB_RUN_ID",
    "SECURITY_CONFIGURATION",
    "job-bookmark-option",
    "continuation-option",
    "job-bookmark-from",
    "job-bookmark-to",
    "encryption-type",
)
# Where the rehearsal wants the resolved options written (tests/rehearsal/glue_job_runner.py).
RESOLVED_OPTIONS_FILE = "GLUE_REHEARSAL_RESOLVED_OPTIONS"


class GlueArgumentError(Exception):
    """A required option is missing or a value is not allowed (Glue raises instead of exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would sys.exit(2); Glue raises
        raise GlueArgumentError(message)


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, Any]:  # noqa: N802 (Glue's name)
    for option in options:
        if option in _RESERVED:
            raise RuntimeError(f"Using reserved arguments --{option}")
    parser = _Parser(prog="glue-job")
    parser.add_argument(
        "--job-bookmark-option", choices=["job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable"]
    )
    parser.add_argument("--continuation-option")
    for name in (
        "JOB_ID",
        "JOB_RUN_ID",
        "SECURITY_CONFIGURATION",
        "job-bookmark-from",
        "job-bookmark-to",
        "TempDir",
        "RedshiftTempDir",
        "encryption-type",
    ):
        parser.add_argument(f"--{name}", required=False)
    for option in options:
        parser.add_argument(f"--{option}", required=True)
    parsed, _unknown = parser.parse_known_args(args[1:])
    resolved = vars(parsed)
    resolved.pop("continuation_option", None)
    resolved["job_bookmark_option"] = resolved.get("job_bookmark_option") or "job-bookmark-disable"
    # The rehearsal ends here: what follows needs Glue's JVM side (GlueContext, Job).
    with open(os.environ[RESOLVED_OPTIONS_FILE], "w", encoding="utf-8") as out:
        json.dump({"asked": options, "resolved": resolved}, out)
    raise SystemExit(0)
