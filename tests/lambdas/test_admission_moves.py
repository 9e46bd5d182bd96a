"""Where files go and how they get there (lambda/admission/moves.py) against moto S3: admitted
files, retries, redrives and races, S3 errors, safe destinations."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.lambdas import admission_support as support
from tests.lambdas.admission_support import (
    ENV,
    GOOD,
    HEADER,
    MAX_FILE_BYTES,
    REORDERED,
    RUN,
    AdmissionCode,
    admit,
    keys,
    landed,
    put,
    quarantined_at,
    quarantined_one,
    read,
    record_of,
)

# The admission tests' fixtures: the Lambda's modules loaded fresh with their environment, and moto S3.
aws_credentials, env, adm, s3 = support.aws_credentials, support.env, support.adm, support.s3


# --- admitted files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        GOOD,
        "\ufeff" + GOOD,  # Excel's "CSV UTF-8": a byte-order mark
        GOOD.replace("\n", "\r\n"),  # Windows line breaks
        HEADER + "\n",  # a header alone: admitted, the job reports "no new rows"
        HEADER,  # ... even without a final line break
        '"order_id","customer_id","order_date","amount","currency"\nO-1,C-1,2024-05-01,1,EUR\n',  # quoted names
        f"{HEADER}\nO-1,Müller GmbH,2024-05-01,1,EUR\n",  # non-ASCII UTF-8 in a row
        f"{HEADER}\nanything,at all,in the rows\n",  # the rows are the job's business
    ],
    ids=["plain", "bom", "crlf", "header_only", "header_only_no_newline", "quoted_header", "utf8_row", "odd_rows"],
)
def test_good_file_moves_to_the_runs_landing_folder(adm: AdmissionCode, s3: Any, body: str) -> None:
    put(s3, "incoming/orders.csv", body)

    result = admit(adm, "incoming/orders.csv")

    destination = landed("incoming/orders.csv")
    assert result == {"admitted": [{"key": "incoming/orders.csv", "destination": destination}], "quarantined": []}
    assert keys(s3) == {destination, record_of("incoming/orders.csv")}
    assert read(s3, destination) == body.encode()


def test_nested_paths_get_flat_safe_names(adm: AdmissionCode, s3: Any) -> None:
    put(s3, "incoming/shop-a/2024/05/orders.csv", GOOD)
    put(s3, "incoming/shop-b/2024/05/orders.csv", GOOD)
    put(s3, "incoming/shop-b/2024/05/notes.txt", "hello")

    result = admit(
        adm,
        "incoming/shop-a/2024/05/orders.csv",
        "incoming/shop-b/2024/05/orders.csv",
        "incoming/shop-b/2024/05/notes.txt",
    )

    assert [a["destination"] for a in result["admitted"]] == [
        landed("incoming/shop-a/2024/05/orders.csv"),
        landed("incoming/shop-b/2024/05/orders.csv"),
    ]
    assert [q["destination"] for q in result["quarantined"]] == [
        quarantined_at("incoming/shop-b/2024/05/notes.txt", ".txt")
    ]
    assert not any(k.startswith("incoming/") for k in keys(s3))


def test_real_size_is_read_from_s3_not_the_event(adm: AdmissionCode, s3: Any) -> None:
    put(s3, "incoming/small.csv", GOOD)
    put(s3, "incoming/big.csv", HEADER + "\n" + "x" * MAX_FILE_BYTES)

    small = admit(adm, "incoming/small.csv", size=10**12)
    big = admit(adm, "incoming/big.csv", size=1)

    assert small["admitted"] == [{"key": "incoming/small.csv", "destination": landed("incoming/small.csv")}]
    assert [q["code"] for q in big["quarantined"]] == ["too_large"]


def test_file_exactly_at_the_size_limit_is_admitted(adm: AdmissionCode, s3: Any) -> None:
    body = HEADER + "\n" + "x" * (MAX_FILE_BYTES - len(HEADER) - 2) + "\n"
    assert len(body) == MAX_FILE_BYTES
    put(s3, "incoming/edge.csv", body)

    assert len(admit(adm, "incoming/edge.csv")["admitted"]) == 1


# --- retries, redrives and races ----------------------------------------------------------------


def test_retry_after_the_move_reports_files_from_their_destination(adm: AdmissionCode, s3: Any) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/bad.csv", REORDERED + "\n")
    put(s3, "incoming/folder/", b"")
    batch = ("incoming/good.csv", "incoming/bad.csv", "incoming/folder/")
    first = admit(adm, *batch)
    moved = keys(s3)

    again = admit(adm, *batch)  # the Map retried the batch, or the run was redriven

    assert again == first
    assert keys(s3) == moved


def test_retry_after_a_partial_batch(adm: AdmissionCode, s3: Any) -> None:
    # An earlier attempt moved the first file and died: the second one is still under incoming.
    put(s3, "incoming/a.csv", GOOD)
    admit(adm, "incoming/a.csv")
    put(s3, "incoming/b.csv", GOOD)

    result = admit(adm, "incoming/a.csv", "incoming/b.csv")

    assert [a["destination"] for a in result["admitted"]] == [landed("incoming/a.csv"), landed("incoming/b.csv")]
    assert keys(s3) == {landed(k) for k in ("incoming/a.csv", "incoming/b.csv")} | {
        record_of(k) for k in ("incoming/a.csv", "incoming/b.csv")
    }


def test_retry_after_copy_before_delete_finishes_the_move(adm: AdmissionCode, s3: Any) -> None:
    # The attempt died between the copy and the delete: the file is in both places.
    put(s3, "incoming/a.csv", GOOD)
    put(s3, landed("incoming/a.csv"), GOOD)  # copied, no record yet
    put(s3, "incoming/bad.csv", REORDERED)
    put(s3, quarantined_at("incoming/bad.csv", ".csv"), REORDERED)  # copied, no sidecar yet

    result = admit(adm, "incoming/a.csv", "incoming/bad.csv")

    assert len(result["admitted"]) == len(result["quarantined"]) == 1
    assert keys(s3) == {
        landed("incoming/a.csv"),
        record_of("incoming/a.csv"),
        quarantined_at("incoming/bad.csv", ".csv"),
        quarantined_at("incoming/bad.csv", ".csv.reason.json"),
    }


def test_redrive_reports_the_reason_from_the_sidecar(
    adm: AdmissionCode, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sidecar = {
        "reason": "header has the contract's columns in another order: ...",
        "code": "header_mismatch",
        "run": RUN,
        "original_key": "incoming/bad.csv",
        "size": 12,
        "admitted_at": "2024-05-01T00:00:00+00:00",
    }
    put(s3, quarantined_at("incoming/bad.csv", ".csv"), REORDERED)
    put(s3, quarantined_at("incoming/bad.csv", ".csv.reason.json"), json.dumps(sidecar))

    result = admit(adm, "incoming/bad.csv")

    assert result["quarantined"] == [
        {
            "key": "incoming/bad.csv",
            "destination": quarantined_at("incoming/bad.csv", ".csv"),
            "reason": sidecar["reason"],
            "code": "header_mismatch",
        }
    ]
    assert json.loads(capsys.readouterr().out)["resumed"] is True


@pytest.mark.parametrize(
    "setup",
    [
        {},  # nowhere at all
        {record_of("incoming/a.csv", "another_run"): "{}"},  # admitted by another run: not this run's
        {landed("incoming/a.csv"): GOOD},  # a copy without its record is not admitted
        {
            quarantined_at("incoming/a.csv", ".csv.reason.json"): json.dumps({"original_key": "incoming/other.csv"}),
        },  # a sidecar naming another file
        {quarantined_at("incoming/a.csv", ".csv.reason.json"): "{not json"},
    ],
    ids=["nowhere", "other_run", "copy_without_record", "other_sidecar", "broken_sidecar"],
)
def test_a_file_that_is_nowhere_fails_the_batch_loudly(adm: AdmissionCode, s3: Any, setup: dict[str, str]) -> None:
    for key, body in setup.items():
        put(s3, key, body)

    with pytest.raises(
        adm.moves.FileLostError,
        match=re.escape("incoming/a.csv is no longer under incoming, yet neither its admission record"),
    ):
        admit(adm, "incoming/a.csv")


def test_same_key_twice_in_a_batch_is_admitted_and_reported_once(
    adm: AdmissionCode, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, "incoming/a.csv", GOOD)
    put(s3, "incoming/b.json", "{}")

    result = admit(adm, "incoming/a.csv", "incoming/b.json", "incoming/a.csv", "incoming/b.json")

    assert [a["key"] for a in result["admitted"]] == ["incoming/a.csv"]
    assert [q["key"] for q in result["quarantined"]] == ["incoming/b.json"]
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_concurrent_batch_that_lost_the_race_reports_the_winners_move(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two attempts read the same file; the other one copies and deletes it before this one copies.
    put(s3, "incoming/a.csv", GOOD)
    client = adm.moves.s3_client()
    copy_object = client.copy_object

    def other_attempt_wins(**kwargs: Any) -> Any:
        monkeypatch.setattr(client, "copy_object", copy_object)
        adm.moves.admit_once(adm.config.load_config(ENV), "incoming/a.csv", RUN)  # copies, records and deletes
        return copy_object(**kwargs)

    monkeypatch.setattr(client, "copy_object", other_attempt_wins)

    result = admit(adm, "incoming/a.csv")

    assert result["admitted"] == [{"key": "incoming/a.csv", "destination": landed("incoming/a.csv")}]
    assert keys(s3) == {landed("incoming/a.csv"), record_of("incoming/a.csv")}


def test_file_replaced_after_its_copy_is_left_for_the_next_round(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, "incoming/a.csv", GOOD)
    client = adm.moves.s3_client()
    copy_object = client.copy_object

    def copy_then_user_uploads_again(**kwargs: Any) -> Any:
        response = copy_object(**kwargs)
        put(s3, "incoming/a.csv", GOOD + "O-3,C-3,2024-05-02,1,EUR\n")
        return response

    monkeypatch.setattr(client, "copy_object", copy_then_user_uploads_again)

    result = admit(adm, "incoming/a.csv")

    assert result["admitted"] == [{"key": "incoming/a.csv", "destination": landed("incoming/a.csv")}]
    assert read(s3, landed("incoming/a.csv")) == GOOD.encode()
    assert read(s3, "incoming/a.csv").endswith(b"O-3,C-3,2024-05-02,1,EUR\n")  # not deleted unread
    assert "left for the next round" in json.loads(capsys.readouterr().out)["note"]


def precondition_failed(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions"}}, operation
    )


def test_file_replaced_before_its_copy_is_checked_again(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto ignores CopySourceIfMatch; S3 answers 412 when the source is no longer the checked version.
    put(s3, "incoming/a.csv", REORDERED + "\n")
    client = adm.moves.s3_client()
    copy_object = client.copy_object
    calls: list[str] = []

    def replaced_once(**kwargs: Any) -> Any:
        calls.append(kwargs["Key"])
        if len(calls) == 1:
            put(s3, "incoming/a.csv", GOOD)  # the user fixed the file and uploaded it again
            raise precondition_failed("CopyObject")
        return copy_object(**kwargs)

    monkeypatch.setattr(client, "copy_object", replaced_once)

    result = admit(adm, "incoming/a.csv")

    assert calls == [quarantined_at("incoming/a.csv", ".csv"), landed("incoming/a.csv")]
    assert result["admitted"] == [{"key": "incoming/a.csv", "destination": landed("incoming/a.csv")}]
    assert keys(s3) == {landed("incoming/a.csv"), record_of("incoming/a.csv")}


def test_file_that_keeps_changing_fails_the_batch(adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    put(s3, "incoming/a.csv", GOOD)
    client = adm.moves.s3_client()

    def always_replaced(**kwargs: Any) -> Any:
        raise precondition_failed("CopyObject")

    monkeypatch.setattr(client, "copy_object", always_replaced)

    with pytest.raises(adm.moves.SourceChangedError, match="incoming/a.csv was replaced 3 times while being admitted"):
        admit(adm, "incoming/a.csv")
    assert keys(s3) == {"incoming/a.csv"}


# --- nothing deleted before its copy exists; other S3 errors re-raise ---------------------------


@pytest.mark.parametrize(
    ("operation", "body"),
    [("copy_object", GOOD), ("copy_object", "{}"), ("put_object", "{}")],
    ids=["copy_to_landing", "copy_to_quarantine", "sidecar"],
)
def test_a_failed_copy_or_sidecar_deletes_nothing(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch, operation: str, body: str
) -> None:
    key = "incoming/a.csv" if body == GOOD else "incoming/a.json"
    put(s3, key, body)
    client = adm.moves.s3_client()

    def denied(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    monkeypatch.setattr(client, operation, denied)

    with pytest.raises(ClientError, match="AccessDenied"):
        admit(adm, key)
    assert key in keys(s3)


def test_missing_bucket_error_is_reraised(adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDING_BUCKET", "no-such-bucket")

    with pytest.raises(ClientError, match="NoSuchBucket"):
        admit(adm, "incoming/a.csv")


def test_access_denied_on_head_is_reraised(adm: AdmissionCode, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("head_object", service_error_code="AccessDenied", http_status_code=403)
    monkeypatch.setattr(adm.moves, "s3_client", lambda: client)

    with stubber, pytest.raises(ClientError) as raised:
        admit(adm, "incoming/a.csv")

    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_a_file_over_the_copy_object_limit_goes_by_multipart_copy(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CopyObject stops at 5 GiB; a huge drop must still leave incoming (to quarantine: too large).
    monkeypatch.setattr(adm.moves, "COPY_OBJECT_LIMIT", MAX_FILE_BYTES)
    client = adm.moves.s3_client()
    calls: list[str] = []
    for operation in ("copy_object", "upload_part_copy"):
        original = getattr(client, operation)

        def spy(*args: Any, _operation: str = operation, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_operation)
            return _original(*args, **kwargs)

        monkeypatch.setattr(client, operation, spy)
    body = HEADER + "\n" + "x" * (2 * MAX_FILE_BYTES)

    entry = quarantined_one(adm, s3, "incoming/huge.csv", body)

    assert entry["code"] == "too_large"
    assert calls == ["upload_part_copy"]


def test_destinations(adm: AdmissionCode) -> None:
    config, moves = adm.config.load_config(ENV), adm.moves
    assert moves.landing_key(config, "incoming/a/b.csv", "r1") == landed("incoming/a/b.csv", "r1")
    assert moves.record_key(config, "incoming/a/b.csv", "r1") == record_of("incoming/a/b.csv", "r1")
    assert moves.quarantine_key(config, "incoming/a/b.json", "r1") == quarantined_at("incoming/a/b.json", ".json", "r1")
    assert moves.quarantine_key(config, "incoming/a/b/", "r1") == quarantined_at(
        "incoming/a/b/", ".folder-marker", "r1"
    )
    assert moves.quarantine_key(config, "incoming/a/b", "r1") == quarantined_at("incoming/a/b", "", "r1")
    assert moves.quarantine_key(config, "incoming/.env", "r1") == quarantined_at("incoming/.env", "", "r1")
