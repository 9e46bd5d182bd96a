"""One run of the transform, everything but Glue: list the run's files, read, transform, write, count.

The Glue job (glue/job.py) calls `run_job` with Glue's SparkSession and s3:// paths; the local
Glue stand-in (localrun/glue_standin.py) calls it with a local SparkSession on copies of the
same objects. Only the Glue layer (GlueContext, job arguments, commit) and where the manifest
is put stay outside.

Writes are to this run's own locations (the transform stage names them per run:
``staging/orders/run=<run>/`` for curated Parquet, ``rejected/orders/run=<run>/`` for rejected
rows), overwritten, so a retried or redriven run replaces its own output instead of adding to it.
Nothing written here is visible to readers: the stage publishes the run's partition in the
Data Catalog only after the check has passed (write, audit, publish).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from glue.manifest import build_manifest
from glue.transform import REJECT_REASON, SCHEMA, read_orders, transform

# Written with the same quoting the reader expects, so multi-line and quoted values round-trip.
REJECTED_CSV_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true", "encoding": "UTF-8"}


def run_input_keys(keys: Iterable[str], prefix: str) -> list[str]:
    """The run's input objects among `keys`: every object under `prefix` that is not a folder
    marker or an admission record (`_admitted/*.json`, not CSV), in key order (the order "newest"
    duplicates are decided by)."""
    return sorted(
        key
        for key in keys
        if key.startswith(prefix) and not key.endswith("/") and not key[len(prefix) :].startswith("_admitted/")
    )


def curated_schema() -> StructType:
    return StructType([StructField(spec.name, spec.spark_type, True) for spec in SCHEMA])


def rejected_schema() -> StructType:
    return StructType([StructField(name, StringType(), True) for name in (*(s.name for s in SCHEMA), REJECT_REASON)])


def run_job(
    spark: SparkSession,
    *,
    input_paths: Sequence[str],
    curated_path: str,
    rejected_path: str,
    run_id: str,
    recorded_as: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Transform exactly `input_paths` into `curated_path` (Parquet) and `rejected_path` (CSV with
    a header and ``reject_reason``); return the run manifest.

    The counts are of what was written, read back: ``output_rows`` and ``rejected_rows`` are
    the rows a reader of those locations finds. `recorded_as` maps a path to the name the
    manifest records for it (the local stand-in reads copies; the manifest names the objects).
    """
    names = dict(recorded_as or {})
    raw = read_orders(spark, input_paths).cache()  # read the files once for the writes and the count
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
        input_rows=input_rows,
        output_rows=output_rows,
        rejected_rows=rejected_rows,
        output_path=names.get(curated_path, curated_path),
        rejected_path=names.get(rejected_path, rejected_path),
        input_files=[names.get(path, path) for path in input_paths],
    )
