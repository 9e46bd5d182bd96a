"""A batch's output is bounded whatever its size and key lengths (issue 15 finding 3, contract §4).

On main the admit Lambda returned key, destination, reason and code for every file: 100 quarantined
files with 1,024-character keys made ~356 KB, 1,000 admitted files with 120-character keys ~352 KB,
over Step Functions' 256 KiB (States.DataLimitExceeded after the files were moved). Now a batch
returns counts, reasons by code and at most 5 examples cut to 300 characters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambdas import admission_support as base
from tests.lambdas.admission_support import BUCKET, RUN, write_results

aws_credentials, env, adm, s3 = base.aws_credentials, base.env, base.adm, base.s3

STATE_LIMIT = 256 * 1024  # Step Functions: a state's input or output, in bytes of UTF-8 JSON
# 5 examples of a key and a reason of 300 characters each, at worst 12 bytes a character as JSON
# escapes them (a surrogate pair, \ud83d\ude00), and the counts: a tenth of the limit.
EXAMPLES_BOUND = 5 * 2 * 300 * 12 + 4 * 1024
assert EXAMPLES_BOUND < STATE_LIMIT / 6


def output_bytes(output: dict[str, Any]) -> int:
    return len(json.dumps(output).encode())


def handle(adm: base.AdmissionCode, keys: list[str]) -> dict[str, Any]:
    output: dict[str, Any] = adm.handler.handler({"items": [{"key": k, "size": 1, "run": RUN} for k in keys]}, None)
    return output


@pytest.mark.parametrize(
    "character",
    [
        pytest.param("x", id="ascii"),
        pytest.param("é", id="two_byte", marks=pytest.mark.slow),  # ~10 s each: 100 files through moto
        pytest.param("😀", id="four_byte", marks=pytest.mark.slow),
    ],
)
def test_100_quarantined_files_with_the_longest_keys_stay_small(
    adm: base.AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch, character: str
) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100000")
    per = len(character.encode())
    keys = []
    for index in range(100):
        stem = f"incoming/{index:03d}-"
        filler = character * ((1024 - len(stem) - len(".txt")) // per)
        keys.append(f"{stem}{filler}.txt")
        assert len(keys[-1].encode()) <= 1024
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=b"not a csv")

    output = handle(adm, keys)

    assert (output["admitted"], output["quarantined"], output["by_reason"]) == (0, 100, {"not_csv": 100})
    assert len(output["examples"]) == 5
    assert all(len(e["key"]) <= 300 and len(e["reason"]) <= 300 for e in output["examples"])
    assert output_bytes(output) < EXAMPLES_BOUND


def test_1000_files_the_largest_batch_stay_small(adm: base.AdmissionCode) -> None:
    # admission.batch_size allows 1,000: the response is built from each file's decision alone.
    result = adm.summary.BatchResult()
    for index in range(1000):
        key = f"incoming/{'shop-' * 20}/{index:05d}.csv"  # ~120 characters
        result.add(adm.moves.Decision(key=key, destination=f"landing/run={RUN}/{index}.csv", size=60, records=2))
        rejection = adm.checks.Rejection(f"code_{index % 7}", "r" * 2000)
        result.add(adm.moves.Decision(key="incoming/" + "😀" * 253 + ".txt", destination=None, rejection=rejection))

    output = result.as_output()

    assert (output["admitted"], output["quarantined"], output["records"]) == (1000, 1000, 2000)
    assert sum(output["by_reason"].values()) == 1000 and len(output["examples"]) == 5
    assert output_bytes(output) < EXAMPLES_BOUND


def test_examples_show_each_kind_of_problem_first(adm: base.AdmissionCode, s3: Any) -> None:
    keys = [f"incoming/{i}.txt" for i in range(8)] + ["incoming/empty.csv", "incoming/bad.csv"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"" if "empty" in key else b"a;b\n")

    output = handle(adm, keys)

    assert output["by_reason"] == {"empty": 1, "header_mismatch": 1, "not_csv": 8}
    assert [e["code"] for e in output["examples"][:3]] == ["not_csv", "empty", "header_mismatch"]


def test_a_long_reason_is_cut_in_the_output_and_whole_in_the_sidecar(
    adm: base.AdmissionCode, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100000")
    header = ",".join(f"column_{i}_" + "x" * 30 for i in range(12))
    s3.put_object(Bucket=BUCKET, Key="incoming/wide.csv", Body=(header + "\n").encode())

    [example] = handle(adm, ["incoming/wide.csv"])["examples"]

    sidecar = json.loads(base.read(s3, base.quarantined_at("incoming/wide.csv", ".csv.reason.json")))
    assert len(sidecar["reason"]) > 300
    assert example["reason"] == sidecar["reason"][:299] + "…"


@pytest.mark.parametrize(
    "manifest",
    [
        {"DestinationBucket": BUCKET, "ResultFiles": {}},
        {"DestinationBucket": BUCKET},
        {"DestinationBucket": BUCKET, "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": []}},
    ],
    ids=["no_statuses", "no_result_files", "empty_lists"],
)
def test_summarize_a_zero_item_map_run(adm: base.AdmissionCode, s3: Any, manifest: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key="admission-results/x/manifest.json", Body=json.dumps(manifest))
    writer = {"Bucket": BUCKET, "Key": "admission-results/x/manifest.json"}

    assert adm.handler.summarize({"result_writer": writer, "run": RUN}, None) == base.EMPTY_SUMMARY


def test_summarize_without_result_writer_output(adm: base.AdmissionCode) -> None:
    # No S3 fixture: nothing is read.
    assert adm.handler.summarize({"result_writer": None, "run": RUN}, None) == base.EMPTY_SUMMARY


def test_summarize_of_1000_batches_stays_small(adm: base.AdmissionCode, s3: Any) -> None:
    output = {
        "admitted": 95,
        "quarantined": 5,
        "records": 1900,
        "by_reason": {"not_csv": 5},
        "examples": [{"key": "k" * 300, "code": "not_csv", "reason": "r" * 300}] * 5,
    }
    records = [base.child(f"b{i}", "SUCCEEDED", [], output) for i in range(1000)]
    writer = write_results(s3, [records], [])

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["admitted"], summary["quarantined"], summary["records"]) == (95_000, 5_000, 1_900_000)
    assert len(summary["examples"]) == 10 and output_bytes(summary) < 16 * 1024
