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

from tests.conftest import Synthesized, stage_config

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
    return {**checkov(synth(request.param).outdir), "stage": request.param}


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


CDK_HANDLERS = ("Custom", "BucketNotificationsHandler", "AWS679f53fac", "LogRetention")


def test_what_is_skipped_is_known(report: dict[str, Any]) -> None:
    # Skipped: the access-log buckets' own logging; on the app's Lambdas, the DLQ (invoked
    # synchronously) and VPC checks, and reserved concurrency only in a stage that reserves none
    # (config reserve_lambda_concurrency); on CDK's own deploy-time handlers and the log group CDK
    # makes for one, the Lambda and log checks.
    reserves = stage_config(report["stage"]).reserve_lambda_concurrency
    for check in report["results"]["skipped_checks"]:
        check_id = check["check_id"]
        resource_type, logical_id = check["resource"].rsplit(".", 1)
        if logical_id.startswith(CDK_HANDLERS):
            allowed = {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_158", "CKV_AWS_173"}
        elif resource_type == "AWS::S3::Bucket" and "AccessLogsBucket" in logical_id:
            allowed = {"CKV_AWS_18"}
        elif resource_type == "AWS::Lambda::Function":
            allowed = {"CKV_AWS_116", "CKV_AWS_117"} | (set() if reserves else {"CKV_AWS_115"})
        elif resource_type == "AWS::DynamoDB::Table" and logical_id.startswith(
            ("LeaseTable", "CrawlStageCrawlEndTokens")
        ):
            # point-in-time recovery of one short-lived item: the lease, the crawl stage's task token
            allowed = {"CKV_AWS_28"}
        else:
            allowed = set()
        assert check_id in allowed, f"{check_id} skipped on {check['resource']}"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_check_lambda_reserves_its_concurrency_where_the_stage_says(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    functions = synth(stage).templates["pipeline"].find_resources("AWS::Lambda::Function")
    [check] = [f for logical_id, f in functions.items() if logical_id.startswith("TransformStageCheckResults")]
    expected = 2 if stage_config(stage).reserve_lambda_concurrency else None
    assert check["Properties"].get("ReservedConcurrentExecutions") == expected
    assert (stage, expected) in (("dev", None), ("prod", 2))
