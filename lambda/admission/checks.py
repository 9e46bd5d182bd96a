"""What makes a file admissible: pure checks over what S3 says about it and the text it streams.

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

Nothing here calls S3 (moves.py reads the object and hands its text here).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config import Config, preview

BOM = "\ufeff"
# The decoded text kept to read the header from; the rest of the file is checked and counted.
HEADER_CHARS = 64 * 1024
# How much of a found header a reason shows (it ends up in an SNS notice).
SHOWN_COLUMNS = 12
SHOWN_NAME_CHARS = 40
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})  # GLACIER_IR reads like STANDARD


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


def archived_rejection(source: Source) -> Rejection | None:
    """An object S3 will not read or copy until it is restored (HeadObject tells)."""
    restored = 'ongoing-request="false"' in (source.restore or "")
    if source.storage_class in ARCHIVED_STORAGE_CLASSES and not restored:
        tier = source.storage_class
    elif source.archive_status:  # Intelligent-Tiering's archive tiers
        tier = f"{source.storage_class} {source.archive_status}"
    else:
        return None
    return archived(f"stored in {tier}")


def archived(where: str) -> Rejection:
    """The reason of an object S3 keeps archived (HeadObject's storage class, or S3's answer to a read)."""
    return Rejection(
        "archived",
        f"{where}: S3 reads an archived object only after a restore (aws s3api restore-object), so it cannot "
        "be admitted; restore it, then upload it to incoming/ again",
    )


def unreadable(code: str, message: str) -> Rejection:
    """The reason of an object S3 refuses to read although the function may read its folder."""
    return Rejection(
        "unreadable",
        f"S3 refuses to read this object ({code}{': ' + message if message else ''}) although the function may "
        "read the folder: encrypted with another KMS key or a customer-provided key? Upload it again without them",
    )


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


GZIP_MAGIC = b"\x1f\x8b"


def _not_utf8(error: UnicodeDecodeError, at: int, line: int, first_bytes: bytes) -> Rejection:
    byte = error.object[error.start]
    if first_bytes == GZIP_MAGIC:  # a .csv.gz renamed .csv, or a client that compresses on upload
        where = f"byte 0x{byte:02x} at offset {at:,} (line {line}): the file is gzip-compressed"
        return Rejection("not_utf8", f"not UTF-8: {where}; upload the CSV uncompressed")
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
    return preview(name, SHOWN_NAME_CHARS)


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
