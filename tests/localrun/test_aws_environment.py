"""localrun/emulator/aws_environment.py: nothing of the machine's AWS set-up reaches a local run."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from localrun.emulator.aws_environment import LOCAL_AWS_ENV, local_aws_environment
from localrun.emulator.deployment import local_aws
from stacks.common.paths import REPO_ROOT

MACHINE = {
    "AWS_PROFILE": "nope",  # no such profile
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # e.g. a LocalStack of the user's
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
    "AWS_REGION": "eu-west-3",
}


def test_inside_only_the_local_settings_and_after_the_machines_again(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in MACHINE.items():
        monkeypatch.setenv(key, value)
    before = dict(os.environ)
    with local_aws_environment():
        assert not {k for k in os.environ if k in MACHINE or k.startswith("AWS_ENDPOINT_URL")}
        assert {k: os.environ[k] for k in LOCAL_AWS_ENV} == LOCAL_AWS_ENV
    assert dict(os.environ) == before


def test_a_local_run_reaches_moto_whatever_endpoint_the_machine_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in MACHINE.items():
        monkeypatch.setenv(key, value)
    with local_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="local-bucket")  # to 127.0.0.1:9 it would fail to connect
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["local-bucket"]


def test_moto_imports_under_a_missing_profile_inside_the_local_environment() -> None:
    code = (
        "from localrun.emulator.aws_environment import local_aws_environment\n"
        "with local_aws_environment():\n"
        "    import localrun.emulator.deployment\n"
    )
    env = os.environ | MACHINE
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    outside = subprocess.run(
        [sys.executable, "-c", "import moto.ec2"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert "ProfileNotFound" in outside.stderr  # what the CLI met before it entered the environment first
