"""Glue job: landing CSV sales orders -> curated Parquet, rejected CSV, run manifest.

Reads the orders CSV files (header row) under ``landing_path`` that job bookmarks
have not seen yet, validates and types them with ``glue.transform.transform``,
appends valid rows as Parquet partitioned by ``order_date`` under
``curated_path`` and invalid rows as CSV with a header and a ``reject_reason``
column under ``rejected_path``, then writes the run manifest JSON that the
check-results Lambda reads. The bookmark is committed last, so a run that fails
before the manifest is written re-reads the same files next time.

Job arguments (``--name value``):
  JOB_NAME         job name (set by Glue)
  JOB_RUN_ID       run id (set by Glue, not asked for: reserved), the manifest's run_id
  landing_path     s3://bucket/prefix/ holding incoming orders CSV files
  curated_path     s3://bucket/prefix/ for curated Parquet
  rejected_path    s3://bucket/prefix/ for rejected-row CSV
  manifest_bucket  bucket of the manifest JSON
  manifest_key     key of the manifest JSON

The ``glue`` package is importable the same way everywhere: from the repository in tests
and local runs, and on Glue from the one zip archive on ``--extra-py-files`` that holds it
(stacks/glue_resources.py builds it; the deploy rehearsal loads it as Glue does).
awsglue is imported inside ``main`` so this module imports without it (awsglue
only exists inside Glue).
"""

from __future__ import annotations

import json
import sys

import boto3

from glue.manifest import build_manifest
from glue.transform import raw_schema, transform

# Glue passes --JOB_ID and --JOB_RUN_ID itself and getResolvedOptions refuses to be asked for
# them ("Using reserved arguments"); they are in its result anyway.
ARGUMENTS = (
    "JOB_NAME",
    "landing_path",
    "curated_path",
    "rejected_path",
    "manifest_bucket",
    "manifest_key",
)


def main() -> None:
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext
    from pyspark.sql import functions as F

    args = getResolvedOptions(sys.argv, list(ARGUMENTS))
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    # A DynamicFrame read with transformation_ctx is what job bookmarks track.
    landing = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [args["landing_path"]], "recurse": True},
        format="csv",
        format_options={"withHeader": True, "separator": ",", "quoteChar": '"'},
        transformation_ctx="landing",
    )
    # Glue infers per-record types; columns with mixed values become choice
    # types, which as strings keep every value for the transform to judge.
    raw = landing.resolveChoice(choice="cast:string").toDF()
    if not raw.columns:
        # No new files since the last bookmark: the frame has no schema at all.
        # Process it as an empty batch so the manifest says so (0 input rows).
        raw = spark.createDataFrame([], raw_schema())
    raw = raw.cache()  # read S3 once for the writes and the counts
    # The files this run read rows from (for the record; header-only files contribute none).
    input_files = sorted(row[0] for row in raw.select(F.input_file_name()).distinct().collect() if row[0])

    result = transform(raw)
    result.curated.write.mode("append").partitionBy("order_date").parquet(args["curated_path"])
    result.rejected.write.mode("append").option("header", True).csv(args["rejected_path"])

    manifest = build_manifest(
        run_id=args["JOB_RUN_ID"],
        input_rows=raw.count(),
        output_rows=result.curated.count(),
        rejected_rows=result.rejected.count(),
        output_path=args["curated_path"],
        rejected_path=args["rejected_path"],
        input_files=input_files,
    )
    boto3.client("s3").put_object(
        Bucket=args["manifest_bucket"],
        Key=args["manifest_key"],
        Body=json.dumps(manifest).encode("utf-8"),
        ContentType="application/json",
    )
    job.commit()


if __name__ == "__main__":
    main()
