"""Poison objects are set aside, never retried forever (issue 16 item 3).

On main an object in GLACIER or DEEP_ARCHIVE under incoming/ failed its batch on every attempt ("1 of
1 child workflow executions failed", no file named), so every later event and tick failed the same
way. Now what S3 refuses about the object itself (archived, or a read refused although the function
may read the folder) gets a reason sidecar in quarantine and leaves incoming/ as a noncurrent version
of its key (the landing bucket is versioned), while the rest of the batch is admitted. A batch that
fails half-way strands nothing: every file that left incoming/ has its admission record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.lambdas import admission_support as base
from tests.lambdas.admission_support import (
    BUCKET,
    GOOD,
    RUN,
    admit,
    child,
    keys,
    landed,
    put,
    quarantined_at,
    read,
    record_of,
    write_results,
)

aws_credentials, env, adm, s3 = base.aws_credentials, base.env, base.adm, base.s3


@pytest.fixture
def versioned(aws_credentials: None) -> Iterator[Any]:
    """The landing bucket as the storage stack makes it: versioned."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def sidecar_of(s3: Any, key: str, extension: str = ".csv") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(read(s3, quarantined_at(key, extension + ".reason.json")))
    return document


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_archived_object_is_set_aside_and_the_batch_goes_on(
    adm: base.AdmissionCode, versioned: Any, storage_class: str
) -> None:
    put(versioned, "incoming/a.csv", GOOD)
    versioned.put_object(Bucket=BUCKET, Key="incoming/cold.csv", Body=GOOD.encode(), StorageClass=storage_class)
    version = versioned.head_object(Bucket=BUCKET, Key="incoming/cold.csv")["VersionId"]
    put(versioned, "incoming/b.csv", GOOD)

    result = admit(adm, "incoming/a.csv", "incoming/cold.csv", "incoming/b.csv")

    assert [a["key"] for a in result["admitted"]] == ["incoming/a.csv", "incoming/b.csv"]
    [entry] = result["quarantined"]
    assert (entry["key"], entry["code"]) == ("incoming/cold.csv", "archived")
    assert entry["reason"].startswith(f"stored in {storage_class}: S3 reads an archived object only after a restore")
    assert entry["reason"].endswith(f"(kept as version {version} of its key; not copied)")
    sidecar = sidecar_of(versioned, "incoming/cold.csv")
    assert sidecar["original_key"] == "incoming/cold.csv" and sidecar["copied"] is False
    assert sidecar["kept_as"] == {"key": "incoming/cold.csv", "version_id": version, "storage_class": storage_class}
    # Out of incoming/ (no later round lists it again), and not lost: its version is still there.
    assert not [k for k in keys(versioned) if k.startswith("incoming/")]
    assert versioned.head_object(Bucket=BUCKET, Key="incoming/cold.csv", VersionId=version)["ContentLength"] > 0


def test_an_archived_object_in_a_bucket_without_versions_is_left_where_it_is(adm: base.AdmissionCode, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="incoming/cold.csv", Body=GOOD.encode(), StorageClass="GLACIER")
    put(s3, "incoming/a.csv", GOOD)

    result = admit(adm, "incoming/cold.csv", "incoming/a.csv")

    assert [q["code"] for q in result["quarantined"]] == ["archived"]
    assert result["quarantined"][0]["reason"].endswith(
        "(left under incoming/: the bucket keeps no versions; not copied)"
    )
    assert sidecar_of(s3, "incoming/cold.csv")["left_at"] == "incoming/cold.csv"
    assert "incoming/cold.csv" in keys(s3)  # a delete would lose it: never
    assert [a["key"] for a in result["admitted"]] == ["incoming/a.csv"]


def test_glacier_instant_retrieval_and_a_restored_object_are_admitted(adm: base.AdmissionCode, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="incoming/ir.csv", Body=GOOD.encode(), StorageClass="GLACIER_IR")
    s3.put_object(Bucket=BUCKET, Key="incoming/restored.csv", Body=GOOD.encode(), StorageClass="GLACIER")
    s3.restore_object(Bucket=BUCKET, Key="incoming/restored.csv", RestoreRequest={"Days": 1})

    result = admit(adm, "incoming/ir.csv", "incoming/restored.csv")

    assert [a["key"] for a in result["admitted"]] == ["incoming/ir.csv", "incoming/restored.csv"]


def test_an_intelligent_tiering_archive_tier_is_archived(adm: base.AdmissionCode) -> None:
    source = adm.checks.Source(
        size=1,
        etag='"e"',
        last_modified=datetime(2024, 5, 1, tzinfo=UTC),
        version_id=None,
        storage_class="INTELLIGENT_TIERING",
        archive_status="DEEP_ARCHIVE_ACCESS",
    )

    rejection = adm.checks.archived_rejection(source)

    assert rejection.code == "archived"
    assert rejection.reason.startswith("stored in INTELLIGENT_TIERING DEEP_ARCHIVE_ACCESS: S3 reads")


def refuse(adm: base.AdmissionCode, monkeypatch: pytest.MonkeyPatch, operation: str, key: str, code: str) -> None:
    """S3 answers `code` to `operation` on `key` (and only there)."""
    client = adm.moves.s3_client()
    original = getattr(client, operation)

    def refused(**kwargs: Any) -> Any:
        if kwargs.get("Key") == key or kwargs.get("CopySource", {}).get("Key") == key:
            raise ClientError({"Error": {"Code": code, "Message": f"{code} (test)"}}, operation)
        return original(**kwargs)

    monkeypatch.setattr(client, operation, refused)


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidRequest", "InvalidObjectState"])
def test_an_object_s3_refuses_to_read_is_set_aside(
    adm: base.AdmissionCode, versioned: Any, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    # e.g. uploaded with another KMS key or a customer-provided key; an Intelligent-Tiering archive tier
    for name in ("a", "locked", "b"):
        put(versioned, f"incoming/{name}.csv", GOOD)
    refuse(adm, monkeypatch, "get_object", "incoming/locked.csv", code)

    result = admit(adm, "incoming/a.csv", "incoming/locked.csv", "incoming/b.csv")

    assert [a["key"] for a in result["admitted"]] == ["incoming/a.csv", "incoming/b.csv"]
    [entry] = result["quarantined"]
    assert entry["code"] == ("archived" if code == "InvalidObjectState" else "unreadable")
    assert code in entry["reason"]
    assert entry["destination"] == quarantined_at("incoming/locked.csv", ".csv.reason.json")
    assert not [k for k in keys(versioned) if k.startswith("incoming/")]


def test_a_refused_copy_of_a_readable_source_is_the_functions_problem_and_raises(
    adm: base.AdmissionCode, versioned: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The source reads fine, so the refusal is about the destination (a missing grant): not poison.
    put(versioned, "incoming/notes.txt", "hello")
    refuse(adm, monkeypatch, "copy_object", "incoming/notes.txt", "AccessDenied")

    with pytest.raises(ClientError, match="AccessDenied"):
        admit(adm, "incoming/notes.txt")
    assert keys(versioned) == {"incoming/notes.txt"}


def test_a_refused_copy_of_an_unreadable_source_is_poison(
    adm: base.AdmissionCode, versioned: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(versioned, "incoming/notes.txt", "hello")
    refuse(adm, monkeypatch, "copy_object", "incoming/notes.txt", "AccessDenied")
    refuse(adm, monkeypatch, "get_object", "incoming/notes.txt", "AccessDenied")

    [entry] = admit(adm, "incoming/notes.txt")["quarantined"]

    assert entry["code"] == "unreadable"


def test_a_retried_batch_reports_a_set_aside_object_from_its_sidecar(adm: base.AdmissionCode, versioned: Any) -> None:
    versioned.put_object(Bucket=BUCKET, Key="incoming/cold.csv", Body=GOOD.encode(), StorageClass="DEEP_ARCHIVE")
    first = admit(adm, "incoming/cold.csv")

    again = admit(adm, "incoming/cold.csv")

    assert again == first


def test_the_summary_names_the_poison_object(adm: base.AdmissionCode, versioned: Any) -> None:
    put(versioned, "incoming/a.csv", GOOD)
    versioned.put_object(Bucket=BUCKET, Key="incoming/cold.csv", Body=GOOD.encode(), StorageClass="GLACIER")
    items = [{"key": k, "size": 1, "run": RUN} for k in ("incoming/a.csv", "incoming/cold.csv")]
    output = adm.handler.handler({"items": items}, None)
    writer = write_results(versioned, [[child("b1", "SUCCEEDED", [], output)]], [])

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["admitted"], summary["quarantined"], summary["records"]) == (1, 1, 2)
    assert summary["by_reason"] == {"archived": 1}
    assert summary["examples"][0]["key"] == "incoming/cold.csv"
    assert summary["examples"][0]["reason"].startswith("stored in GLACIER")


def test_a_batch_that_fails_half_way_strands_nothing(
    adm: base.AdmissionCode, versioned: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = ("incoming/a.csv", "incoming/b.csv", "incoming/c.csv")
    for key in batch:
        put(versioned, key, GOOD)
    refuse(adm, monkeypatch, "copy_object", "incoming/c.csv", "InternalError")  # S3 has a bad moment

    with pytest.raises(ClientError, match="InternalError"):
        admit(adm, *batch)

    # The two files that left incoming/ have their records: the job (which reads the records) has them.
    for key in batch[:2]:
        assert key not in keys(versioned)
        assert json.loads(read(versioned, record_of(key)))["object_key"] == landed(key)
    assert "incoming/c.csv" in keys(versioned)
    monkeypatch.undo()  # S3 is well again (undo() resets the environment too: set it back)
    for name, value in base.ENV.items():
        monkeypatch.setenv(name, value)

    retried = admit(adm, *batch)  # the Map retries the batch: it converges

    assert [a["key"] for a in retried["admitted"]] == list(batch)
    assert {record_of(k) for k in batch} <= keys(versioned)


def test_a_delete_that_fails_after_the_record_leaves_the_file_counted_once(
    adm: base.AdmissionCode, versioned: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(versioned, "incoming/a.csv", GOOD)
    refuse(adm, monkeypatch, "delete_object", "incoming/a.csv", "SlowDown")

    with pytest.raises(ClientError, match="SlowDown"):
        admit(adm, "incoming/a.csv")

    assert json.loads(read(versioned, record_of("incoming/a.csv")))["records"] == 2  # written before the delete
