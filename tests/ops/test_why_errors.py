"""`make why` against AWS when it cannot get an answer: one line and exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto import mock_aws

from ops.why import main


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "PROFILE", "DEFAULT_PROFILE"):
        monkeypatch.delenv(f"AWS_{name}", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for


def test_no_credentials_is_one_line(no_aws_setup: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--region", "eu-west-1"]) == 2
    assert capsys.readouterr().err == (
        "error: no usable AWS credentials (Unable to locate credentials): configure a profile (PROFILE=...) "
        "or credentials\n"
    )


def test_a_missing_profile_is_one_line(no_aws_setup: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--region", "eu-west-1", "--profile", "sandbox"]) == 2
    said = "error: AWS could not be asked (The config profile (sandbox) could not be found)\n"
    assert capsys.readouterr().err == said


def test_a_stage_not_deployed_says_so_and_how_to_deploy_it(
    no_aws_setup: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert main(["--region", "eu-west-1", "--stage", "prod"]) == 2
    assert capsys.readouterr().err == (
        "error: Stack with id GluePipeline-prod-Pipeline does not exist: stage prod is not deployed in eu-west-1 "
        "(make deploy STAGE=prod; REGION=... if elsewhere)\n"
    )
