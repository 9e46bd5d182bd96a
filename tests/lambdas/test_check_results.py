from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from glue.manifest import build_manifest
from stacks import pipeline_contract as contract
from tests.lambdas.test_embedded_metrics import emf_document, metrics_of

HANDLER_PATH = Path(__file__).resolve().parents[2] / "lambda" / "check_results" / "handler.py"
BUCKET = "pipeline-artifacts"
KEY = "manifests/run-0001.json"
URI = f"s3://{BUCKET}/{KEY}"


def load_handler() -> ModuleType:
    """Import lambda/check_results/handler.py by path: `lambda` is not a package name."""
    spec = importlib.util.spec_from_file_location("check_results_handler", HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before exec: dataclasses resolve string annotations via sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def manifest(**overrides: Any) -> dict[str, Any]:
    """A manifest as the Glue job writes it (40 admitted and in, 38 out, 2 rejected), with overrides;
    admission's count follows input_rows unless overridden too."""
    base = build_manifest(
        run_id="jr_0123456789abcdef",
        admitted_records=40,
        input_rows=40,
        output_rows=38,
        rejected_rows=2,
        output_path="s3://curated/orders/",
        rejected_path="s3://curated/rejected/orders/",
    )
    input_rows = overrides.get("input_rows")
    follows = isinstance(input_rows, int) and not isinstance(input_rows, bool)
    return {**base, **({"admitted_records": input_rows} if follows else {}), **overrides}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def handler_module(aws_credentials: None) -> Iterator[ModuleType]:
    module = load_handler()
    yield module
    sys.modules.pop("check_results_handler", None)


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(s3: Any, body: dict[str, Any] | list[Any] | str | bytes) -> None:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data, ContentType="application/json")


def invoke(handler_module: ModuleType, **event: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler_module.handler(
        {"bucket": BUCKET, "key": KEY, "max_rejected_ratio": 0.1, **event}, None
    )
    return result


def test_s3_client_is_created_on_first_use_and_reused(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    def fake_client(service: str, **_: Any) -> object:
        created.append(service)
        return object()

    monkeypatch.setattr(boto3, "client", fake_client)

    module = load_handler()
    assert created == []  # nothing at import: tests and cold starts pick their own endpoint

    assert module._s3_client() is module._s3_client()
    assert created == ["s3"]


def test_valid_manifest(handler_module: ModuleType, s3: Any) -> None:
    put(s3, manifest())

    assert invoke(handler_module) == {
        "valid": True,
        "reason": "ok: rejected ratio 0.0500 within threshold 0.1000",
        "admitted_records": 40,
        "input_rows": 40,
        "output_rows": 38,
        "rejected_rows": 2,
        "rejected_ratio": 0.05,
        "manifest": URI,
    }


def test_manifest_fields_match_what_the_glue_job_writes(handler_module: ModuleType) -> None:
    # The handler cannot import glue.manifest (separate asset): keep the copies in step.
    assert set(handler_module.MANIFEST_FIELDS) == set(manifest())
    assert handler_module.SCHEMA_VERSION == manifest()["schema_version"]


def test_missing_manifest(handler_module: ModuleType, s3: Any) -> None:
    assert invoke(handler_module) == {
        "valid": False,
        "reason": f"manifest {URI} not found",
        "admitted_records": 0,
        "input_rows": 0,
        "output_rows": 0,
        "rejected_rows": 0,
        "rejected_ratio": 0.0,
        "manifest": URI,
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", f"manifest {URI} is not valid JSON"),
        (b"\xff\xfe\x00", f"manifest {URI} is not valid JSON"),
        ([manifest()], "manifest must be a JSON object, got list"),
    ],
    ids=["not_json", "not_utf8", "not_object"],
)
def test_unparseable_manifest(handler_module: ModuleType, s3: Any, body: Any, reason: str) -> None:
    put(s3, body)

    result = invoke(handler_module)

    assert result["valid"] is False
    assert result["reason"].startswith(reason)
    assert (result["input_rows"], result["output_rows"], result["rejected_rows"]) == (0, 0, 0)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        nested(100_000),  # deeper than the JSON parser can recurse
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        json.dumps(manifest(input_files="X")).replace('"X"', nested(900)),
        json.dumps(manifest(run_id="X")).replace('"X"', nested(20)),  # a wrong type, too deep to show
    ],
    ids=["array_100000_deep", "object_50000_deep", "input_files_900_deep", "run_id_20_deep"],
)
def test_deeply_nested_manifest_is_invalid_with_a_reason(handler_module: ModuleType, s3: Any, body: str) -> None:
    put(s3, body)

    result = invoke(handler_module)

    assert result["valid"] is False
    assert re.fullmatch(rf"manifest ({re.escape(URI)} )?nests deeper than 8 levels: not a manifest", result["reason"])
    assert (result["input_rows"], result["output_rows"], result["rejected_rows"]) == (0, 0, 0)


def test_nesting_depth_counts_levels(handler_module: ModuleType) -> None:
    deep: list[Any] = []
    for _ in range(2999):
        deep = [deep]
    assert [handler_module.nesting_depth(v) for v in (1, [], [1], {"a": [1, [2]]}, deep)] == [
        0,
        1,
        1,
        3,
        3000,
    ]
    assert handler_module.nesting_depth(manifest()) == 2  # what the job writes: well inside the limit


@pytest.mark.parametrize("field", sorted(manifest()))
def test_missing_field(handler_module: ModuleType, s3: Any, field: str) -> None:
    body = manifest()
    del body[field]
    put(s3, body)

    result = invoke(handler_module)

    assert (result["valid"], result["reason"]) == (False, f"manifest field '{field}' is missing")


@pytest.mark.parametrize(
    ("field", "value", "expected_type"),
    [
        ("schema_version", "1", "int"),
        ("run_id", 7, "str"),
        ("input_rows", "40", "int"),
        ("output_rows", 38.0, "int"),
        ("rejected_rows", True, "int"),
        ("output_path", None, "str"),
        ("rejected_path", ["s3://x/"], "str"),
    ],
)
def test_wrong_field_type(handler_module: ModuleType, s3: Any, field: str, value: Any, expected_type: str) -> None:
    put(s3, manifest(**{field: value}))

    result = invoke(handler_module)

    assert result["valid"] is False
    assert result["reason"].startswith(f"manifest field '{field}' must be {expected_type}, got ")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"schema_version": 1}, "manifest field 'schema_version' is 1; only 2 is supported"),
        ({"rejected_rows": -1}, "manifest field 'rejected_rows' is negative: -1"),
        (
            {"output_rows": 39},
            "counts do not add up: input_rows 40 != output_rows 39 + rejected_rows 2 (1 row(s) too many)",
        ),
        (
            # The example: 90 rows lost between reading and writing pass no longer.
            {"input_rows": 100, "output_rows": 10, "rejected_rows": 0},
            "counts do not add up: input_rows 100 != output_rows 10 + rejected_rows 0 (90 row(s) unaccounted for)",
        ),
        (
            {"input_rows": 40, "output_rows": 37, "rejected_rows": 2},
            "counts do not add up: input_rows 40 != output_rows 37 + rejected_rows 2 (1 row(s) unaccounted for)",
        ),
        (
            {"input_rows": 0, "output_rows": 0, "rejected_rows": 3},
            "counts do not add up: input_rows 0 != output_rows 0 + rejected_rows 3 (3 row(s) too many)",
        ),
        ({"input_rows": 4, "output_rows": 0, "rejected_rows": 4}, "no rows written"),
        (
            # The CRLF file with LF rows appended, read by Spark's own CSV reader: admission
            # counted 100 records, the job read 51 (50 LF rows as one) and its own counts added up.
            {"admitted_records": 100, "input_rows": 51, "output_rows": 50, "rejected_rows": 1},
            "records do not add up: admitted_records 100 (counted by admission) != output_rows 50 + "
            "rejected_rows 1 (49 record(s) unaccounted for)",
        ),
        (
            {"admitted_records": 39},
            "records do not add up: admitted_records 39 (counted by admission) != output_rows 38 + "
            "rejected_rows 2 (1 record(s) too many)",
        ),
        (
            # Files in the run the job read nothing from.
            {"admitted_records": 5, "input_rows": 0, "output_rows": 0, "rejected_rows": 0},
            "records do not add up: admitted_records 5 (counted by admission) != output_rows 0 + "
            "rejected_rows 0 (5 record(s) unaccounted for)",
        ),
    ],
    ids=[
        "schema_version",
        "negative",
        "too_many",
        "rows_lost",
        "one_row_lost",
        "rows_from_nowhere",
        "no_output",
        "records_merged_by_the_reader",
        "records_from_nowhere",
        "admitted_files_not_read",
    ],
)
def test_invalid_manifest_content(handler_module: ModuleType, s3: Any, overrides: dict[str, Any], reason: str) -> None:
    put(s3, manifest(**overrides))

    # A threshold of 1 so that only the rule under test can fail.
    result = invoke(handler_module, max_rejected_ratio=1)

    assert (result["valid"], result["reason"]) == (False, reason)


def test_no_new_input_is_valid_and_says_so(handler_module: ModuleType, s3: Any) -> None:
    # The run's files hold a header and no rows.
    put(s3, manifest(input_rows=0, output_rows=0, rejected_rows=0, input_files=["s3://landing/run=r1/a.csv"]))

    result = invoke(handler_module, max_rejected_ratio=0.1)

    assert (result["valid"], result["reason"]) == (True, "no new rows in this run's files: nothing to publish")


def test_counts_that_do_not_add_up_fail_even_with_a_threshold_of_one(handler_module: ModuleType, s3: Any) -> None:
    # The ratio 0/100 would pass any threshold: the lost rows alone must fail the run, and the
    # reason (the notice's cause) carries the numbers.
    put(s3, manifest(input_rows=100, output_rows=10, rejected_rows=0))

    result = invoke(handler_module, max_rejected_ratio=1)

    assert result["valid"] is False
    assert all(number in result["reason"] for number in ("100", "10", "0", "90"))


def test_rejected_ratio_above_threshold(handler_module: ModuleType, s3: Any) -> None:
    put(s3, manifest(output_rows=35, rejected_rows=5))

    result = invoke(handler_module, max_rejected_ratio=0.1)

    assert result == {
        "valid": False,
        "reason": "rejected ratio 0.1250 (5/40) exceeds threshold 0.1000",
        "admitted_records": 40,
        "input_rows": 40,
        "output_rows": 35,
        "rejected_rows": 5,
        "rejected_ratio": 0.125,
        "manifest": URI,
    }


@pytest.mark.parametrize(
    ("input_rows", "rejected_rows", "threshold"),
    [(40, 4, 0.1), (40, 2, 0.05), (10, 3, 0.3), (3, 1, 1 / 3), (10, 0, 0)],
)
def test_ratio_equal_to_threshold_is_valid(
    handler_module: ModuleType, s3: Any, input_rows: int, rejected_rows: int, threshold: float
) -> None:
    put(s3, manifest(input_rows=input_rows, output_rows=input_rows - rejected_rows, rejected_rows=rejected_rows))

    result = invoke(handler_module, max_rejected_ratio=threshold)

    assert result["valid"] is True, result["reason"]
    assert result["rejected_ratio"] == threshold


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"key": KEY, "max_rejected_ratio": 0.1}, "'bucket' is None; expected a non-empty string"),
        ({"bucket": "", "key": KEY, "max_rejected_ratio": 0.1}, "'bucket' is ''; expected a non-empty string"),
        ({"bucket": BUCKET, "max_rejected_ratio": 0.1}, "'key' is None; expected a non-empty string"),
        ({"bucket": BUCKET, "key": 5, "max_rejected_ratio": 0.1}, "'key' is 5; expected a non-empty string"),
        ({"bucket": BUCKET, "key": KEY}, "'max_rejected_ratio' is None; expected a number between 0 and 1"),
        ({"bucket": BUCKET, "key": KEY, "max_rejected_ratio": "0.1"}, "'max_rejected_ratio' is '0.1'; expected"),
        ({"bucket": BUCKET, "key": KEY, "max_rejected_ratio": True}, "'max_rejected_ratio' is True; expected"),
        ({"bucket": BUCKET, "key": KEY, "max_rejected_ratio": 1.5}, "'max_rejected_ratio' is 1.5; expected"),
        ({"bucket": BUCKET, "key": KEY, "max_rejected_ratio": -0.01}, "'max_rejected_ratio' is -0.01; expected"),
        ({"bucket": BUCKET, "key": KEY, "max_rejected_ratio": float("nan")}, "'max_rejected_ratio' is nan; expected"),
        ([BUCKET, KEY], "event must be a JSON object, got list"),
    ],
    ids=[
        "no_bucket",
        "empty_bucket",
        "no_key",
        "key_not_str",
        "no_threshold",
        "threshold_str",
        "threshold_bool",
        "threshold_above_1",
        "threshold_below_0",
        "threshold_nan",
        "not_object",
    ],
)
def test_bad_event_raises(handler_module: ModuleType, event: Any, message: str) -> None:
    # No S3 fixture: a bad event must fail before any AWS call.
    with pytest.raises(ValueError, match=re.escape(message)):
        handler_module.handler(event, None)


def test_missing_bucket_error_is_reraised(handler_module: ModuleType, s3: Any) -> None:
    with pytest.raises(ClientError) as raised:
        invoke(handler_module, bucket="no-such-bucket")

    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


def test_access_denied_is_reraised(handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
    monkeypatch.setattr(handler_module, "_s3_client", lambda: client)

    with stubber, pytest.raises(ClientError) as raised:
        invoke(handler_module)

    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_logs_one_json_line_per_decision(
    handler_module: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, manifest(output_rows=35, rejected_rows=5))

    result = invoke(handler_module)

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # the decision, then the run's rows as metrics
    logged = json.loads(lines[0])
    assert logged["message"] == "check_results decision"
    assert logged["max_rejected_ratio"] == 0.1
    assert {name: logged[name] for name in result} == result


# --- the run's rows as embedded metrics ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "valid", "published", "rejected"),
    [
        ({}, True, 38, 2),  # 40 in: 38 written and published, 2 rejected
        ({"output_rows": 35, "rejected_rows": 5}, False, 0, 5),  # too many rejects: quarantined, nothing published
        ({"input_rows": 0, "output_rows": 0, "rejected_rows": 0}, True, 0, 0),  # no new rows
    ],
    ids=["published", "quarantined", "no_rows"],
)
def test_a_checked_run_emits_its_published_and_rejected_rows(
    handler_module: ModuleType,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, int],
    valid: bool,
    published: int,
    rejected: int,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "Pipeline-CheckResults-1A2B3C")
    put(s3, manifest(**overrides))

    result = invoke(handler_module)

    assert result["valid"] is valid
    metrics = metrics_of(emf_document(capsys.readouterr().out.splitlines()[-1]))
    assert metrics == {
        "namespace": contract.METRICS_NAMESPACE,
        "dimensions": {"FunctionName": "Pipeline-CheckResults-1A2B3C"},
        "values": {contract.ROWS_PUBLISHED_METRIC: published, contract.ROWS_REJECTED_METRIC: rejected},
    }
    # The job's own counts: rows rejected, and rows written (published only when the run is valid).
    assert rejected == result["rejected_rows"] and published == (result["output_rows"] if valid else 0)


@pytest.mark.parametrize(
    "body", [None, "{not json", manifest(output_rows=10)], ids=["missing", "not_json", "lost_rows"]
)
def test_no_metrics_when_the_manifest_cannot_be_trusted(
    handler_module: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str], body: Any
) -> None:
    if body is not None:
        put(s3, body)

    result = invoke(handler_module)

    assert result["valid"] is False
    [logged] = capsys.readouterr().out.splitlines()
    assert json.loads(logged)["message"] == "check_results decision"


def test_metrics_outside_lambda_are_named_local(
    handler_module: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    put(s3, manifest())

    invoke(handler_module)

    assert metrics_of(emf_document(capsys.readouterr().out.splitlines()[-1]))["dimensions"] == {"FunctionName": "local"}
