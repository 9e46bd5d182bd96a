"""What makes a file admissible (lambda/admission/checks.py), through the handler against moto S3:
the files a new user drops, each quarantined with its reason; and the pure checks."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from tests.lambdas import admission_support as support
from tests.lambdas.admission_support import (
    EXPECTED,
    GOOD,
    HEADER,
    MAX_FILE_BYTES,
    REORDERED,
    AdmissionCode,
    admit,
    keys,
    put,
    quarantined_at,
    quarantined_one,
)

# The admission tests' fixtures: the Lambda's modules loaded fresh with their environment, and moto S3.
aws_credentials, env, adm, s3 = support.aws_credentials, support.env, support.adm, support.s3


# --- quarantined files -------------------------------------------------------------------------


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
            "compressed.csv",
            gzip.compress(GOOD.encode()),
            "not_utf8",
            "not UTF-8: byte 0x8b at offset 1 (line 1): the file is gzip-compressed; upload the CSV uncompressed",
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
    adm: AdmissionCode, s3: Any, name: str, body: str | bytes, code: str, reason: str
) -> None:
    entry = quarantined_one(adm, s3, f"incoming/{name}", body)

    assert entry["key"] == f"incoming/{name}"
    extension = name[name.rfind(".") :] if "." in name else ""
    assert entry["destination"] == quarantined_at(f"incoming/{name}", extension)
    assert entry["code"] == code
    assert entry["reason"].startswith(reason), entry["reason"]


def test_checks_run_in_order_the_first_failure_is_the_reason(adm: AdmissionCode, s3: Any) -> None:
    # Empty and not .csv: the name comes first. Over the limit and latin-1: the size comes first.
    put(s3, "incoming/empty.json", b"")
    put(s3, "incoming/x/big.csv", b"\xfc" * (MAX_FILE_BYTES + 1))
    put(s3, "incoming/empty_folder/", b"")

    result = admit(adm, "incoming/empty.json", "incoming/x/big.csv", "incoming/empty_folder/")

    assert [q["code"] for q in result["quarantined"]] == ["not_csv", "too_large", "folder_marker"]


def test_long_header_is_shown_shortened(adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100000")
    header = ",".join(f"column_{i}_" + "x" * 60 for i in range(30))

    reason = quarantined_one(adm, s3, "incoming/wide.csv", header + "\n")["reason"]

    assert len(reason) < 1500
    assert reason.endswith(",… (18 more)")


def test_header_without_a_line_break_in_the_kept_text(
    adm: AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adm.checks, "HEADER_CHARS", 100)
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
    adm: AdmissionCode, s3: Any, key: str, destination: str
) -> None:
    entry = quarantined_one(adm, s3, key, b"")

    assert entry == {
        "key": key,
        "destination": quarantined_at(key, destination),
        "reason": "a folder marker (a key ending in '/'), not a file",
        "code": "folder_marker",
    }


def test_key_outside_incoming_is_reported_and_left_alone(adm: AdmissionCode, s3: Any) -> None:
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


def test_a_mixed_drop(adm: AdmissionCode, s3: Any) -> None:
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


# --- pure checks --------------------------------------------------------------------------------


def test_utf8_scan_across_chunk_boundaries(adm: AdmissionCode) -> None:
    data = f"{HEADER}\nO-1,Müller € 𝄞,2024-05-01,1,EUR\n".encode()
    for cut in range(len(data)):
        text, complete, rejection = adm.checks.scan_utf8([data[:cut], data[cut:]])
        assert (text, complete, rejection) == (data.decode(), True, None)
    bad = data.replace("€".encode(), b"\xa4")  # latin-9's euro sign
    offset = bad.index(b"\xa4")
    for cut in range(len(bad)):
        _, _, rejection = adm.checks.scan_utf8([bad[:cut], bad[cut:]])
        assert rejection.reason.startswith(f"not UTF-8: byte 0xa4 at offset {offset} (line 2; latin-1?)")


def test_utf8_scan_keeps_only_the_start(adm: AdmissionCode) -> None:
    assert adm.checks.scan_utf8([b"abcdef", b"ghi"], keep_chars=4) == ("abcd", False, None)
    assert adm.checks.scan_utf8([b"abcd"], keep_chars=4) == ("abcd", True, None)
    assert adm.checks.scan_utf8([], keep_chars=4) == ("", True, None)
