"""aws-cdk-lib's template validator in its helper process (stacks/template_validator.py).

The helper is started once per test process, as in the app; the cases about its process start their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aws_cdk as cdk
import pytest

from stacks import template_validator
from stacks.common.paths import REPO_ROOT

READS_PROC = pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="reads the processes from /proc")


def app_with_schema_violations(outdir: Path, *, builtin: bool) -> cdk.App:
    """An app whose one stack breaks three resource schemas (an unknown property, a wrong type, a pattern)."""
    app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=builtin)
    stack = cdk.Stack(app, "Broken")
    cdk.CfnResource(stack, "Queue", type="AWS::SQS::Queue", properties={"VisibilityTimeout": "forty", "Bogus": 1})
    cdk.CfnResource(stack, "Bucket", type="AWS::S3::Bucket", properties={"BucketName": "Not_Valid!!"})
    return app


def validation_report(outdir: Path) -> str:
    return (outdir / "validation-report.json").read_text().replace(str(outdir), "<outdir>")


def test_the_helpers_report_is_aws_cdk_libs_own(tmp_path: Path) -> None:
    """The same findings, severities, paths and construct paths as aws-cdk-lib's built-in validator gives
    (its errors downgraded to warnings by the plugin's name in both)."""
    builtin = app_with_schema_violations(tmp_path / "builtin", builtin=True)
    builtin.synth()
    helped = app_with_schema_violations(tmp_path / "helper", builtin=False)
    cdk.Validations.of(helped).add_plugins(*template_validator.plugins())
    helped.synth()

    expected = validation_report(tmp_path / "builtin")
    assert all(rule in expected for rule in ("F3002", "F3012", "F3031")), expected  # the case is what it says
    assert validation_report(tmp_path / "helper") == expected


@pytest.mark.parametrize("acknowledged", [False, True])
def test_an_acknowledgement_silences_the_helpers_finding(tmp_path: Path, acknowledged: bool) -> None:
    """As it does the built-in one's: findings are acknowledged by `CloudFormation-Validate::<rule>`."""
    app = cdk.App(
        outdir=str(tmp_path),
        builtin_cloud_formation_validation=False,
        context={"@aws-cdk/core:validateAgainstDefaultRules": True},  # findings are errors, as in cdk.json
    )
    bucket = cdk.CfnResource(cdk.Stack(app, "S"), "Bucket", type="AWS::S3::Bucket", properties={"BucketName": "No!"})
    cdk.Validations.of(app).add_plugins(*template_validator.plugins())
    if acknowledged:
        cdk.Validations.of(bucket).acknowledge(cdk.Acknowledgment(id="CloudFormation-Validate::F3031", reason="a test"))
        app.synth()
    else:
        with pytest.raises(RuntimeError, match="CloudFormation-Validate::F3031"):
            app.synth()


def test_build_app_validates_through_the_helper_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stack goes to the helper, its findings fail the synth (the app opts in to errors, cdk.json), and
    aws-cdk-lib's built-in validator is off: one report, not two."""
    from app import build_app
    from stacks.config.stages import config_for

    asked: list[list[str]] = []
    validate = template_validator._Helper.validate

    def recording(self: template_validator._Helper, request: dict[str, object]) -> dict[str, object]:
        asked.append([stack["stack_construct_path"] for stack in request["stack_templates"]])  # type: ignore[attr-defined]
        return validate(self, request)

    monkeypatch.setattr(template_validator._Helper, "validate", recording)
    built, stacks = build_app(config=config_for("dev"), outdir=str(tmp_path))
    cdk.CfnResource(stacks["storage"], "Broken", type="AWS::S3::Bucket", properties={"BucketName": "Not_Valid!!"})
    with pytest.raises(RuntimeError, match=r"Not_Valid!!.*\(CloudFormation Validate\)"):
        built.synth()

    assert asked == [[stack.node.path for stack in stacks.values()]]
    report = validation_report(tmp_path)
    assert report.count('"pluginName": "CloudFormation Validate"') == 1, report


def test_cdk_validation_false_turns_the_validator_off_as_it_does_aws_cdk_libs(monkeypatch: pytest.MonkeyPatch) -> None:
    """CDK_VALIDATION=false is aws-cdk-lib's switch for its built-in validator: then the app registers none
    (app.py adds `*template_validator.plugins()`), and no helper is started."""
    monkeypatch.setattr(template_validator, "_helper", None)
    monkeypatch.setenv("CDK_VALIDATION", "false")
    assert template_validator.plugins() == []
    template_validator.start()
    assert template_validator._helper is None, "a helper was started"


def test_an_error_in_the_helper_fails_the_validation_and_the_helper_serves_on(tmp_path: Path) -> None:
    def request(template: Path) -> dict[str, object]:
        stack = {"stack_construct_path": "S", "template_path": str(template), "account_id": None, "region": None}
        return {"stack_templates": [stack], "account_id": None, "region": None}

    template_validator.start()
    helper = template_validator._helper
    assert helper is not None
    with pytest.raises(template_validator.TemplateValidatorError, match="validating failed: .*no such file"):
        helper.validate(request(tmp_path / "missing.template.json"))
    (tmp_path / "ok.template.json").write_text('{"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}')
    assert helper.validate(request(tmp_path / "ok.template.json")) == {"success": True, "violations": []}


def test_a_helper_that_ends_fails_with_its_own_last_lines() -> None:
    helper = template_validator._Helper((sys.executable, "-c", "import sys; sys.exit('no engine here')"))
    for _ in range(2):  # the build's failure, each time it is asked for
        with pytest.raises(
            template_validator.TemplateValidatorError,
            match=r"^template validator: the helper process ended \(exit status 1\)\nno engine here$",
        ):
            helper.built()


@READS_PROC
def test_the_helper_holds_none_of_the_apps_output_open() -> None:
    """`cdk synth` waits until nothing holds the app's stdout and stderr open: the helper has its own."""
    template_validator.start()
    helper = template_validator._helper
    assert helper is not None
    pid = helper._process.pid
    mine = {os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
    assert not {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (1, 2)} & mine


def descendants(pid: int) -> list[int]:
    children = [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and _parent(int(entry.name)) == pid
    ]
    return children + [grandchild for child in children for grandchild in descendants(child)]


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the third on (state, parent, ...); none once it has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _running(pid: int) -> bool:
    return _stat(pid)[:1] not in ([], ["Z"])  # a zombie has ended


@pytest.mark.slow  # a fresh interpreter (see pyproject.toml)
@READS_PROC
def test_the_helper_yields_to_the_app_and_ends_with_it() -> None:
    """Niced, on a single-threaded Node (stacks/jsii_node_single_threaded.sh), and gone once the app is."""
    code = """
        import sys
        from stacks import template_validator
        template_validator.start()
        template_validator._helper.built()
        print(template_validator._helper._process.pid, flush=True)
        sys.stdin.read()
    """
    app = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert app.stdout is not None and app.stdin is not None
    helper = int(app.stdout.readline())
    nice = int(_stat(helper)[16])
    commands = [Path(f"/proc/{pid}/cmdline").read_text().split("\0") for pid in descendants(helper)]
    app.stdin.close()
    assert app.wait(timeout=60) == 0

    assert nice == 10
    nodes = [
        command for command in commands if any(part.endswith(("jsii-runtime.js", "program.js")) for part in command)
    ]
    assert nodes and all("--single-threaded" in command for command in nodes), commands
    deadline = time.monotonic() + 30
    while _running(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(helper), "the helper outlived the app"


@pytest.mark.slow
def test_a_copy_of_the_package_under_another_name_runs_its_own_helper(tmp_path: Path) -> None:
    """A project that copies the package (here as `infra/`) and synthesizes from another folder."""
    shutil.copytree(REPO_ROOT / "stacks", tmp_path / "project" / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    code = """
        from infra import template_validator
        template_validator.start()
        print(template_validator._helper._process.args[-1], sorted(template_validator._helper.built()))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "project")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["infra.template_validator", "['rule_ids',", "'version']"]
