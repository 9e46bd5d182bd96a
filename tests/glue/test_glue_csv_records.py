"""The reader contract record by record (glue/reader.py) and the run's admission records
(glue/admission_records.py): pure Python, no Spark."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from glue.admission_records import AdmissionRecordError, admitted_file, in_upload_order
from glue.reader import MORE_FIELDS, Record, SourceFile, file_records, records, source_index

HEADER = "order_id,customer_id,order_date,amount,currency"
RUN = "landing/run=r1/"


def rows(count: int, *, first: int = 1, newline: str = "\n") -> str:
    return "".join(f"SO-{n},C{n},2026-01-05,{n}.00,EUR{newline}" for n in range(first, first + count))


def parsed(text: str) -> list[Record]:
    return list(records(text, width=5))


def test_crlf_file_with_lf_rows_appended_is_one_record_per_line() -> None:
    # Spark fixes the line separator from the first line (CRLF) and made the 50 LF rows one record.
    text = f"{HEADER}\r\n" + rows(50, newline="\r\n") + rows(50, first=51)

    result = parsed(text)

    assert len(result) == 100
    assert [r.fields[0] for r in result] == [f"SO-{n}" for n in range(1, 101)]
    assert result[-1] == Record(line=101, fields=("SO-100", "C100", "2026-01-05", "100.00", "EUR"))
    assert all(r.problem is None for r in result)


def test_cr_only_lines_and_empty_lines() -> None:
    # SO-2's CR and the LF after it are one CRLF; then an empty line.
    result = parsed(f"{HEADER}\r" + rows(2, newline="\r") + "\n\r\n" + rows(1, first=3))

    assert [(r.line, r.fields[0]) for r in result] == [(2, "SO-1"), (3, "SO-2"), (5, "SO-3")]


def test_an_unclosed_quote_rejects_its_line_and_reading_resumes_after_it() -> None:
    # Row 96 of 101 opens a quote that never closes: main read rows 96-101 as one rejected record.
    text = HEADER + "\n" + rows(95) + 'SO-96,"C96,2026-01-05,96.00,EUR\n' + rows(5, first=97)

    result = parsed(text)

    assert len(result) == 101
    [broken] = [r for r in result if r.problem]
    assert broken.line == 97 and broken.fields[:2] == ("SO-96", "C96,2026-01-05,96.00,EUR\n")
    assert broken.problem == (
        "row: a quote opened on line 97 is never closed (the record would run to the end of the file, line 102); "
        "line 97 rejected, reading resumes at line 98"
    )
    assert [r.fields[0] for r in result[96:]] == [f"SO-{n}" for n in range(97, 102)]


def test_fields_past_the_header_even_empty_ones_break_the_record() -> None:
    result = parsed(f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR,,lost-note\nSO-2,C2,2026-01-05,2.00,EUR,\nSO-3,C3\n")

    assert [(r.line, r.problem) for r in result] == [(2, MORE_FIELDS), (3, MORE_FIELDS), (4, None)]
    assert result[2].fields == ("SO-3", "C3", None, None, None)  # fewer: the required rules reject it


def test_rfc4180_quotes_and_a_backslash_escaped_quote() -> None:
    text = (
        f"{HEADER}\n"
        '"SO-1","O""Brien",2026-01-05,1.00,EUR\n'
        '"SO-2","two\r\nlines",2026-01-05,2.00,EUR\n'
        '"SO-3","O\\"Brien",2026-01-05,3.00,EUR\n'
        "SO-4,ends in a backslash\\,2026-01-05,4.00,EUR\n"
    )

    result = parsed(text)

    assert [r.fields[:2] for r in result] == [
        ("SO-1", 'O"Brien'),
        ("SO-2", "two\r\nlines"),
        ("SO-3", 'O\\Brien"'),  # what a lenient read makes of it, shown in the rejected row
        ("SO-4", "ends in a backslash\\"),
    ]
    assert [r.line for r in result] == [2, 3, 5, 6]
    assert result[2].problem == (
        'row: text after a closing quote on line 5 (a quote inside a quoted field is written twice (""); '
        "a backslash does not escape it)"
    )
    assert [r.problem for r in (result[0], result[1], result[3])] == [None, None, None]


def test_a_bom_is_not_part_of_the_header_and_undecodable_bytes_are_rejected() -> None:
    text = "\ufeff" + HEADER + "\nSO-1,C1,2026-01-05,1.00,EUR\nSO-2,C\ufffd,2026-01-05,1.00,EUR\n"

    result = parsed(text)

    assert [(r.fields[0], r.problem) for r in result] == [
        ("SO-1", None),
        ("SO-2", "row: not UTF-8 (bytes that do not decode)"),
    ]


RECORD = {
    "original_key": "incoming/a/_hidden*.csv",
    "object_key": f"{RUN}{'ab' * 20}.csv",
    "size": 10,
    "etag": "e",
    "last_modified": "2026-12-03T09:00:00+00:00",
    "records": 3,
    "run": "r1",
}


def test_an_admission_record_names_a_safe_object_in_the_run_folder_and_its_upload_time() -> None:
    item = admitted_file(RECORD, run_prefix=RUN, where="r.json")

    assert (item.original_key, item.object_key, item.records) == (RECORD["original_key"], RECORD["object_key"], 3)
    assert item.uploaded == "2026-12-03T09:00:00.000000Z"
    later = admitted_file(
        {**RECORD, "object_key": f"{RUN}b.csv", "last_modified": "2026-12-03T10:00:00.5+01:00"},
        run_prefix=RUN,
        where="s.json",
    )
    assert later.uploaded == "2026-12-03T09:00:00.500000Z"  # the same instant in UTC, text sorts as time
    assert in_upload_order([later, item]) == [item, later]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"object_key": "landing/run=r2/a.csv"}, "field 'object_key' is 'landing/run=r2/a.csv'"),
        ({"object_key": f"{RUN}_a.csv"}, "field 'object_key'"),
        ({"object_key": f"{RUN}a*.csv"}, "field 'object_key'"),
        ({"object_key": f"{RUN}x/../a.csv"}, "field 'object_key'"),
        ({"records": -1}, "field 'records' is -1"),
        ({"records": True}, "field 'records' is True; expected int"),
        ({"last_modified": "2026-12-03T09:00:00"}, "expected ISO-8601 with a time zone"),
        ({"original_key": ""}, "field 'original_key' is empty"),
    ],
)
def test_an_admission_record_that_admission_cannot_have_written_fails_with_its_field(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(AdmissionRecordError, match="admission record r.json: ") as raised:
        admitted_file({**RECORD, **change}, run_prefix=RUN, where="r.json")
    assert message in str(raised.value)


def test_one_object_admitted_twice_is_refused() -> None:
    item = admitted_file(RECORD, run_prefix=RUN, where="r.json")

    with pytest.raises(AdmissionRecordError, match="admitted twice"):
        in_upload_order([item, item])


def test_a_file_spark_reports_is_found_by_its_path_or_its_unique_name() -> None:
    uploaded = "2026-12-03T09:00:00.000000Z"
    sources = source_index(
        [
            SourceFile(path="/tmp/in/a.csv", original_key="incoming/a.csv", uploaded=uploaded),
            SourceFile(path="s3://b/landing/run=r/0f.csv", original_key="incoming/x y.csv", uploaded=uploaded),
            SourceFile(path="/tmp/other/a.csv", original_key="incoming/other/a.csv"),
        ]
    )
    content = f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR\n".encode()

    def read(path: str) -> list[tuple[object, ...]]:
        return list(file_records(SimpleNamespace(path=path, content=content), sources=sources, width=5))

    assert read("file:/tmp/in/a.csv") == [
        ("SO-1", "C1", "2026-01-05", "1.00", "EUR", None, "incoming/a.csv", uploaded, 2)
    ]
    assert read("s3a://b/landing/run%3Dr/0f.csv")[0][6] == "incoming/x y.csv"  # by its unique name
    with pytest.raises(KeyError, match="none of the run's files"):
        read("file:/tmp/elsewhere/a.csv")  # "a.csv" is two files' name: no guessing
