"""Read, validate and type raw sales-order rows.

PySpark over DataFrames, no Glue imports, so the same code runs in the Glue job, in the local
runner (localrun/emulator/glue_standin.py, on a local SparkSession) and in unit tests. The one read is
`read_orders`; everything after it is pure DataFrame work.

The reader contract (glue/reader.py, record by record; tests/glue/test_glue_reader.py):
- exactly the files the caller names (the run's admitted files, named by their admission records:
  glue/admission_records.py), each with a header row; the header is checked by admission
  (glue/contract.py) and the columns are taken by position;
- every value a string as written: no inference, so ``000123`` stays ``000123`` and ``1.0E7`` is
  judged by the amount rule, not by a guess;
- RFC 4180 quoting (quoted fields span lines, a quote inside one is doubled), records end at LF,
  CRLF or CR, line by line; UTF-8 (admission refuses anything else);
- a record whose shape breaks the contract (more fields than the header, text after a closing
  quote such as a backslash-escaped quote, a quote never closed) is rejected with the reason;
  each row keeps its original key and the line it starts on (``source_key``, ``source_line`` in
  the rejected output).

Each record either lands in ``curated`` (typed, cleaned) or in ``rejected`` (original strings plus
the first rule it failed), hence ``input rows == curated rows + rejected rows``.

IDs (``order_id``, ``customer_id``): edge white space is trimmed; then an ID is 1-64 ASCII letters,
digits, ``-``, ``_``, ``.`` or ``/``, starts and ends with a letter or digit and holds at least one
digit (``ID_PATTERN``): a contract, not a list of null spellings, so ``NULL``, ``#N/A``, ``(null)``,
``undefined`` and ``NaN`` are all rejected by it. An ID with an invisible, format or control
character inside (U+200B, U+FEFF, U+00AD, U+200C/D, U+2060, bidi marks, tabs, ...) is rejected with
that reason, not normalised: silently stripping them would merge IDs the source system keeps apart.

Currencies: three ASCII letters, any case (``eur`` is ``EUR``), that are an ISO 4217 currency with
minor units, from the `iso4217` library (the ISO 4217 list as published, not a typed table): the
codes ISO reserves for "no currency" (``XXX``) and testing (``XTS``), precious metals and units
of account have none, so they are rejected, as are codes that are not in the list (``ABC``) and
non-ASCII letters (``ınr`` is not upper-cased into ``INR``).

Duplicate ``order_id``s within a run: the newest valid row wins, "newest" meaning the latest
upload (the admission record's ``last_modified``, the upload's S3 LastModified), then the greatest
original key, then the last line in that file. Earlier copies are rejected as
``order_id: duplicate``; an invalid row never displaces a valid one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import iso4217
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    DecimalType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from glue.contract import COLUMNS as CONTRACT_COLUMNS
from glue.reader import SourceFile, file_records, source_index


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

# Columns the reader adds to each record (glue/reader.py): the reason its shape breaks the contract,
# the original key of its file, that file's upload time, and the line the record starts on.
ROW_PROBLEM = "__row_problem"
SOURCE_KEY = "source_key"
UPLOADED = "__uploaded"
SOURCE_LINE = "source_line"
ID_COLUMNS = ("order_id", "customer_id")
ID_PATTERN = r"^(?=.{1,64}$)(?=\D*\d)[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$"
ID_RULE = "not an ID: 1-64 of A-Z a-z 0-9 - _ . /, starting and ending with a letter or digit, at least one digit"
# Format (Cf: U+200B, U+FEFF, U+00AD, U+200C/D, U+2060, bidi marks), control (Cc), private-use
# and unassigned characters, and white space other than the plain space (NBSP, U+2007, ...) left
# inside after trimming the edges.
_INVISIBLE = r"[\p{Cf}\p{Cc}\p{Co}\p{Cn}[\p{Z}&&[^ ]]]"
# ISO 4217 currencies with minor units (XXX, XTS, metals and units of account have none).
CURRENCIES: tuple[str, ...] = tuple(sorted(c.code for c in iso4217.Currency if c.exponent is not None))

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
_CURRENCY_SHAPE = r"^[A-Za-z]{3}$"


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
    """What `read_orders` gives: SCHEMA's columns as strings, then where each record came from."""
    return StructType(
        [
            *raw_schema().fields,
            StructField(ROW_PROBLEM, StringType(), True),
            StructField(SOURCE_KEY, StringType(), False),
            StructField(UPLOADED, StringType(), False),
            StructField(SOURCE_LINE, IntegerType(), False),
        ]
    )


def read_orders(spark: SparkSession, files: Sequence[str | SourceFile]) -> DataFrame:
    """Exactly these CSV files, read by the reader contract (glue/reader.py), one task per file;
    a plain path is its own original key. No files: an empty frame of the same shape."""
    sources = [f if isinstance(f, SourceFile) else SourceFile(path=f, original_key=f) for f in files]
    if not sources:
        return spark.createDataFrame([], reader_schema())
    # binaryFile reads each file whole, as Spark's own multi-line CSV reader does; the parsing is
    # the reader contract's (line by line, whatever each line's end), not Spark's, which fixes one
    # line separator per file from its first line and merges lines that end otherwise.
    content = spark.read.format("binaryFile").load([s.path for s in sources]).select("path", "content")
    parse = functools.partial(file_records, sources=source_index(sources), width=len(SCHEMA))
    return spark.createDataFrame(content.rdd.flatMap(parse), reader_schema())


def transform(raw: DataFrame) -> TransformResult:
    """Split ``raw`` into typed valid rows and rejected rows with a reason.

    Extra input columns are dropped from both outputs so that the curated and rejected
    locations always share one layout; the rejected rows keep ``source_key`` and ``source_line``.
    Without the reader's columns (a frame not from `read_orders`), the frame's own order stands
    for the line order.
    """
    missing = [spec.name for spec in SCHEMA if spec.name not in raw.columns]
    if missing:
        raise SchemaError(
            f"input is missing expected column(s): {', '.join(missing)}; "
            f"expected {[spec.name for spec in SCHEMA]}, got {raw.columns}"
        )

    defaults = {
        ROW_PROBLEM: F.lit(None).cast(StringType()),
        SOURCE_KEY: F.lit(""),
        UPLOADED: F.lit(""),
        SOURCE_LINE: F.monotonically_increasing_id(),
    }
    raw = raw.withColumns({name: value for name, value in defaults.items() if name not in raw.columns})
    # Rules work on text, whatever type a caller's frame has.
    text = {spec.name: F.col(spec.name).cast(StringType()) for spec in SCHEMA}
    typed: dict[str, Column] = {}
    # (row fails, reason), in check order: the record's shape first, then each column's rules.
    rules: list[tuple[Column, Column | str]] = [(F.col(ROW_PROBLEM).isNotNull(), F.col(ROW_PROBLEM))]
    for spec in SCHEMA:
        value = _clean(text[spec.name], spec)
        parsed, parse_failed, parse_reason = _parse(value, spec)
        typed[spec.name] = parsed
        if spec.required:
            rules.append((value.isNull(), f"{spec.name}: required"))
        if spec.name in ID_COLUMNS:
            rules.append((value.rlike(_INVISIBLE), f"{spec.name}: invisible, format or control character"))
            rules.append((~value.rlike(ID_PATTERN), f"{spec.name}: {ID_RULE}"))
        if parse_failed is not None:
            rules.append((parse_failed, f"{spec.name}: {parse_reason}"))
        rules.extend((failed, f"{spec.name}: {why}") for failed, why in _domain_rules(spec.name, parsed))

    # coalesce() of when()s yields the reason of the first rule that fails.
    first_failure = F.coalesce(
        *(F.when(failed, message if isinstance(message, Column) else F.lit(message)) for failed, message in rules)
    )
    checked = raw.select(
        *(text[spec.name].alias(spec.name) for spec in SCHEMA),
        *(typed[spec.name].alias(f"__typed_{spec.name}") for spec in SCHEMA),
        first_failure.alias(REJECT_REASON),
        F.col(SOURCE_KEY),
        F.col(UPLOADED),
        F.col(SOURCE_LINE),
    )

    # Keep one valid row per order_id (invalid rows are already rejected and must not outrank
    # a valid one): the newest upload, then the greatest original key, then the last line.
    is_valid = F.col(REJECT_REASON).isNull()
    first_per_order = Window.partitionBy(F.col("__typed_order_id"), is_valid).orderBy(
        F.col(UPLOADED).desc(), F.col(SOURCE_KEY).desc(), F.col(SOURCE_LINE).desc()
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
    rejected = ranked.where(F.col(REJECT_REASON).isNotNull()).select(
        *(spec.name for spec in SCHEMA), REJECT_REASON, SOURCE_KEY, F.col(SOURCE_LINE).cast(IntegerType())
    )
    return TransformResult(curated=curated, rejected=rejected)


def _clean(value: Column, spec: ColumnSpec) -> Column:
    """Trim, normalise, and map blank to null so "required" has one meaning."""
    trimmed = F.regexp_replace(value, _EDGE_WHITESPACE, "")
    if spec.name == "currency":
        # ASCII letters only: Spark's upper() would turn a dotless ı into I ("ınr" into "INR").
        trimmed = F.when(trimmed.rlike(_CURRENCY_SHAPE), F.upper(trimmed)).otherwise(trimmed)
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
        return [
            (~parsed.rlike(_CURRENCY_SHAPE), "not 3 letters A-Z"),
            (~parsed.isin(*CURRENCIES), "not an ISO 4217 currency (with minor units)"),
        ]
    return []
