"""Check a Glue run's manifest and decide whether the run's output is usable.

Event (from the state machine):
    {"bucket": str, "key": str, "max_rejected_ratio": float in [0, 1]}
Response:
    {"valid": bool, "reason": str, "admitted_records": int, "input_rows": int, "output_rows": int,
     "rejected_rows": int, "rejected_ratio": float, "manifest": "s3://bucket/key"}

Data problems (missing or malformed manifest, counts that do not add up -- input_rows, and the
records admission counted in the run's files (admitted_records), must each equal output_rows +
rejected_rows exactly --, no rows, too many rejects) give ``valid: false``
for the state machine to branch on: it publishes a valid run and quarantines the others. A malformed event is a
wiring bug and raises ValueError; S3 errors other than a missing key re-raise,
so the state machine's retry/catch handles them.

When the manifest could be read and its counts add up, the check also logs the run's rows in
CloudWatch embedded metric format (one JSON line CloudWatch Logs turns into metrics, dimension
FunctionName): RowsPublished = output_rows of a valid run (the rows the state machine publishes;
0 for a run it quarantines), RowsRejected = rejected_rows (the rows the job set aside). A replayed
run is checked, so counted, again.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

SCHEMA_VERSION = 2
# Mirrors glue/manifest.py (a separate deployment asset, so not importable here);
# a unit test keeps the two in step.
MANIFEST_FIELDS: dict[str, type] = {
    "schema_version": int,
    "run_id": str,
    "admitted_records": int,
    "input_rows": int,
    "output_rows": int,
    "rejected_rows": int,
    "output_path": str,
    "rejected_path": str,
    "input_files": list,
}
_COUNT_FIELDS = ("admitted_records", "input_rows", "output_rows", "rejected_rows")
# The metrics the dashboard reads, as stacks/pipeline_contract.py names them: this directory is
# deployed alone, so it keeps a copy, and tests/lambdas/test_embedded_metrics.py pins the two.
METRICS_NAMESPACE = "GluePipeline"
ROWS_PUBLISHED_METRIC = "RowsPublished"
ROWS_REJECTED_METRIC = "RowsRejected"
# Lambda sets the function's name; a local or test invocation outside Lambda may not.
LOCAL_FUNCTION_NAME = "local"
# The job writes a flat object with one list of file names (depth 2). Anything nested much deeper
# is not a manifest; checked before any value is shown in a reason, so no RecursionError.
MAX_MANIFEST_DEPTH = 8


@functools.cache
def _s3_client() -> Any:
    # First use, not import: importing stays side-effect free (tests, tooling),
    # and warm invocations reuse one client.
    return boto3.client("s3")


@dataclass(frozen=True)
class Request:
    bucket: str
    key: str
    max_rejected_ratio: float

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ManifestError(Exception):
    """The manifest cannot be trusted; the message is the user-facing reason."""


def parse_event(event: Any) -> Request:
    """Validate the event; raise ValueError naming the field, value and what is allowed."""
    if not isinstance(event, dict):
        raise ValueError(f"event must be a JSON object, got {type(event).__name__}: {event!r}")
    for field in ("bucket", "key"):
        value = event.get(field)
        if not isinstance(value, str) or not value:
            raise ValueError(f"event field {field!r} is {value!r}; expected a non-empty string")
    ratio = event.get("max_rejected_ratio")
    # bool is an int subclass; NaN fails every comparison, so it fails the range check.
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ValueError(f"event field 'max_rejected_ratio' is {ratio!r}; expected a number between 0 and 1 inclusive")
    return Request(bucket=event["bucket"], key=event["key"], max_rejected_ratio=float(ratio))


def read_manifest(request: Request) -> dict[str, Any]:
    """Fetch and validate the manifest; raise ManifestError if it is unusable."""
    try:
        response = _s3_client().get_object(Bucket=request.bucket, Key=request.key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchKey":
            raise ManifestError(f"manifest {request.uri} not found") from error
        raise
    body = response["Body"].read()
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"manifest {request.uri} is not valid JSON: {error}") from error
    except RecursionError as error:  # the parser recurses once per nested array or object
        raise ManifestError(
            f"manifest {request.uri} nests deeper than {MAX_MANIFEST_DEPTH} levels: not a manifest"
        ) from error
    return validate_manifest(manifest)


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    depth, level = 0, [value]
    while level:
        children = [c for v in level if isinstance(v, dict | list) for c in (v.values() if isinstance(v, dict) else v)]
        if any(isinstance(v, dict | list) for v in level):
            depth += 1
        level = children
    return depth


def validate_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest must be a JSON object, got {type(manifest).__name__}")
    if nesting_depth(manifest) > MAX_MANIFEST_DEPTH:
        raise ManifestError(f"manifest nests deeper than {MAX_MANIFEST_DEPTH} levels: not a manifest")
    for field, expected in MANIFEST_FIELDS.items():
        if field not in manifest:
            raise ManifestError(f"manifest field {field!r} is missing")
        value = manifest[field]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ManifestError(
                f"manifest field {field!r} must be {expected.__name__}, got {type(value).__name__}: {value!r}"
            )
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest field 'schema_version' is {manifest['schema_version']}; only {SCHEMA_VERSION} is supported"
        )
    for field in _COUNT_FIELDS:
        if manifest[field] < 0:
            raise ManifestError(f"manifest field {field!r} is negative: {manifest[field]}")
    admitted_records, input_rows, output_rows, rejected_rows = (manifest[field] for field in _COUNT_FIELDS)
    if output_rows + rejected_rows != input_rows:
        # Every row read lands in exactly one place: rows lost (or counted twice) fail the run.
        difference = input_rows - output_rows - rejected_rows
        what = f"{difference} row(s) unaccounted for" if difference > 0 else f"{-difference} row(s) too many"
        raise ManifestError(
            f"counts do not add up: input_rows {input_rows} != output_rows {output_rows} + "
            f"rejected_rows {rejected_rows} ({what})"
        )
    if output_rows + rejected_rows != admitted_records:
        # Admission counted the records of every file as it streamed through; a record the reader
        # merged, split or skipped shows here, whatever the job's own counts say.
        difference = admitted_records - output_rows - rejected_rows
        what = f"{difference} record(s) unaccounted for" if difference > 0 else f"{-difference} record(s) too many"
        raise ManifestError(
            f"records do not add up: admitted_records {admitted_records} (counted by admission) != "
            f"output_rows {output_rows} + rejected_rows {rejected_rows} ({what})"
        )
    return manifest


def evaluate(manifest: dict[str, Any], max_rejected_ratio: float) -> tuple[bool, str, float]:
    """Return (valid, reason, rejected_ratio) for a validated manifest."""
    input_rows, output_rows, rejected_rows = (manifest[field] for field in _COUNT_FIELDS[1:])
    if input_rows == 0:
        # The run's files hold no rows (header-only files): a valid no-op, said so in the notice,
        # rather than a false failure; there is nothing to publish.
        return True, "no new rows in this run's files: nothing to publish", 0.0
    ratio = rejected_rows / input_rows
    if output_rows == 0:
        return False, "no rows written", ratio
    # Plain float compare: n/d and a decimal threshold are both correctly rounded,
    # so a ratio exactly at the threshold (2/40 vs 0.05) compares equal and passes.
    if ratio > max_rejected_ratio:
        return (
            False,
            f"rejected ratio {ratio:.4f} ({rejected_rows}/{input_rows}) exceeds threshold {max_rejected_ratio:.4f}",
            ratio,
        )
    return True, f"ok: rejected ratio {ratio:.4f} within threshold {max_rejected_ratio:.4f}", ratio


def check(request: Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The check's answer, and the manifest it judged (None when the manifest cannot be trusted)."""
    counts = dict.fromkeys(_COUNT_FIELDS, 0)
    manifest: dict[str, Any] | None = None
    try:
        manifest = read_manifest(request)
    except ManifestError as error:
        valid, reason, ratio = False, str(error), 0.0
    else:
        counts = {field: manifest[field] for field in _COUNT_FIELDS}
        valid, reason, ratio = evaluate(manifest, request.max_rejected_ratio)
    result = {
        "valid": valid,
        "reason": reason,
        **counts,
        "rejected_ratio": ratio,
        "manifest": request.uri,
    }
    return result, manifest


def row_metrics(result: Mapping[str, Any]) -> dict[str, int]:
    """The rows of a checked run: published (the rows written, when the run is valid) and rejected."""
    return {
        ROWS_PUBLISHED_METRIC: result["output_rows"] if result["valid"] else 0,
        ROWS_REJECTED_METRIC: result["rejected_rows"],
    }


def embedded_metrics(values: Mapping[str, int], *, function_name: str, timestamp_ms: int) -> dict[str, Any]:
    """One CloudWatch embedded-metric-format document: counts under METRICS_NAMESPACE, dimension
    FunctionName. Printed as one JSON line, CloudWatch Logs extracts the metrics from it."""
    directive = {
        "Namespace": METRICS_NAMESPACE,
        "Dimensions": [["FunctionName"]],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
    }
    return {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
        "FunctionName": function_name,
        **values,
    }


def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event)
    result, manifest = check(request)
    # One structured line per decision for CloudWatch Logs Insights; no secrets here.
    print(json.dumps({"message": "check_results decision", "max_rejected_ratio": request.max_rejected_ratio, **result}))
    if manifest is not None:  # the check ran on counts that add up: the run's rows, as metrics
        metrics = embedded_metrics(
            row_metrics(result),
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", LOCAL_FUNCTION_NAME),
            timestamp_ms=int(time.time() * 1000),
        )
        print(json.dumps(metrics))
    return result
