"""Read, validate and type raw sales-order rows.

PySpark over DataFrames, no Glue imports, so the same code runs in the Glue job, in the local
runner (localrun/glue_standin.py, on a local SparkSession) and in unit tests. The one read is
`read_orders`; everything after it is pure DataFrame work.

The reader contract (``READER_OPTIONS``, next to ``SCHEMA``; tests/unit/test_glue_transform.py):
- exactly the files the caller names (the run's admitted files, listed by glue/run.py), each
  with a header row; the header is checked by admission (glue/contract.py) and the columns are
  taken by position;
- an explicit all-string schema: no inference, so ``000123`` stays ``000123`` and ``1.0E7`` is
  judged by the amount rule, not by a guess;
- RFC 4180 quoting: quoted fields may span lines (``multiLine``) and a quote inside one is
  doubled (``"O""Brien"`` is ``O"Brien``); a backslash is an ordinary character;
- UTF-8 (admission refuses anything else);
- a record with more fields than the header is rejected (``row: more fields than the header``);
  one with fewer gets nulls in the missing columns, which the required rules reject.

Each row either lands in ``curated`` (typed, cleaned) or in ``rejected`` (original strings plus
the first rule it failed), hence ``input rows == curated rows + rejected rows``.

IDs (``order_id``, ``customer_id``): edge white space is trimmed; a null-like value (``NULL``,
``N/A``, ``NA``, ``NONE``, ``NIL``, ``-``, ``?``, any case) is rejected as ``null-like``; an ID
with an invisible, format or control character inside (U+200B, U+FEFF, U+00AD, U+200C/D,
U+2060, bidi marks, tabs, ...) is rejected, not normalised: silently stripping them would merge
IDs the source system keeps apart, and the rejected row shows the producer what to fix.

Duplicate ``order_id``s within a run: the newest valid row wins, "newest" meaning the last
file in path order (the S3 key order of the run's files, as ListObjectsV2 returns them), then
the last record in that file. Earlier copies are rejected as ``order_id: duplicate``; an
invalid row never displaces a valid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
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

# How the run's CSV files are read (the reader contract above). The columns are SCHEMA's, in
# order, all strings, plus EXTRA_FIELDS to catch a record with more fields than the header.
READER_OPTIONS: dict[str, str] = {
    "header": "true",
    "enforceSchema": "true",  # by position: admission has checked the header is exactly COLUMNS
    "multiLine": "true",
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
    "mode": "PERMISSIVE",
    "inferSchema": "false",
}
EXTRA_FIELDS = "__extra_fields"
# Where each record came from: its file and its position in the read (monotonic within a file).
SOURCE_FILE = "__source_file"
RECORD_INDEX = "__record_index"
NULL_LIKE_IDS: tuple[str, ...] = ("null", "n/a", "na", "none", "nil", "-", "?")
ID_COLUMNS = ("order_id", "customer_id")
# Format (Cf: U+200B, U+FEFF, U+00AD, U+200C/D, U+2060, bidi marks), control (Cc), private-use
# and unassigned characters, and white space other than the plain space (NBSP, U+2007, ...) left
# inside after trimming the edges.
_INVISIBLE = r"[\p{Cf}\p{Cc}\p{Co}\p{Cn}[\p{Z}&&[^ ]]]"

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


class SchemaError(ValueError):
    """The input header lacks columns the transform needs."""


@dataclass(frozen=True)
class TransformResult:
    curated: DataFrame
    rejected: DataFrame


def raw_schema() -> StructType:
    """All-string schema of the expected input, e.g. for an empty input batch."""
    return StructType([StructField(spec.name, StringType(), True) for spec in SCHEMA])


def reader_schema() -> StructType:
    """What `read_orders` reads: SCHEMA's columns as strings, then one catch-all for extra fields."""
    return StructType([*raw_schema().fields, StructField(EXTRA_FIELDS, StringType(), True)])


def read_orders(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """Exactly these CSV files, read by the contract above, each record tagged with its file and
    position (``SOURCE_FILE``, ``RECORD_INDEX``). No files: an empty frame of the same shape."""
    if not paths:
        empty = spark.createDataFrame([], reader_schema())
        return empty.withColumn(SOURCE_FILE, F.lit("")).withColumn(RECORD_INDEX, F.lit(0).cast("long"))
    frame = spark.read.options(**READER_OPTIONS).schema(reader_schema()).csv(list(paths))
    # Tagged straight after the scan, before any shuffle: a multi-line file is read whole by one
    # task, so the ids grow with the record's position in its file.
    return frame.withColumn(SOURCE_FILE, F.input_file_name()).withColumn(RECORD_INDEX, F.monotonically_increasing_id())


def transform(raw: DataFrame) -> TransformResult:
    """Split ``raw`` into typed valid rows and rejected rows with a reason.

    Extra input columns are dropped from both outputs so that the curated and rejected
    locations always share one layout. Without ``SOURCE_FILE``/``RECORD_INDEX`` (a frame not
    from `read_orders`), the frame's own order stands for the file order.
    """
    missing = [spec.name for spec in SCHEMA if spec.name not in raw.columns]
    if missing:
        raise SchemaError(
            f"input is missing expected column(s): {', '.join(missing)}; "
            f"expected {[spec.name for spec in SCHEMA]}, got {raw.columns}"
        )

    if SOURCE_FILE not in raw.columns:
        raw = raw.withColumn(SOURCE_FILE, F.lit(""))
    if RECORD_INDEX not in raw.columns:
        raw = raw.withColumn(RECORD_INDEX, F.monotonically_increasing_id())
    # Rules work on text, whatever type a caller's frame has.
    text = {spec.name: F.col(spec.name).cast(StringType()) for spec in SCHEMA}
    typed: dict[str, Column] = {}
    rules: list[tuple[Column, str]] = []  # (row fails, reason), in check order
    if EXTRA_FIELDS in raw.columns:
        rules.append((F.col(EXTRA_FIELDS).isNotNull(), "row: more fields than the header"))
    for spec in SCHEMA:
        value = _clean(text[spec.name], spec)
        parsed, parse_failed, parse_reason = _parse(value, spec)
        typed[spec.name] = parsed
        if spec.required:
            rules.append((value.isNull(), f"{spec.name}: required"))
        if spec.name in ID_COLUMNS:
            rules.append((F.lower(value).isin(*NULL_LIKE_IDS), f"{spec.name}: null-like"))
            rules.append((value.rlike(_INVISIBLE), f"{spec.name}: invisible, format or control character"))
        if parse_failed is not None:
            rules.append((parse_failed, f"{spec.name}: {parse_reason}"))
        rules.extend((failed, f"{spec.name}: {why}") for failed, why in _domain_rules(spec.name, parsed))

    # coalesce() of when()s yields the reason of the first rule that fails.
    first_failure = F.coalesce(*(F.when(failed, F.lit(message)) for failed, message in rules))
    checked = raw.select(
        *(text[spec.name].alias(spec.name) for spec in SCHEMA),
        *(typed[spec.name].alias(f"__typed_{spec.name}") for spec in SCHEMA),
        first_failure.alias(REJECT_REASON),
        F.col(SOURCE_FILE),
        F.col(RECORD_INDEX),
    )

    # Keep one valid row per order_id (invalid rows are already rejected and must not outrank
    # a valid one): the newest, i.e. the last file in path order, then the last record in it.
    is_valid = F.col(REJECT_REASON).isNull()
    first_per_order = Window.partitionBy(F.col("__typed_order_id"), is_valid).orderBy(
        F.col(SOURCE_FILE).desc(), F.col(RECORD_INDEX).desc()
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
