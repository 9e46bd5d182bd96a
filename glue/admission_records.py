"""The run's admission records: which objects the job reads, and how many records each holds.

Admission (lambda/admission/moves.py) writes one record per admitted file, before the upload
leaves incoming/, to ``<landing prefix>run=<run>/_admitted/<h>.json``:
    {"original_key": str, "object_key": str (the landing copy), "size": int, "etag": str,
     "last_modified": ISO-8601 UTC (the upload's LastModified), "records": int, "run": str}
where ``records`` counts the file's data records by the reader contract. The job reads exactly
the objects these records name, never a folder listing of data files, so a name Spark or Hadoop
would read differently (hidden ``_``/``.`` names, globs, ``//``, ``..``, ``:``) never decides what
is read; the manifest's ``admitted_records`` is the sum of ``records``, which the check holds
against the rows published and rejected.

Pure Python, no pyspark: glue/job.py reads the records from S3 with boto3, the local Glue stand-in
from moto's store; both hand the documents to `admitted_file`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RECORDS_FOLDER = "_admitted/"
# A landing copy's name: letters, digits, "_" and "-" (not first), then ".csv". Nothing Hadoop
# reads as a glob, a hidden file, a scheme or another folder (admission names them <sha256>.csv).
SAFE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]*\.csv")
# One fixed format, so the text sorts as the time does ("newest duplicate wins").
UPLOADED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class AdmissionRecordError(ValueError):
    """A record is not what admission writes: a wiring bug, never a data problem."""


@dataclass(frozen=True, kw_only=True)
class AdmittedFile:
    original_key: str  # the upload's key under incoming/
    object_key: str  # its landing copy, in the run folder
    uploaded: str  # the upload's LastModified, UTC, UPLOADED_FORMAT
    records: int  # data records admission counted


def records_prefix(run_prefix: str) -> str:
    """Where a run folder's admission records are (`run_prefix` ends in "/")."""
    return f"{run_prefix}{RECORDS_FOLDER}"


def is_record_key(key: str, run_prefix: str) -> bool:
    return key.startswith(records_prefix(run_prefix)) and key.endswith(".json")


def admitted_file(document: Any, *, run_prefix: str, where: str) -> AdmittedFile:
    """The file one record admits; AdmissionRecordError names the record (`where`), field and value."""
    if not isinstance(document, dict):
        raise AdmissionRecordError(f"admission record {where}: must be a JSON object, got {type(document).__name__}")

    def field(name: str, kind: type) -> Any:
        value = document.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise AdmissionRecordError(
                f"admission record {where}: field {name!r} is {value!r}; expected {kind.__name__}"
            )
        return value

    original_key, object_key, records = field("original_key", str), field("object_key", str), field("records", int)
    if not original_key:
        raise AdmissionRecordError(f"admission record {where}: field 'original_key' is empty")
    name = object_key.removeprefix(run_prefix)
    if not object_key.startswith(run_prefix) or not SAFE_NAME.fullmatch(name):
        raise AdmissionRecordError(
            f"admission record {where}: field 'object_key' is {object_key!r}; expected a name in {run_prefix!r} "
            f"matching {SAFE_NAME.pattern}"
        )
    if records < 0:
        raise AdmissionRecordError(f"admission record {where}: field 'records' is {records}; expected >= 0")
    return AdmittedFile(
        original_key=original_key,
        object_key=object_key,
        uploaded=_utc(field("last_modified", str), where),
        records=records,
    )


def in_upload_order(files: Iterable[AdmittedFile]) -> list[AdmittedFile]:
    """Oldest upload first, then by original key; one object admitted twice is a wiring bug."""
    ordered = sorted(files, key=lambda f: (f.uploaded, f.original_key))
    seen: set[str] = set()
    for item in ordered:
        if item.object_key in seen:
            raise AdmissionRecordError(f"admission records: object {item.object_key!r} is admitted twice")
        seen.add(item.object_key)
    return ordered


def _utc(text: str, where: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AdmissionRecordError(
            f"admission record {where}: field 'last_modified' is {text!r}; expected ISO-8601 with a time zone"
        )
    return moment.astimezone(UTC).strftime(UPLOADED_FORMAT)
