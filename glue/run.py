"""One run of the transform, everything but Glue: read the run's admitted files, transform, write, count.

The Glue job (glue/job.py) calls `run_job` with Glue's SparkSession and s3:// paths; the local
Glue stand-in (localrun/emulator/glue_standin.py) calls it with a local SparkSession on copies of the
same objects. Only the Glue layer (GlueContext, job arguments, commit) and where the manifest
is put stay outside.

Writes are to this run's own locations (the transform stage names them per run:
``staging/orders/run=<run>/`` for curated Parquet, ``rejected/orders/run=<run>/`` for rejected
rows), overwritten, so a retried or redriven run replaces its own output instead of adding to it.
Nothing written here is visible to readers: the stage publishes the run's partition in the
Data Catalog only after the check has passed (write, audit, publish).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from glue.manifest import build_manifest
from glue.reader import SourceFile
from glue.transform import REJECT_REASON, SCHEMA, SOURCE_KEY, SOURCE_LINE, read_orders, transform

# Written with the same quoting the reader expects, so multi-line and quoted values round-trip.
REJECTED_CSV_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true", "encoding": "UTF-8"}
# Every date the rules accept can be written: Spark refuses dates before 1582-10-15 in Parquet
# (WRITE_ANCIENT_DATETIME) unless told how; CORRECTED writes them as they are (the proleptic
# Gregorian calendar that Spark 3, Athena and Trino read), with no Julian rebase.
SPARK_SQL_CONF = {
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
}


def curated_schema() -> StructType:
    return StructType([StructField(spec.name, spec.spark_type, True) for spec in SCHEMA])


def rejected_schema() -> StructType:
    return StructType(
        [
            *(StructField(name, StringType(), True) for name in (*(s.name for s in SCHEMA), REJECT_REASON, SOURCE_KEY)),
            StructField(SOURCE_LINE, IntegerType(), True),
        ]
    )


def run_job(
    spark: SparkSession,
    *,
    inputs: Sequence[str | SourceFile],
    admitted_records: int,
    curated_path: str,
    rejected_path: str,
    run_id: str,
    recorded_as: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Transform exactly `inputs` into `curated_path` (Parquet) and `rejected_path` (CSV with a
    header, ``reject_reason``, ``source_key`` and ``source_line``); return the run manifest.

    `admitted_records` is what admission counted in these files (the sum of their admission
    records), carried into the manifest for the check to hold against what was written. The counts
    are of what was written, read back: ``output_rows`` and ``rejected_rows`` are the rows a reader
    of those locations finds. `recorded_as` maps a path to the name the manifest records for it
    (the local stand-in reads copies; the manifest names the objects).
    """
    for key, value in SPARK_SQL_CONF.items():
        spark.conf.set(key, value)
    names = dict(recorded_as or {})
    paths = [item.path if isinstance(item, SourceFile) else item for item in inputs]
    raw = read_orders(spark, inputs).cache()  # read the files once for the writes and the count
    try:
        result = transform(raw)
        result.curated.write.mode("overwrite").parquet(curated_path)
        result.rejected.write.mode("overwrite").options(**REJECTED_CSV_OPTIONS).csv(rejected_path)
        input_rows = raw.count()
    finally:
        raw.unpersist()
    output_rows = spark.read.schema(curated_schema()).parquet(curated_path).count()
    rejected_rows = spark.read.options(**REJECTED_CSV_OPTIONS).schema(rejected_schema()).csv(rejected_path).count()
    return build_manifest(
        run_id=run_id,
        admitted_records=admitted_records,
        input_rows=input_rows,
        output_rows=output_rows,
        rejected_rows=rejected_rows,
        output_path=names.get(curated_path, curated_path),
        rejected_path=names.get(rejected_path, rejected_path),
        input_files=[names.get(path, path) for path in paths],
    )
