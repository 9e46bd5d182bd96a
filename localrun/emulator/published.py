"""What a local run left for its readers, read back as they would read it: the demo's last lines.

- Published partitions: each partition the transform stage registered in the Data Catalog, its
  row count and a few rows, read from the partition's own `StorageDescriptor.Location` (what
  Athena or Spark through the catalog reads), with the columns in the catalog's order.
- Admitted files: every file admission let in, by the key it was uploaded under, with its record
  count, from its admission record (`_admitted/<h>.json` in its run's folder).
- Quarantined files: every file admission moved to the quarantine prefix, with the reason code
  and text from its `.reason.json` sidecar.
- Rejected rows: the rows the job set aside, counted by `reject_reason`, from the rejected CSV
  the run's manifest names.
- Held-back runs: each run the check refused to publish, from its quarantine record (the check's
  verdict and where the record is: the runbook's replay reads it).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stacks import pipeline_contract as contract

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from localrun.emulator.deployment import LocalDeployment

SAMPLE_ROWS = 3
LISTED_FILES = 10  # admitted or quarantined files listed one by one; the rest are counted
SIDECAR_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class PublishedPartition:
    table: str  # database.table
    values: tuple[str, ...]
    location: str
    columns: tuple[str, ...]
    row_count: int
    rows: tuple[tuple[Any, ...], ...]  # the first SAMPLE_ROWS by the first column


@dataclass(frozen=True)
class Admitted:
    key: str  # where it was uploaded
    records: int


@dataclass(frozen=True)
class Quarantined:
    key: str  # where it was uploaded (the sidecar's original_key); it is kept under a safe name
    code: str
    reason: str
    stored_as: str


@dataclass(frozen=True)
class HeldBack:
    run: str
    reason: str  # the check's verdict
    record: str  # s3:// URL of the run's quarantine record


@dataclass(frozen=True)
class RunData:
    partitions: list[PublishedPartition] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    held_back: list[HeldBack] = field(default_factory=list)
    admitted: list[Admitted] = field(default_factory=list)


def _split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def published_partitions(deployment: LocalDeployment, spark: Callable[[], SparkSession]) -> list[PublishedPartition]:
    """Every registered partition of every catalog table, read back through its location (Spark is
    asked for only when there is one)."""
    glue, found = deployment.clients["glue"], []
    for database in glue.get_databases()["DatabaseList"]:
        for table in glue.get_tables(DatabaseName=database["Name"])["TableList"]:
            columns = tuple(c["Name"] for c in table["StorageDescriptor"]["Columns"])
            partitions = glue.get_partitions(DatabaseName=database["Name"], TableName=table["Name"])["Partitions"]
            for partition in partitions:
                location = partition["StorageDescriptor"]["Location"]
                count, rows = _read_parquet(deployment.clients["s3"], spark(), location, columns)
                found.append(
                    PublishedPartition(
                        table=f"{database['Name']}.{table['Name']}",
                        values=tuple(partition["Values"]),
                        location=location,
                        columns=columns,
                        row_count=count,
                        rows=rows,
                    )
                )
    return found


def _read_parquet(
    s3: Any, spark: SparkSession, location: str, columns: tuple[str, ...]
) -> tuple[int, tuple[tuple[Any, ...], ...]]:
    """The Parquet under an s3:// location, copied out of moto S3 and read with Spark."""
    bucket, prefix = _split(location)
    with tempfile.TemporaryDirectory(prefix="published-") as folder:
        for key in _keys(s3, bucket, prefix):
            path = Path(folder) / key[len(prefix) :].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        frame = spark.read.parquet(folder).select(*columns)
        rows = frame.orderBy(columns[0]).limit(SAMPLE_ROWS).collect()
        return frame.count(), tuple(tuple(row) for row in rows)


def admitted_files(deployment: LocalDeployment) -> list[Admitted]:
    s3, found = deployment.clients["s3"], []
    for key in _keys(s3, deployment.landing_bucket, deployment.landing_prefix):
        if "/_admitted/" in key and key.endswith(".json"):
            record = json.loads(s3.get_object(Bucket=deployment.landing_bucket, Key=key)["Body"].read())
            found.append(Admitted(record["original_key"], int(record["records"])))
    return sorted(found, key=lambda file: file.key)


def quarantined_files(deployment: LocalDeployment) -> list[Quarantined]:
    s3, found = deployment.clients["s3"], []
    for key in _keys(s3, deployment.landing_bucket, deployment.quarantine_prefix):
        if key.endswith(SIDECAR_SUFFIX):
            sidecar = json.loads(s3.get_object(Bucket=deployment.landing_bucket, Key=key)["Body"].read())
            stored_as = key.removesuffix(SIDECAR_SUFFIX)
            original = sidecar.get("original_key") or stored_as
            found.append(Quarantined(original, sidecar["code"], sidecar["reason"], stored_as))
    return found


def rejected_rows(deployment: LocalDeployment, records: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Rejected rows by reason, from the rejected CSV of each run's manifest: the runs whose transform
    execution succeeded (its output, the check's, names the manifest) and the runs the check held back
    (their quarantine `records` name it)."""
    s3, sfn, counts = deployment.clients["s3"], deployment.clients["stepfunctions"], Counter[str]()
    manifests = [record.get("check", {}).get("manifest") for record in records.values()]
    for execution in deployment.executions(contract.TRANSFORM):
        output = sfn.describe_execution(executionArn=execution["executionArn"]).get("output")
        manifests.append(json.loads(output).get("manifest") if output else None)
    for manifest_url in dict.fromkeys(url for url in manifests if url):
        manifest = json.loads(s3.get_object(Bucket=_split(manifest_url)[0], Key=_split(manifest_url)[1])["Body"].read())
        bucket, prefix = _split(manifest["rejected_path"])
        for key in _keys(s3, bucket, prefix):
            if key.endswith(".csv"):
                text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                counts.update(row["reject_reason"] for row in csv.DictReader(io.StringIO(text)))
    return dict(counts)


def quarantine_records(deployment: LocalDeployment) -> dict[str, dict[str, Any]]:
    """s3:// URL -> record, for each run the check held back (stacks/pipeline/stages/transform_stage.py)."""
    s3, bucket = deployment.clients["s3"], deployment.curated_bucket
    return {
        f"s3://{bucket}/{key}": json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for key in _keys(s3, bucket, contract.QUARANTINE_RECORD_PREFIX)
    }


def held_back_runs(records: dict[str, dict[str, Any]]) -> list[HeldBack]:
    return [
        HeldBack(str(record.get("run", {}).get("name")), str(record.get("check", {}).get("reason")), url)
        for url, record in records.items()
    ]


def run_data(deployment: LocalDeployment, spark: Callable[[], SparkSession]) -> RunData:
    records = quarantine_records(deployment)
    return RunData(
        partitions=published_partitions(deployment, spark),
        quarantined=quarantined_files(deployment),
        rejected_by_reason=rejected_rows(deployment, records),
        held_back=held_back_runs(records),
        admitted=admitted_files(deployment),
    )


def render(data: RunData) -> list[str]:
    lines = [f"  admitted: {file.key} ({file.records} records)" for file in data.admitted[:LISTED_FILES]]
    if len(data.admitted) > LISTED_FILES:
        rest = data.admitted[LISTED_FILES:]
        lines.append(f"  … {len(rest)} more admitted files ({sum(f.records for f in rest)} records)")
    if not data.admitted:
        lines.append("  admitted files: none")
    for partition in data.partitions:
        values = ", ".join(partition.values)
        lines += [
            f"  published: {partition.table} partition ({values}), {partition.row_count} rows at {partition.location}",
            f"    {' | '.join(partition.columns)}",
            *(f"    {' | '.join(map(str, row))}" for row in partition.rows),
        ]
        if partition.row_count > len(partition.rows):
            lines.append(f"    … {partition.row_count - len(partition.rows)} more")
    if not data.partitions:
        lines.append("  published: nothing (no partition registered in the catalog)")
    for run in data.held_back:
        lines.append(f"  held back by the check (not published): run {run.run} — {run.reason} (record {run.record})")
    if data.rejected_by_reason:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(data.rejected_by_reason.items()))
        lines.append(f"  rejected rows: {sum(data.rejected_by_reason.values())} ({reasons})")
    for file in data.quarantined[:LISTED_FILES]:
        lines.append(f"  quarantined: {file.key} — {file.code}: {file.reason} (kept as {file.stored_as})")
    if len(data.quarantined) > LISTED_FILES:
        by_code = Counter(file.code for file in data.quarantined[LISTED_FILES:])
        codes = ", ".join(f"{code} {n}" for code, n in sorted(by_code.items()))
        lines.append(f"  … {sum(by_code.values())} more quarantined files ({codes}; each reason in its .reason.json)")
    if not data.quarantined:
        lines.append("  quarantined files: none")
    return lines
