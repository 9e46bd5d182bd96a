"""The reader contract (glue/reader.py, run inside Spark by glue/transform.py read_orders) and one run
(glue/run.py run_job), on real files: what the Glue job and the local Glue stand-in both do with the
run's CSV files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue.reader import MORE_FIELDS, SourceFile
from glue.run import run_job
from glue.transform import ID_RULE, REJECT_REASON, SOURCE_KEY, SOURCE_LINE, read_orders, transform

pytestmark = pytest.mark.slow

HEADER = "order_id,customer_id,order_date,amount,currency"


def write(folder: Path, name: str, text: str, *, newline: str = "\n", encoding: str = "utf-8") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return str(path)


def rows(count: int, *, first: int = 1, newline: str = "\n") -> str:
    return "".join(f"SO-{n},C{n},2026-01-05,{n}.00,EUR{newline}" for n in range(first, first + count))


def outcome(spark: SparkSession, files: list[str | SourceFile]) -> tuple[dict[str, tuple], dict[str, str]]:
    """({order_id: (customer_id, amount)} curated, {order_id: reason} rejected)."""
    result = transform(read_orders(spark, files))
    curated = {r.order_id: (r.customer_id, r.amount) for r in result.curated.collect()}
    rejected = {r.order_id: r[REJECT_REASON] for r in result.rejected.collect()}
    return curated, rejected


def test_values_are_strings_as_written_no_inference(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", f"{HEADER}\n000123,C1,2026-01-05,1.0E7,EUR\n000124,007,2026-01-05,0012.50,EUR\n")

    curated, rejected = outcome(spark, [path])

    # 000123 keeps its zeros (no integer guess); 1.0E7 is judged by the amount rule, not parsed.
    assert curated == {"000124": ("007", Decimal("12.50"))}
    assert rejected == {"000123": "amount: not decimal(12,2)"}


def test_quoted_fields_doubled_quotes_multiline_and_backslash_escapes(spark: SparkSession, tmp_path: Path) -> None:
    text = (
        f"{HEADER}\n"
        '"SO-1","C-1",2026-01-05,10.00,EUR\n'
        '"SO-2","O""Brien-2",2026-01-05,11.00,EUR\n'
        '"SO-3","line one\nline two",2026-01-05,12.00,EUR\n'
        '"SO-4","O\\"Brien-4",2026-01-05,13.00,EUR\n'
        "SO-5,C5,2026-01-05,14.00,EUR\n"
    )
    path = write(tmp_path, "a.csv", text)

    result = transform(read_orders(spark, [path]))
    rejected = {r.order_id: (r.customer_id, r[REJECT_REASON], r[SOURCE_LINE]) for r in result.rejected.collect()}

    assert sorted(r.order_id for r in result.curated.collect()) == ["SO-1", "SO-5"]
    assert rejected == {
        "SO-2": ('O"Brien-2', f"customer_id: {ID_RULE}", 3),  # the doubled quote is one quote
        # One record, read whole; a line break inside an ID is a control character in it.
        "SO-3": ("line one\nline two", "customer_id: invisible, format or control character", 4),
        # Not RFC 4180 (main published it with the backslash and the quotes): rejected with the reason.
        "SO-4": (
            'O\\Brien-4"',
            'row: text after a closing quote on line 6 (a quote inside a quoted field is written twice (""); '
            "a backslash does not escape it)",
            6,
        ),
    }


def test_a_crlf_file_with_lf_rows_appended_is_read_row_by_row(spark: SparkSession, tmp_path: Path) -> None:
    # On main Spark took CRLF from the first line and read the 50 LF rows as one record.
    path = write(tmp_path, "mixed.csv", f"{HEADER}\r\n" + rows(50, newline="\r\n") + rows(50, first=51))

    curated, rejected = outcome(spark, [path])

    assert (len(curated), rejected) == (100, {})
    assert curated["SO-50"] == ("C50", Decimal("50.00")) and curated["SO-51"] == ("C51", Decimal("51.00"))


def test_an_unclosed_quote_rejects_its_row_with_the_line_and_the_rows_after_it_are_read(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Row 96 of 101 (line 97) opens a quote it never closes; on main it swallowed rows 97-101 into one
    # rejected record.
    text = HEADER + "\n" + rows(95) + 'SO-96,"C96,2026-01-05,96.00,EUR\n' + rows(5, first=97)
    path = write(tmp_path, "open-quote.csv", text)

    result = transform(read_orders(spark, [path]))

    assert result.curated.count() == 100
    [bad] = result.rejected.collect()
    assert (bad.order_id, bad[SOURCE_LINE], bad[SOURCE_KEY]) == ("SO-96", 97, path)
    assert bad[REJECT_REASON].startswith("row: a quote opened on line 97 is never closed")


def test_fields_past_the_header_reject_the_row_even_when_empty(spark: SparkSession, tmp_path: Path) -> None:
    # On main ",,lost-note" was accepted and "lost-note" dropped (Spark read the empty sixth field as null).
    path = write(tmp_path, "a.csv", f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR,,lost-note\nSO-2,C2,2026-01-05,2.00,EUR\n")

    curated, rejected = outcome(spark, [path])

    assert (list(curated), rejected) == (["SO-2"], {"SO-1": MORE_FIELDS})


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr_only"])
def test_line_endings(spark: SparkSession, tmp_path: Path, newline: str) -> None:
    path = write(
        tmp_path, "a.csv", f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR\nSO-2,C2,2026-01-06,2.00,USD\n", newline=newline
    )

    curated, rejected = outcome(spark, [path])

    assert sorted(curated) == ["SO-1", "SO-2"]
    assert rejected == {}
    assert curated["SO-2"] == ("C2", Decimal("2.00"))  # no stray \r in the last column


def test_more_fields_than_the_header_rejected_fewer_fail_required(spark: SparkSession, tmp_path: Path) -> None:
    text = f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR,surplus\nSO-2,C2,2026-01-05,2.00\nSO-3,C3,2026-01-05,3.00,EUR\n"
    path = write(tmp_path, "a.csv", text)

    curated, rejected = outcome(spark, [path])

    assert list(curated) == ["SO-3"]
    assert rejected == {"SO-1": MORE_FIELDS, "SO-2": "currency: required"}


def test_a_repeated_header_row_is_a_rejected_row(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR\n{HEADER}\nSO-2,C2,2026-01-05,2.00,EUR\n")

    curated, rejected = outcome(spark, [path])

    assert sorted(curated) == ["SO-1", "SO-2"]
    assert rejected == {"order_id": f"order_id: {ID_RULE}"}


def test_newest_duplicate_wins_by_upload_time_then_original_key_then_line(spark: SparkSession, tmp_path: Path) -> None:
    # Uploaded in the opposite of key order: on main the last file in key order won, not the newest.
    def source(name: str, text: str, uploaded: str) -> SourceFile:
        return SourceFile(
            path=write(tmp_path, name, f"{HEADER}\n{text}"), original_key=f"incoming/{name}", uploaded=uploaded
        )

    newest = source(
        "a.csv", "SO-1,NEW-1,2026-01-05,3.00,EUR\nSO-1,NEWEST-1,2026-01-05,4.00,EUR\n", "2026-12-03T10:00:00.000000Z"
    )
    middle = source(
        "b.csv", "SO-1,MID-1,2026-01-05,2.00,EUR\nSO-1,BAD-1,2026-02-30,5.00,EUR\n", "2026-12-03T09:00:00.000000Z"
    )
    # The same upload time: the greater original key is the newer.
    oldest = source(
        "c.csv", "SO-1,OLD-1,2026-01-05,1.00,EUR\nSO-2,A-2,2026-01-05,1.00,EUR\n", "2026-12-03T08:00:00.000000Z"
    )
    tie = source("d.csv", "SO-2,B-2,2026-01-05,2.00,EUR\n", "2026-12-03T08:00:00.000000Z")

    for files in ([newest, middle, oldest, tie], [tie, oldest, middle, newest]):  # the order given does not matter
        curated, _ = outcome(spark, list(files))
        assert curated == {"SO-1": ("NEWEST-1", Decimal("4.00")), "SO-2": ("B-2", Decimal("2.00"))}
    result = transform(read_orders(spark, [newest, middle, oldest, tie]))
    reasons = sorted(
        (r.customer_id, r[REJECT_REASON], r[SOURCE_KEY], r[SOURCE_LINE]) for r in result.rejected.collect()
    )
    assert reasons == [
        ("A-2", "order_id: duplicate", "incoming/c.csv", 3),
        ("BAD-1", "order_date: not yyyy-MM-dd", "incoming/b.csv", 3),
        ("MID-1", "order_id: duplicate", "incoming/b.csv", 2),
        ("NEW-1", "order_id: duplicate", "incoming/a.csv", 2),
        ("OLD-1", "order_id: duplicate", "incoming/c.csv", 2),
    ]


def test_run_job_writes_reads_back_and_counts_add_up(spark: SparkSession, tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "in/a.csv",
        f'{HEADER}\n"SO-1","C1",2026-01-05,1.00,EUR\nSO-2,C2,2026-01-05,-1,EUR\nSO-3,"multi\nline",2026-01-05,1,EUR\n',
    )
    empty = write(tmp_path, "in/b.csv", f"{HEADER}\n")
    curated, rejected = tmp_path / "out" / "curated", tmp_path / "out" / "rejected"

    manifest = run_job(
        spark,
        inputs=[good, empty],
        admitted_records=3,
        curated_path=str(curated),
        rejected_path=str(rejected),
        run_id="jr_1",
        recorded_as={good: "s3://landing/run=r1/a.csv", str(curated): "s3://curated/staging/orders/run=r1/"},
    )

    counts = ("admitted_records", "input_rows", "output_rows", "rejected_rows")
    assert tuple(manifest[c] for c in counts) == (3, 3, 1, 2)
    assert manifest["input_files"] == ["s3://landing/run=r1/a.csv", empty]  # header-only files too
    assert manifest["output_path"] == "s3://curated/staging/orders/run=r1/"
    assert manifest["rejected_path"] == str(rejected)
    written = spark.read.options(header="true", multiLine="true", escape='"').csv(str(rejected))
    assert sorted((r.order_id, r[SOURCE_KEY], r[SOURCE_LINE]) for r in written.collect()) == [
        ("SO-2", good, "3"),
        ("SO-3", good, "4"),
    ]

    # A second attempt of the same run replaces its output: nothing is counted or kept twice.
    again = run_job(
        spark,
        inputs=[good],
        admitted_records=3,
        curated_path=str(curated),
        rejected_path=str(rejected),
        run_id="jr_2",
    )
    assert tuple(again[c] for c in counts) == (3, 3, 1, 2)
    assert spark.read.parquet(str(curated)).count() == 1


def test_run_job_writes_dates_before_the_gregorian_calendar(spark: SparkSession, tmp_path: Path) -> None:
    # On main Spark refused the whole write (WRITE_ANCIENT_DATETIME): one old date failed the run.
    path = write(
        tmp_path,
        "in/old.csv",
        f"{HEADER}\nSO-1,C1,1500-03-01,1.00,EUR\nSO-2,C2,0001-01-01,2.00,EUR\nSO-3,C3,2026-01-05,3.00,EUR\n",
    )
    curated = tmp_path / "out" / "curated"

    manifest = run_job(
        spark,
        inputs=[path],
        admitted_records=3,
        curated_path=str(curated),
        rejected_path=str(tmp_path / "out" / "rejected"),
        run_id="jr_old",
    )

    assert (manifest["output_rows"], manifest["rejected_rows"]) == (3, 0)
    # Written as they are (proleptic Gregorian, no Julian rebase): read back unchanged.
    read_back = {r.order_id: r.order_date for r in spark.read.parquet(str(curated)).collect()}
    assert read_back == {"SO-1": dt.date(1500, 3, 1), "SO-2": dt.date(1, 1, 1), "SO-3": dt.date(2026, 1, 5)}


def test_run_job_without_files_writes_an_empty_run(spark: SparkSession, tmp_path: Path) -> None:
    out = tmp_path / "out"

    manifest = run_job(
        spark, inputs=[], admitted_records=0, curated_path=str(out / "c"), rejected_path=str(out / "r"), run_id="jr_0"
    )

    assert (manifest["input_rows"], manifest["output_rows"], manifest["rejected_rows"]) == (0, 0, 0)
