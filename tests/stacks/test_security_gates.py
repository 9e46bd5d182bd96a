"""The gates every synth passes: cdk-nag (AwsSolutions + Serverless, run by synth itself) and cfn-lint.

The positive tests synthesize every stage through the session `synth` fixture; the negative ones
prove the gates can fail, so that a silently disabled gate cannot pass for a clean one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks.config.stages import config_for

if TYPE_CHECKING:
    from tests.conftest import Synthesized

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES = ["dev", "prod", "local"]
# Rule ids an acknowledgement may name: the two cdk-nag packs the app runs, and aws-cdk-lib's own
# template checks, which CDK constructs acknowledge themselves (e.g. literal AZs in a VPC).
ACKNOWLEDGEABLE_RULES = ("AwsSolutions-", "Serverless-", "CloudFormation-Validate::")
# cfn-lint checks resource types and properties per region; the templates are region-agnostic,
# and each extra region costs about 0.2 s per template.
CFN_LINT_REGIONS = ["us-east-1"]


def violations(outdir: Path) -> list[tuple[str, str, str]]:
    """(plugin, rule, construct path) of every finding in a cloud assembly's validation report."""
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    return [
        (plugin["pluginName"], violation["ruleName"], construct["constructPath"])
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


# --- cdk-nag ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_cdk_nag_leaves_no_unacknowledged_finding(synth: Callable[[str], Synthesized], stage: str) -> None:
    synthesized = synth(stage)  # app.synth() raises on any unacknowledged finding (warnings too)
    assert (synthesized.outdir / "manifest.json").exists()
    assert violations(synthesized.outdir) == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_acknowledgement_says_why(synth: Callable[[str], Synthesized], stage: str) -> None:
    acknowledged = synth(stage).acknowledgements
    assert len(acknowledged) > 10  # the app does acknowledge findings: none found means the lookup broke
    without_reason = {
        key: reason for key, reason in acknowledged.items() if not isinstance(reason, str) or len(reason.strip()) < 20
    }
    assert without_reason == {}
    unknown = sorted({rule for _, rule in acknowledged if not rule.startswith(ACKNOWLEDGEABLE_RULES)})
    assert unknown == [], "acknowledgements of rules no plugin of ours reports"


def test_nag_fails_synth_on_a_non_compliant_bucket_unless_acknowledged(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Gate")
    # No access logs, public access not blocked, TLS not enforced: AwsSolutions-S1, S2, S10.
    s3.Bucket(stack, "Open", block_public_access=s3.BlockPublicAccess.BLOCK_ACLS_ONLY)
    acked = s3.Bucket(stack, "Acknowledged", block_public_access=s3.BlockPublicAccess.BLOCK_ACLS_ONLY)
    cdk.Validations.of(acked).acknowledge(
        *(
            cdk.Acknowledgment(id=rule, reason="Negative test: acknowledged.")
            for rule in ("AwsSolutions-S1", "AwsSolutions-S2", "AwsSolutions-S10")
        )
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    found = violations(tmp_path)
    open_findings = {rule for _, rule, path in found if path.startswith("Gate/Open/")}
    assert {"AwsSolutions-S1", "AwsSolutions-S2", "AwsSolutions-S10"} <= open_findings
    assert not any(path.startswith("Gate/Acknowledged/") for _, _, path in found)


def test_app_wires_the_gate(tmp_path: Path) -> None:
    """build_app's own plugins fail synth on a finding anywhere in its stacks."""
    import app as cdk_app

    app, stacks = cdk_app.build_app(config=config_for("dev"), outdir=str(tmp_path))
    s3.Bucket(stacks["pipeline"], "UnloggedBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    found = violations(tmp_path)
    assert ("AwsSolutions", "AwsSolutions-S1", f"{stacks['pipeline'].node.path}/UnloggedBucket/Resource") in found
    assert all(path.startswith(f"{stacks['pipeline'].node.path}/UnloggedBucket/") for _, _, path in found), found


# --- cfn-lint ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfn_lint_ignored() -> list[str]:
    settings = yaml.safe_load((REPO_ROOT / ".cfnlintrc.yaml").read_text())
    return list(settings.get("ignore_checks", []))


def cfn_lint(template_text: str, ignored: list[str]) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(template_text, config=ManualArgs(ignore_checks=ignored, regions=CFN_LINT_REGIONS))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


@pytest.mark.heavy  # 3-6 s of cfn-lint per stage: its module is handed out early (tests/conftest.py)
@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_nothing_in_any_template(
    synth: Callable[[str], Synthesized], stage: str, cfn_lint_ignored: list[str]
) -> None:
    synthesized = synth(stage)
    templates = sorted(synthesized.outdir.glob("*.template.json"))
    assert {path.name for path in templates} == {stack.template_file for stack in synthesized.stacks.values()}
    findings = {path.name: cfn_lint(path.read_text(), cfn_lint_ignored) for path in templates}
    assert findings == {path.name: [] for path in templates}


def test_cfn_lint_reports_errors_and_unignored_warnings(
    synth: Callable[[str], Synthesized], cfn_lint_ignored: list[str]
) -> None:
    template = synth("dev").templates["pipeline"].to_json()
    rule_id = next(lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule")
    template["Resources"][rule_id]["Properties"]["State"] = "ON"  # E3030: not an allowed value
    findings = cfn_lint(json.dumps(template), cfn_lint_ignored)
    assert any(finding.startswith("E3030") for finding in findings), findings
    assert not any(finding.split()[0] in cfn_lint_ignored for finding in findings)
