"""The reader contract (glue/transform.py READER_OPTIONS) and one run (glue/run.py run_job), on
real files: what the Glue job and the local Glue stand-in both do with the run's CSV files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue.run import run_input_keys, run_job
from glue.transform import REJECT_REASON, read_orders, transform

pytestmark = pytest.mark.slow

HEADER = "order_id,customer_id,order_date,amount,currency"


def write(folder: Path, name: str, text: str, *, newline: str = "\n", encoding: str = "utf-8") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return str(path)


def outcome(spark: SparkSession, paths: list[str]) -> tuple[dict[str, tuple], dict[str, str]]:
    """({order_id: (customer_id, amount)} curated, {order_id: reason} rejected)."""
    result = transform(read_orders(spark, paths))
    curated = {r.order_id: (r.customer_id, r.amount) for r in result.curated.collect()}
    rejected = {r.order_id: r[REJECT_REASON] for r in result.rejected.collect()}
    return curated, rejected


def test_values_are_strings_as_written_no_inference(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", f"{HEADER}\n000123,C1,2026-01-05,1.0E7,EUR\n000124,007,2026-01-05,0012.50,EUR\n")

    curated, rejected = outcome(spark, [path])

    # 000123 keeps its zeros (no integer guess); 1.0E7 is judged by the amount rule, not parsed.
    assert curated == {"000124": ("007", Decimal("12.50"))}
    assert rejected == {"000123": "amount: not decimal(12,2)"}


def test_quoted_fields_doubled_quotes_multiline_and_backslashes(spark: SparkSession, tmp_path: Path) -> None:
    text = (
        f"{HEADER}\n"
        '"SO-1","O""Brien",2026-01-05,10.00,EUR\n'
        '"SO-2","line one\nline two",2026-01-05,11.00,EUR\n'
        '"SO-3","ends in a backslash\\",2026-01-05,12.00,EUR\n'
    )
    path = write(tmp_path, "a.csv", text)

    raw = read_orders(spark, [path])
    curated, rejected = outcome(spark, [path])

    assert raw.count() == 3  # the quoted newline does not split a record
    assert curated == {
        "SO-1": ('O"Brien', Decimal("10.00")),
        "SO-3": ("ends in a backslash\\", Decimal("12.00")),
    }
    # One record, read whole; a line break inside an ID is a control character in it.
    assert rejected == {"SO-2": "customer_id: invisible, format or control character"}


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
    assert rejected == {"SO-1": "row: more fields than the header", "SO-2": "currency: required"}


def test_a_repeated_header_row_is_a_rejected_row(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", f"{HEADER}\nSO-1,C1,2026-01-05,1.00,EUR\n{HEADER}\nSO-2,C2,2026-01-05,2.00,EUR\n")

    curated, rejected = outcome(spark, [path])

    assert sorted(curated) == ["SO-1", "SO-2"]
    assert rejected == {"order_id": "order_date: not yyyy-MM-dd"}


def test_newest_duplicate_wins_last_file_in_key_order_then_last_line(spark: SparkSession, tmp_path: Path) -> None:
    # Files in key order: 2026-11-01/a.csv < 2026-11-02/a.csv < 2026-11-02/b.csv.
    first = write(
        tmp_path, "orders/2026-11-01/a.csv", f"{HEADER}\nSO-1,OLD,2026-01-05,1.00,EUR\nSO-2,A,2026-01-05,1.00,EUR\n"
    )
    second = write(tmp_path, "orders/2026-11-02/a.csv", f"{HEADER}\nSO-1,MID,2026-01-05,2.00,EUR\n")
    third = write(
        tmp_path,
        "orders/2026-11-02/b.csv",
        f"{HEADER}\nSO-1,NEW-1,2026-01-05,3.00,EUR\nSO-1,NEWEST,2026-01-05,4.00,EUR\nSO-1,BAD,2026-02-30,5.00,EUR\n",
    )

    for paths in ([first, second, third], [third, first, second]):  # the order given does not matter
        curated, _ = outcome(spark, paths)
        assert curated == {"SO-1": ("NEWEST", Decimal("4.00")), "SO-2": ("A", Decimal("1.00"))}
    result = transform(read_orders(spark, [first, second, third]))
    reasons = sorted((r.customer_id, r[REJECT_REASON]) for r in result.rejected.collect())
    assert reasons == [
        ("BAD", "order_date: not yyyy-MM-dd"),
        ("MID", "order_id: duplicate"),
        ("NEW-1", "order_id: duplicate"),
        ("OLD", "order_id: duplicate"),
    ]


def test_run_input_keys_are_the_objects_under_the_run_folder_in_key_order() -> None:
    keys = ["landing/run=r1/b.csv", "landing/run=r1/", "landing/run=r10/a.csv", "landing/run=r1/a/x.csv", "other"]

    assert run_input_keys(keys, "landing/run=r1/") == ["landing/run=r1/a/x.csv", "landing/run=r1/b.csv"]


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
        input_paths=[good, empty],
        curated_path=str(curated),
        rejected_path=str(rejected),
        run_id="jr_1",
        recorded_as={good: "s3://landing/run=r1/a.csv", str(curated): "s3://curated/staging/orders/run=r1/"},
    )

    assert (manifest["input_rows"], manifest["output_rows"], manifest["rejected_rows"]) == (3, 1, 2)
    assert manifest["input_files"] == ["s3://landing/run=r1/a.csv", empty]  # header-only files too
    assert manifest["output_path"] == "s3://curated/staging/orders/run=r1/"
    assert manifest["rejected_path"] == str(rejected)

    # A second attempt of the same run replaces its output: nothing is counted or kept twice.
    again = run_job(spark, input_paths=[good], curated_path=str(curated), rejected_path=str(rejected), run_id="jr_2")
    assert (again["input_rows"], again["output_rows"], again["rejected_rows"]) == (3, 1, 2)
    assert spark.read.parquet(str(curated)).count() == 1


def test_run_job_without_files_writes_an_empty_run(spark: SparkSession, tmp_path: Path) -> None:
    out = tmp_path / "out"

    manifest = run_job(spark, input_paths=[], curated_path=str(out / "c"), rejected_path=str(out / "r"), run_id="jr_0")

    assert (manifest["input_rows"], manifest["output_rows"], manifest["rejected_rows"]) == (0, 0, 0)
