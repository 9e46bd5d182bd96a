"""The reader contract, record by record: one CSV file's bytes -> its data records, each with the
line it starts on and, where its shape breaks the contract, why.

Pure Python (the standard library's `csv`, no pyspark): glue/transform.py `read_orders` runs
`file_records` on each file inside Spark (one task per file, like Spark's own multi-line CSV
reader), unit tests run it directly. A record is never merged with its neighbours, never cut,
and never dropped: each one comes out once, as a row or as a rejected row with its reason.

- Records end at a line break outside quotes: LF, CRLF or CR, whichever each line has (a CRLF
  file with LF lines appended is as many records as it has lines). Lines are numbered from 1,
  the header; empty lines are no records (admission does not count them either).
- RFC 4180 quoting: a field that starts with a quote runs to the closing quote, across line
  breaks; a quote inside it is doubled (``"O""Brien"`` is ``O"Brien``); a backslash is an
  ordinary character.
- A record with more fields than the header: ``row: more fields than the header`` (an empty one
  past the header counts too: ``...,EUR,,note``); fewer fields leave the missing ones empty,
  which the required rules reject.
- Text after a closing quote (``"O\\"Brien"``, a backslash-escaped quote; ``"a"b``): the record,
  up to the end of its line, is rejected with the reason; reading goes on at the next line.
  Backslash escapes are not normalised: ``\\"`` is not a quote in RFC 4180, and guessing what a
  producer meant would publish values nobody wrote.
- A quote that is never closed (the record would run to the end of the file): its first line
  is rejected with the reason and reading resumes at the next line, so the rows after it are
  read as rows, not swallowed into one rejected record.
- Bytes that are not UTF-8 (admission refuses such files; this is the reader's own guard): the
  record holding them is rejected, never published with U+FFFD in it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

BOM = "\ufeff"
MORE_FIELDS = "row: more fields than the header"
_QUOTE_RULE = 'a quote inside a quoted field is written twice (""); a backslash does not escape it'


@dataclass(frozen=True)
class Record:
    line: int  # the line the record starts on; the header is line 1
    fields: tuple[str | None, ...]  # exactly `width` values; an empty or missing field is None
    problem: str | None = None  # why the record's shape breaks the contract


@dataclass(frozen=True, kw_only=True)
class SourceFile:
    """A file to read: where Spark finds it and what the rows say they came from."""

    path: str  # what Spark reads (an s3:// URL on Glue, a local copy in the stand-in and tests)
    original_key: str  # the upload's key (under incoming/), kept with each row
    uploaded: str = ""  # its upload time, ISO-8601 UTC in one fixed format: newest duplicates by it


class _Lines:
    """The file's lines (line ends kept) as the csv reader pulls them, with the position it reached."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.next = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.next >= len(self.lines):
            raise StopIteration
        self.next += 1
        return self.lines[self.next - 1]


def records(text: str, *, width: int) -> Iterator[Record]:
    """The data records of one file's text (the header, its first record, is skipped)."""
    # newline="": lines split at LF, CRLF and CR alike, their ends kept for the csv module.
    source = _Lines(list(io.StringIO(text.removeprefix(BOM), newline="")))
    reader = csv.reader(source, strict=True)
    header_seen = False
    while True:
        start = source.next
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if not header_seen:  # admission checked the header; a broken one is still no data
                header_seen = True
                continue
            yield _broken(source, start, error, width)
            continue
        if not fields:  # an empty line
            continue
        if not header_seen:
            header_seen = True
            continue
        problem = MORE_FIELDS if len(fields) > width else None
        if any("\ufffd" in field for field in fields):
            problem = "row: not UTF-8 (bytes that do not decode)"
        yield Record(line=start + 1, fields=_padded(fields, width), problem=problem)


def _broken(source: _Lines, start: int, error: csv.Error, width: int) -> Record:
    """The rejected record for a csv error in the record that starts at line `start` + 1."""
    line, end = start + 1, source.next
    if str(error) == "unexpected end of data":  # a quoted field never closed before the end
        problem = (
            f"row: a quote opened on line {line} is never closed (the record would run to the end of the "
            f"file, line {end}); line {line} rejected, reading resumes at line {line + 1}"
        )
        source.next = start + 1
        raw = source.lines[start]
    elif "expected after" in str(error):  # the csv module's "',' expected after '\"'"
        span = f"line {end}" if end == line else f"lines {line}-{end}"
        problem = f"row: text after a closing quote on {span} ({_QUOTE_RULE})"
        raw = "".join(source.lines[start:end])
    else:
        problem = f"row: not readable as CSV on lines {line}-{end}: {error}"
        raw = "".join(source.lines[start:end])
    # What a lenient read of its text makes of it, so the rejected row shows the producer the values.
    lenient = next(csv.reader(io.StringIO(raw, newline="")), [])
    return Record(line=line, fields=_padded(lenient, width), problem=problem)


def _padded(fields: list[str], width: int) -> tuple[str | None, ...]:
    values = [field if field != "" else None for field in fields[:width]]
    return (*values, *([None] * (width - len(values))))


def local_form(path: str) -> str:
    """A path as given and as Spark reports it (``file:/tmp/a.csv`` for ``/tmp/a.csv``) alike."""
    return unquote(path.removeprefix("file://").removeprefix("file:"))


def source_index(sources: Iterable[SourceFile]) -> dict[str, SourceFile]:
    """The files by the path Spark reports, and by file name where that is unique (admission's
    names are hashes), so a scheme or encoding Spark adds to a path never loses a file."""
    files = list(sources)
    names = Counter(PurePosixPath(local_form(f.path)).name for f in files)
    index = {PurePosixPath(local_form(f.path)).name: f for f in files}
    index = {name: f for name, f in index.items() if names[name] == 1}
    return {**index, **{local_form(f.path): f for f in files}}


def file_records(row: Any, *, sources: Mapping[str, SourceFile], width: int) -> Iterator[tuple[Any, ...]]:
    """One file of Spark's ``binaryFile`` source (``row.path``, ``row.content``) as reader rows:
    the `width` fields, the problem, the original key, the upload time and the line."""
    path = local_form(row.path)
    source = sources.get(path) or sources.get(PurePosixPath(path).name)
    if source is None:
        raise KeyError(f"Spark read {row.path!r}, which is none of the run's files")
    text = bytes(row.content).decode("utf-8", errors="replace")
    for record in records(text, width=width):
        yield (*record.fields, record.problem, source.original_key, source.uploaded, record.line)
