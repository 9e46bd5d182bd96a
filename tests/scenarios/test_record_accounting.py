"""Every admitted record accounted for: the transform stage on the local deployment, its run folder
laid out as admission leaves it (safe names and one admission record per file, ADMISSION_CONTRACT),
the real job (glue.run.run_job on the local SparkSession) and the real check."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from localrun.emulator.deployment import LocalDeployment
from localrun.emulator.glue_standin import spark_session

HEADER = "order_id,customer_id,order_date,amount,currency"


def rows(count: int, *, first: int = 1, newline: str = "\n") -> str:
    return "".join(f"SO-{n},C{n},2026-01-05,{n}.00,EUR{newline}" for n in range(first, first + count))


def admit(deployment: LocalDeployment, run: str, original_key: str, body: str, *, records: int, uploaded: str) -> str:
    """Lay down one admitted file as admission does: <h>.csv and _admitted/<h>.json."""
    s3, name = deployment.clients["s3"], hashlib.sha256(original_key.encode()).hexdigest()[:40]
    folder = f"{deployment.landing_prefix}run={run}/"
    data = body.encode("utf-8")
    etag = s3.put_object(Bucket=deployment.landing_bucket, Key=f"{folder}{name}.csv", Body=data)["ETag"]
    record = {
        "original_key": original_key,
        "object_key": f"{folder}{name}.csv",
        "size": len(data),
        "etag": etag.strip('"'),
        "last_modified": uploaded,
        "records": records,
        "run": run,
    }
    s3.put_object(Bucket=deployment.landing_bucket, Key=f"{folder}_admitted/{name}.json", Body=json.dumps(record))
    return f"s3://{deployment.landing_bucket}/{folder}{name}.csv"


def transform(deployment: LocalDeployment, run: str) -> dict[str, Any]:
    landing_path = f"s3://{deployment.landing_bucket}/{deployment.landing_prefix}run={run}/"
    arn = deployment.start(deployment.state_machines["transform"], {"run": {"name": run, "landing_path": landing_path}})
    return deployment.wait(arn, timeout_s=240)


def curated_json(deployment: LocalDeployment, key: str) -> Any:
    return json.loads(deployment.clients["s3"].get_object(Bucket=deployment.curated_bucket, Key=key)["Body"].read())


def published_rows(deployment: LocalDeployment, run: str) -> dict[str, tuple[str, str]]:
    """{order_id: (customer_id, order_date)} of the run's published partition, read back with Spark."""
    glue = deployment.clients["glue"]
    [database] = glue.get_databases()["DatabaseList"]
    partition = glue.get_partition(DatabaseName=database["Name"], TableName="orders", PartitionValues=[run])
    bucket, _, prefix = partition["Partition"]["StorageDescriptor"]["Location"].removeprefix("s3://").partition("/")
    s3 = deployment.clients["s3"]
    with tempfile.TemporaryDirectory() as folder:
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            if item["Key"].endswith(".parquet"):
                (Path(folder) / Path(item["Key"]).name).write_bytes(
                    s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                )
        found = spark_session().read.parquet(folder).collect()
    return {r.order_id: (r.customer_id, r.order_date.isoformat()) for r in found}


def test_the_job_reads_the_admitted_objects_and_every_record_is_published_or_rejected(
    deployment: LocalDeployment,
) -> None:
    run = "accounting-1"
    # 100 rows, CRLF then LF appended; a backslash-escaped quote, fields past the header, an
    # unclosed quote (the rows after it still count), and dates before 1582-10-15.
    mixed = (
        f"{HEADER}\r\n"
        + rows(50, newline="\r\n")
        + rows(50, first=51)
        + 'SO-101,"C\\"101",2026-01-05,1.00,EUR\n'
        + "SO-102,C102,2026-01-05,1.00,EUR,,lost-note\n"
        + "SO-103,C103,1500-03-01,1.00,XOF\n"
        + 'SO-104,"C104,2026-01-05,1.00,EUR\n'
        + "SO-105,C105,0001-01-01,1.00,EUR\n"
    )
    first = admit(deployment, run, "incoming/a/mixed.csv", mixed, records=105, uploaded="2026-12-03T09:00:00+00:00")
    # Uploaded later than mixed.csv, though its key sorts first: its SO-1 is the newest.
    second = admit(
        deployment,
        run,
        "incoming/_hidden*[1].csv",
        f"{HEADER}\nSO-1,NEWER-1,2026-01-06,9.00,USD\n",
        records=1,
        uploaded="2026-12-03T10:00:00Z",
    )
    # Objects in the run folder that no admission record names: never read.
    s3, folder = deployment.clients["s3"], f"{deployment.landing_prefix}run={run}/"
    s3.put_object(Bucket=deployment.landing_bucket, Key=f"{folder}stray.csv", Body=f"{HEADER}\n{rows(5)}".encode())

    execution = transform(deployment, run)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    manifest = curated_json(deployment, f"manifests/run={run}.json")
    counts = tuple(manifest[c] for c in ("admitted_records", "input_rows", "output_rows", "rejected_rows"))
    # 106 admitted = 102 published + 4 rejected: SO-101 (backslash quote), SO-102 (extra fields),
    # SO-104 (unclosed quote), the older SO-1 (duplicate).
    assert counts == (106, 106, 102, 4)
    assert sorted(manifest["input_files"]) == sorted([first, second])
    published = published_rows(deployment, run)
    assert published["SO-1"] == ("NEWER-1", "2026-01-06")
    assert published["SO-103"] == ("C103", "1500-03-01") and published["SO-105"] == ("C105", "0001-01-01")
    assert {"SO-50", "SO-51", "SO-100"} <= set(published)


def test_records_that_do_not_add_up_fail_the_run_with_the_numbers(deployment: LocalDeployment) -> None:
    run = "accounting-2"
    # Admission counted 5 records where the reader finds 3 (as when Spark merged lines on main).
    admit(deployment, run, "incoming/b.csv", f"{HEADER}\n{rows(3)}", records=5, uploaded="2026-12-03T09:00:00Z")

    execution = transform(deployment, run)

    assert (execution["status"], execution["error"]) == ("FAILED", "ValidationFailed")
    assert execution["cause"] == (
        "records do not add up: admitted_records 5 (counted by admission) != output_rows 3 + rejected_rows 0 "
        "(2 record(s) unaccounted for)"
    )
    glue = deployment.clients["glue"]
    [database] = glue.get_databases()["DatabaseList"]
    assert glue.get_partitions(DatabaseName=database["Name"], TableName="orders")["Partitions"] == []
