"""localrun/emulator/botocore_data.py: sessions share one loader inside the context, and only there."""

from __future__ import annotations

import subprocess
import sys
from unittest import mock

import boto3
import botocore.loaders
import botocore.session

from localrun.emulator import botocore_data
from stacks.common.paths import REPO_ROOT


def _three_sessions_with_an_sqs_client() -> None:
    for _ in range(3):
        boto3.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b").client("sqs")


def test_plain_botocore_still_parses_per_session_so_the_context_is_still_needed() -> None:
    """In a fresh interpreter (the test session runs inside the context): when this fails, botocore
    shares parsed data between sessions itself; delete botocore_data.py and its two uses."""
    probe = "from localrun.emulator.botocore_data import botocore_still_parses_per_session as p; print(p())"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "True", result.stderr[-2000:]


def test_sessions_made_inside_parse_each_file_once() -> None:
    with botocore_data.shared_botocore_data():
        _three_sessions_with_an_sqs_client()  # whatever an earlier test left unparsed
        with botocore_data.files_parsed() as parsed:
            _three_sessions_with_an_sqs_client()
        probe_inside = botocore_data.botocore_still_parses_per_session()
    assert parsed == []
    assert probe_inside is False


def test_boto3_sessions_do_not_grow_the_shared_loader() -> None:
    with botocore_data.shared_botocore_data():
        _three_sessions_with_an_sqs_client()
        loader = botocore.session.get_session().get_component("data_loader")
    assert len(loader.search_paths) == len(set(loader.search_paths))
    assert sum(path.endswith("boto3/data") for path in loader.search_paths) == 1


def test_only_the_outermost_context_restores_botocores_factory() -> None:
    before = botocore.session.create_loader
    # As if no context were entered (the test session's own is: tests/conftest.py).
    with (
        mock.patch.object(botocore_data, "_depth", 0),
        mock.patch.object(botocore.session, "create_loader", botocore.loaders.create_loader),
    ):
        with botocore_data.shared_botocore_data():
            with botocore_data.shared_botocore_data():
                pass
            assert botocore.session.create_loader is botocore_data._shared_loader  # still inside the outer one
        assert botocore.session.create_loader is botocore.loaders.create_loader
        with botocore_data.files_parsed() as outside:
            botocore.session.get_session().create_client("sqs", region_name="us-east-1")
    assert botocore.session.create_loader is before
    assert any(path.endswith("endpoints") for path in outside)  # a plain session parses again
