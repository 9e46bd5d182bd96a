"""Validate and type raw sales-order rows.

Pure PySpark over DataFrames: no I/O and no Glue imports, so the same code runs in
the Glue job, in the local runner and in unit tests.

The input is a CSV read with a header and without schema inference, so every
column is a string. Each row either lands in ``curated`` (typed, cleaned) or in
``rejected`` (original strings plus the first rule it failed), hence
``input rows == curated rows + rejected rows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    DecimalType,
    StringType,
    StructField,
    StructType,
)

from glue.contract import COLUMNS as CONTRACT_COLUMNS


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    spark_type: DataType
    required: bool


# The one place the input contract is declared: header names, target types, and
# whether an empty value is an error. Order is the output column order and the
# order in which rules are checked.
SCHEMA: tuple[ColumnSpec, ...] = (
    ColumnSpec("order_id", StringType(), required=True),
    ColumnSpec("customer_id", StringType(), required=True),
    ColumnSpec("order_date", DateType(), required=True),
    ColumnSpec("amount", DecimalType(12, 2), required=True),
    ColumnSpec("currency", StringType(), required=True),
)

# The header admission checks (glue/contract.py) is exactly these columns, in this order.
if tuple(spec.name for spec in SCHEMA) != CONTRACT_COLUMNS:
    raise ImportError(
        f"glue/transform.py SCHEMA {[s.name for s in SCHEMA]} differs from glue/contract.py {CONTRACT_COLUMNS}"
    )

REJECT_REASON = "reject_reason"
DATE_FORMAT = "yyyy-MM-dd"

# F.trim only strips spaces; tabs, CRs and spreadsheet NBSPs (\p{Z}) must go too.
_EDGE_WHITESPACE = r"^[\s\p{Z}]+|[\s\p{Z}]+$"
# Guards the parser: shapes it would reject anyway, plus year 0000, which Spark's
# proleptic calendar accepts but Python's datetime and most readers cannot hold.
_DATE_SHAPE = r"^(?!0000)\d{4}-\d{2}-\d{2}$"
_CURRENCY_SHAPE = r"^[A-Z]{3}$"
# Tie-break for duplicate order_ids: the row that sorts first on these is kept.
_DEDUPE_ORDER = ("amount", "customer_id", "order_date", "currency")


class SchemaError(ValueError):
    """The input header lacks columns the transform needs."""


@dataclass(frozen=True)
class TransformResult:
    curated: DataFrame
    rejected: DataFrame


def raw_schema() -> StructType:
    """All-string schema of the expected input, e.g. for an empty input batch."""
    return StructType([StructField(spec.name, StringType(), True) for spec in SCHEMA])


def transform(raw: DataFrame) -> TransformResult:
    """Split ``raw`` into typed valid rows and rejected rows with a reason.

    Extra input columns are dropped from both outputs so that appends to the
    curated and rejected locations always share one layout.
    """
    missing = [spec.name for spec in SCHEMA if spec.name not in raw.columns]
    if missing:
        raise SchemaError(
            f"input is missing expected column(s): {', '.join(missing)}; "
            f"expected {[spec.name for spec in SCHEMA]}, got {raw.columns}"
        )

    # Glue's DynamicFrame CSV reader may infer numeric types; rules work on text.
    text = {spec.name: F.col(spec.name).cast(StringType()) for spec in SCHEMA}
    typed: dict[str, Column] = {}
    rules: list[tuple[Column, str]] = []  # (row fails, reason), in check order
    for spec in SCHEMA:
        value = _clean(text[spec.name], spec)
        parsed, parse_failed, parse_reason = _parse(value, spec)
        typed[spec.name] = parsed
        if spec.required:
            rules.append((value.isNull(), f"{spec.name}: required"))
        if parse_failed is not None:
            rules.append((parse_failed, f"{spec.name}: {parse_reason}"))
        rules.extend((failed, f"{spec.name}: {why}") for failed, why in _domain_rules(spec.name, parsed))

    # coalesce() of when()s yields the reason of the first rule that fails.
    first_failure = F.coalesce(*(F.when(failed, F.lit(message)) for failed, message in rules))
    checked = raw.select(
        *(text[spec.name].alias(spec.name) for spec in SCHEMA),
        *(typed[spec.name].alias(f"__typed_{spec.name}") for spec in SCHEMA),
        first_failure.alias(REJECT_REASON),
    )

    # Keep one valid row per order_id (invalid rows are already rejected and must
    # not outrank a valid one), chosen by value rather than by file position: CSV
    # row order is not stable across Spark splits or re-runs. Lowest amount, then
    # customer_id, date and currency, totally orders distinct rows; rows equal on
    # all of them are interchangeable.
    is_valid = F.col(REJECT_REASON).isNull()
    first_per_order = Window.partitionBy(F.col("__typed_order_id"), is_valid).orderBy(
        *(F.col(f"__typed_{name}").asc() for name in _DEDUPE_ORDER)
    )
    ranked = checked.withColumn(
        REJECT_REASON,
        F.when(
            is_valid & (F.row_number().over(first_per_order) > 1),
            F.lit("order_id: duplicate"),
        ).otherwise(F.col(REJECT_REASON)),
    )

    curated = ranked.where(F.col(REJECT_REASON).isNull()).select(
        # The cast pins the declared type, e.g. the nullable decimal(12,2).
        *(F.col(f"__typed_{spec.name}").cast(spec.spark_type).alias(spec.name) for spec in SCHEMA)
    )
    rejected = ranked.where(F.col(REJECT_REASON).isNotNull()).select(*(spec.name for spec in SCHEMA), REJECT_REASON)
    return TransformResult(curated=curated, rejected=rejected)


def _clean(value: Column, spec: ColumnSpec) -> Column:
    """Trim, normalise, and map blank to null so "required" has one meaning."""
    trimmed = F.regexp_replace(value, _EDGE_WHITESPACE, "")
    if spec.name == "currency":
        trimmed = F.upper(trimmed)
    return F.when(trimmed != "", trimmed)


def _parse(value: Column, spec: ColumnSpec) -> tuple[Column, Column | None, str]:
    """Return (typed value or null, non-null value failed to parse, reason).

    Every cast is guarded by a shape check so nothing throws under
    spark.sql.ansi.enabled=true, and results are identical with ANSI off.
    """
    spark_type = spec.spark_type
    if isinstance(spark_type, StringType):
        return value, None, ""
    if isinstance(spark_type, DateType):
        # try_to_timestamp nulls impossible dates (2026-02-30) in either ANSI mode.
        parsed = F.when(
            value.rlike(_DATE_SHAPE),
            F.to_date(F.try_to_timestamp(value, F.lit(DATE_FORMAT))),
        )
        return parsed, value.isNotNull() & parsed.isNull(), f"not {DATE_FORMAT}"
    if isinstance(spark_type, DecimalType):
        # Leading zeros aside, at most precision-scale integer digits and scale
        # decimals: the cast then never overflows or silently rounds.
        whole_digits = spark_type.precision - spark_type.scale
        fraction = rf"(\.\d{{1,{spark_type.scale}}})?" if spark_type.scale else ""
        shape = rf"^-?0*\d{{1,{whole_digits}}}{fraction}$"
        parsed = F.when(value.rlike(shape), value.cast(spark_type))
        return parsed, value.isNotNull() & parsed.isNull(), f"not {spark_type.simpleString()}"
    raise TypeError(f"no parser for column {spec.name!r} of type {spark_type.simpleString()}")


def _domain_rules(name: str, parsed: Column) -> list[tuple[Column, str]]:
    """Business rules on the typed value (null when an earlier rule failed)."""
    if name == "amount":
        return [(parsed < 0, "negative")]
    if name == "currency":
        return [(~parsed.rlike(_CURRENCY_SHAPE), "not 3 letters")]
    return []
