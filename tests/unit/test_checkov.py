"""checkov (pinned in requirements-scan.txt) over every stage's synthesized templates: no failed check,
and every skipped one carries its reason in the template, next to the resource.

The templates are the session's (`synth(stage)`, one synth per stage per session); checkov runs
from its own venv (.venv-checkov, made by `make test`), since its pins conflict with the app's.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synthesized

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_VERSION = "3.3.30"

pytestmark = pytest.mark.slow  # checkov in a subprocess, per stage (see pyproject.toml)


def checkov(outdir: Path) -> dict[str, Any]:
    """checkov's JSON report over the stage's CloudFormation templates (not the asset directories)."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: `make test` installs it (requirements-scan.txt)"
    files = [arg for template in sorted(outdir.glob("*.template.json")) for arg in ("--file", str(template))]
    result = subprocess.run(
        [str(CHECKOV), *files, "--framework", "cloudformation", "--skip-download", "--compact", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some check failed, reported below
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module", params=["dev", "prod", "local"])
def report(request: pytest.FixtureRequest, synth: Callable[[str], Synthesized]) -> dict[str, Any]:
    return checkov(synth(request.param).outdir)


def test_checkov_is_the_pinned_version(report: dict[str, Any]) -> None:
    assert report["summary"]["checkov_version"] == CHECKOV_VERSION
    assert (REPO_ROOT / "requirements-scan.txt").read_text().count(f"checkov=={CHECKOV_VERSION}") == 1


def test_no_check_fails(report: dict[str, Any]) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 200  # the templates were read and checked


def test_every_skip_says_why(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped  # the acknowledged findings are there, as skips
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) > 40, f"{check['check_id']} on {check['resource']} is skipped without a reason"


def test_what_is_skipped_is_known(report: dict[str, Any]) -> None:
    # The check Lambda's reserved concurrency is set (a real fix, not a skip); its DLQ and VPC
    # checks are acknowledged; everything else skipped is an access-log bucket or CDK's own handler.
    skipped = {(check["check_id"], check["resource"].split(".")[-1]) for check in report["results"]["skipped_checks"]}
    ours = {(check_id, resource) for check_id, resource in skipped if "CheckResults" in resource}
    assert ours == {
        ("CKV_AWS_116", "TransformStageCheckResults5ED428A0"),
        ("CKV_AWS_117", "TransformStageCheckResults5ED428A0"),
    }
    for check_id, resource in skipped - ours:
        if check_id == "CKV_AWS_18":
            assert "AccessLogsBucket" in resource
        else:
            # Lambda checks on CDK's handlers; KMS on the log group CDK makes for one (useCdkManagedLogGroup).
            assert check_id in {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_158", "CKV_AWS_173"}, (
                check_id,
                resource,
            )
            assert resource.startswith(("Custom", "BucketNotificationsHandler", "AWS679f53fac")), resource
