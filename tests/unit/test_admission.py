"""The admission Lambda (lambda/admission/handler.py) against moto S3: the files a new user drops."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from glue.contract import COLUMNS

HANDLER_DIR = Path(__file__).resolve().parents[2] / "lambda" / "admission"
BUCKET = "landing-zone"
RUN = "run_2024-05-01T00-00-00_abc"
HEADER = ",".join(COLUMNS)
GOOD = f"{HEADER}\nO-1,C-1,2024-05-01,10.50,EUR\nO-2,C-2,2024-05-01,3.00,USD\n"
MAX_FILE_BYTES = 1000
ENV = {
    "LANDING_BUCKET": BUCKET,
    "INCOMING_PREFIX": "incoming/",
    "LANDING_PREFIX": "landing/",
    "QUARANTINE_PREFIX": "quarantine/",
    "MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    "CONTRACT_COLUMNS": HEADER,
}
EXPECTED = f"expected {HEADER}; found "
EMPTY_BATCH = {"admitted": 0, "quarantined": 0, "records": 0, "by_reason": {}, "examples": []}


def load_handler() -> ModuleType:
    """Import lambda/admission/handler.py by path: `lambda` is not a package name."""
    spec = importlib.util.spec_from_file_location("admission_handler", HANDLER_DIR / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before exec: dataclasses resolve string annotations via sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def env(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def adm(env: None) -> Iterator[ModuleType]:
    module = load_handler()
    yield module
    sys.modules.pop("admission_handler", None)


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(s3: Any, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def keys(s3: Any) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def safe(key: str) -> str:
    """The contract's safe name (ADMISSION_CONTRACT §1), computed here independently of the handler."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def landed(key: str, run: str = RUN) -> str:
    return f"landing/run={run}/{safe(key)}.csv"


def record_of(key: str, run: str = RUN) -> str:
    return f"landing/run={run}/_admitted/{safe(key)}.json"


def quarantined_at(key: str, extension: str, run: str = RUN) -> str:
    return f"quarantine/run={run}/{safe(key)}{extension}"


def admit(adm: ModuleType, *item_keys: str, run: str = RUN, size: int = 1) -> dict[str, Any]:
    """Run the handler on one batch; return each file's decision as {"admitted": [{"key", "destination"}],
    "quarantined": [{"key", "destination", "reason", "code"}]} (recorded as the handler makes them; its
    response keeps only counts, checked here to agree)."""
    decisions: list[Any] = []
    original = adm.admit

    def recording(config: Any, key: str, run_: str) -> Any:
        decisions.append(original(config, key, run_))
        return decisions[-1]

    setattr(adm, "admit", recording)  # noqa: B010 - the handler looks `admit` up on its module
    try:
        output = adm.handler({"items": [{"key": k, "size": size, "run": run} for k in item_keys]}, None)
    finally:
        setattr(adm, "admit", original)  # noqa: B010
    view: dict[str, Any] = {"admitted": [], "quarantined": []}
    for decision in decisions:
        entry = {"key": decision.key, "destination": decision.destination}
        if decision.rejection is None:
            view["admitted"].append(entry)
        else:
            view["quarantined"].append({**entry, "reason": decision.rejection.reason, "code": decision.rejection.code})
    assert (output["admitted"], output["quarantined"]) == (len(view["admitted"]), len(view["quarantined"]))
    assert output["records"] == sum(d.records for d in decisions if d.rejection is None)
    return view


def quarantined_one(adm: ModuleType, s3: Any, key: str, body: str | bytes) -> dict[str, Any]:
    """Drop one file, admit it, check it went to quarantine whole with its sidecar; return the entry."""
    put(s3, key, body)
    result = admit(adm, key)
    assert result["admitted"] == []
    [entry] = result["quarantined"]
    destination = entry["destination"]
    assert destination.startswith(f"quarantine/run={RUN}/{safe(key)}")
    assert keys(s3) == {destination, destination + ".reason.json"}
    assert read(s3, destination) == (body.encode() if isinstance(body, str) else body)
    sidecar = json.loads(read(s3, destination + ".reason.json"))
    assert sidecar == {
        "reason": entry["reason"],
        "code": entry["code"],
        "run": RUN,
        "original_key": key,
        "size": len(read(s3, destination)),
        "admitted_at": sidecar["admitted_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", sidecar["admitted_at"])
    return entry


# --- the client and the configuration ---------------------------------------------------------


def test_s3_client_is_created_on_first_use_and_reused(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    def fake_client(service: str, **_: Any) -> object:
        created.append(service)
        return object()

    monkeypatch.setattr(boto3, "client", fake_client)
    module = load_handler()
    assert created == []
    assert module._s3_client() is module._s3_client()
    assert created == ["s3"]


def test_configuration_is_read_when_called_not_at_import(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    module = load_handler()  # imports with no configuration at all

    with pytest.raises(ValueError, match="LANDING_BUCKET is not set"):
        module.handler({"items": []}, None)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert module.handler({"items": []}, None) == EMPTY_BATCH


def test_configuration_from_the_environment(adm: ModuleType) -> None:
    assert adm.load_config(ENV) == adm.Config(
        bucket=BUCKET,
        incoming_prefix="incoming/",
        landing_prefix="landing/",
        quarantine_prefix="quarantine/",
        max_file_bytes=MAX_FILE_BYTES,
        columns=COLUMNS,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"LANDING_BUCKET": None}, "LANDING_BUCKET is not set; expected an S3 bucket name"),
        ({"LANDING_BUCKET": "s3://landing-zone"}, "LANDING_BUCKET is 's3://landing-zone'; expected an S3 bucket"),
        ({"INCOMING_PREFIX": None}, "INCOMING_PREFIX is not set; expected a key prefix ending in '/'"),
        ({"INCOMING_PREFIX": "incoming"}, "INCOMING_PREFIX is 'incoming'; expected a key prefix ending in '/'"),
        ({"LANDING_PREFIX": "/landing/"}, "LANDING_PREFIX is '/landing/'; expected"),
        ({"QUARANTINE_PREFIX": ""}, "QUARANTINE_PREFIX is ''; expected"),
        ({"MAX_FILE_BYTES": None}, "MAX_FILE_BYTES is not set; expected a positive integer"),
        ({"MAX_FILE_BYTES": "10MB"}, "MAX_FILE_BYTES is '10MB'; expected a positive integer"),
        ({"MAX_FILE_BYTES": "0"}, "MAX_FILE_BYTES is '0'; expected a positive integer"),
        ({"MAX_FILE_BYTES": "-5"}, "MAX_FILE_BYTES is '-5'; expected a positive integer"),
        ({"CONTRACT_COLUMNS": None}, "CONTRACT_COLUMNS is not set; expected comma-separated"),
        ({"CONTRACT_COLUMNS": ""}, "CONTRACT_COLUMNS is ''; expected comma-separated, distinct, non-empty"),
        ({"CONTRACT_COLUMNS": "a,,b"}, "CONTRACT_COLUMNS is 'a,,b'; expected"),
        ({"CONTRACT_COLUMNS": "a, b"}, "CONTRACT_COLUMNS is 'a, b'; expected"),
        ({"CONTRACT_COLUMNS": "a,b,a"}, "CONTRACT_COLUMNS is 'a,b,a'; expected"),
        (
            {"LANDING_PREFIX": "incoming/landed/"},
            "LANDING_PREFIX 'incoming/landed/' is inside INCOMING_PREFIX 'incoming/'; the three prefixes must not",
        ),
        ({"QUARANTINE_PREFIX": "landing/"}, "QUARANTINE_PREFIX 'landing/' is inside LANDING_PREFIX 'landing/'"),
    ],
)
def test_missing_or_invalid_configuration_names_the_variable(
    adm: ModuleType, overrides: dict[str, str | None], message: str
) -> None:
    environ = {name: value for name, value in {**ENV, **overrides}.items() if value is not None}

    with pytest.raises(ValueError, match="^admission configuration: .*" + re.escape(message)):
        adm.load_config(environ)


def test_every_configuration_problem_in_one_error(adm: ModuleType) -> None:
    with pytest.raises(ValueError) as raised:
        adm.load_config({"INCOMING_PREFIX": "incoming/", "MAX_FILE_BYTES": "lots"})

    message = str(raised.value)
    for name in ("LANDING_BUCKET", "LANDING_PREFIX", "QUARANTINE_PREFIX", "MAX_FILE_BYTES", "CONTRACT_COLUMNS"):
        assert name in message
    assert "INCOMING_PREFIX" not in message


# --- the event ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (["incoming/a.csv"], "event must be a JSON object with a list 'items', got ['incoming/a.csv']"),
        ({"Items": []}, "event must be a JSON object with a list 'items'"),
        ({"items": ["incoming/a.csv"]}, "items[0] must be a JSON object, got 'incoming/a.csv'"),
        ({"items": [{"size": 1, "run": RUN}]}, "items[0] field 'key' is None; expected a non-empty string"),
        ({"items": [{"key": "", "size": 1, "run": RUN}]}, "items[0] field 'key' is ''; expected a non-empty"),
        ({"items": [{"key": "incoming/a.csv", "size": 1}]}, "items[0] field 'run' is None; expected a run name"),
        ({"items": [{"key": "incoming/a.csv", "run": "a b"}]}, "items[0] field 'run' is 'a b'; expected a run name"),
        ({"items": [{"key": "incoming/a.csv", "run": "r" * 101}]}, "field 'run' is 'rrrrr"),
        ({"items": [{"key": "incoming/a.csv", "run": "a/b-r1"}]}, "field 'run' is 'a/b-r1'"),
        ({"items": [{"key": "incoming/a.csv", "run": RUN, "size": "1"}]}, "field 'size' is '1'; expected a non-neg"),
        ({"items": [{"key": "incoming/a.csv", "run": RUN, "size": -1}]}, "field 'size' is -1; expected"),
        ({"items": [{"key": "incoming/a.csv", "run": RUN, "size": True}]}, "field 'size' is True; expected"),
        (
            {"items": [{"key": "incoming/a.csv", "run": "r1"}, {"key": "incoming/b.csv", "run": "r2"}]},
            "items name different runs ['r1', 'r2']; a batch belongs to one run",
        ),
    ],
)
def test_malformed_event_raises_before_any_s3_call(adm: ModuleType, event: Any, message: str) -> None:
    # No S3 fixture: a call would fail on credentials, not with this message.
    with pytest.raises(ValueError, match=re.escape(message)):
        adm.handler(event, None)


def test_an_empty_batch_admits_nothing(adm: ModuleType, s3: Any) -> None:
    assert admit(adm) == {"admitted": [], "quarantined": []}


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
def test_good_file_moves_to_the_runs_landing_folder(adm: ModuleType, s3: Any, body: str) -> None:
    put(s3, "incoming/orders.csv", body)

    result = admit(adm, "incoming/orders.csv")

    destination = landed("incoming/orders.csv")
    assert result == {"admitted": [{"key": "incoming/orders.csv", "destination": destination}], "quarantined": []}
    assert keys(s3) == {destination, record_of("incoming/orders.csv")}
    assert read(s3, destination) == body.encode()


def test_nested_paths_get_flat_safe_names(adm: ModuleType, s3: Any) -> None:
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


def test_real_size_is_read_from_s3_not_the_event(adm: ModuleType, s3: Any) -> None:
    put(s3, "incoming/small.csv", GOOD)
    put(s3, "incoming/big.csv", HEADER + "\n" + "x" * MAX_FILE_BYTES)

    small = admit(adm, "incoming/small.csv", size=10**12)
    big = admit(adm, "incoming/big.csv", size=1)

    assert small["admitted"] == [{"key": "incoming/small.csv", "destination": landed("incoming/small.csv")}]
    assert [q["code"] for q in big["quarantined"]] == ["too_large"]


def test_file_exactly_at_the_size_limit_is_admitted(adm: ModuleType, s3: Any) -> None:
    body = HEADER + "\n" + "x" * (MAX_FILE_BYTES - len(HEADER) - 2) + "\n"
    assert len(body) == MAX_FILE_BYTES
    put(s3, "incoming/edge.csv", body)

    assert len(admit(adm, "incoming/edge.csv")["admitted"]) == 1


# --- quarantined files -------------------------------------------------------------------------

REORDERED = "customer_id,order_id,order_date,amount,currency"


@pytest.mark.parametrize(
    ("name", "body", "code", "reason"),
    [
        (
            "reordered.csv",
            f"{REORDERED}\nC-1,O-1,2024-05-01,1,EUR\n",
            "header_mismatch",
            f"header has the contract's columns in another order: {EXPECTED}{REORDERED}",
        ),
        (
            "bom_reordered.csv",
            f"\ufeff{REORDERED}\n",
            "header_mismatch",
            f"header has the contract's columns in another order: {EXPECTED}{REORDERED}",
        ),
        (
            "missing.csv",
            "order_id,customer_id,order_date,amount\nO-1,C-1,2024-05-01,1\n",
            "header_mismatch",
            f"header does not match the contract: missing column currency; {EXPECTED}"
            "order_id,customer_id,order_date,amount",
        ),
        (
            "extra.csv",
            f"{HEADER},note\n",
            "header_mismatch",
            f"header does not match the contract: extra column note; {EXPECTED}{HEADER},note",
        ),
        (
            "renamed.csv",
            "order_id,client_id,order_date,amount,currency\n",
            "header_mismatch",
            f"header does not match the contract: missing column customer_id; extra column client_id; {EXPECTED}"
            "order_id,client_id,order_date,amount,currency",
        ),
        (
            "duplicate.csv",
            "order_id,customer_id,order_date,amount,amount,currency\n",
            "header_mismatch",
            f"header does not match the contract: repeated column amount (2×); {EXPECTED}"
            "order_id,customer_id,order_date,amount,amount,currency",
        ),
        (
            "case.csv",
            "Order_ID,customer_id,order_date,amount ,currency\n",
            "header_mismatch",
            "header does not match the contract: missing columns order_id, amount; extra columns Order_ID "
            "(differs from order_id only in case or spaces), 'amount ' (differs from amount only in case or "
            f"spaces); {EXPECTED}Order_ID,customer_id,order_date,'amount ',currency",
        ),
        (
            "trailing_comma.csv",
            f"{HEADER},\n",
            "header_mismatch",
            f"header does not match the contract: extra column '' (a trailing comma?); {EXPECTED}{HEADER},''",
        ),
        (
            "semicolons.csv",
            HEADER.replace(",", ";") + "\n",
            "header_mismatch",
            f"header is one column: separated by ';' rather than commas? {EXPECTED}'order_id;customer_id;",
        ),
        ("bom_only.csv", "\ufeff", "header_mismatch", "no header: the file holds only a UTF-8 byte-order mark"),
        (
            "newline_only.csv",
            "\n",
            "header_mismatch",
            "no header: the first line is empty (the file holds only line breaks)",
        ),
        (
            "bom_newline.csv",
            "\ufeff\r\n",
            "header_mismatch",
            "no header: the first line is empty (the file holds only line breaks)",
        ),
        ("blank_first_line.csv", f"\n{GOOD}", "header_mismatch", "no header: the first line is empty"),
        (
            "latin1.csv",
            f"{HEADER}\nO-1,Müller,2024-05-01,1,EUR\n".encode("latin-1"),
            "not_utf8",
            f"not UTF-8: byte 0xfc at offset {len(HEADER) + 1 + 5} (line 2; latin-1?); save the file as UTF-8",
        ),
        (
            "cp1252.csv",
            f"{HEADER}\nO-1,“ACME”,2024-05-01,1,EUR\n".encode("cp1252"),
            "not_utf8",
            f"not UTF-8: byte 0x93 at offset {len(HEADER) + 1 + 4} (line 2; Windows-1252?); save the file as UTF-8",
        ),
        (
            "utf16.csv",
            GOOD.encode("utf-16"),
            "not_utf8",
            "not UTF-8: byte 0xff at offset 0 (line 1; UTF-16?); save the file as UTF-8",
        ),
        (
            "cut_short.csv",
            f"{HEADER}\nO-1,Müller".encode()[:-5],
            "not_utf8",
            f"not UTF-8: a character cut short at offset {len(HEADER) + 1 + 5} (line 2): the file looks truncated",
        ),
        ("empty.csv", b"", "empty", "empty file (0 bytes)"),
        (
            "too_big.csv",
            HEADER + "\n" + "x" * MAX_FILE_BYTES,
            "too_large",
            f"{len(HEADER) + 1 + MAX_FILE_BYTES:,} bytes is over the limit of {MAX_FILE_BYTES:,} bytes "
            "(MAX_FILE_BYTES): split the file",
        ),
        ("orders.json", '{"order_id": 1}', "not_csv", "name 'orders.json' does not end in '.csv'"),
        ("ORDERS.CSV", GOOD, "not_csv", "name 'ORDERS.CSV' must end in lowercase '.csv': rename it and upload"),
        ("orders.csv.gz", b"\x1f\x8b\x08\x00", "not_csv", "name 'orders.csv.gz' does not end in '.csv'"),
        ("orders", GOOD, "not_csv", "name 'orders' does not end in '.csv'"),
    ],
)
def test_bad_file_is_quarantined_with_its_reason(
    adm: ModuleType, s3: Any, name: str, body: str | bytes, code: str, reason: str
) -> None:
    entry = quarantined_one(adm, s3, f"incoming/{name}", body)

    assert entry["key"] == f"incoming/{name}"
    extension = name[name.rfind(".") :] if "." in name else ""
    assert entry["destination"] == quarantined_at(f"incoming/{name}", extension)
    assert entry["code"] == code
    assert entry["reason"].startswith(reason), entry["reason"]


def test_checks_run_in_order_the_first_failure_is_the_reason(adm: ModuleType, s3: Any) -> None:
    # Empty and not .csv: the name comes first. Over the limit and latin-1: the size comes first.
    put(s3, "incoming/empty.json", b"")
    put(s3, "incoming/x/big.csv", b"\xfc" * (MAX_FILE_BYTES + 1))
    put(s3, "incoming/empty_folder/", b"")

    result = admit(adm, "incoming/empty.json", "incoming/x/big.csv", "incoming/empty_folder/")

    assert [q["code"] for q in result["quarantined"]] == ["not_csv", "too_large", "folder_marker"]


def test_long_header_is_shown_shortened(adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100000")
    header = ",".join(f"column_{i}_" + "x" * 60 for i in range(30))

    reason = quarantined_one(adm, s3, "incoming/wide.csv", header + "\n")["reason"]

    assert len(reason) < 1500
    assert reason.endswith(",… (18 more)")


def test_header_without_a_line_break_in_the_kept_text(
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adm, "HEADER_CHARS", 100)
    put(s3, "incoming/one_line.csv", "a" * 500)
    put(s3, "incoming/long_rows.csv", HEADER + "\n" + "b" * 500)

    result = admit(adm, "incoming/one_line.csv", "incoming/long_rows.csv")

    assert [q["reason"] for q in result["quarantined"]] == [
        "no line break in the first 100 characters: no usable header"
    ]
    assert [a["key"] for a in result["admitted"]] == ["incoming/long_rows.csv"]


@pytest.mark.parametrize(
    ("key", "destination"),
    [
        ("incoming/2024/", ".folder-marker"),
        ("incoming/shop-a/2024/", ".folder-marker"),
        ("incoming/", ".folder-marker"),  # the incoming prefix's own marker, made by "Create folder"
    ],
)
def test_folder_marker_is_quarantined_under_a_name_without_the_slash(
    adm: ModuleType, s3: Any, key: str, destination: str
) -> None:
    entry = quarantined_one(adm, s3, key, b"")

    assert entry == {
        "key": key,
        "destination": quarantined_at(key, destination),
        "reason": "a folder marker (a key ending in '/'), not a file",
        "code": "folder_marker",
    }


def test_key_outside_incoming_is_reported_and_left_alone(adm: ModuleType, s3: Any) -> None:
    put(s3, "landing/run=earlier/orders.csv", GOOD)
    put(s3, "incoming-old/orders.csv", GOOD)  # shares the characters, not the folder

    result = admit(adm, "landing/run=earlier/orders.csv", "incoming-old/orders.csv")

    assert result["admitted"] == []
    assert result["quarantined"] == [
        {
            "key": key,
            "destination": None,
            "reason": "not under the incoming prefix 'incoming/': left where it is",
            "code": "outside_incoming",
        }
        for key in ("landing/run=earlier/orders.csv", "incoming-old/orders.csv")
    ]
    assert keys(s3) == {"landing/run=earlier/orders.csv", "incoming-old/orders.csv"}


def test_a_mixed_drop(adm: ModuleType, s3: Any) -> None:
    drop: dict[str, str | bytes] = {
        "incoming/good.csv": GOOD,
        "incoming/bom.csv": "\ufeff" + GOOD,
        "incoming/header_only.csv": HEADER + "\n",
        "incoming/reordered.csv": REORDERED + "\n",
        "incoming/latin1.csv": f"{HEADER}\nO-1,Müller,2024-05-01,1,EUR\n".encode("latin-1"),
        "incoming/empty.csv": b"",
        "incoming/orders.json": "{}",
        "incoming/ORDERS.CSV": GOOD,
        "incoming/folder/": b"",
    }
    for key, body in drop.items():
        put(s3, key, body)

    result = admit(adm, *drop)

    assert [a["key"] for a in result["admitted"]] == [
        "incoming/good.csv",
        "incoming/bom.csv",
        "incoming/header_only.csv",
    ]
    assert {q["key"]: q["code"] for q in result["quarantined"]} == {
        "incoming/reordered.csv": "header_mismatch",
        "incoming/latin1.csv": "not_utf8",
        "incoming/empty.csv": "empty",
        "incoming/orders.json": "not_csv",
        "incoming/ORDERS.CSV": "not_csv",
        "incoming/folder/": "folder_marker",
    }
    assert not any(k.startswith("incoming/") for k in keys(s3))


# --- retries, redrives and races ----------------------------------------------------------------


def test_retry_after_the_move_reports_files_from_their_destination(adm: ModuleType, s3: Any) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/bad.csv", REORDERED + "\n")
    put(s3, "incoming/folder/", b"")
    batch = ("incoming/good.csv", "incoming/bad.csv", "incoming/folder/")
    first = admit(adm, *batch)
    moved = keys(s3)

    again = admit(adm, *batch)  # the Map retried the batch, or the run was redriven

    assert again == first
    assert keys(s3) == moved


def test_retry_after_a_partial_batch(adm: ModuleType, s3: Any) -> None:
    # An earlier attempt moved the first file and died: the second one is still under incoming.
    put(s3, "incoming/a.csv", GOOD)
    admit(adm, "incoming/a.csv")
    put(s3, "incoming/b.csv", GOOD)

    result = admit(adm, "incoming/a.csv", "incoming/b.csv")

    assert [a["destination"] for a in result["admitted"]] == [landed("incoming/a.csv"), landed("incoming/b.csv")]
    assert keys(s3) == {landed(k) for k in ("incoming/a.csv", "incoming/b.csv")} | {
        record_of(k) for k in ("incoming/a.csv", "incoming/b.csv")
    }


def test_retry_after_copy_before_delete_finishes_the_move(adm: ModuleType, s3: Any) -> None:
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
    adm: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str]
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
def test_a_file_that_is_nowhere_fails_the_batch_loudly(adm: ModuleType, s3: Any, setup: dict[str, str]) -> None:
    for key, body in setup.items():
        put(s3, key, body)

    with pytest.raises(
        adm.FileLostError,
        match=re.escape("incoming/a.csv is no longer under incoming, yet neither its admission record"),
    ):
        admit(adm, "incoming/a.csv")


def test_same_key_twice_in_a_batch_is_admitted_and_reported_once(
    adm: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, "incoming/a.csv", GOOD)
    put(s3, "incoming/b.json", "{}")

    result = admit(adm, "incoming/a.csv", "incoming/b.json", "incoming/a.csv", "incoming/b.json")

    assert [a["key"] for a in result["admitted"]] == ["incoming/a.csv"]
    assert [q["key"] for q in result["quarantined"]] == ["incoming/b.json"]
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_concurrent_batch_that_lost_the_race_reports_the_winners_move(
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two attempts read the same file; the other one copies and deletes it before this one copies.
    put(s3, "incoming/a.csv", GOOD)
    client = adm._s3_client()
    copy_object = client.copy_object

    def other_attempt_wins(**kwargs: Any) -> Any:
        monkeypatch.setattr(client, "copy_object", copy_object)
        adm.admit_once(adm.load_config(ENV), "incoming/a.csv", RUN)  # copies, records and deletes
        return copy_object(**kwargs)

    monkeypatch.setattr(client, "copy_object", other_attempt_wins)

    result = admit(adm, "incoming/a.csv")

    assert result["admitted"] == [{"key": "incoming/a.csv", "destination": landed("incoming/a.csv")}]
    assert keys(s3) == {landed("incoming/a.csv"), record_of("incoming/a.csv")}


def test_file_replaced_after_its_copy_is_left_for_the_next_round(
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, "incoming/a.csv", GOOD)
    client = adm._s3_client()
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
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto ignores CopySourceIfMatch; S3 answers 412 when the source is no longer the checked version.
    put(s3, "incoming/a.csv", REORDERED + "\n")
    client = adm._s3_client()
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


def test_file_that_keeps_changing_fails_the_batch(adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    put(s3, "incoming/a.csv", GOOD)
    client = adm._s3_client()

    def always_replaced(**kwargs: Any) -> Any:
        raise precondition_failed("CopyObject")

    monkeypatch.setattr(client, "copy_object", always_replaced)

    with pytest.raises(adm.SourceChangedError, match="incoming/a.csv was replaced 3 times while being admitted"):
        admit(adm, "incoming/a.csv")
    assert keys(s3) == {"incoming/a.csv"}


# --- nothing deleted before its copy exists; other S3 errors re-raise ---------------------------


@pytest.mark.parametrize(
    ("operation", "body"),
    [("copy_object", GOOD), ("copy_object", "{}"), ("put_object", "{}")],
    ids=["copy_to_landing", "copy_to_quarantine", "sidecar"],
)
def test_a_failed_copy_or_sidecar_deletes_nothing(
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch, operation: str, body: str
) -> None:
    key = "incoming/a.csv" if body == GOOD else "incoming/a.json"
    put(s3, key, body)
    client = adm._s3_client()

    def denied(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    monkeypatch.setattr(client, operation, denied)

    with pytest.raises(ClientError, match="AccessDenied"):
        admit(adm, key)
    assert key in keys(s3)


def test_missing_bucket_error_is_reraised(adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDING_BUCKET", "no-such-bucket")

    with pytest.raises(ClientError, match="NoSuchBucket"):
        admit(adm, "incoming/a.csv")


def test_access_denied_on_head_is_reraised(adm: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("head_object", service_error_code="AccessDenied", http_status_code=403)
    monkeypatch.setattr(adm, "_s3_client", lambda: client)

    with stubber, pytest.raises(ClientError) as raised:
        admit(adm, "incoming/a.csv")

    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_a_file_over_the_copy_object_limit_goes_by_multipart_copy(
    adm: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CopyObject stops at 5 GiB; a huge drop must still leave incoming (to quarantine: too large).
    monkeypatch.setattr(adm, "COPY_OBJECT_LIMIT", MAX_FILE_BYTES)
    client = adm._s3_client()
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


# --- logging -------------------------------------------------------------------------------------


def test_logs_one_json_line_per_file_decision(adm: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/bad.csv", REORDERED)

    result = admit(adm, "incoming/good.csv", "incoming/bad.csv")

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["decision"] for line in logged] == ["admitted", "quarantined"]
    assert all(line["message"] == "admission decision" and line["run"] == RUN for line in logged)
    assert {k: logged[0][k] for k in result["admitted"][0]} == result["admitted"][0]
    assert {k: logged[1][k] for k in result["quarantined"][0]} == result["quarantined"][0]
    assert (logged[0]["size"], logged[0]["resumed"]) == (len(GOOD), False)


# --- pure checks --------------------------------------------------------------------------------


def test_utf8_scan_across_chunk_boundaries(adm: ModuleType) -> None:
    data = f"{HEADER}\nO-1,Müller € 𝄞,2024-05-01,1,EUR\n".encode()
    for cut in range(len(data)):
        text, complete, rejection = adm.scan_utf8([data[:cut], data[cut:]])
        assert (text, complete, rejection) == (data.decode(), True, None)
    bad = data.replace("€".encode(), b"\xa4")  # latin-9's euro sign
    offset = bad.index(b"\xa4")
    for cut in range(len(bad)):
        _, _, rejection = adm.scan_utf8([bad[:cut], bad[cut:]])
        assert rejection.reason.startswith(f"not UTF-8: byte 0xa4 at offset {offset} (line 2; latin-1?)")


def test_utf8_scan_keeps_only_the_start(adm: ModuleType) -> None:
    assert adm.scan_utf8([b"abcdef", b"ghi"], keep_chars=4) == ("abcd", False, None)
    assert adm.scan_utf8([b"abcd"], keep_chars=4) == ("abcd", True, None)
    assert adm.scan_utf8([], keep_chars=4) == ("", True, None)


def test_destinations(adm: ModuleType) -> None:
    config = adm.load_config(ENV)
    assert adm.landing_key(config, "incoming/a/b.csv", "r1") == landed("incoming/a/b.csv", "r1")
    assert adm.record_key(config, "incoming/a/b.csv", "r1") == record_of("incoming/a/b.csv", "r1")
    assert adm.quarantine_key(config, "incoming/a/b.json", "r1") == quarantined_at("incoming/a/b.json", ".json", "r1")
    assert adm.quarantine_key(config, "incoming/a/b/", "r1") == quarantined_at("incoming/a/b/", ".folder-marker", "r1")
    assert adm.quarantine_key(config, "incoming/a/b", "r1") == quarantined_at("incoming/a/b", "", "r1")
    assert adm.quarantine_key(config, "incoming/.env", "r1") == quarantined_at("incoming/.env", "", "r1")


# --- summarize ----------------------------------------------------------------------------------

RESULTS = "admission-results/0c4f/"
MAP_RUN_ARN = "arn:aws:states:us-east-1:123456789012:mapRun:admission/Admit-files:0c4f"


def child(name: str, status: str, batch: list[str], output: dict[str, Any] | None = None) -> dict[str, Any]:
    """One child execution record as the Distributed Map's ResultWriter writes it."""
    record: dict[str, Any] = {
        "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:express:admission/Admit-files:{name}",
        "Input": json.dumps({"Items": [{"key": k, "size": 1, "run": RUN} for k in batch]}),
        "InputDetails": {"Included": True},
        "Name": name,
        "StartDate": "2024-05-01T00:00:00.000Z",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:admission/Admit-files",
        "Status": status,
        "StopDate": "2024-05-01T00:00:01.000Z",
    }
    if output is not None:
        record |= {"Output": json.dumps(output), "OutputDetails": {"Included": True}}
    else:
        record |= {"Error": "FileLostError", "Cause": '{"errorMessage": "incoming/x.csv is no longer ..."}'}
    return record


def write_results(s3: Any, succeeded: list[list[dict[str, Any]]], failed: list[list[dict[str, Any]]]) -> dict[str, str]:
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, groups in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        for index, records in enumerate(groups):
            key = f"{RESULTS}{status}_{index}.json"
            body = json.dumps(records)
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": MAP_RUN_ARN, "ResultFiles": files}
    s3.put_object(Bucket=BUCKET, Key=f"{RESULTS}manifest.json", Body=json.dumps(manifest))
    return {"Bucket": BUCKET, "Key": f"{RESULTS}manifest.json"}


def batch(admitted: int, records: int, *quarantined: tuple[str, str]) -> dict[str, Any]:
    """A batch's output as the handler returns it: counts, reasons, a few examples."""
    codes = Counter(code for _, code in quarantined)
    return {
        "admitted": admitted,
        "quarantined": len(quarantined),
        "records": records,
        "by_reason": dict(codes),
        "examples": [{"key": key, "code": code, "reason": f"{code} because"} for key, code in quarantined][:5],
    }


def test_summarize_totals_the_admission_of_a_run(adm: ModuleType, s3: Any) -> None:
    writer = write_results(
        s3,
        succeeded=[
            [
                child("b1", "SUCCEEDED", [], batch(3, 30, ("a.json", "not_csv"))),
                child("b2", "SUCCEEDED", [], batch(0, 0, ("b.csv", "empty"))),
            ],
            [child("b3", "SUCCEEDED", [], batch(2, 7, ("c.json", "not_csv")))],
        ],
        failed=[[child("b4", "FAILED", ["incoming/x.csv", "incoming/y.csv"]), child("b5", "FAILED", ["incoming/z"])]],
    )

    summary = adm.summarize({"result_writer": writer, "run": RUN}, None)

    assert summary == {
        "run": RUN,
        "admitted": 5,
        "quarantined": 3,
        "records": 37,
        "by_reason": {"empty": 1, "not_csv": 2},
        "failed_batches": 2,
        "failed_items": 3,
        "examples": [
            {"key": "a.json", "code": "not_csv", "reason": "not_csv because"},
            {"key": "b.csv", "code": "empty", "reason": "empty because"},
            {"key": "c.json", "code": "not_csv", "reason": "not_csv because"},
        ],
    }


def test_summarize_examples_show_every_reason_first_and_stay_few(adm: ModuleType, s3: Any) -> None:
    outputs = [batch(0, 0, *[(f"j{b}-{i}.json", "not_csv") for i in range(5)]) for b in range(4)]
    outputs.append(batch(0, 0, ("e.csv", "empty"), ("h.csv", "header_mismatch")))
    writer = write_results(s3, [[child(f"b{i}", "SUCCEEDED", [], o) for i, o in enumerate(outputs)]], [])

    summary = adm.summarize({"result_writer": writer, "run": RUN}, None)

    assert summary["quarantined"] == 22
    assert summary["by_reason"] == {"empty": 1, "header_mismatch": 1, "not_csv": 20}
    assert len(summary["examples"]) == 10
    assert [e["key"] for e in summary["examples"][:3]] == ["j0-0.json", "e.csv", "h.csv"]


EMPTY_SUMMARY = {
    "run": RUN,
    "admitted": 0,
    "quarantined": 0,
    "records": 0,
    "by_reason": {},
    "failed_batches": 0,
    "failed_items": 0,
    "examples": [],
}


def test_summarize_an_empty_run(adm: ModuleType, s3: Any) -> None:
    writer = write_results(s3, [], [])

    assert adm.summarize({"result_writer": writer, "run": RUN}, None) == EMPTY_SUMMARY


def test_summarize_counts_a_failed_batch_whose_input_was_not_included(adm: ModuleType, s3: Any) -> None:
    record = child("b1", "FAILED", ["incoming/a.csv"])
    del record["Input"]
    record["InputDetails"] = {"Included": False}
    writer = write_results(s3, [], [[record]])

    summary = adm.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["failed_batches"], summary["failed_items"]) == (1, 0)


def test_summarize_the_handlers_own_results(adm: ModuleType, s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/reordered.csv", REORDERED)
    items = [{"key": k, "size": 1, "run": RUN} for k in ("incoming/good.csv", "incoming/reordered.csv")]
    output = adm.handler({"items": items}, None)
    writer = write_results(s3, [[child("b1", "SUCCEEDED", [], output)]], [])
    capsys.readouterr()

    summary = adm.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["admitted"], summary["quarantined"], summary["by_reason"]) == (1, 1, {"header_mismatch": 1})
    assert summary["records"] == 2
    assert summary["examples"][0]["reason"].startswith("header has the contract's columns in another order")
    logged = json.loads(capsys.readouterr().out)
    assert logged["message"] == "admission summary" and logged["admitted"] == 1


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("manifest.json", "event must be a JSON object"),
        ({"run": RUN}, "event field 'result_writer' is missing"),
        ({"result_writer": "m.json", "run": RUN}, "event field 'result_writer' is 'm.json'"),
        ({"result_writer": {"Bucket": BUCKET}, "run": RUN}, "event field 'result_writer.Key' is None"),
        ({"result_writer": {"Bucket": "", "Key": "m.json"}, "run": RUN}, "'result_writer.Bucket' is ''"),
        ({"result_writer": {"Bucket": BUCKET, "Key": "m.json"}}, "event field 'run' is None; expected a run name"),
    ],
)
def test_summarize_malformed_event_raises(adm: ModuleType, event: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        adm.summarize(event, None)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("not json", "child execution 'b1' succeeded, but its Output is not an admission result: 'not json'"),
        ('{"admitted": []}', "its Output is not an admission result"),
        ('{"admitted": [], "quarantined": []}', "its Output is not an admission result"),  # the old shape
    ],
)
def test_summarize_rejects_an_output_that_is_not_an_admission_result(
    adm: ModuleType, s3: Any, output: str, message: str
) -> None:
    record = child("b1", "SUCCEEDED", [], {})
    record["Output"] = output
    writer = write_results(s3, [[record]], [])

    with pytest.raises(ValueError, match=re.escape(message)):
        adm.summarize({"result_writer": writer, "run": RUN}, None)


def test_summarize_rejects_a_manifest_that_is_not_one(adm: ModuleType, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="m.json", Body=json.dumps({"ResultFiles": {"SUCCEEDED": "x"}}))
    s3.put_object(Bucket=BUCKET, Key="n.json", Body="{oops")

    with pytest.raises(ValueError, match=re.escape("ResultFiles.SUCCEEDED must be a list of {'Key', 'Size'}")):
        adm.summarize({"result_writer": {"Bucket": BUCKET, "Key": "m.json"}, "run": RUN}, None)
    with pytest.raises(ValueError, match=re.escape(f"s3://{BUCKET}/n.json is not JSON")):
        adm.summarize({"result_writer": {"Bucket": BUCKET, "Key": "n.json"}, "run": RUN}, None)
    with pytest.raises(ClientError, match="NoSuchKey"):
        adm.summarize({"result_writer": {"Bucket": BUCKET, "Key": "missing.json"}, "run": RUN}, None)


# --- packaging ----------------------------------------------------------------------------------


@pytest.mark.slow  # a subprocess
def test_imports_from_its_asset_directory_alone(tmp_path: Path) -> None:
    # Lambda loads handler.py from the asset directory: nothing from this repository is on its path.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler; "
        "print(callable(handler.handler), callable(handler.summarize))"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-B", "-c", code, str(HANDLER_DIR)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["True", "True"]
    assert sorted(p.name for p in HANDLER_DIR.iterdir() if p.name != "__pycache__") == ["handler.py"]
