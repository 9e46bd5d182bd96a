"""Issue 15, finding 7: a schedule tick with an empty incoming/ ends cleanly.

A Map Run over zero items writes a manifest that lists no result files (AWS may leave
`ResultFiles` out altogether): the summary is all zeros, so the pipeline's "Proceed after
admission?" ends the round without crawling, as for a run that admitted nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localrun.emulator.lambda_code import load_lambda_modules

HANDLER = Path(__file__).resolve().parents[2] / "lambda" / "admission" / "handler.py"
BUCKET, RUN = "landing-zone", "run-1-r1"
ZERO = {"admitted": 0, "quarantined": 0, "by_reason": {}, "failed_batches": 0, "failed_items": 0, "examples": []}


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = "admission_handler_empty_round"
    module = load_lambda_modules(HANDLER.parent, HANDLER.stem, name=name)[HANDLER.stem]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield module, s3
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "manifest",
    [
        {"DestinationBucket": BUCKET, "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": []}},
        {"DestinationBucket": BUCKET, "ResultFiles": {}},
        {"DestinationBucket": BUCKET},  # no ResultFiles at all
    ],
    ids=["empty-lists", "empty-object", "absent"],
)
def test_a_zero_item_map_run_summarizes_to_zero(handler: tuple[ModuleType, Any], manifest: dict[str, Any]) -> None:
    module, s3 = handler
    key = "admission-results/map-run/manifest.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest))
    summary = module.summarize({"result_writer": {"Bucket": BUCKET, "Key": key}, "run": RUN}, None)
    assert {field: summary[field] for field in ZERO} == ZERO
    assert summary["run"] == RUN
