"""What the admission Lambda's tests share: its code loaded as Lambda loads it, moto S3, the files
a new user drops, and helpers that run a batch or write a Map Run's results.

The test files mirror lambda/admission/: test_admission_handler.py (configuration, events, logs,
packaging), test_admission_checks.py, test_admission_moves.py, test_admission_summary.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from glue.contract import COLUMNS
from localrun.emulator.lambda_code import load_lambda_modules

HANDLER_DIR = Path(__file__).resolve().parents[2] / "lambda" / "admission"
BUCKET = "landing-zone"
RUN = "run_2024-05-01T00-00-00_abc"
HEADER = ",".join(COLUMNS)
GOOD = f"{HEADER}\nO-1,C-1,2024-05-01,10.50,EUR\nO-2,C-2,2024-05-01,3.00,USD\n"
MAX_FILE_BYTES = 1000
ENV = {
    "LANDING_BUCKET": BUCKET,
    "INCOMING_PREFIX": "incoming/",
    "LANDING_PREFIX": "landing/",
    "QUARANTINE_PREFIX": "quarantine/",
    "MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    "CONTRACT_COLUMNS": HEADER,
}
EXPECTED = f"expected {HEADER}; found "
EMPTY_BATCH = {"admitted": 0, "quarantined": 0, "records": 0, "by_reason": {}, "examples": []}
REORDERED = "customer_id,order_id,order_date,amount,currency"
RESULTS = "admission-results/0c4f/"
MAP_RUN_ARN = "arn:aws:states:us-east-1:123456789012:mapRun:admission/Admit-files:0c4f"
EMPTY_SUMMARY = {
    "run": RUN,
    "admitted": 0,
    "quarantined": 0,
    "records": 0,
    "by_reason": {},
    "failed_batches": 0,
    "failed_items": 0,
    "examples": [],
}


@dataclass(frozen=True)
class AdmissionCode:
    """The modules of lambda/admission, freshly imported as Lambda imports them (flat, by name)."""

    handler: ModuleType
    config: ModuleType
    checks: ModuleType
    moves: ModuleType
    summary: ModuleType


def load_admission() -> AdmissionCode:
    modules = load_lambda_modules(HANDLER_DIR, "handler", name="admission_handler")
    return AdmissionCode(**modules)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def env(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def adm(env: None) -> Iterator[AdmissionCode]:
    yield load_admission()
    sys.modules.pop("admission_handler", None)


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(s3: Any, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def keys(s3: Any) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def safe(key: str) -> str:
    """The contract's safe name (ADMISSION_CONTRACT §1), computed here independently of the handler."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def landed(key: str, run: str = RUN) -> str:
    return f"landing/run={run}/{safe(key)}.csv"


def record_of(key: str, run: str = RUN) -> str:
    return f"landing/run={run}/_admitted/{safe(key)}.json"


def quarantined_at(key: str, extension: str, run: str = RUN) -> str:
    return f"quarantine/run={run}/{safe(key)}{extension}"


def admit(adm: AdmissionCode, *item_keys: str, run: str = RUN, size: int = 1) -> dict[str, Any]:
    """Run the handler on one batch; return each file's decision as {"admitted": [{"key", "destination"}],
    "quarantined": [{"key", "destination", "reason", "code"}]} (recorded as the handler makes them; its
    response keeps only counts, checked here to agree)."""
    decisions: list[Any] = []
    original = adm.moves.admit

    def recording(config: Any, key: str, run_: str) -> Any:
        decisions.append(original(config, key, run_))
        return decisions[-1]

    setattr(adm.moves, "admit", recording)  # noqa: B010 - the handler looks `admit` up on its moves module
    try:
        output = adm.handler.handler({"items": [{"key": k, "size": size, "run": run} for k in item_keys]}, None)
    finally:
        setattr(adm.moves, "admit", original)  # noqa: B010
    view: dict[str, Any] = {"admitted": [], "quarantined": []}
    for decision in decisions:
        entry = {"key": decision.key, "destination": decision.destination}
        if decision.rejection is None:
            view["admitted"].append(entry)
        else:
            view["quarantined"].append({**entry, "reason": decision.rejection.reason, "code": decision.rejection.code})
    assert (output["admitted"], output["quarantined"]) == (len(view["admitted"]), len(view["quarantined"]))
    assert output["records"] == sum(d.records for d in decisions if d.rejection is None)
    return view


def quarantined_one(adm: AdmissionCode, s3: Any, key: str, body: str | bytes) -> dict[str, Any]:
    """Drop one file, admit it, check it went to quarantine whole with its sidecar; return the entry."""
    put(s3, key, body)
    result = admit(adm, key)
    assert result["admitted"] == []
    [entry] = result["quarantined"]
    destination = entry["destination"]
    assert destination.startswith(f"quarantine/run={RUN}/{safe(key)}")
    assert keys(s3) == {destination, destination + ".reason.json"}
    assert read(s3, destination) == (body.encode() if isinstance(body, str) else body)
    sidecar = json.loads(read(s3, destination + ".reason.json"))
    assert sidecar == {
        "reason": entry["reason"],
        "code": entry["code"],
        "run": RUN,
        "original_key": key,
        "size": len(read(s3, destination)),
        "admitted_at": sidecar["admitted_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", sidecar["admitted_at"])
    return entry


def child(name: str, status: str, batch: list[str], output: dict[str, Any] | None = None) -> dict[str, Any]:
    """One child execution record as the Distributed Map's ResultWriter writes it."""
    record: dict[str, Any] = {
        "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:express:admission/Admit-files:{name}",
        "Input": json.dumps({"Items": [{"key": k, "size": 1, "run": RUN} for k in batch]}),
        "InputDetails": {"Included": True},
        "Name": name,
        "StartDate": "2024-05-01T00:00:00.000Z",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:admission/Admit-files",
        "Status": status,
        "StopDate": "2024-05-01T00:00:01.000Z",
    }
    if output is not None:
        record |= {"Output": json.dumps(output), "OutputDetails": {"Included": True}}
    else:
        record |= {"Error": "FileLostError", "Cause": '{"errorMessage": "incoming/x.csv is no longer ..."}'}
    return record


def write_results(s3: Any, succeeded: list[list[dict[str, Any]]], failed: list[list[dict[str, Any]]]) -> dict[str, str]:
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, groups in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        for index, records in enumerate(groups):
            key = f"{RESULTS}{status}_{index}.json"
            body = json.dumps(records)
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": MAP_RUN_ARN, "ResultFiles": files}
    s3.put_object(Bucket=BUCKET, Key=f"{RESULTS}manifest.json", Body=json.dumps(manifest))
    return {"Bucket": BUCKET, "Key": f"{RESULTS}manifest.json"}


def batch(admitted: int, records: int, *quarantined: tuple[str, str]) -> dict[str, Any]:
    """A batch's output as the handler returns it: counts, reasons, a few examples."""
    codes = Counter(code for _, code in quarantined)
    return {
        "admitted": admitted,
        "quarantined": len(quarantined),
        "records": records,
        "by_reason": dict(codes),
        "examples": [{"key": key, "code": code, "reason": f"{code} because"} for key, code in quarantined][:5],
    }
