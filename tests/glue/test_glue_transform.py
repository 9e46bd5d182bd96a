from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import DateType, DecimalType, StringType, StructField, StructType

from glue.transform import (
    ID_RULE,
    REJECT_REASON,
    SCHEMA,
    SOURCE_KEY,
    SOURCE_LINE,
    SchemaError,
    raw_schema,
    read_orders,
    transform,
)

# Every test here runs Spark jobs on the shared local session.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
COLUMNS = [spec.name for spec in SCHEMA]
GOOD = {
    "order_id": "SO-2026-000001",
    "customer_id": "CUST-00001",
    "order_date": "2026-01-05",
    "amount": "10.00",
    "currency": "EUR",
}


def row(**overrides: str | None) -> tuple[str | None, ...]:
    values = {**GOOD, **overrides}
    return tuple(values[name] for name in COLUMNS)


def case_row(index: int, column: str, value: str | None) -> tuple[str | None, ...]:
    """A GOOD row with its own order_id and one column replaced by ``value``."""
    return row(**{"order_id": f"SO-CASE-{index:02d}", column: value})


def run(spark: SparkSession, *rows: tuple[str | None, ...]) -> tuple[list[Row], list[Row]]:
    result = transform(spark.createDataFrame(list(rows), raw_schema()))
    return result.curated.collect(), result.rejected.collect()


def read_sample(spark: SparkSession, name: str) -> DataFrame:
    # The job's own reader (the reader contract): header, all strings, no inference.
    return read_orders(spark, [str(SAMPLES / name)])


@pytest.fixture(params=["false", "true"], ids=["ansi_off", "ansi_on"])
def ansi(spark: SparkSession, request: pytest.FixtureRequest) -> Iterator[None]:
    """Run a test with ANSI mode off and on: results must not depend on it."""
    previous = spark.conf.get("spark.sql.ansi.enabled") or "false"
    spark.conf.set("spark.sql.ansi.enabled", request.param)
    yield
    spark.conf.set("spark.sql.ansi.enabled", previous)


def test_valid_row_is_cleaned_and_typed(spark: SparkSession) -> None:
    curated, rejected = run(
        spark,
        row(order_id="  SO-2026-000001\t", customer_id="\u00a0CUST-00001", amount=" 0012.5 ", currency=" eur "),
    )

    assert rejected == []
    assert curated == [
        Row(
            order_id="SO-2026-000001",
            customer_id="CUST-00001",
            order_date=dt.date(2026, 1, 5),
            amount=Decimal("12.50"),
            currency="EUR",
        )
    ]


def test_output_schemas(spark: SparkSession) -> None:
    result = transform(spark.createDataFrame([row()], raw_schema()))

    curated_types = {field.name: field.dataType for field in result.curated.schema.fields}
    assert curated_types == {
        "order_id": StringType(),
        "customer_id": StringType(),
        "order_date": DateType(),
        "amount": DecimalType(12, 2),
        "currency": StringType(),
    }
    assert result.rejected.columns == [*COLUMNS, REJECT_REASON, SOURCE_KEY, SOURCE_LINE]
    assert all(field.dataType == StringType() for field in result.rejected.schema.fields[:-1])


# (column, raw value, expected reject_reason); each case changes one column of GOOD.
REJECT_CASES: list[tuple[str, str | None, str]] = [
    ("order_id", None, "order_id: required"),
    ("order_id", "   ", "order_id: required"),
    ("customer_id", "", "customer_id: required"),
    ("customer_id", "\t", "customer_id: required"),
    ("order_date", None, "order_date: required"),
    ("order_date", "2026-02-30", "order_date: not yyyy-MM-dd"),
    ("order_date", "2026-02-29", "order_date: not yyyy-MM-dd"),
    ("order_date", "2026-13-01", "order_date: not yyyy-MM-dd"),
    ("order_date", "2026-1-5", "order_date: not yyyy-MM-dd"),
    ("order_date", "05/01/2026", "order_date: not yyyy-MM-dd"),
    ("order_date", "2026-01-05T10:00:00", "order_date: not yyyy-MM-dd"),
    ("order_date", "0000-01-01", "order_date: not yyyy-MM-dd"),
    ("amount", None, "amount: required"),
    ("amount", "ten", "amount: not decimal(12,2)"),
    ("amount", "12.345", "amount: not decimal(12,2)"),
    ("amount", "1,000.00", "amount: not decimal(12,2)"),
    ("amount", "1e3", "amount: not decimal(12,2)"),
    ("amount", "12345678901.00", "amount: not decimal(12,2)"),
    ("amount", "-0.01", "amount: negative"),
    ("amount", "-250.00", "amount: negative"),
    ("currency", "", "currency: required"),
    ("currency", "EURO", "currency: not 3 letters A-Z"),
    ("currency", "E1R", "currency: not 3 letters A-Z"),
    ("currency", "€", "currency: not 3 letters A-Z"),
    # ISO 4217 (the iso4217 library's list): "no currency", testing, a metal, not a code at all.
    ("currency", "XXX", "currency: not an ISO 4217 currency (with minor units)"),
    ("currency", "XTS", "currency: not an ISO 4217 currency (with minor units)"),
    ("currency", "XAU", "currency: not an ISO 4217 currency (with minor units)"),
    ("currency", "ABC", "currency: not an ISO 4217 currency (with minor units)"),
    # A dotless ı is not I: Spark's upper() would have made "ınr" INR.
    ("currency", "ınr", "currency: not 3 letters A-Z"),
    # IDs follow a pattern (ID_PATTERN): null spellings, placeholders and words are not IDs.
    ("order_id", "NULL", f"order_id: {ID_RULE}"),
    ("order_id", "n/a", f"order_id: {ID_RULE}"),
    ("order_id", " - ", f"order_id: {ID_RULE}"),
    ("order_id", "None", f"order_id: {ID_RULE}"),
    ("order_id", "#N/A", f"order_id: {ID_RULE}"),
    ("order_id", "(null)", f"order_id: {ID_RULE}"),
    ("order_id", "undefined", f"order_id: {ID_RULE}"),
    ("order_id", "NaN", f"order_id: {ID_RULE}"),
    ("order_id", "SO-1-", f"order_id: {ID_RULE}"),
    ("order_id", "SO 1", f"order_id: {ID_RULE}"),
    ("order_id", "S" * 64 + "1", f"order_id: {ID_RULE}"),
    ("customer_id", "N/A", f"customer_id: {ID_RULE}"),
    ("customer_id", "?", f"customer_id: {ID_RULE}"),
    ("customer_id", "O'Brien-1", f"customer_id: {ID_RULE}"),
    # Invisible, format and control characters inside an ID are rejected, not normalised.
    ("order_id", "SO-1\u200b", "order_id: invisible, format or control character"),
    ("order_id", "\ufeffSO-2", "order_id: invisible, format or control character"),
    ("order_id", "SO\u00ad3", "order_id: invisible, format or control character"),
    ("order_id", "SO\u20604", "order_id: invisible, format or control character"),
    ("order_id", "SO-\u200e5", "order_id: invisible, format or control character"),
    ("order_id", "SO\t6", "order_id: invisible, format or control character"),
    ("customer_id", "CUST\u00a01", "customer_id: invisible, format or control character"),
    ("customer_id", "CUST\u200d2", "customer_id: invisible, format or control character"),
    # Fullwidth digits are not digits to the amount rule.
    ("amount", "\uff11\uff10.00", "amount: not decimal(12,2)"),
]

# (column, raw value, expected typed value) at the edges of what is allowed.
ACCEPT_CASES: list[tuple[str, str, object]] = [
    ("order_date", "2024-02-29", dt.date(2024, 2, 29)),
    ("order_date", "2026-12-31", dt.date(2026, 12, 31)),
    ("amount", "0", Decimal("0.00")),
    ("amount", "-0.00", Decimal("0.00")),
    ("amount", "0.5", Decimal("0.50")),
    ("amount", "9999999999.99", Decimal("9999999999.99")),
    ("amount", "000000000012.30", Decimal("12.30")),
    ("currency", "gbp", "GBP"),
    ("currency", "XOF", "XOF"),
    ("currency", "jpy", "JPY"),
    ("customer_id", "7", "7"),
    ("customer_id", "a.b_c/d-1", "a.b_c/d-1"),
    ("customer_id", "C" * 63 + "1", "C" * 63 + "1"),
]


@pytest.mark.usefixtures("ansi")
def test_each_invalid_value_is_rejected_with_its_reason(spark: SparkSession) -> None:
    # One DataFrame for all cases keeps Spark jobs few; distinct order_ids keep
    # dedupe out of the way, and the original row text identifies each case.
    rows = [case_row(i, column, value) for i, (column, value, _) in enumerate(REJECT_CASES)]
    curated, rejected = run(spark, *rows)

    assert curated == []
    assert {tuple(r[name] for name in COLUMNS): r[REJECT_REASON] for r in rejected} == {
        original: reason for original, (_, _, reason) in zip(rows, REJECT_CASES, strict=True)
    }


@pytest.mark.usefixtures("ansi")
def test_each_boundary_value_is_accepted(spark: SparkSession) -> None:
    curated, rejected = run(spark, *(case_row(i, column, value) for i, (column, value, _) in enumerate(ACCEPT_CASES)))

    assert rejected == []
    assert len(curated) == len(ACCEPT_CASES)
    by_order_id = {r.order_id: r for r in curated}
    for i, (column, value, expected) in enumerate(ACCEPT_CASES):
        assert by_order_id[f"SO-CASE-{i:02d}"][column] == expected, f"{column}={value!r}"


def test_reason_names_first_failed_rule_in_schema_order(spark: SparkSession) -> None:
    _, rejected = run(
        spark,
        row(order_id="SO-1", customer_id="", order_date="bad"),
        row(order_id="SO-2", order_date="bad", amount="-1", currency="XX"),
        row(order_id="SO-3", amount="-1", currency="XX"),
    )

    assert {r.order_id: r[REJECT_REASON] for r in rejected} == {
        "SO-1": "customer_id: required",
        "SO-2": "order_date: not yyyy-MM-dd",
        "SO-3": "amount: negative",
    }


def test_duplicate_order_id_keeps_the_newest_row(spark: SparkSession) -> None:
    # One frame stands for one file: the last record of an order_id wins.
    rows = [
        row(customer_id="CUST-B2", amount="10.00"),
        row(customer_id="CUST-C3", amount="30.00"),
        row(customer_id="CUST-A1", amount="20.00"),
        row(order_id="SO-2026-000002"),
    ]
    curated, rejected = run(spark, *rows)

    assert sorted((r.order_id, r.customer_id, r.amount) for r in curated) == [
        ("SO-2026-000001", "CUST-A1", Decimal("20.00")),
        ("SO-2026-000002", "CUST-00001", Decimal("10.00")),
    ]
    assert sorted((r.customer_id, r[REJECT_REASON]) for r in rejected) == [
        ("CUST-B2", "order_id: duplicate"),
        ("CUST-C3", "order_id: duplicate"),
    ]


def test_duplicates_are_detected_after_trimming(spark: SparkSession) -> None:
    curated, rejected = run(spark, row(order_id="SO-9"), row(order_id=" SO-9 ", amount="20.00"))

    assert [r.amount for r in curated] == [Decimal("20.00")]
    assert [(r.order_id, r[REJECT_REASON]) for r in rejected] == [("SO-9", "order_id: duplicate")]


def test_an_id_with_an_invisible_character_is_not_a_second_order(spark: SparkSession) -> None:
    curated, rejected = run(spark, row(order_id="SO-1"), row(order_id="SO-1\u200b", amount="99.00"))

    assert [(r.order_id, r.amount) for r in curated] == [("SO-1", Decimal("10.00"))]
    assert [r[REJECT_REASON] for r in rejected] == ["order_id: invisible, format or control character"]


def test_invalid_row_does_not_displace_valid_row_with_same_order_id(spark: SparkSession) -> None:
    # The invalid row sorts first (lower amount) but must not win the dedupe.
    curated, rejected = run(spark, row(order_date="2026-02-30", amount="1.00"), row(amount="50.00"))

    assert [r.amount for r in curated] == [Decimal("50.00")]
    assert [r[REJECT_REASON] for r in rejected] == ["order_date: not yyyy-MM-dd"]


def test_extra_input_columns_are_dropped(spark: SparkSession) -> None:
    schema = StructType([*raw_schema().fields, StructField("note", StringType())])
    raw = spark.createDataFrame([(*row(), "gift"), (*row(order_id="SO-2", amount="x"), "late")], schema)

    result = transform(raw)

    assert result.curated.columns == COLUMNS
    assert result.rejected.columns == [*COLUMNS, REJECT_REASON, SOURCE_KEY, SOURCE_LINE]


def test_missing_columns_raise_schema_error_naming_them(spark: SparkSession) -> None:
    raw = spark.createDataFrame([row()[:3]], "order_id string, customer_id string, order_date string")

    with pytest.raises(SchemaError, match=r"missing expected column\(s\): amount, currency;"):
        transform(raw)


@pytest.mark.usefixtures("ansi")
def test_sample_orders(spark: SparkSession) -> None:
    raw = read_sample(spark, "orders.csv")
    result = transform(raw)

    assert raw.count() == 40
    assert result.curated.count() == 38
    assert {r.order_id: r[REJECT_REASON] for r in result.rejected.collect()} == {
        "SO-2026-000129": "order_date: not yyyy-MM-dd",
        "SO-2026-000133": "amount: negative",
    }
    assert sorted({r.currency for r in result.curated.collect()}) == ["EUR", "GBP", "USD"]


def test_sample_orders_mostly_bad(spark: SparkSession) -> None:
    raw = read_sample(spark, "orders_mostly_bad.csv")
    result = transform(raw)

    assert raw.count() == 10
    assert sorted(r.order_id for r in result.curated.collect()) == [
        "SO-2026-000201",
        "SO-2026-000207",
        "SO-2026-000210",
    ]
    assert sorted((r.customer_id or "", r[REJECT_REASON]) for r in result.rejected.collect()) == [
        ("", "customer_id: required"),
        ("CUST-00087", "order_date: not yyyy-MM-dd"),
        ("CUST-00311", "currency: not 3 letters A-Z"),
        ("CUST-00620", "order_id: required"),
        ("CUST-00955", "amount: negative"),
        ("CUST-01002", "amount: not decimal(12,2)"),
        ("CUST-01230", "amount: not decimal(12,2)"),
    ]


def test_sample_orders_empty(spark: SparkSession) -> None:
    result = transform(read_sample(spark, "orders_empty.csv"))

    assert result.curated.count() == 0
    assert result.rejected.count() == 0
