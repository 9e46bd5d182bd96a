"""The admission stage's two Lambda entry points: they parse the event, call the logic, and log.

``handler`` (one child workflow of the admission stage's Distributed Map, one batch): admit each
file into the run's landing folder, or quarantine it with a reason.
    event     {"items": [{"key": "incoming/a/b.csv", "size": 123, "run": "<run name>"}, ...]}
    response  {"admitted": int, "quarantined": int, "records": int, "by_reason": {code: int},
               "examples": [a few {"key", "code", "reason"}]}, bounded (summary.py)
The same key twice in one batch is admitted once and counted once.

``summarize`` totals a run's admission from the Distributed Map's ResultWriter output:
    event     {"result_writer": {"Bucket": str, "Key": ".../manifest.json"} (or null: no Map Run
               output, e.g. no items), "run": str}
    response  {"run", "admitted", "quarantined", "records", "by_reason": {code: count},
               "failed_batches", "failed_items", "examples": [a few {"key", "code", "reason"}]}
    and the round's FilesAdmitted and FilesQuarantined in embedded metric format (summary.py).

Beside this file, as Lambda loads them (the task root on sys.path): config.py (the environment),
checks.py (what makes a file admissible), moves.py (where each file goes, and the S3 calls that
move it), summary.py (bounded outputs, the round's totals, its metrics). Only this module prints:
each print is one log line (the local runner routes this module's print to the function's log).
boto3 and the standard library only: this directory is deployed alone.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import moves
import summary
from config import load_config, preview

# The pipeline names a round's run <execution name>-r<round>: an execution name (1-80 characters,
# none of white space, "/" or control characters, as StartExecution allows) and a short suffix.
RUN_NAME = re.compile(r"[^\s/\x00-\x1f\x7f-\x9f]{1,100}")
RUN_NAME_RULE = "1-100 characters, no white space, '/' or control characters"
# Lambda sets the function's name; a local or test invocation outside Lambda may not.
LOCAL_FUNCTION_NAME = "local"


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = load_config(os.environ)
    run, keys = parse_items(event)
    result = summary.BatchResult()
    for key in keys:
        decision = moves.admit(config, key, run)
        result.add(decision)
        # One structured line per file for CloudWatch Logs Insights: the whole decision.
        print(
            json.dumps(
                {
                    "message": "admission decision",
                    "run": run,
                    "decision": "quarantined" if decision.rejection else "admitted",
                    **decision.logged(),
                    "size": decision.size,
                    "resumed": decision.resumed,
                    **({"note": decision.note} if decision.note else {}),
                }
            )
        )
    return result.as_output()


def summarize(event: Any, context: Any) -> dict[str, Any]:
    writer, run = parse_summary_event(event)
    totals, read = summary.total_map_run(writer, run)
    print(json.dumps({"message": "admission summary", **read, **totals}))
    metrics = summary.embedded_metrics(
        summary.round_metrics(totals),
        function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", LOCAL_FUNCTION_NAME),
        timestamp_ms=int(time.time() * 1000),
    )
    print(json.dumps(metrics))
    return totals


def parse_items(event: Any) -> tuple[str, list[str]]:
    """Validate a batch event; return its run name ("" for no items) and its distinct keys, in order.

    A malformed event is a wiring bug: ValueError naming the item, the field and what is allowed.
    """
    if not isinstance(event, dict) or not isinstance(event.get("items"), list):
        raise ValueError(f"event must be a JSON object with a list 'items', got {preview(event)}")
    runs: set[str] = set()
    keys: dict[str, None] = {}
    for index, item in enumerate(event["items"]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a JSON object, got {preview(item)}")
        key, run, size = item.get("key"), item.get("run"), item.get("size")
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where} field 'key' is {preview(key)}; expected a non-empty string")
        if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
            raise ValueError(f"{where} field 'run' is {preview(run)}; expected a run name of {RUN_NAME_RULE}")
        # Listed, not trusted (the file's real size is read from S3), but a bad one means bad wiring.
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"{where} field 'size' is {preview(size)}; expected a non-negative integer")
        runs.add(run)
        keys[key] = None
    if len(runs) > 1:
        raise ValueError(f"items name different runs {sorted(runs)}; a batch belongs to one run")
    return (runs.pop() if runs else ""), list(keys)


def parse_summary_event(event: Any) -> tuple[dict[str, str] | None, str]:
    """Return (the ResultWriter's {Bucket, Key} or None, run); ValueError naming the field otherwise."""
    if not isinstance(event, dict):
        raise ValueError(f"event must be a JSON object, got {preview(event)}")
    run = event.get("run")
    if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
        raise ValueError(f"event field 'run' is {preview(run)}; expected a run name of {RUN_NAME_RULE}")
    if "result_writer" not in event:
        raise ValueError("event field 'result_writer' is missing; expected {'Bucket', 'Key'} or null")
    writer = event["result_writer"]
    if writer is None:
        return None, run  # a Map Run that wrote nothing (no items): nothing to total
    if not isinstance(writer, dict):
        raise ValueError(f"event field 'result_writer' is {preview(writer)}; expected {{'Bucket', 'Key'}}")
    for field in ("Bucket", "Key"):
        if not isinstance(writer.get(field), str) or not writer[field]:
            raise ValueError(f"event field 'result_writer.{field}' is {preview(writer.get(field))}; expected a string")
    return {"Bucket": writer["Bucket"], "Key": writer["Key"]}, run
