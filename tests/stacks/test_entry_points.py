"""Mistakes in the stage or its config, through the real entry points: one line, exit status 2.

`app.py` as the CDK CLI runs it (context in CDK_CONTEXT_JSON), the CDK CLI itself, `make synth`
and `make -n deploy`. No traceback, no silent fallback to dev, and no `cdk deploy` without stacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES_ALLOWED = "must be one of dev, prod, local"
# Run make as it is, without re-running setup (`make test` has just done it).
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed", "-o", "node_modules/.installed"]

pytestmark = pytest.mark.slow  # subprocesses: app.py, the CDK CLI, make (see pyproject.toml)


def run(
    args: list[str], *, context: dict[str, object] | None = None, overflow: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDK_", "CONTEXT_OVERFLOW"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # cdk.json runs `python3 app.py`
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)  # how the CDK CLI passes `-c key=value`
    if overflow is not None:  # where the CLI puts context too long for the environment
        env["CONTEXT_OVERFLOW_LOCATION_ENV"] = str(overflow)
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("context", "line"),
    [
        ({"stage": ""}, f"error: config stage = '': {STAGES_ALLOWED}"),
        ({"stage": "Prod"}, f"error: config stage = 'Prod': {STAGES_ALLOWED}"),
        (
            {"stag": "prod"},
            "error: context stag = 'prod': not a key this app reads; the ones it reads are stage "
            "(-c stage=dev|prod|local) and notification_emails (-c notification_emails=a@example.com,b@example.com)",
        ),
        (
            {"stage": "prod"},
            "error: config prod.notification_emails = (): stage prod needs at least one address for its "
            "failure notices and alarms: -c notification_emails=ops@example.com (make ... EMAILS=ops@example.com)",
        ),
    ],
)
def test_app_under_the_cdk_cli_rejects_a_bad_stage_in_one_line(context: dict[str, object], line: str) -> None:
    result = run([sys.executable, "app.py"], context={"@aws-cdk/core:checkSecretUsage": True, **context})
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (2, [line], "")


def test_context_the_cli_passes_in_its_overflow_file_is_read_too(tmp_path: Path) -> None:
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps({"stage": "Prod"}))
    result = run([sys.executable, "app.py"], context={"@aws-cdk/core:checkSecretUsage": True}, overflow=overflow)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (
        2,
        [f"error: config stage = 'Prod': {STAGES_ALLOWED}"],
        "",
    )


def test_an_invalid_config_fails_synth_in_one_line() -> None:
    # As if dev's schedule in stacks/config/stages.py named a date that never occurs.
    script = (
        "import sys, stacks.config.stages as c\n"
        "c.STAGE_BUILDERS['dev'] = lambda **_: c.DeploymentConfig(stage='dev', schedule='cron(0 2 31 2 ? *)')\n"
        "import app\n"
        "sys.exit(app.main([]))\n"
    )
    result = run([sys.executable, "-c", script], context={"stage": "dev"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: config dev.schedule = 'cron(0 2 31 2 ? *)': must be an EventBridge expression "
        "cron(min hour day-of-month month day-of-week year); day-of-month '31' never occurs in month '2'"
    ]


def test_the_cdk_cli_passes_the_line_on_without_a_traceback(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "stacks.node_runtime", "node_modules/aws-cdk/bin/cdk"]
    result = run([*cli, "synth", "-c", "stag=prod", "--quiet", "--output", str(tmp_path)])
    assert result.returncode != 0
    assert "error: context stag = 'prod': not a key this app reads" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


@pytest.mark.parametrize(("target", "stage"), [("synth", ""), ("synth", "nope"), ("deploy", ""), ("diff", "Prod")])
def test_make_stops_with_one_line_naming_the_stage(target: str, stage: str) -> None:
    result = run([*MAKE, "-n", target, f"STAGE={stage}"])
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(f"*** config stage = {stage!r}: {STAGES_ALLOWED}.  Stop."), lines[0]
    assert "cdk" not in result.stdout  # no cdk command without a valid stage


def test_make_synth_with_an_empty_stage_is_an_error_not_dev() -> None:
    # Not a dry run: the recipe itself stops before the CDK CLI starts.
    result = run([*MAKE, "synth", "STAGE="])
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f"*** config stage = '': {STAGES_ALLOWED}.  Stop.")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("stage", "emails", "stacks"),
    [
        ("dev", "", "GluePipeline-dev-Storage GluePipeline-dev-Pipeline"),
        ("prod", "ops@example.com", "GluePipeline-prod-Storage"),
    ],
)
def test_make_deploy_names_the_stage_stacks(stage: str, emails: str, stacks: str) -> None:
    result = run([*MAKE, "-n", "deploy", f"STAGE={stage}", f"EMAILS={emails}"])
    assert result.returncode == 0, result.stderr
    context = f"-c stage={stage}" + (f" -c notification_emails={emails}" if emails else "")
    assert f"deploy {context} {stacks}" in result.stdout


def test_make_deploy_of_prod_without_an_address_stops_in_one_line() -> None:
    result = run([*MAKE, "-n", "deploy", "STAGE=prod"])
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        "*** config prod.notification_emails = (): stage prod needs at least one address for its failure notices "
        "and alarms: -c notification_emails=ops@example.com (make ... EMAILS=ops@example.com).  Stop."
    ), result.stderr
    assert "cdk" not in result.stdout


def test_make_setup_without_python_3_11_is_one_line(tmp_path: Path) -> None:
    """The pins are for Python 3.11: another PYTHON stops setup before a venv is made, in one line."""
    other = tmp_path / "python3.12"  # answers the version check as a 3.12 would
    other.write_text('#!/bin/sh\ncase "$*" in *sys.exit*) exit 1;; *) echo 3.12.1;; esac\n')
    other.chmod(0o755)
    venv = tmp_path / "venv"
    for python, line in (
        (
            "python3.99",
            "error: PYTHON=python3.99 is not on PATH: install Python 3.11 or pass PYTHON=/path/to/python3.11",
        ),
        (str(other), f"error: PYTHON={other} is Python 3.12.1; the pins are for 3.11: pass PYTHON=/path/to/python3.11"),
    ):
        result = run(["make", "--no-print-directory", f"VENV={venv}", f"PYTHON={python}", f"{venv}/.installed"])
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[0] == line
        assert not venv.exists()
