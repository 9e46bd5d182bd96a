"""Where each file goes, and the S3 calls that move it there safely.

Names (deterministic, so a retried batch finds its own work): with h = the first 40 hex digits of
SHA-256 of the original key (UTF-8), nothing a reader can misread (no hidden-file "_" or ".", glob,
"//", "..", ":" or "\\", and a short key however long the original):
    admitted     <LANDING_PREFIX>run=<run>/<h>.csv, and its admission record
                 <LANDING_PREFIX>run=<run>/_admitted/<h>.json: {"original_key", "object_key", "size",
                 "etag", "last_modified" (the upload's, ISO-8601 UTC), "records", "run"}
    quarantined  <QUARANTINE_PREFIX>run=<run>/<h><the original extension>, plus <that>.reason.json:
                 {"reason", "code", "run", "original_key", "size", "admitted_at", ...}
    a folder marker ("incoming/a/") is stored as <h>.folder-marker: a key ending in "/" would show
    as yet another folder in the console, and the sidecar could not sit beside it.
    a key outside INCOMING_PREFIX is not this stage's to move (a wiring bug, or another run's
    data): counted as quarantined with no destination, and left where it is.
    a poison object (archived, unreadable: S3 refuses it the same way on every attempt) cannot be
    copied: its sidecar goes to the quarantine folder alone, with the version it was, and the
    object leaves incoming/ by a delete, which in a versioned bucket (as the storage stack makes
    it) keeps it as a noncurrent version; in a bucket without versions it is left where it is.

A move is CopyObject (conditional on the ETag that was checked), then the record or sidecar, then
DeleteObject (conditional on the same ETag): nothing leaves incoming/ before its copy and record
exist, so a batch that fails half-way strands nothing (the job reads the run's records), and a
file replaced while it is being admitted is checked again (before the copy) or left under
incoming/ for the next round (after it). A retried or redriven batch converges: a file no longer
under incoming/ is reported from its record or sidecar; a file that is nowhere raises
FileLostError. S3 errors that are not about the object (throttling, 5xx, the function's own
missing grants) re-raise: the Map's retry and tolerated failures handle them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import checks
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from checks import Rejection, Source
from config import Config

FOLDER_MARKER_SUFFIX = ".folder-marker"
SIDECAR_SUFFIX = ".reason.json"
RECORDS_FOLDER = "_admitted/"
# Hex digits of SHA-256 in a safe name: 160 bits, no collision among any run's files.
NAME_HEX_DIGITS = 40
# An extension kept on a quarantined file's safe name (so it opens with the right program).
SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}")
READ_CHUNK_BYTES = 1024 * 1024
# CopyObject copies at most 5 GiB; a larger file (too large, so quarantined) goes by multipart copy.
COPY_OBJECT_LIMIT = 5 * 1024**3
# A file replaced this many times while being checked fails the batch rather than loop.
MAX_ATTEMPTS = 3

_VANISHED_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
# S3's answers about the object itself, the same on every attempt: poison, never retried.
_ARCHIVED_CODES = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError"})
_REFUSED_CODES = frozenset({"AccessDenied", "403", "InvalidRequest"})


@functools.cache
def s3_client() -> Any:
    # First use, not import: importing stays side-effect free, warm invocations reuse one client.
    return boto3.client("s3")


class FileLostError(Exception):
    """A file of the batch is neither under incoming nor at a destination an attempt would use."""


class SourceChangedError(Exception):
    """A file kept being replaced while it was checked and copied."""


class _Vanished(Exception):
    """The source object is gone (another attempt moved it, or someone deleted it)."""


class _Changed(Exception):
    """The source object is no longer the version that was checked."""


class _Refused(Exception):
    """S3 refuses to read or copy the object itself, the same way on every attempt (poison)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


@dataclass(frozen=True, kw_only=True)
class Decision:
    key: str
    destination: str | None
    rejection: Rejection | None = None
    size: int | None = None
    records: int = 0  # data records of an admitted file
    resumed: bool = False  # reported from the record or sidecar of an earlier attempt
    note: str | None = None

    def logged(self) -> dict[str, Any]:
        """The log line's fields (the whole decision; the batch's response keeps only counts)."""
        fields: dict[str, Any] = {"key": self.key, "destination": self.destination}
        if self.rejection is None:
            return {**fields, "records": self.records}
        return {**fields, "reason": self.rejection.reason, "code": self.rejection.code}


# --- where files go (pure) ----------------------------------------------------------------------


def safe_name(key: str) -> str:
    """The name a file gets in the run's folders: hex digits of SHA-256 of its original key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:NAME_HEX_DIGITS]


def run_folder(prefix: str, run: str) -> str:
    return f"{prefix}run={run}/"


def landing_key(config: Config, key: str, run: str) -> str:
    return f"{run_folder(config.landing_prefix, run)}{safe_name(key)}.csv"


def record_key(config: Config, key: str, run: str) -> str:
    return f"{run_folder(config.landing_prefix, run)}{RECORDS_FOLDER}{safe_name(key)}.json"


def quarantine_key(config: Config, key: str, run: str) -> str:
    if key.endswith("/"):
        extension = FOLDER_MARKER_SUFFIX
    else:
        name = key.rsplit("/", 1)[-1]
        dot = name.rfind(".")
        extension = name[dot:] if dot > 0 and SAFE_EXTENSION.fullmatch(name[dot:]) else ""
    return f"{run_folder(config.quarantine_prefix, run)}{safe_name(key)}{extension}"


# --- S3 -----------------------------------------------------------------------------------------


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _source_errors(operation: str = "") -> Iterator[None]:
    """A missing source object becomes _Vanished, a failed ETag condition _Changed, an archived one
    (and, for a read of the source, a refused one) _Refused; the rest re-raise."""
    try:
        yield
    except ClientError as error:
        code = _error_code(error)
        if code in _VANISHED_CODES:
            raise _Vanished() from error
        if code in _CHANGED_CODES:
            raise _Changed() from error
        if code in _ARCHIVED_CODES:
            raise _Refused(checks.archived(f"S3 answered {code} to {operation or 'a read'}")) from error
        if code in _REFUSED_CODES and operation == "GetObject":
            message = str(error.response.get("Error", {}).get("Message", ""))
            raise _Refused(checks.unreadable(code, message)) from error
        raise


def _call(operation: str, **kwargs: Any) -> Any:
    with _source_errors(_OPERATIONS.get(operation, operation)):
        return getattr(s3_client(), operation)(**kwargs)


_OPERATIONS = {"get_object": "GetObject", "copy_object": "CopyObject", "head_object": "HeadObject"}


def inspect(config: Config, key: str) -> tuple[Rejection | None, Source, int]:
    """Check one file under incoming; return (rejection or None, what HeadObject said, data records)."""
    source = Source.from_head(_call("head_object", Bucket=config.bucket, Key=key))
    archived = checks.archived_rejection(source)
    if archived is not None:
        raise _Refused(archived)
    rejection = checks.name_rejection(config, key) or checks.size_rejection(source.size, config.max_file_bytes)
    if rejection is not None or not key.endswith(".csv"):
        return rejection, source, 0
    body = _call("get_object", Bucket=config.bucket, Key=key, IfMatch=source.etag)["Body"]
    counter = checks.RecordCounter()
    with closing(body):
        text, complete, rejection = checks.scan_utf8(
            body.iter_chunks(READ_CHUNK_BYTES), keep_chars=checks.HEADER_CHARS, on_text=counter.feed
        )
    rejection = rejection or checks.header_rejection(text, complete, config.columns) or counter.finish()
    return rejection, source, counter.data_records


def _copy(config: Config, key: str, destination: str, source: Source) -> None:
    copy_source = {"Bucket": config.bucket, "Key": key}
    try:
        if source.size <= COPY_OBJECT_LIMIT:
            _call(
                "copy_object",
                CopySource=copy_source,
                Bucket=config.bucket,
                Key=destination,
                CopySourceIfMatch=source.etag,
            )
            return
        with _source_errors("CopyObject"):  # boto3's managed copy: multipart, each part copied inside S3
            s3_client().copy(
                copy_source,
                config.bucket,
                destination,
                ExtraArgs={"CopySourceIfMatch": source.etag},
                Config=TransferConfig(multipart_threshold=COPY_OBJECT_LIMIT),
            )
    except ClientError as error:
        if _error_code(error) in _REFUSED_CODES:
            _read_probe(config, key, source)  # the source's fault (raises _Refused), or the destination's
        raise
    # Parts copied on worker threads: make sure the whole copy is there before the source goes.
    copied = s3_client().head_object(Bucket=config.bucket, Key=destination)
    if int(copied["ContentLength"]) != source.size:
        raise RuntimeError(
            f"multipart copy of {key} to {destination} has {copied['ContentLength']} of {source.size} bytes"
        )


def _read_probe(config: Config, key: str, source: Source) -> None:
    """A refused copy: read the source's first byte to tell whose fault it is (_Refused if the source's)."""
    if source.size:
        _call("get_object", Bucket=config.bucket, Key=key, IfMatch=source.etag, Range="bytes=0-0")["Body"].close()


def _put_json(config: Config, key: str, document: dict[str, Any]) -> None:
    s3_client().put_object(
        Bucket=config.bucket, Key=key, Body=json.dumps(document, indent=2).encode(), ContentType="application/json"
    )


def _delete_source(config: Config, key: str, etag: str) -> str | None:
    """Delete the checked version only; a note if the key now holds another version, or nothing."""
    try:
        _call("delete_object", Bucket=config.bucket, Key=key, IfMatch=etag)
    except _Vanished:
        return None  # another attempt with the same batch deleted it after its own copy
    except _Changed:
        return "replaced under incoming after it was copied: the new version is left for the next round"
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def admit_once(config: Config, key: str, run: str) -> Decision:
    try:
        rejection, source, records = inspect(config, key)
    except _Refused as refused:
        return _set_aside(config, key, run, refused.rejection)
    try:
        if rejection is None:
            return _land(config, key, run, source, records)
        return _quarantine(config, key, run, source, rejection)
    except _Refused as refused:  # the copy was refused: the object's fault, found late
        return _set_aside(config, key, run, refused.rejection)


def _land(config: Config, key: str, run: str, source: Source, records: int) -> Decision:
    destination = landing_key(config, key, run)
    _copy(config, key, destination, source)
    record = {
        "original_key": key,
        "object_key": destination,
        "size": source.size,
        "etag": source.etag,
        "last_modified": _utc(source.last_modified),
        "records": records,
        "run": run,
    }
    _put_json(config, record_key(config, key, run), record)  # before the delete: nothing is stranded
    note = _delete_source(config, key, source.etag)
    return Decision(key=key, destination=destination, size=source.size, records=records, note=note)


def _quarantine(config: Config, key: str, run: str, source: Source, rejection: Rejection) -> Decision:
    destination = quarantine_key(config, key, run)
    _copy(config, key, destination, source)
    _put_json(config, destination + SIDECAR_SUFFIX, _sidecar(key, run, rejection, source.size))
    note = _delete_source(config, key, source.etag)
    return Decision(key=key, destination=destination, rejection=rejection, size=source.size, note=note)


def _sidecar(key: str, run: str, rejection: Rejection, size: int | None, **more: Any) -> dict[str, Any]:
    return {
        "reason": rejection.reason,
        "code": rejection.code,
        "run": run,
        "original_key": key,
        "size": size,
        "admitted_at": _now(),
        **more,
    }


def _set_aside(config: Config, key: str, run: str, rejection: Rejection) -> Decision:
    """A poison object (S3 will not read or copy it): its sidecar alone goes to quarantine, and the
    object leaves incoming/ by a delete if the bucket keeps its version, or stays where it is."""
    head = _call("head_object", Bucket=config.bucket, Key=key)
    source = Source.from_head(head)
    destination = quarantine_key(config, key, run)
    kept: dict[str, Any]
    if source.versioned:
        kept = {"kept_as": {"key": key, "version_id": source.version_id, "storage_class": source.storage_class}}
        reason = f"{rejection.reason} (kept as version {source.version_id} of its key; not copied)"
    else:
        kept = {"left_at": key}
        reason = f"{rejection.reason} (left under incoming/: the bucket keeps no versions; not copied)"
    rejection = Rejection(rejection.code, reason)
    _put_json(config, destination + SIDECAR_SUFFIX, _sidecar(key, run, rejection, source.size, copied=False, **kept))
    note = _delete_source(config, key, source.etag) if source.versioned else "left where it is"
    return Decision(key=key, destination=destination + SIDECAR_SUFFIX, rejection=rejection, size=source.size, note=note)


def find_earlier(config: Config, key: str, run: str) -> Decision:
    """Report a file that is no longer under incoming from its record or sidecar."""
    record = _read_document(config, record_key(config, key, run))
    if isinstance(record, dict) and record.get("original_key") == key:
        return Decision(
            key=key,
            destination=str(record.get("object_key")),
            size=record.get("size"),
            records=int(record.get("records") or 0),
            resumed=True,
        )
    destination = quarantine_key(config, key, run)
    sidecar = _read_document(config, destination + SIDECAR_SUFFIX)
    if not isinstance(sidecar, dict) or sidecar.get("original_key") != key:
        raise FileLostError(
            f"{key} is no longer under incoming, yet neither its admission record "
            f"{record_key(config, key, run)} nor its sidecar {destination}{SIDECAR_SUFFIX} names it: "
            "deleted by someone, or lost"
        )
    rejection = Rejection(str(sidecar.get("code", "unknown")), str(sidecar.get("reason", "")))
    if sidecar.get("copied") is False:
        destination += SIDECAR_SUFFIX
    return Decision(key=key, destination=destination, rejection=rejection, size=sidecar.get("size"), resumed=True)


def _read_document(config: Config, key: str) -> Any:
    """A JSON document this function wrote, or None (absent, or not JSON: not one of ours)."""
    try:
        body = s3_client().get_object(Bucket=config.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if _error_code(error) in _VANISHED_CODES:
            return None
        raise  # our own folders: a refusal here is a missing grant, not a poison object
    try:
        return json.loads(body)
    except ValueError:
        return None


def admit(config: Config, key: str, run: str) -> Decision:
    """Admit or quarantine one file; convergent when retried."""
    rejection = checks.name_rejection(config, key)
    if rejection is not None and rejection.code == "outside_incoming":
        return Decision(key=key, destination=None, rejection=rejection)
    for _ in range(MAX_ATTEMPTS):
        try:
            return admit_once(config, key, run)
        except _Vanished:
            return find_earlier(config, key, run)
        except _Changed:
            continue  # replaced between the check and the copy: check the new version
    raise SourceChangedError(f"{key} was replaced {MAX_ATTEMPTS} times while being admitted; try again later")
