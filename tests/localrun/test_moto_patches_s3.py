"""The local run as strict as S3 where admission relies on it (issue 16 item 6): the copy-source
conditions and the 1,024-byte key limit of localrun/emulator/moto/, and the conditional headers
moto already enforces (kept enforced: a moto upgrade that drops one fails here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localrun.emulator import moto as moto_patches
from tests.lambdas import admission_support as base
from tests.lambdas.admission_support import BUCKET, GOOD, REORDERED, admit, keys, landed, put, read

aws_credentials, env, adm = base.aws_credentials, base.env, base.adm


@pytest.fixture
def strict_s3(aws_credentials: None) -> Iterator[Any]:
    """moto S3 with this registry's S3 entries applied."""
    with mock_aws(), moto_patches.applied([moto_patches.S3_COPY_CONDITIONS, moto_patches.S3_KEY_LENGTH]):
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def error_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_copy_of_a_replaced_source_fails_412_as_on_s3(strict_s3: Any) -> None:
    put(strict_s3, "incoming/a.csv", "v1")
    etag = strict_s3.head_object(Bucket=BUCKET, Key="incoming/a.csv")["ETag"]
    source = {"Bucket": BUCKET, "Key": "incoming/a.csv"}
    put(strict_s3, "incoming/a.csv", "v2")

    copy = strict_s3.copy_object
    assert error_of(copy, CopySource=source, Bucket=BUCKET, Key="c", CopySourceIfMatch=etag) == (
        "PreconditionFailed",
        412,
    )
    current = strict_s3.head_object(Bucket=BUCKET, Key="incoming/a.csv")["ETag"]
    copy(CopySource=source, Bucket=BUCKET, Key="c", CopySourceIfMatch=current)  # the checked version copies
    copy(CopySource=source, Bucket=BUCKET, Key="d", CopySourceIfMatch=current.strip('"'))  # quotes optional
    assert read(strict_s3, "c") == b"v2"


def test_a_part_copy_of_a_replaced_source_fails_412(strict_s3: Any) -> None:
    put(strict_s3, "incoming/a.csv", "v1")
    upload = strict_s3.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]

    code = error_of(
        strict_s3.upload_part_copy,
        Bucket=BUCKET,
        Key="big",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": BUCKET, "Key": "incoming/a.csv"},
        CopySourceIfMatch='"not-the-etag"',
    )

    assert code == ("PreconditionFailed", 412)


def test_a_copy_of_a_source_modified_since_fails_412(strict_s3: Any) -> None:
    put(strict_s3, "incoming/a.csv", "v1")
    modified = strict_s3.head_object(Bucket=BUCKET, Key="incoming/a.csv")["LastModified"]
    from datetime import timedelta

    code = error_of(
        strict_s3.copy_object,
        CopySource={"Bucket": BUCKET, "Key": "incoming/a.csv"},
        Bucket=BUCKET,
        Key="c",
        CopySourceIfUnmodifiedSince=modified - timedelta(hours=1),
    )

    assert code == ("PreconditionFailed", 412)


def test_get_and_delete_if_match_are_enforced(strict_s3: Any) -> None:
    # moto enforces these itself; admission's "delete only the checked version" depends on it.
    put(strict_s3, "incoming/a.csv", "v1")

    assert error_of(strict_s3.delete_object, Bucket=BUCKET, Key="incoming/a.csv", IfMatch='"0"')[0] == (
        "PreconditionFailed"
    )
    assert error_of(strict_s3.get_object, Bucket=BUCKET, Key="incoming/a.csv", IfMatch='"0"')[0] == "PreconditionFailed"
    assert "incoming/a.csv" in keys(strict_s3)


@pytest.mark.parametrize("length", [1025, 1100])
def test_keys_longer_than_1024_bytes_are_refused(strict_s3: Any, length: int) -> None:
    too_long = "k" * length
    put(strict_s3, "short", "x")

    assert error_of(strict_s3.put_object, Bucket=BUCKET, Key=too_long, Body=b"x")[0] == "KeyTooLongError"
    copy = {"CopySource": {"Bucket": BUCKET, "Key": "short"}, "Bucket": BUCKET, "Key": too_long}
    assert error_of(strict_s3.copy_object, **copy)[0] == "KeyTooLongError"
    assert error_of(strict_s3.create_multipart_upload, Bucket=BUCKET, Key=too_long)[0] == "KeyTooLongError"
    assert error_of(strict_s3.put_object, Bucket=BUCKET, Key="é" * 513, Body=b"")[0] == "KeyTooLongError"  # bytes
    put(strict_s3, "k" * 1024, "at the limit")  # allowed
    put(strict_s3, "é" * 512, "at the limit in UTF-8")


def test_a_file_replaced_between_its_check_and_its_copy_is_checked_again(
    adm: base.AdmissionCode, strict_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user uploads a fixed file while admission reads the broken one: S3 refuses the copy of the
    # checked version (412), and admission checks the new one. moto alone copied the new content
    # under the old verdict: a file admitted unchecked, or a good file quarantined.
    put(strict_s3, "incoming/a.csv", REORDERED + "\n")
    client = adm.moves.s3_client()
    get_object = client.get_object

    def read_then_user_uploads_a_fix(**kwargs: Any) -> Any:
        response = get_object(**kwargs)
        if read(strict_s3, "incoming/a.csv") != GOOD.encode():
            put(strict_s3, "incoming/a.csv", GOOD)
        return response

    monkeypatch.setattr(client, "get_object", read_then_user_uploads_a_fix)

    result = admit(adm, "incoming/a.csv")

    assert result["quarantined"] == []
    assert read(strict_s3, landed("incoming/a.csv")) == GOOD.encode()


def test_the_probes_see_the_gaps_on_plain_moto() -> None:
    assert moto_patches.S3_COPY_CONDITIONS.probe is not None and moto_patches.S3_COPY_CONDITIONS.probe()
    assert moto_patches.S3_KEY_LENGTH.probe is not None and moto_patches.S3_KEY_LENGTH.probe()
    assert moto_patches.S3_COPY_CONDITIONS in moto_patches.REGISTRY
    assert moto_patches.S3_KEY_LENGTH in moto_patches.REGISTRY
