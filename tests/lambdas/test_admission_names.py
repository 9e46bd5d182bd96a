"""Admitted files get names nothing can misread (issue 16, ADMISSION_CONTRACT.md §1-§2).

On main a file kept its uploaded name under landing/run=<run>/: Spark skipped `_x.csv` and `.x.csv`,
read `*`/`?`/`[`/`{` names as globs, collapsed `a//b.csv` onto `a/b.csv`, failed on `\\` and `:`,
resolved `..`, and a key near 1,024 bytes grew past S3's limit once rewritten. Now every admitted
file is `<sha256 of its key>[:40].csv` beside an admission record that keeps the original key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localrun.emulator import moto as moto_patches
from tests.lambdas import admission_support as base
from tests.lambdas.admission_support import GOOD, RUN, admit, keys, landed, put, read, record_of

# The admission tests' fixtures: a fresh handler module with its environment, and moto S3.
aws_credentials, env, adm, s3 = base.aws_credentials, base.env, base.adm, base.s3

SAFE_LANDING = re.compile(rf"landing/run={re.escape(RUN)}/[0-9a-f]{{40}}\.csv")
SURPRISES = {
    "hidden_underscore": "incoming/_orders.csv",
    "hidden_dot": "incoming/.orders.csv",
    "hidden_folder": "incoming/_tmp/orders.csv",
    "glob_star": "incoming/orders*.csv",
    "glob_question": "incoming/orders?.csv",
    "double_slash": "incoming/a//b.csv",
    "single_slash": "incoming/a/b.csv",
    "bracket": "incoming/orders[1].csv",
    "brace": "incoming/orders{a,b}.csv",
    "backslash": "incoming/shop\\orders.csv",
    "colon": "incoming/2024-05-01T10:00:00.csv",
    "dot_dot": "incoming/a/../b.csv",
    "dot_dot_leading": "incoming/../orders.csv",
    "percent": "incoming/100%25 orders.csv",
    "unicode": "incoming/Bestellungen-Müller.csv",
}
# A key as long as S3 allows (1,024 bytes) under incoming/: admitted under a key of ~100 bytes.
LONGEST = "incoming/" + "x" * (1024 - len("incoming/") - len(".csv")) + ".csv"


@pytest.mark.parametrize("key", list(SURPRISES.values()), ids=list(SURPRISES))
def test_a_surprising_name_is_admitted_under_a_safe_one(adm: base.AdmissionCode, s3: Any, key: str) -> None:
    put(s3, key, GOOD)

    [entry] = admit(adm, key)["admitted"]

    assert SAFE_LANDING.fullmatch(entry["destination"]), entry["destination"]
    assert entry["destination"] == landed(key)
    assert read(s3, entry["destination"]) == GOOD.encode()
    record = json.loads(read(s3, record_of(key)))
    assert record["original_key"] == key and record["object_key"] == entry["destination"]
    assert keys(s3) == {entry["destination"], record_of(key)}


def test_every_surprise_in_one_batch_gets_its_own_name(adm: base.AdmissionCode, s3: Any) -> None:
    # `a//b.csv` beside `a/b.csv`, `*` beside the names it would match: each file once, none merged.
    for index, key in enumerate(SURPRISES.values()):
        put(s3, key, GOOD.replace("O-1", f"O-1-{index}"))

    result = admit(adm, *SURPRISES.values())

    destinations = [entry["destination"] for entry in result["admitted"]]
    assert len(destinations) == len(set(destinations)) == len(SURPRISES)
    for index, key in enumerate(SURPRISES.values()):
        assert f"O-1-{index},".encode() in read(s3, landed(key))
        assert json.loads(read(s3, record_of(key)))["original_key"] == key


def test_the_longest_key_s3_allows_is_admitted_within_s3s_key_limit(adm: base.AdmissionCode, s3: Any) -> None:
    assert len(LONGEST.encode()) == 1024
    # S3's 1,024-byte key limit enforced (moto has none): a landing key as long as the upload fails.
    with moto_patches.applied([moto_patches.S3_KEY_LENGTH]):
        put(s3, LONGEST, GOOD)
        with pytest.raises(ClientError, match="KeyTooLongError"):  # where main would have copied it
            put(s3, f"landing/run={RUN}/{LONGEST.removeprefix('incoming/')}", GOOD)

        result = admit(adm, LONGEST)

    [entry] = result["admitted"]
    assert len(entry["destination"].encode()) < 120 and len(record_of(LONGEST).encode()) < 130
    assert json.loads(read(s3, record_of(LONGEST)))["original_key"] == LONGEST


def test_the_longest_quarantined_key_keeps_its_original_in_the_sidecar(adm: base.AdmissionCode, s3: Any) -> None:
    key = LONGEST.removesuffix(".csv") + ".txt"
    with moto_patches.applied([moto_patches.S3_KEY_LENGTH]):
        put(s3, key, "hello")

        [entry] = admit(adm, key)["quarantined"]

    assert entry["code"] == "not_csv"
    sidecar = json.loads(read(s3, entry["destination"] + ".reason.json"))
    assert sidecar["original_key"] == key
    assert re.fullmatch(rf"quarantine/run={re.escape(RUN)}/[0-9a-f]{{40}}\.txt", entry["destination"])


def test_a_retried_batch_finds_surprising_names_by_their_records(adm: base.AdmissionCode, s3: Any) -> None:
    batch = [SURPRISES["double_slash"], SURPRISES["single_slash"], SURPRISES["glob_star"]]
    for key in batch:
        put(s3, key, GOOD)
    first = admit(adm, *batch)
    moved = keys(s3)

    again = admit(adm, *batch)

    assert again == first and keys(s3) == moved


def test_the_job_finds_the_run_by_its_admission_records_not_by_listing_files() -> None:
    from glue.admission_records import is_record_key

    folder = f"landing/run={RUN}/"
    listed = [record_of("incoming/a.csv"), landed("incoming/a.csv"), folder]

    assert [key for key in listed if is_record_key(key, folder)] == [record_of("incoming/a.csv")]
