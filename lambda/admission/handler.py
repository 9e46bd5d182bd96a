"""Admit the files of one batch into the run's landing folder, or quarantine them with a reason.

``handler`` (one child workflow of the admission stage's Distributed Map, one batch):
    event     {"items": [{"key": "incoming/a/b.csv", "size": 123, "run": "<run name>"}, ...]}
    response  {"admitted": int, "quarantined": int, "records": int, "by_reason": {code: int},
               "examples": [at most BATCH_EXAMPLES {"key", "code", "reason"}, each cut to SHOWN_CHARS]}
              bounded whatever the batch size and key lengths (Step Functions caps a state's output
              at 256 KiB); each file's full decision is in its admission record or reason sidecar,
              and in one log line.

Per file, in this order, the first failure is the reason (``code`` in brackets): the key is under
INCOMING_PREFIX [outside_incoming]; S3 can read it: not in an archived storage class (GLACIER,
DEEP_ARCHIVE, an Intelligent-Tiering archive tier) unless restored [archived], and its read or copy
is not refused for the object itself [unreadable] (found whenever it shows: it wins over any other
reason); it is not a folder marker, i.e. does not end in "/" [folder_marker]; its name ends in
".csv", lowercase, as the EventBridge rule's suffix filter [not_csv]; it is not empty [empty] and
at most MAX_FILE_BYTES [too_large] (its real size, from S3: the event's size is not trusted); it
decodes as UTF-8, a byte-order mark allowed [not_utf8]; its header (first CSV record) is
CONTRACT_COLUMNS exactly: same names, same order [header_mismatch]; its records split the way the
reader splits them [bad_csv]: every quoted field closed, a quote inside one doubled. Records may
end in LF, CRLF or a lone CR, mixed in one file, as the reader splits them.

Records are counted while the file streams through the UTF-8 check, by the reader contract (README,
glue/transform.py): RFC 4180 quoting (a field that starts with a quote runs to the closing quote,
across line breaks; "" inside it is one quote), records end at LF or CRLF outside quotes, empty
lines are no records, the first record is the header. The count goes into the admission record,
where the Glue job and the check add them up.

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
FileLostError. The same key twice in one batch is admitted once and counted once. S3 errors that
are not about the object (throttling, 5xx, the function's own missing grants) re-raise: the Map's
retry and tolerated failures handle them.

``summarize`` totals a run's admission from the Distributed Map's ResultWriter output:
    event     {"result_writer": {"Bucket": str, "Key": ".../manifest.json"} (or null: no Map Run
               output, e.g. no items), "run": str}
    response  {"run", "admitted", "quarantined", "records", "by_reason": {code: count},
               "failed_batches", "failed_items", "examples": [up to SUMMARY_EXAMPLES {"key", "code",
               "reason"}]}

Configuration comes from environment variables, read on each call: LANDING_BUCKET (one bucket
holds incoming, landing and quarantine), INCOMING_PREFIX, LANDING_PREFIX, QUARANTINE_PREFIX,
MAX_FILE_BYTES, CONTRACT_COLUMNS (comma-separated; the stack passes glue/contract.py COLUMNS).
boto3 and the standard library only: this directory is deployed alone.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
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
RECORDS_FOLDER = "_admitted/"
# Hex digits of SHA-256 in a safe name: 160 bits, no collision among any run's files.
NAME_HEX_DIGITS = 40
# An extension kept on a quarantined file's safe name (so it opens with the right program).
SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}")
# The decoded text kept to read the header from; the rest of the file is checked and counted.
HEADER_CHARS = 64 * 1024
READ_CHUNK_BYTES = 1024 * 1024
# CopyObject copies at most 5 GiB; a larger file (too large, so quarantined) goes by multipart copy.
COPY_OBJECT_LIMIT = 5 * 1024**3
# A file replaced this many times while being checked fails the batch rather than loop.
MAX_ATTEMPTS = 3
# A batch's response names a few files (each file's decision is in its record or sidecar); the
# run's summary a few more. Keys and reasons shown are cut to SHOWN_CHARS: S3 allows 1,024-byte keys.
BATCH_EXAMPLES = 5
SUMMARY_EXAMPLES = 10
SHOWN_CHARS = 300
BATCH_COUNTS = ("admitted", "quarantined", "records")
# How much of a found header a reason shows (it ends up in an SNS notice).
SHOWN_COLUMNS = 12
SHOWN_NAME_CHARS = 40

_VANISHED_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
# S3's answers about the object itself, the same on every attempt: poison, never retried.
_ARCHIVED_CODES = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError"})
_REFUSED_CODES = frozenset({"AccessDenied", "403", "InvalidRequest"})
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})  # GLACIER_IR reads like STANDARD


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


class _Refused(Exception):
    """S3 refuses to read or copy the object itself, the same way on every attempt (poison)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


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
class Source:
    """What HeadObject says about the object under incoming/ that is being admitted."""

    size: int
    etag: str
    last_modified: datetime
    version_id: str | None  # None (or "null") when the bucket keeps no versions
    storage_class: str = "STANDARD"
    archive_status: str | None = None
    restore: str | None = None

    @classmethod
    def from_head(cls, head: Mapping[str, Any]) -> Source:
        return cls(
            size=int(head["ContentLength"]),
            etag=str(head["ETag"]),
            last_modified=head["LastModified"],
            version_id=head.get("VersionId"),
            storage_class=str(head.get("StorageClass") or "STANDARD"),
            archive_status=head.get("ArchiveStatus"),
            restore=head.get("Restore"),
        )

    @property
    def versioned(self) -> bool:
        return self.version_id not in (None, "null")


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


def scan_utf8(
    chunks: Iterable[bytes], keep_chars: int = HEADER_CHARS, on_text: Callable[[str], None] | None = None
) -> tuple[str, bool, Rejection | None]:
    """Decode a stream as UTF-8 without holding it whole, handing each decoded piece to `on_text`.

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
        if on_text is not None and text:
            on_text(text)
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


class RecordCounter:
    """Count a CSV text's records as the reader splits them, fed in pieces (`feed`, then `finish`).

    The reader contract (README, glue/transform.py): a field that starts with a quote is quoted and
    runs to its closing quote, across line breaks, with "" for a quote inside it; a quote elsewhere
    is an ordinary character; a record ends at LF, CRLF or a lone CR outside quotes, whichever each
    line has (glue/reader.py splits line by line, so a CRLF file with LF rows appended is one record
    per row); an empty line is no record. What the reader would have to guess about is a bad_csv
    rejection naming the line: a quoted field never closed, a closing quote followed by more than a
    separator or line break (a quote not doubled, e.g. a backslash escape).
    """

    _SPECIAL = re.compile(r'["\r\n]')

    def __init__(self) -> None:
        self.records = 0  # non-empty records so far, the header included
        self.problem: Rejection | None = None
        self._started = False
        self._line = 1  # physical line of the current position
        self._in_quotes = False
        self._quote_line = 0  # where the open quoted field started
        self._after_quote = False  # in a quoted field, just read a quote: doubled, or the field's end
        self._after_cr = False  # outside quotes, just read CR: CRLF, or a lone CR
        self._content = False  # the current record has characters
        self._previous = "\n"  # the character before the position ("\n" at a record's start)

    @property
    def data_records(self) -> int:
        """Records after the header."""
        return max(self.records - 1, 0)

    def feed(self, text: str) -> None:
        if not self._started:
            self._started, text = True, text.removeprefix(BOM)
        position, end = 0, len(text)
        while position < end and self.problem is None:
            if self._after_cr:
                self._after_cr = False
                if text[position] == "\n":
                    self._record_ends("CRLF")
                    position += 1
                    continue
                self._record_ends("CR")
                continue
            if self._after_quote:
                self._after_quote = False
                following = text[position]
                if following == '"':  # a doubled quote: still inside the field
                    position += 1
                    continue
                self._in_quotes = False
                if following not in ",\r\n":
                    self._fail(
                        f"line {self._line}: a quoted field's closing quote is followed by {following!r}; a quote "
                        'inside a quoted field must be doubled ("" not \\"): the reader would split this file '
                        "differently"
                    )
                    return
            if self._in_quotes:
                closing_at = text.find('"', position)
                stop = end if closing_at < 0 else closing_at
                self._line += text.count("\n", position, stop)
                if closing_at < 0:
                    return
                position, self._after_quote = closing_at + 1, True
                continue
            match = self._SPECIAL.search(text, position)
            stop = end if match is None else match.start()
            if stop > position:
                self._content, self._previous = True, text[stop - 1]
            if match is None:
                return
            position = stop + 1
            character = text[stop]
            if character == '"':
                if self._previous in ",\n":  # a field's first character: a quoted field
                    self._in_quotes, self._quote_line = True, self._line
                self._content, self._previous = True, '"'
            elif character == "\n":
                self._record_ends("LF")
            else:
                self._after_cr = True

    def finish(self) -> Rejection | None:
        """The end of the text: the last record (no line break after it) and any problem."""
        if self.problem is None and self._after_cr:
            self._after_cr = False
            self._record_ends("CR")
        if self.problem is None and self._in_quotes and not self._after_quote:
            self._fail(
                f"line {self._quote_line}: a quoted field starts here and is never closed (an unpaired '\"'): "
                "where its value ends would be a guess"
            )
        if self.problem is None and self._content:
            self.records += 1
            self._content = False
        return self.problem

    def _record_ends(self, ending: str) -> None:
        # LF, CRLF and a lone CR all end a record, mixed or not: the reader splits each line at its own.
        if self._content:
            self.records += 1
        self._line += 1
        self._content, self._previous = False, "\n"

    def _fail(self, reason: str) -> None:
        self.problem = Rejection("bad_csv", reason)


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


def archived_rejection(source: Source) -> Rejection | None:
    """An object S3 will not read or copy until it is restored (HeadObject tells)."""
    restored = 'ongoing-request="false"' in (source.restore or "")
    if source.storage_class in ARCHIVED_STORAGE_CLASSES and not restored:
        tier = source.storage_class
    elif source.archive_status:  # Intelligent-Tiering's archive tiers
        tier = f"{source.storage_class} {source.archive_status}"
    else:
        return None
    return _archived(f"stored in {tier}")


def _archived(where: str) -> Rejection:
    return Rejection(
        "archived",
        f"{where}: S3 reads an archived object only after a restore (aws s3api restore-object), so it cannot "
        "be admitted; restore it, then upload it to incoming/ again",
    )


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


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
            raise _Refused(_archived(f"S3 answered {code} to {operation or 'a read'}")) from error
        if code in _REFUSED_CODES and operation == "GetObject":
            message = str(error.response.get("Error", {}).get("Message", ""))
            raise _Refused(_unreadable(code, message)) from error
        raise


def _unreadable(code: str, message: str) -> Rejection:
    return Rejection(
        "unreadable",
        f"S3 refuses to read this object ({code}{': ' + message if message else ''}) although the function may "
        "read the folder: encrypted with another KMS key or a customer-provided key? Upload it again without them",
    )


def _call(operation: str, **kwargs: Any) -> Any:
    with _source_errors(_OPERATIONS.get(operation, operation)):
        return getattr(_s3_client(), operation)(**kwargs)


_OPERATIONS = {"get_object": "GetObject", "copy_object": "CopyObject", "head_object": "HeadObject"}


def inspect(config: Config, key: str) -> tuple[Rejection | None, Source, int]:
    """Check one file under incoming; return (rejection or None, what HeadObject said, data records)."""
    source = Source.from_head(_call("head_object", Bucket=config.bucket, Key=key))
    archived = archived_rejection(source)
    if archived is not None:
        raise _Refused(archived)
    rejection = name_rejection(config, key) or size_rejection(source.size, config.max_file_bytes)
    if rejection is not None or not key.endswith(".csv"):
        return rejection, source, 0
    body = _call("get_object", Bucket=config.bucket, Key=key, IfMatch=source.etag)["Body"]
    counter = RecordCounter()
    with closing(body):
        text, complete, rejection = scan_utf8(
            body.iter_chunks(READ_CHUNK_BYTES), keep_chars=HEADER_CHARS, on_text=counter.feed
        )
    rejection = rejection or header_rejection(text, complete, config.columns) or counter.finish()
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
            _s3_client().copy(
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
    copied = _s3_client().head_object(Bucket=config.bucket, Key=destination)
    if int(copied["ContentLength"]) != source.size:
        raise RuntimeError(
            f"multipart copy of {key} to {destination} has {copied['ContentLength']} of {source.size} bytes"
        )


def _read_probe(config: Config, key: str, source: Source) -> None:
    """A refused copy: read the source's first byte to tell whose fault it is (_Refused if the source's)."""
    if source.size:
        _call("get_object", Bucket=config.bucket, Key=key, IfMatch=source.etag, Range="bytes=0-0")["Body"].close()


def _put_json(config: Config, key: str, document: dict[str, Any]) -> None:
    _s3_client().put_object(
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
        body = _s3_client().get_object(Bucket=config.bucket, Key=key)["Body"].read()
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


class BatchResult:
    """A batch's counts and a few examples: bounded whatever the batch size and key lengths."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(BATCH_COUNTS, 0)
        self.by_reason: Counter[str] = Counter()
        self.quarantined: list[dict[str, str]] = []

    def add(self, decision: Decision) -> None:
        if decision.rejection is None:
            self.counts["admitted"] += 1
            self.counts["records"] += decision.records
            return
        self.counts["quarantined"] += 1
        self.by_reason[decision.rejection.code] += 1
        rejection = decision.rejection
        entry = {"key": _shown(decision.key), "code": rejection.code, "reason": _shown(rejection.reason)}
        self.quarantined.append(entry)
        self.quarantined[:] = examples(self.quarantined, BATCH_EXAMPLES)  # never more than a few held

    def as_output(self) -> dict[str, Any]:
        return {**self.counts, "by_reason": dict(sorted(self.by_reason.items())), "examples": self.quarantined}


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = load_config(os.environ)
    run, keys = parse_items(event)
    result = BatchResult()
    for key in keys:
        decision = admit(config, key, run)
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


# --- summary of a run ---------------------------------------------------------------------------


def parse_summary_event(event: Any) -> tuple[dict[str, str] | None, str]:
    """Return (the ResultWriter's {Bucket, Key} or None, run); ValueError naming the field otherwise."""
    if not isinstance(event, dict):
        raise ValueError(f"event must be a JSON object, got {_preview(event)}")
    run = event.get("run")
    if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
        raise ValueError(f"event field 'run' is {_preview(run)}; expected a run name of {RUN_NAME_RULE}")
    if "result_writer" not in event:
        raise ValueError("event field 'result_writer' is missing; expected {'Bucket', 'Key'} or null")
    writer = event["result_writer"]
    if writer is None:
        return None, run  # a Map Run that wrote nothing (no items): nothing to total
    if not isinstance(writer, dict):
        raise ValueError(f"event field 'result_writer' is {_preview(writer)}; expected {{'Bucket', 'Key'}}")
    for field in ("Bucket", "Key"):
        if not isinstance(writer.get(field), str) or not writer[field]:
            raise ValueError(f"event field 'result_writer.{field}' is {_preview(writer.get(field))}; expected a string")
    return {"Bucket": writer["Bucket"], "Key": writer["Key"]}, run


def _read_json(bucket: str, key: str) -> Any:
    body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise ValueError(f"s3://{bucket}/{key} is not JSON: {error}") from error


def _result_files(manifest: dict[str, Any], status: str, where: str) -> list[str]:
    """The result files of one status; none when the manifest lists none (a zero-item Map Run)."""
    result_files = manifest.get("ResultFiles") or {}
    files = result_files.get(status) or [] if isinstance(result_files, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("Key"), str) for f in files):
        raise ValueError(f"{where}: ResultFiles.{status} must be a list of {{'Key', 'Size'}}, got {_preview(files)}")
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
            f"{_preview(record.get('Output'))}"
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


def summarize(event: Any, context: Any) -> dict[str, Any]:
    writer, run = parse_summary_event(event)
    if writer is None:
        summary = tally(run, [], [])
        print(json.dumps({"message": "admission summary", "manifest": None, **summary}))
        return summary
    bucket, manifest_key = writer["Bucket"], writer["Key"]
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
        (record for key in succeeded for record in _child_records(results_bucket, key)),
        (record for key in failed for record in _child_records(results_bucket, key)),
    )
    print(json.dumps({"message": "admission summary", "manifest": where, "pending_files": len(pending), **summary}))
    return summary
