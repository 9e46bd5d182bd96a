"""Every record accounted for (issue 16 item 1, ADMISSION_CONTRACT.md §2): admission counts each
admitted file's records by the reader contract while it streams the file, writes the count into the
file's admission record, and quarantines (bad_csv, naming the line) what the reader would split
differently: on main these files were admitted and lost rows with a SUCCEEDED run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.lambdas import admission_support as base
from tests.lambdas.admission_support import BUCKET, HEADER, RUN, admit, keys, landed, put, read, record_of

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

aws_credentials, env, adm, s3 = base.aws_credentials, base.env, base.adm, base.s3


def rows(count: int, start: int = 0) -> list[str]:
    return [f"O-{i},C-{i},2024-05-01,{i}.00,EUR" for i in range(start, start + count)]


def lf(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def crlf(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in lines)


# name: (file body, data records the reader finds in it)
COUNTED: dict[str, tuple[str, int]] = {
    "lf": (lf(HEADER, *rows(3)), 3),
    "crlf": (crlf(HEADER, *rows(3)), 3),
    "no_final_line_break": (lf(HEADER, *rows(2)) + rows(1, 2)[0], 3),
    "header_only": (lf(HEADER), 0),
    "header_only_no_line_break": (HEADER, 0),
    "bom": ("\ufeff" + lf(HEADER, *rows(2)), 2),
    "blank_lines": (lf(HEADER, "", *rows(2), "", "") + "\n", 2),
    "quoted_line_breaks": (lf(HEADER, 'O-1,"C-1\nsecond line\nthird",2024-05-01,1.00,EUR', *rows(1, 5)), 2),
    "crlf_with_lf_inside_quotes": (crlf(HEADER, 'O-1,"Excel\ncell",2024-05-01,1.00,EUR', *rows(1, 5)), 2),
    "doubled_quotes": (lf(HEADER, 'O-1,"O""Brien, ""Jr""",2024-05-01,1.00,EUR', 'O-2,"""",2024-05-01,1,EUR'), 2),
    "quote_inside_unquoted_field": (lf(HEADER, 'O-1,5" screen,2024-05-01,1.00,EUR'), 1),
    "empty_quoted_fields": (lf(HEADER, 'O-1,"",2024-05-01,"",EUR', ",,,,"), 2),
    # issue 16: a CRLF file with an LF file appended; the reader splits each line at its own break
    "crlf_then_lf": (crlf(HEADER, *rows(10)) + lf(*rows(10, 10)), 20),
    "lone_cr": (HEADER + "\n" + rows(1)[0] + "\r" + rows(1, 1)[0] + "\n", 2),
    "crlf_then_blank_lf": (crlf(HEADER, *rows(2)) + "\n", 2),
    "extra_and_missing_fields": (lf(HEADER, "O-1,C-1,2024-05-01,1.00,EUR,,lost-note", "O-2,C-2"), 2),
    "quoted_comma_and_crlf": (crlf(HEADER, 'O-1,"a,b\r\nc",2024-05-01,1.00,EUR'), 1),
}


@pytest.mark.parametrize(("body", "records"), list(COUNTED.values()), ids=list(COUNTED))
def test_an_admitted_files_records_are_counted_into_its_admission_record(
    adm: base.AdmissionCode, s3: Any, body: str, records: int
) -> None:
    key = "incoming/shop/orders.csv"
    put(s3, key, body)
    head = s3.head_object(Bucket=BUCKET, Key=key)

    [entry] = admit(adm, key)["admitted"]

    assert json.loads(read(s3, record_of(key))) == {
        "original_key": key,
        "object_key": landed(key),
        "size": len(body.encode()),
        "etag": head["ETag"],
        "last_modified": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "records": records,
        "run": RUN,
    }
    assert entry["destination"] == landed(key)


def test_the_batch_and_the_summary_carry_the_records(adm: base.AdmissionCode, s3: Any) -> None:
    for index, (body, _) in enumerate(COUNTED.values()):
        put(s3, f"incoming/{index}.csv", body)
    items = [{"key": f"incoming/{i}.csv", "size": 1, "run": RUN} for i in range(len(COUNTED))]

    output = adm.handler.handler({"items": items}, None)

    assert output["records"] == sum(records for _, records in COUNTED.values())
    assert output["admitted"] == len(COUNTED)


UNCLOSED = lf(HEADER, *rows(95), 'O-95,"C-95,2024-05-01,95.00,EUR', *rows(5, 96))  # row 96 of 101
BACKSLASH = lf(HEADER, 'O-1,"say \\"hi\\"",2024-05-01,1.00,EUR', *rows(3, 2))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            UNCLOSED,
            "line 97: a quoted field starts here and is never closed (an unpaired '\"'): where its value ends "
            "would be a guess",
        ),
        (BACKSLASH, "line 2: a quoted field's closing quote is followed by 'h'; a quote inside a quoted field"),
    ],
    ids=["unclosed_quote", "backslash_escape"],
)
def test_a_file_the_reader_would_split_differently_is_quarantined_naming_the_line(
    adm: base.AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch, body: str, reason: str
) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100000")
    entry = base.quarantined_one(adm, s3, "incoming/orders.csv", body)

    assert entry["code"] == "bad_csv"
    assert entry["reason"].startswith(reason), entry["reason"]


def test_counting_does_not_depend_on_where_the_stream_is_cut(adm: base.AdmissionCode) -> None:
    for body, records in COUNTED.values():
        for cut in range(len(body) + 1):
            counter = adm.checks.RecordCounter()
            counter.feed(body[:cut])
            counter.feed(body[cut:])
            assert counter.finish() is None and counter.data_records == records, (body, cut)
    for body in (UNCLOSED, BACKSLASH):
        whole = adm.checks.RecordCounter()
        whole.feed(body)
        expected = whole.finish()
        for cut in range(0, len(body) + 1, 7):
            counter = adm.checks.RecordCounter()
            counter.feed(body[:cut])
            counter.feed(body[cut:])
            assert counter.finish() == expected


def test_counting_is_fast_enough_for_the_largest_file(adm: base.AdmissionCode) -> None:
    # 100 MB (admission.max_file_megabytes' default order) must count well inside the 4-minute batch.
    import time

    block = crlf(*rows(1000), 'O-x,"multi\nline ""quoted""",2024-05-01,1.00,EUR') * 200  # ~8 MB
    counter = adm.checks.RecordCounter()
    started = time.perf_counter()
    counter.feed(HEADER + "\r\n")
    for _ in range(3):
        counter.feed(block)
    elapsed = time.perf_counter() - started
    assert counter.finish() is None and counter.data_records == 3 * 200 * 1001
    # ~24 MB in 30 s is 100 MB in about 2 minutes, inside the 4-minute batch even on a busy machine
    # (a few seconds when idle).
    assert elapsed < 30, f"{elapsed:.1f} s for {3 * len(block):,} characters"


@pytest.mark.slow  # a Spark session
def test_the_reader_finds_exactly_the_records_admission_counted(
    adm: base.AdmissionCode, s3: Any, spark: SparkSession, tmp_path: Path
) -> None:
    from glue.transform import read_orders

    for index, (body, _) in enumerate(COUNTED.values()):
        put(s3, f"incoming/{index}.csv", body)
    admit(adm, *(f"incoming/{i}.csv" for i in range(len(COUNTED))))

    for index, name in enumerate(COUNTED):
        key = f"incoming/{index}.csv"
        record = json.loads(read(s3, record_of(key)))
        local = tmp_path / record["object_key"].rsplit("/", 1)[-1]
        local.write_bytes(read(s3, record["object_key"]))
        assert read_orders(spark, [str(local)]).count() == record["records"], name
    assert not any(k.startswith("incoming/") for k in keys(s3))
