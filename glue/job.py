"""Glue job: one run's landing CSV orders -> staged curated Parquet, rejected CSV, run manifest.

The Glue layer only: job arguments, GlueContext, reading the run's admission records and where
the manifest goes. What the run does is `glue.run.run_job`, which the local Glue stand-in
(localrun/emulator/glue_standin.py) runs too, on a local SparkSession. The output is staged: the
transform stage checks the manifest and only then publishes the run (a Data Catalog partition)
or quarantines it (write, audit, publish).

Job arguments (``--name value``):
  JOB_NAME         job name (set by Glue)
  JOB_RUN_ID       run id (set by Glue, not asked for: reserved), the manifest's run_id
  landing_path     s3://bucket/prefix/ of this run's folder: the job reads exactly the objects its
                   admission records (``_admitted/*.json``, glue/admission_records.py) name
  curated_path     s3://bucket/prefix/ for this run's curated Parquet (staged, overwritten)
  rejected_path    s3://bucket/prefix/ for this run's rejected-row CSV (overwritten)
  manifest_bucket  bucket of the manifest JSON
  manifest_key     key of the manifest JSON

The ``glue`` package is importable the same way everywhere: from the repository in tests
and local runs, and on Glue from the one zip archive on ``--extra-py-files`` that holds it
(stacks/pipeline/glue_resources.py builds it; the deploy rehearsal loads it as Glue does).
awsglue is imported inside ``main`` so this module imports without it (awsglue
only exists inside Glue).
"""

from __future__ import annotations

import json
import sys

import boto3

from glue.admission_records import AdmittedFile, admitted_file, in_upload_order, is_record_key, records_prefix
from glue.reader import SourceFile
from glue.run import run_job

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


def admitted_files(s3_client: object, landing_path: str) -> tuple[str, list[AdmittedFile]]:
    """(bucket, the files the run folder's admission records admit, oldest upload first)."""
    bucket, _, prefix = landing_path.removeprefix("s3://").partition("/")
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    files: list[AdmittedFile] = []
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=records_prefix(prefix))  # type: ignore[attr-defined]
    for item in (item for page in pages for item in page.get("Contents", [])):
        if is_record_key(item["Key"], prefix):
            body = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()  # type: ignore[attr-defined]
            files.append(admitted_file(json.loads(body), run_prefix=prefix, where=f"s3://{bucket}/{item['Key']}"))
    return bucket, in_upload_order(files)


def main() -> None:
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(sys.argv, list(ARGUMENTS))
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    s3 = boto3.client("s3")
    bucket, files = admitted_files(s3, args["landing_path"])
    manifest = run_job(
        glue_context.spark_session,
        inputs=[
            SourceFile(path=f"s3://{bucket}/{f.object_key}", original_key=f.original_key, uploaded=f.uploaded)
            for f in files
        ],
        admitted_records=sum(f.records for f in files),
        curated_path=args["curated_path"],
        rejected_path=args["rejected_path"],
        run_id=args["JOB_RUN_ID"],
    )
    s3.put_object(
        Bucket=args["manifest_bucket"],
        Key=args["manifest_key"],
        Body=json.dumps(manifest).encode("utf-8"),
        ContentType="application/json",
    )
    job.commit()


if __name__ == "__main__":
    main()
