"""What admission answers: a batch's bounded output, the round's totals, and its metrics.

A batch's response is {"admitted", "quarantined", "records", "by_reason": {code: count},
"examples": [at most BATCH_EXAMPLES {"key", "code", "reason"}, each cut to SHOWN_CHARS]}, bounded
whatever the batch size and key lengths (Step Functions caps a state's output at 256 KiB); each
file's full decision is in its admission record or reason sidecar, and in one log line.

The round's summary totals the child executions the Distributed Map's ResultWriter wrote (its
manifest names the result files): {"run", "admitted", "quarantined", "records", "by_reason",
"failed_batches", "failed_items", "examples": [up to SUMMARY_EXAMPLES]}. Its file counts also go
out as CloudWatch embedded metric format (one JSON log line that CloudWatch Logs turns into the
metrics FilesAdmitted and FilesQuarantined, dimension FunctionName), for the dashboard.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import moves
from config import preview

# A batch's response names a few files (each file's decision is in its record or sidecar); the
# run's summary a few more. Keys and reasons shown are cut to SHOWN_CHARS: S3 allows 1,024-byte keys.
BATCH_EXAMPLES = 5
SUMMARY_EXAMPLES = 10
SHOWN_CHARS = 300
BATCH_COUNTS = ("admitted", "quarantined", "records")
# The metrics the dashboard reads, as stacks/pipeline_contract.py names them: this directory is
# deployed alone, so it keeps a copy, and tests/lambdas/test_embedded_metrics.py pins the two.
METRICS_NAMESPACE = "GluePipeline"
FILES_ADMITTED_METRIC = "FilesAdmitted"
FILES_QUARANTINED_METRIC = "FilesQuarantined"


def shown(text: str) -> str:
    """A key or reason as a response shows it: at most SHOWN_CHARS characters."""
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


class BatchResult:
    """A batch's counts and a few examples: bounded whatever the batch size and key lengths."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(BATCH_COUNTS, 0)
        self.by_reason: Counter[str] = Counter()
        self.quarantined: list[dict[str, str]] = []

    def add(self, decision: moves.Decision) -> None:
        if decision.rejection is None:
            self.counts["admitted"] += 1
            self.counts["records"] += decision.records
            return
        self.counts["quarantined"] += 1
        self.by_reason[decision.rejection.code] += 1
        rejection = decision.rejection
        entry = {"key": shown(decision.key), "code": rejection.code, "reason": shown(rejection.reason)}
        self.quarantined.append(entry)
        self.quarantined[:] = examples(self.quarantined, BATCH_EXAMPLES)  # never more than a few held

    def as_output(self) -> dict[str, Any]:
        return {**self.counts, "by_reason": dict(sorted(self.by_reason.items())), "examples": self.quarantined}


def examples(entries: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Up to `limit` entries, taking one of each reason code in turn, so every kind of problem shows."""
    by_code: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_code.setdefault(str(entry.get("code")), []).append(entry)
    chosen: list[dict[str, Any]] = []
    depth = 0
    while len(chosen) < limit and any(len(group) > depth for group in by_code.values()):
        for group in by_code.values():
            if depth < len(group) and len(chosen) < limit:
                chosen.append(group[depth])
        depth += 1
    return chosen


# --- the round's summary -------------------------------------------------------------------------


def _read_json(bucket: str, key: str) -> Any:
    body = moves.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise ValueError(f"s3://{bucket}/{key} is not JSON: {error}") from error


def _result_files(manifest: dict[str, Any], status: str, where: str) -> list[str]:
    """The result files of one status; none when the manifest lists none (a zero-item Map Run)."""
    result_files = manifest.get("ResultFiles") or {}
    files = result_files.get(status) or [] if isinstance(result_files, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("Key"), str) for f in files):
        raise ValueError(f"{where}: ResultFiles.{status} must be a list of {{'Key', 'Size'}}, got {preview(files)}")
    return [f["Key"] for f in files]


def _child_records(bucket: str, key: str) -> list[dict[str, Any]]:
    records = _read_json(bucket, key)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"s3://{bucket}/{key}: expected a JSON array of child executions")
    return records


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _batch_output(record: dict[str, Any]) -> dict[str, Any]:
    try:
        output = _as_json(record.get("Output"))
    except ValueError:
        output = None
    valid = (
        isinstance(output, dict)
        and all(isinstance(output.get(f), int) and not isinstance(output.get(f), bool) for f in BATCH_COUNTS)
        and isinstance(output.get("by_reason"), dict)
        and isinstance(output.get("examples"), list)
    )
    if not valid:
        raise ValueError(
            f"child execution {record.get('Name')!r} succeeded, but its Output is not an admission result: "
            f"{preview(record.get('Output'))}"
        )
    return output


def tally(run: str, succeeded: Iterable[dict[str, Any]], failed: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Total the child executions' records (pure): counts, reasons and a few examples."""
    totals = dict.fromkeys(BATCH_COUNTS, 0)
    by_reason: Counter[str] = Counter()
    shown: list[dict[str, Any]] = []
    for record in succeeded:
        output = _batch_output(record)
        for field in BATCH_COUNTS:
            totals[field] += output[field]
        by_reason.update({str(code): int(count) for code, count in output["by_reason"].items()})
        shown = examples([*shown, *output["examples"]], SUMMARY_EXAMPLES)
    failed_batches = failed_items = 0
    for record in failed:
        failed_batches += 1
        try:
            batch = _as_json(record.get("Input"))
        except ValueError:
            batch = None
        items = batch.get("Items", batch.get("items")) if isinstance(batch, dict) else None
        failed_items += len(items) if isinstance(items, list) else 0
    return {
        "run": run,
        **totals,
        "by_reason": dict(sorted(by_reason.items())),
        "failed_batches": failed_batches,
        "failed_items": failed_items,
        "examples": shown,
    }


def total_map_run(writer: Mapping[str, str] | None, run: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Total a round from its ResultWriter output ({Bucket, Key} of the manifest; None when the Map
    Run wrote nothing, e.g. no items); return (the summary, what was read, for the log line)."""
    if writer is None:
        return tally(run, [], []), {"manifest": None}
    bucket, manifest_key = writer["Bucket"], writer["Key"]
    manifest = _read_json(bucket, manifest_key)
    where = f"s3://{bucket}/{manifest_key}"
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: expected a ResultWriter manifest (a JSON object), got {preview(manifest)}")
    # Result files are named relative to the bucket the Map wrote them to.
    results_bucket = manifest.get("DestinationBucket") or bucket
    succeeded = _result_files(manifest, "SUCCEEDED", where)
    failed = _result_files(manifest, "FAILED", where)
    pending = _result_files(manifest, "PENDING", where)
    summary = tally(
        run,
        (record for key in succeeded for record in _child_records(results_bucket, key)),
        (record for key in failed for record in _child_records(results_bucket, key)),
    )
    return summary, {"manifest": where, "pending_files": len(pending)}


# --- metrics -------------------------------------------------------------------------------------


def round_metrics(totals: Mapping[str, Any]) -> dict[str, int]:
    """The round's file counts, as its summary has them: every file is admitted or quarantined."""
    return {FILES_ADMITTED_METRIC: totals["admitted"], FILES_QUARANTINED_METRIC: totals["quarantined"]}


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
