"""Write, audit, publish on the local deployment, with the real transform (glue.run.run_job on the
local SparkSession): what readers see is the catalog's partitions of the curated table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from glue.run import run_job
from localrun.emulator.deployment import LocalDeployment
from localrun.emulator.glue_standin import spark_session

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEADER = "order_id,customer_id,order_date,amount,currency"
# Everyday trouble the Python twin and Spark disagreed on, in one file.
MIXED = (
    "\ufeff" + HEADER + "\r\n"
    '"SO-1","O""Brien",2026-01-05,10.00,EUR\r\n'
    '"SO-2","two\r\nlines",2026-01-05,11.00,EUR\r\n'
    "SO-3,C3,2026-01-05,000123,EUR\r\n"
    "SO-4,C4,2026-01-05,1.0E7,EUR\r\n"
    "NULL,C5,2026-01-05,1.00,EUR\r\n"
    "SO-3\u200b,C6,2026-01-05,1.00,EUR\r\n"
    "SO-3,C7,2026-01-06,2.00,EUR\r\n"
    "SO-5,C8,2026-01-05,\uff11.00,EUR\r\n"
    "SO-6,C9,2026-01-05,3.00,usd\r\n"
)


def database(deployment: LocalDeployment) -> str:
    [db] = deployment.clients["glue"].get_databases()["DatabaseList"]
    return db["Name"]


def published(deployment: LocalDeployment) -> dict[str, str]:
    """The readers' view: {run: location} of the curated table's partitions in the catalog."""
    glue = deployment.clients["glue"]
    partitions = glue.get_partitions(DatabaseName=database(deployment), TableName="orders")["Partitions"]
    return {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in partitions}


def run_pipeline(deployment: LocalDeployment, name: str, body: bytes) -> dict[str, Any]:
    [arn] = deployment.put_landing_object(f"{deployment.incoming_prefix}orders/{name}", body)
    return deployment.wait(arn, timeout_s=240)


def transform_runs(deployment: LocalDeployment) -> list[dict[str, Any]]:
    sfn = deployment.clients["stepfunctions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in deployment.executions("transform")]


def s3_json(deployment: LocalDeployment, key: str) -> Any:
    return json.loads(deployment.clients["s3"].get_object(Bucket=deployment.curated_bucket, Key=key)["Body"].read())


def staged_rows(deployment: LocalDeployment, location: str) -> int:
    s3, spark = deployment.clients["s3"], spark_session()
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    with tempfile.TemporaryDirectory() as folder:
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            if item["Key"].endswith(".parquet"):
                target = Path(folder) / Path(item["Key"]).name
                target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        return spark.read.parquet(folder).count() if any(Path(folder).iterdir()) else 0


def test_a_mixed_input_gives_locally_the_verdict_of_the_spark_job(deployment: LocalDeployment, tmp_path: Path) -> None:
    execution = run_pipeline(deployment, "mixed.csv", MIXED.encode("utf-8"))

    # What the job's own function says about the same bytes, here, outside the deployment.
    local = tmp_path / "mixed.csv"
    local.write_bytes(MIXED.encode("utf-8"))
    expected = run_job(
        spark_session(),
        inputs=[str(local)],
        admitted_records=9,
        curated_path=str(tmp_path / "c"),
        rejected_path=str(tmp_path / "r"),
        run_id="jr",
    )
    counts = ("admitted_records", "input_rows", "output_rows", "rejected_rows")
    # Curated: SO-3 (the newer of two), SO-6; the other seven are rejected (O"Brien is no ID).
    assert tuple(expected[c] for c in counts) == (9, 9, 2, 7)
    s3 = deployment.clients["s3"]
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=deployment.curated_bucket, Prefix="manifests/")["Contents"]]
    manifest = s3_json(deployment, key)
    assert tuple(manifest[c] for c in counts) == tuple(expected[c] for c in counts)
    # 6/9 rejected is over the threshold: refused locally as the deployed job's manifest makes it.
    [transform] = transform_runs(deployment)
    assert (execution["status"], transform["status"], transform["error"]) == ("FAILED", "FAILED", "ValidationFailed")
    assert transform["cause"] == "rejected ratio 0.7778 (7/9) exceeds threshold 0.1000"
    assert published(deployment) == {}


def test_validation_failed_leaves_the_published_table_unchanged_and_a_replay_publishes_it(
    deployment: LocalDeployment,
) -> None:
    assert run_pipeline(deployment, "good.csv", (SAMPLES / "orders.csv").read_bytes())["status"] == "SUCCEEDED"
    before = published(deployment)
    assert len(before) == 1
    [good_run] = before
    assert staged_rows(deployment, before[good_run]) == 38

    assert run_pipeline(deployment, "bad.csv", (SAMPLES / "orders_mostly_bad.csv").read_bytes())["status"] == "FAILED"

    assert published(deployment) == before  # readers see nothing of the refused run
    s3 = deployment.clients["s3"]
    [record_key] = [
        o["Key"] for o in s3.list_objects_v2(Bucket=deployment.curated_bucket, Prefix="quarantine/")["Contents"]
    ]
    record = s3_json(deployment, record_key)
    assert record["check"]["reason"] == "rejected ratio 0.7000 (7/10) exceeds threshold 0.1000"
    bad_run = record["run"]["name"]
    assert staged_rows(deployment, record["staged_path"]) == 3  # kept, invisible

    # The documented replay: start the transform stage with the record's replay input.
    replay = deployment.start(deployment.state_machines["transform"], record["replay_input"], name="replay-1")
    assert deployment.wait(replay)["status"] == "SUCCEEDED"

    after = published(deployment)
    assert set(after) == {good_run, bad_run}
    assert after[bad_run] == record["staged_path"]
    assert "Contents" not in s3.list_objects_v2(Bucket=deployment.curated_bucket, Prefix="quarantine/")


def test_a_job_that_fails_after_writing_publishes_nothing_and_the_next_run_duplicates_nothing(
    deployment: LocalDeployment,
) -> None:
    deployment.faults.job_outcome = "FAILED_AFTER_WRITING"
    assert run_pipeline(deployment, "first.csv", (SAMPLES / "orders.csv").read_bytes())["status"] == "FAILED"
    assert published(deployment) == {}

    deployment.faults.job_outcome = "SUCCEEDED"
    assert run_pipeline(deployment, "second.csv", (SAMPLES / "orders.csv").read_bytes())["status"] == "SUCCEEDED"

    after = published(deployment)
    assert len(after) == 1  # only the second run, with its own 38 rows: none of the failed run's
    [location] = after.values()
    assert staged_rows(deployment, location) == 38


def test_replays_that_cannot_publish_are_refused_and_write_nothing(deployment: LocalDeployment) -> None:
    s3 = deployment.clients["s3"]
    assert run_pipeline(deployment, "bad.csv", (SAMPLES / "orders_mostly_bad.csv").read_bytes())["status"] == "FAILED"
    [record_key] = [
        o["Key"] for o in s3.list_objects_v2(Bucket=deployment.curated_bucket, Prefix="quarantine/")["Contents"]
    ]
    record = s3_json(deployment, record_key)

    # A mistyped run name: refused, and no quarantine record for a run that does not exist.
    typo = {**record["replay_input"], "run": {"name": record["run"]["name"] + "x"}}
    refused = deployment.wait(deployment.start(deployment.state_machines["transform"], typo, name="replay-typo"))
    assert (refused["status"], refused["error"]) == ("FAILED", "ReplayRefused")
    quarantined = s3.list_objects_v2(Bucket=deployment.curated_bucket, Prefix="quarantine/")["Contents"]
    assert [o["Key"] for o in quarantined] == [record_key]

    # The staged output is gone: refused, not published as an empty partition; the record stays.
    bucket, _, prefix = record["staged_path"].removeprefix("s3://").partition("/")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    gone = deployment.wait(
        deployment.start(deployment.state_machines["transform"], record["replay_input"], name="replay-gone")
    )
    assert (gone["status"], gone["error"]) == ("FAILED", "ReplayRefused")
    assert published(deployment) == {}
    assert s3_json(deployment, record_key) == record

    # Rejected (its record deleted, the fixed file to be uploaded as a new run): never replayed after.
    s3.delete_object(Bucket=deployment.curated_bucket, Key=record_key)
    rejected = deployment.wait(
        deployment.start(deployment.state_machines["transform"], record["replay_input"], name="replay-rejected")
    )
    assert (rejected["status"], rejected["error"]) == ("FAILED", "ReplayRefused")
