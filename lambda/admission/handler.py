"""Admit the files of one batch into the run's landing folder, or quarantine them with a reason.

``handler`` (one child workflow of the admission stage's Distributed Map, one batch):
    event     {"items": [{"key": "incoming/a/b.csv", "size": 123, "run": "<run name>"}, ...]}
    response  {"admitted": [{"key", "destination"}],
               "quarantined": [{"key", "destination", "reason", "code"}]}

Per file, in this order, the first failure is the reason (``code`` in brackets): the key is under
INCOMING_PREFIX [outside_incoming]; it is not a folder marker, i.e. does not end in "/"
[folder_marker]; its name ends in ".csv", lowercase, as the EventBridge rule's suffix filter
[not_csv]; it is not empty [empty] and at most MAX_FILE_BYTES [too_large] (its real size, from
S3: the event's size is not trusted); it decodes as UTF-8, a byte-order mark allowed [not_utf8];
its header (first CSV record) is CONTRACT_COLUMNS exactly: same names, same order [header_mismatch].
The rows are the Glue job's business; a file with a header alone is admitted.

Where files go, with <rel> the key relative to INCOMING_PREFIX:
    admitted     <LANDING_PREFIX>run=<run>/<rel>
    quarantined  <QUARANTINE_PREFIX>run=<run>/<rel>, plus <that>.reason.json:
                 {"reason", "code", "run", "original_key", "size", "admitted_at"}
    a folder marker ("incoming/a/", rel "a/") is stored as <QUARANTINE_PREFIX>run=<run>/a.folder-marker
    (the incoming prefix's own marker, rel "", as .folder-marker): a key ending in "/" would
    show as yet another folder in the console, and the sidecar could not sit beside it.
    a key outside INCOMING_PREFIX is not this stage's to move (a wiring bug, or another run's
    data): reported as quarantined with destination null, and left where it is.

A move is CopyObject (conditional on the ETag that was checked) and then DeleteObject
(conditional on the same ETag): nothing is deleted before its copy and sidecar exist, and a file
replaced while it is being admitted is checked again (before the copy) or left under incoming
for the next round (after it). A retried or redriven batch converges: a file no longer under
incoming is reported from where an earlier attempt put it (the landing run folder, or the
quarantine sidecar); a file that is nowhere raises FileLostError. The same key twice in one batch
is admitted once and reported once. S3 errors other than a vanished source re-raise: the Map's
retry and tolerated failures handle them.

``summarize`` totals a run's admission from the Distributed Map's ResultWriter output:
    event     {"result_writer": {"Bucket": str, "Key": ".../manifest.json"}, "run": str}
    response  {"run", "admitted", "quarantined", "by_reason": {code: count}, "failed_batches",
               "failed_items", "examples": [up to 10 {"key", "reason"}]}

Configuration comes from environment variables, read on each call: LANDING_BUCKET (one bucket
holds incoming, landing and quarantine), INCOMING_PREFIX, LANDING_PREFIX, QUARANTINE_PREFIX,
MAX_FILE_BYTES, CONTRACT_COLUMNS (comma-separated; the stack passes glue/contract.py COLUMNS).
boto3 and the standard library only: this directory is deployed alone.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

# The pipeline names a round's run <execution name>-r<round>: an execution name (1-80 characters,
# none of white space, "/" or control characters, as StartExecution allows) and a short suffix.
RUN_NAME = re.compile(r"[^\s/\x00-\x1f\x7f-\x9f]{1,100}")
RUN_NAME_RULE = "1-100 characters, no white space, '/' or control characters"
# S3 bucket names: what CDK generates and what a console user can create (no s3:// URI, no ARN).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
BOM = "\ufeff"
FOLDER_MARKER_SUFFIX = ".folder-marker"
SIDECAR_SUFFIX = ".reason.json"
# The decoded text kept to read the header from; the rest of the file is only checked for UTF-8.
HEADER_CHARS = 64 * 1024
READ_CHUNK_BYTES = 1024 * 1024
# CopyObject copies at most 5 GiB; a larger file (too large, so quarantined) goes by multipart copy.
COPY_OBJECT_LIMIT = 5 * 1024**3
# A file replaced this many times while being checked fails the batch rather than loop.
MAX_ATTEMPTS = 3
MAX_EXAMPLES = 10
RESULT_LISTS = ("admitted", "quarantined")
# How much of a found header a reason shows (it ends up in an SNS notice).
SHOWN_COLUMNS = 12
SHOWN_NAME_CHARS = 40

_VANISHED_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})


@functools.cache
def _s3_client() -> Any:
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


@dataclass(frozen=True, kw_only=True)
class Config:
    bucket: str
    incoming_prefix: str
    landing_prefix: str
    quarantine_prefix: str
    max_file_bytes: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Decision:
    key: str
    destination: str | None
    rejection: Rejection | None = None
    size: int | None = None
    resumed: bool = False  # reported from the destination of an earlier attempt
    note: str | None = None

    def as_result(self) -> dict[str, Any]:
        if self.rejection is None:
            return {"key": self.key, "destination": self.destination}
        return {
            "key": self.key,
            "destination": self.destination,
            "reason": self.rejection.reason,
            "code": self.rejection.code,
        }


# --- configuration and events -------------------------------------------------------------------


def load_config(environ: Mapping[str, str]) -> Config:
    """Read the configuration; raise one ValueError naming every missing or invalid variable."""
    problems: list[str] = []

    def get(name: str, check: Any, expected: str) -> str:
        value = environ.get(name)
        if value is None:
            problems.append(f"{name} is not set; expected {expected}")
            return ""
        if not check(value):
            problems.append(f"{name} is {value!r}; expected {expected}")
        return value

    bucket = get("LANDING_BUCKET", BUCKET_NAME.fullmatch, "an S3 bucket name (not an s3:// URI or an ARN)")
    prefix_expected = "a key prefix ending in '/', not starting with '/', e.g. 'incoming/'"
    prefixes = {
        name: get(name, lambda v: v.endswith("/") and not v.startswith("/") and v != "/", prefix_expected)
        for name in ("INCOMING_PREFIX", "LANDING_PREFIX", "QUARANTINE_PREFIX")
    }
    max_bytes = get("MAX_FILE_BYTES", lambda v: v.isascii() and v.isdigit() and int(v) > 0, "a positive integer")
    columns = get("CONTRACT_COLUMNS", _valid_columns, "comma-separated, distinct, non-empty column names")
    ordered = sorted(prefixes.items(), key=lambda item: item[1])
    for (name_a, a), (name_b, b) in zip(ordered, ordered[1:], strict=False):
        if a and b and b.startswith(a):
            # Landed or quarantined files would be listed again as incoming ones, or the reverse.
            problems.append(f"{name_b} {b!r} is inside {name_a} {a!r}; the three prefixes must not overlap")
    if problems:
        raise ValueError("admission configuration: " + "; ".join(problems))
    return Config(
        bucket=bucket,
        incoming_prefix=prefixes["INCOMING_PREFIX"],
        landing_prefix=prefixes["LANDING_PREFIX"],
        quarantine_prefix=prefixes["QUARANTINE_PREFIX"],
        max_file_bytes=int(max_bytes),
        columns=tuple(columns.split(",")),
    )


def _valid_columns(value: str) -> bool:
    names = value.split(",")
    return all(name and name == name.strip() for name in names) and len(set(names)) == len(names)


def parse_items(event: Any) -> tuple[str, list[str]]:
    """Validate a batch event; return its run name ("" for no items) and its distinct keys, in order.

    A malformed event is a wiring bug: ValueError naming the item, the field and what is allowed.
    """
    if not isinstance(event, dict) or not isinstance(event.get("items"), list):
        raise ValueError(f"event must be a JSON object with a list 'items', got {_preview(event)}")
    runs: set[str] = set()
    keys: dict[str, None] = {}
    for index, item in enumerate(event["items"]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a JSON object, got {_preview(item)}")
        key, run, size = item.get("key"), item.get("run"), item.get("size")
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where} field 'key' is {_preview(key)}; expected a non-empty string")
        if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
            raise ValueError(f"{where} field 'run' is {_preview(run)}; expected a run name of {RUN_NAME_RULE}")
        # Listed, not trusted (the file's real size is read from S3), but a bad one means bad wiring.
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"{where} field 'size' is {_preview(size)}; expected a non-negative integer")
        runs.add(run)
        keys[key] = None
    if len(runs) > 1:
        raise ValueError(f"items name different runs {sorted(runs)}; a batch belongs to one run")
    return (runs.pop() if runs else ""), list(keys)


def _preview(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# --- the checks (pure) --------------------------------------------------------------------------


def name_rejection(config: Config, key: str) -> Rejection | None:
    """The checks that need only the key: under incoming, not a folder marker, a .csv name."""
    if not key.startswith(config.incoming_prefix):
        return Rejection(
            "outside_incoming", f"not under the incoming prefix {config.incoming_prefix!r}: left where it is"
        )
    if key.endswith("/"):
        return Rejection("folder_marker", "a folder marker (a key ending in '/'), not a file")
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".csv"):
        if name.lower().endswith(".csv"):
            return Rejection("not_csv", f"name {name!r} must end in lowercase '.csv': rename it and upload it again")
        return Rejection("not_csv", f"name {name!r} does not end in '.csv': only CSV files are admitted")
    return None


def size_rejection(size: int, max_file_bytes: int) -> Rejection | None:
    if size == 0:
        return Rejection("empty", "empty file (0 bytes)")
    if size > max_file_bytes:
        return Rejection(
            "too_large",
            f"{size:,} bytes is over the limit of {max_file_bytes:,} bytes (MAX_FILE_BYTES): split the file",
        )
    return None


def scan_utf8(chunks: Iterable[bytes], keep_chars: int = HEADER_CHARS) -> tuple[str, bool, Rejection | None]:
    """Decode a stream as UTF-8 without holding it whole.

    Returns (the first ``keep_chars`` characters, whether that is all of the text, None), or a
    not_utf8 rejection naming the first bad byte, its offset and line, and a likely encoding.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = newlines = 0  # bytes (and line breaks among them) passed to the decoder so far
    kept: list[str] = []
    kept_chars = total_chars = 0
    first_bytes = b""
    for chunk, final in itertools.chain(((c, False) for c in chunks), [(b"", True)]):
        if len(first_bytes) < 2:
            first_bytes = (first_bytes + chunk)[:2]
        pending = decoder.getstate()[0]  # the start of a character split across chunks
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            # error.object is pending + chunk; pending holds no line break (bytes >= 0x80 only).
            at = offset - len(pending) + error.start
            line = 1 + newlines + error.object[: error.start].count(b"\n")
            return "", False, _not_utf8(error, at, line, first_bytes)
        offset += len(chunk)
        newlines += chunk.count(b"\n")
        total_chars += len(text)
        if kept_chars < keep_chars:
            kept.append(text[: keep_chars - kept_chars])
            kept_chars += len(kept[-1])
    return "".join(kept), total_chars == kept_chars, None


def _not_utf8(error: UnicodeDecodeError, at: int, line: int, first_bytes: bytes) -> Rejection:
    byte = error.object[error.start]
    if error.reason == "unexpected end of data":
        where = f"a character cut short at offset {at:,} (line {line}): the file looks truncated"
    else:
        if first_bytes in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            guess = "UTF-16?"
        elif byte < 0xA0:
            guess = "Windows-1252?"
        else:
            guess = "latin-1?"
        where = f"byte 0x{byte:02x} at offset {at:,} (line {line}; {guess})"
    return Rejection("not_utf8", f"not UTF-8: {where}; save the file as UTF-8")


def header_rejection(text: str, complete: bool, columns: tuple[str, ...]) -> Rejection | None:
    """Compare the first CSV record of ``text`` (the file's start) with the contract's header."""
    text = text.removeprefix(BOM)
    if not text:
        return _header("no header: the file holds only a UTF-8 byte-order mark")
    stream = io.StringIO(text, newline="")
    try:
        found = next(csv.reader(stream), [])
    except csv.Error as error:
        return _header(f"header is not valid CSV: {error}")
    if not complete and not stream.read() and not text.endswith(("\n", "\r")):
        return _header(f"no line break in the first {len(text):,} characters: no usable header")
    if not found:
        only = " (the file holds only line breaks)" if not text.strip("\r\n") else ""
        return _header(f"no header: the first line is empty{only}")
    if tuple(found) == columns:
        return None
    versus = f"expected {','.join(columns)}; found {_show_columns(found)}"
    separator = next((s for s in (";", "\t", "|") if len(found) == 1 and s in found[0]), None)
    if separator is not None:
        return _header(f"header is one column: separated by {separator!r} rather than commas? {versus}")
    problems = []
    repeated = [name for name, count in Counter(found).items() if count > 1]
    missing = [name for name in columns if name not in found]
    extra = [name for name in dict.fromkeys(found) if name not in columns]
    if repeated:
        problems.append(_plural("repeated column", [f"{_show(n)} ({found.count(n)}×)" for n in repeated]))
    if missing:
        problems.append(_plural("missing column", [_show(n) for n in missing]))
    if extra:
        problems.append(_plural("extra column", [_show(n) + _near_miss(n, missing) for n in extra]))
    if not problems:
        return _header(f"header has the contract's columns in another order: {versus}")
    return _header(f"header does not match the contract: {'; '.join(problems)}; {versus}")


def _header(reason: str) -> Rejection:
    return Rejection("header_mismatch", reason)


def _near_miss(name: str, missing: list[str]) -> str:
    if name == "":
        return " (a trailing comma?)"
    for wanted in missing:
        if name.strip().lower() == wanted.lower():
            return f" (differs from {wanted} only in case or spaces)"
    return ""


def _plural(what: str, names: list[str]) -> str:
    return f"{what}{'s' if len(names) > 1 else ''} {_listed(names, ', ')}"


def _listed(shown: list[str], separator: str) -> str:
    """At most SHOWN_COLUMNS of them: a reason ends up in an SNS notice."""
    more = len(shown) - SHOWN_COLUMNS
    return separator.join(shown[:SHOWN_COLUMNS]) + (f"{separator}… ({more} more)" if more > 0 else "")


def _show(name: str) -> str:
    if re.fullmatch(r"[\w.-]+", name, flags=re.ASCII):
        return name[:SHOWN_NAME_CHARS] + ("…" if len(name) > SHOWN_NAME_CHARS else "")
    return _preview(name, SHOWN_NAME_CHARS)


def _show_columns(found: list[str]) -> str:
    return _listed([_show(name) for name in found], ",")


# --- where files go (pure) ----------------------------------------------------------------------


def landing_key(config: Config, key: str, run: str) -> str:
    return f"{config.landing_prefix}run={run}/{key.removeprefix(config.incoming_prefix)}"


def quarantine_key(config: Config, key: str, run: str) -> str:
    relative = key.removeprefix(config.incoming_prefix)
    if key.endswith("/"):
        relative = relative[:-1] + FOLDER_MARKER_SUFFIX
    return f"{config.quarantine_prefix}run={run}/{relative}"


# --- S3 -----------------------------------------------------------------------------------------


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _source_errors() -> Iterator[None]:
    """A missing source object becomes _Vanished, a failed ETag condition _Changed; the rest re-raise."""
    try:
        yield
    except ClientError as error:
        code = _error_code(error)
        if code in _VANISHED_CODES:
            raise _Vanished() from error
        if code in _CHANGED_CODES:
            raise _Changed() from error
        raise


def _call(operation: str, **kwargs: Any) -> Any:
    with _source_errors():
        return getattr(_s3_client(), operation)(**kwargs)


def inspect(config: Config, key: str) -> tuple[Rejection | None, int, str]:
    """Check one file under incoming; return (rejection or None, its size, the ETag checked)."""
    head = _call("head_object", Bucket=config.bucket, Key=key)
    size, etag = int(head["ContentLength"]), str(head["ETag"])
    rejection = name_rejection(config, key) or size_rejection(size, config.max_file_bytes)
    if rejection is not None or not key.endswith(".csv"):
        return rejection, size, etag
    body = _call("get_object", Bucket=config.bucket, Key=key, IfMatch=etag)["Body"]
    with closing(body):
        text, complete, rejection = scan_utf8(body.iter_chunks(READ_CHUNK_BYTES), keep_chars=HEADER_CHARS)
    return rejection or header_rejection(text, complete, config.columns), size, etag


def _copy(config: Config, key: str, destination: str, size: int, etag: str) -> None:
    source = {"Bucket": config.bucket, "Key": key}
    if size <= COPY_OBJECT_LIMIT:
        _call("copy_object", CopySource=source, Bucket=config.bucket, Key=destination, CopySourceIfMatch=etag)
        return
    with _source_errors():  # boto3's managed copy: multipart, each part copied inside S3
        _s3_client().copy(
            source,
            config.bucket,
            destination,
            ExtraArgs={"CopySourceIfMatch": etag},
            Config=TransferConfig(multipart_threshold=COPY_OBJECT_LIMIT),
        )
    # Parts copied on worker threads: make sure the whole copy is there before the source goes.
    copied = _s3_client().head_object(Bucket=config.bucket, Key=destination)
    if int(copied["ContentLength"]) != size:
        raise RuntimeError(f"multipart copy of {key} to {destination} has {copied['ContentLength']} of {size} bytes")


def _delete_source(config: Config, key: str, etag: str) -> str | None:
    """Delete the checked version only; a note if the key now holds another version, or nothing."""
    try:
        _call("delete_object", Bucket=config.bucket, Key=key, IfMatch=etag)
    except _Vanished:
        return None  # another attempt with the same batch deleted it after its own copy
    except _Changed:
        return "replaced under incoming after it was copied: the new version is left for the next round"
    return None


def admit_once(config: Config, key: str, run: str) -> Decision:
    rejection, size, etag = inspect(config, key)
    if rejection is None:
        destination = landing_key(config, key, run)
        _copy(config, key, destination, size, etag)
    else:
        destination = quarantine_key(config, key, run)
        _copy(config, key, destination, size, etag)
        sidecar = {
            "reason": rejection.reason,
            "code": rejection.code,
            "run": run,
            "original_key": key,
            "size": size,
            "admitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _s3_client().put_object(
            Bucket=config.bucket,
            Key=destination + SIDECAR_SUFFIX,
            Body=json.dumps(sidecar, indent=2).encode(),
            ContentType="application/json",
        )
    note = _delete_source(config, key, etag)
    return Decision(key=key, destination=destination, rejection=rejection, size=size, note=note)


def find_earlier(config: Config, key: str, run: str) -> Decision:
    """Report a file that is no longer under incoming from where an earlier attempt put it."""
    if name_rejection(config, key) is None:
        destination = landing_key(config, key, run)
        try:
            head = _call("head_object", Bucket=config.bucket, Key=destination)
        except _Vanished:
            pass
        else:
            return Decision(key=key, destination=destination, size=int(head["ContentLength"]), resumed=True)
    destination = quarantine_key(config, key, run)
    try:
        body = _call("get_object", Bucket=config.bucket, Key=destination + SIDECAR_SUFFIX)["Body"].read()
    except _Vanished:
        sidecar = None
    else:
        try:
            sidecar = json.loads(body)
        except ValueError:
            sidecar = None  # not a sidecar this function wrote
    if not isinstance(sidecar, dict) or sidecar.get("original_key") != key:
        raise FileLostError(
            f"{key} is no longer under incoming, yet it is neither at {landing_key(config, key, run)} nor "
            f"at {destination} (with a {SIDECAR_SUFFIX} sidecar naming it): deleted by someone, or lost"
        )
    rejection = Rejection(str(sidecar.get("code", "unknown")), str(sidecar.get("reason", "")))
    return Decision(key=key, destination=destination, rejection=rejection, size=sidecar.get("size"), resumed=True)


def admit(config: Config, key: str, run: str) -> Decision:
    """Admit or quarantine one file; convergent when retried."""
    rejection = name_rejection(config, key)
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


def handler(event: Any, context: Any) -> dict[str, list[dict[str, Any]]]:
    config = load_config(os.environ)
    run, keys = parse_items(event)
    result: dict[str, list[dict[str, Any]]] = {"admitted": [], "quarantined": []}
    for key in keys:
        decision = admit(config, key, run)
        result["quarantined" if decision.rejection else "admitted"].append(decision.as_result())
        # One structured line per file for CloudWatch Logs Insights.
        print(
            json.dumps(
                {
                    "message": "admission decision",
                    "run": run,
                    "decision": "quarantined" if decision.rejection else "admitted",
                    **decision.as_result(),
                    "size": decision.size,
                    "resumed": decision.resumed,
                    **({"note": decision.note} if decision.note else {}),
                }
            )
        )
    return result


# --- summary of a run ---------------------------------------------------------------------------


def parse_summary_event(event: Any) -> tuple[str, str, str]:
    """Return (bucket, manifest key, run); ValueError naming the field otherwise."""
    if not isinstance(event, dict):
        raise ValueError(f"event must be a JSON object, got {_preview(event)}")
    writer = event.get("result_writer")
    if not isinstance(writer, dict):
        raise ValueError(f"event field 'result_writer' is {_preview(writer)}; expected {{'Bucket', 'Key'}}")
    for field in ("Bucket", "Key"):
        if not isinstance(writer.get(field), str) or not writer[field]:
            raise ValueError(f"event field 'result_writer.{field}' is {_preview(writer.get(field))}; expected a string")
    run = event.get("run")
    if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
        raise ValueError(f"event field 'run' is {_preview(run)}; expected a run name of {RUN_NAME_RULE}")
    return writer["Bucket"], writer["Key"], run


def _read_json(bucket: str, key: str) -> Any:
    body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise ValueError(f"s3://{bucket}/{key} is not JSON: {error}") from error


def _result_files(manifest: dict[str, Any], status: str, where: str) -> list[str]:
    # A Map Run over zero items (an empty incoming/ on a schedule tick) has no result files to list.
    result_files = manifest.get("ResultFiles", {})
    files = result_files.get(status, []) if isinstance(result_files, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("Key"), str) for f in files):
        raise ValueError(f"{where}: ResultFiles.{status} must be a list of {{'Key', 'Size'}}, got {_preview(files)}")
    return [f["Key"] for f in files]


def _records(bucket: str, key: str) -> list[dict[str, Any]]:
    records = _read_json(bucket, key)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"s3://{bucket}/{key}: expected a JSON array of child executions")
    return records


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def tally(run: str, succeeded: Iterable[dict[str, Any]], failed: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Total the child executions' records (pure): counts, reasons and a few examples."""
    admitted = 0
    quarantined: list[dict[str, Any]] = []
    for record in succeeded:
        try:
            output = _as_json(record.get("Output"))
        except ValueError:
            output = None
        if not isinstance(output, dict) or not all(isinstance(output.get(f), list) for f in RESULT_LISTS):
            raise ValueError(
                f"child execution {record.get('Name')!r} succeeded, but its Output is not an admission result: "
                f"{_preview(record.get('Output'))}"
            )
        admitted += len(output["admitted"])
        quarantined.extend(output["quarantined"])
    failed_batches = failed_items = 0
    for record in failed:
        failed_batches += 1
        try:
            batch = _as_json(record.get("Input"))
        except ValueError:
            batch = None
        items = batch.get("Items", batch.get("items")) if isinstance(batch, dict) else None
        failed_items += len(items) if isinstance(items, list) else 0
    by_reason = Counter(str(q.get("code")) for q in quarantined)
    return {
        "run": run,
        "admitted": admitted,
        "quarantined": len(quarantined),
        "by_reason": dict(sorted(by_reason.items())),
        "failed_batches": failed_batches,
        "failed_items": failed_items,
        "examples": _examples(quarantined),
    }


def _examples(quarantined: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to MAX_EXAMPLES, taking one of each reason code in turn, so every kind of problem shows."""
    by_code: dict[str, list[dict[str, Any]]] = {}
    for entry in quarantined:
        by_code.setdefault(str(entry.get("code")), []).append(entry)
    examples: list[dict[str, Any]] = []
    depth = 0
    while len(examples) < MAX_EXAMPLES and any(len(entries) > depth for entries in by_code.values()):
        for entries in by_code.values():
            if depth < len(entries) and len(examples) < MAX_EXAMPLES:
                examples.append({"key": entries[depth].get("key"), "reason": entries[depth].get("reason")})
        depth += 1
    return examples


def summarize(event: Any, context: Any) -> dict[str, Any]:
    bucket, manifest_key, run = parse_summary_event(event)
    manifest = _read_json(bucket, manifest_key)
    where = f"s3://{bucket}/{manifest_key}"
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: expected a ResultWriter manifest (a JSON object), got {_preview(manifest)}")
    # Result files are named relative to the bucket the Map wrote them to.
    results_bucket = manifest.get("DestinationBucket") or bucket
    succeeded = _result_files(manifest, "SUCCEEDED", where)
    failed = _result_files(manifest, "FAILED", where)
    pending = _result_files(manifest, "PENDING", where)
    summary = tally(
        run,
        (record for key in succeeded for record in _records(results_bucket, key)),
        (record for key in failed for record in _records(results_bucket, key)),
    )
    print(json.dumps({"message": "admission summary", "manifest": where, "pending_files": len(pending), **summary}))
    return summary
