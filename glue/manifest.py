"""Run manifest written by the Glue job and read by the check-results Lambda.

No pyspark import: the Lambda tests and the local runner use this without Spark.
Bump SCHEMA_VERSION on any incompatible change; the Lambda rejects versions it
does not know.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 2


def build_manifest(
    *,
    run_id: str,
    admitted_records: int,
    input_rows: int,
    output_rows: int,
    rejected_rows: int,
    output_path: str,
    rejected_path: str,
    input_files: list[str] | None = None,
) -> dict[str, Any]:
    """Return the JSON-serialisable manifest of one run.

    Raises ValueError on values the Lambda would reject anyway, so a wiring bug
    fails the job at the source instead of surfacing as a data-quality failure.
    """
    for name, text in (("run_id", run_id), ("output_path", output_path), ("rejected_path", rejected_path)):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{name} must be a non-empty string, got {text!r}")
    for name, count in (
        ("admitted_records", admitted_records),
        ("input_rows", input_rows),
        ("output_rows", output_rows),
        ("rejected_rows", rejected_rows),
    ):
        # bool is an int subclass; True as a row count is always a bug.
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name} must be a non-negative int, got {count!r}")
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        # Data records admission counted in the run's files (the sum of their admission records):
        # the check fails the run unless output_rows + rejected_rows is exactly this.
        "admitted_records": admitted_records,
        "input_rows": input_rows,
        "output_rows": output_rows,
        "rejected_rows": rejected_rows,
        "output_path": output_path,
        "rejected_path": rejected_path,
        # Files this run read rows from, for the record.
        "input_files": list(input_files or []),
    }
