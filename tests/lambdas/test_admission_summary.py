"""A round's summary of its batches (lambda/admission/summary.py, `summarize`) from a Distributed
Map's ResultWriter output."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stacks import pipeline_contract as contract
from tests.lambdas import admission_support as support
from tests.lambdas.admission_support import (
    BUCKET,
    EMPTY_SUMMARY,
    GOOD,
    REORDERED,
    RUN,
    AdmissionCode,
    batch,
    child,
    put,
    write_results,
)
from tests.lambdas.test_embedded_metrics import emf_document, metrics_of

# The admission tests' fixtures: the Lambda's modules loaded fresh with their environment, and moto S3.
aws_credentials, env, adm, s3 = support.aws_credentials, support.env, support.adm, support.s3


# --- summarize ----------------------------------------------------------------------------------


def test_summarize_totals_the_admission_of_a_run(adm: AdmissionCode, s3: Any) -> None:
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

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

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


def test_summarize_examples_show_every_reason_first_and_stay_few(adm: AdmissionCode, s3: Any) -> None:
    outputs = [batch(0, 0, *[(f"j{b}-{i}.json", "not_csv") for i in range(5)]) for b in range(4)]
    outputs.append(batch(0, 0, ("e.csv", "empty"), ("h.csv", "header_mismatch")))
    writer = write_results(s3, [[child(f"b{i}", "SUCCEEDED", [], o) for i, o in enumerate(outputs)]], [])

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    assert summary["quarantined"] == 22
    assert summary["by_reason"] == {"empty": 1, "header_mismatch": 1, "not_csv": 20}
    assert len(summary["examples"]) == 10
    assert [e["key"] for e in summary["examples"][:3]] == ["j0-0.json", "e.csv", "h.csv"]


def test_summarize_an_empty_run(adm: AdmissionCode, s3: Any) -> None:
    writer = write_results(s3, [], [])

    assert adm.handler.summarize({"result_writer": writer, "run": RUN}, None) == EMPTY_SUMMARY


def test_summarize_counts_a_failed_batch_whose_input_was_not_included(adm: AdmissionCode, s3: Any) -> None:
    record = child("b1", "FAILED", ["incoming/a.csv"])
    del record["Input"]
    record["InputDetails"] = {"Included": False}
    writer = write_results(s3, [], [[record]])

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["failed_batches"], summary["failed_items"]) == (1, 0)


def test_summarize_the_handlers_own_results(adm: AdmissionCode, s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/reordered.csv", REORDERED)
    items = [{"key": k, "size": 1, "run": RUN} for k in ("incoming/good.csv", "incoming/reordered.csv")]
    output = adm.handler.handler({"items": items}, None)
    writer = write_results(s3, [[child("b1", "SUCCEEDED", [], output)]], [])
    capsys.readouterr()

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    assert (summary["admitted"], summary["quarantined"], summary["by_reason"]) == (1, 1, {"header_mismatch": 1})
    assert summary["records"] == 2
    assert summary["examples"][0]["reason"].startswith("header has the contract's columns in another order")
    logged, metrics = capsys.readouterr().out.splitlines()
    assert json.loads(logged)["message"] == "admission summary" and json.loads(logged)["admitted"] == 1
    # The round's metrics add up with its summary: every file admitted or quarantined, once.
    assert metrics_of(emf_document(metrics))["values"] == {"FilesAdmitted": 1, "FilesQuarantined": 1}


def test_summarize_emits_the_rounds_file_counts_as_embedded_metrics(
    adm: AdmissionCode, s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "Pipeline-AdmissionSummarize-1A2B3C")
    writer = write_results(
        s3,
        succeeded=[[child("b1", "SUCCEEDED", [], batch(3, 30, ("a.json", "not_csv"), ("b.csv", "empty")))]],
        failed=[[child("b2", "FAILED", ["incoming/x.csv"])]],
    )

    summary = adm.handler.summarize({"result_writer": writer, "run": RUN}, None)

    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line).get("message") for line in lines] == ["admission summary", None]
    assert metrics_of(emf_document(lines[-1])) == {
        "namespace": contract.METRICS_NAMESPACE,
        "dimensions": {"FunctionName": "Pipeline-AdmissionSummarize-1A2B3C"},
        "values": {contract.FILES_ADMITTED_METRIC: 3, contract.FILES_QUARANTINED_METRIC: 2},
    }
    assert (summary["admitted"], summary["quarantined"]) == (3, 2)


def test_an_empty_round_emits_zero_counts_named_local_outside_lambda(
    adm: AdmissionCode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    adm.handler.summarize({"result_writer": None, "run": RUN}, None)

    metrics = metrics_of(emf_document(capsys.readouterr().out.splitlines()[-1]))
    assert metrics["dimensions"] == {"FunctionName": "local"}
    assert metrics["values"] == {"FilesAdmitted": 0, "FilesQuarantined": 0}


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
def test_summarize_malformed_event_raises(adm: AdmissionCode, event: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        adm.handler.summarize(event, None)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("not json", "child execution 'b1' succeeded, but its Output is not an admission result: 'not json'"),
        ('{"admitted": []}', "its Output is not an admission result"),
        ('{"admitted": [], "quarantined": []}', "its Output is not an admission result"),  # the old shape
    ],
)
def test_summarize_rejects_an_output_that_is_not_an_admission_result(
    adm: AdmissionCode, s3: Any, output: str, message: str
) -> None:
    record = child("b1", "SUCCEEDED", [], {})
    record["Output"] = output
    writer = write_results(s3, [[record]], [])

    with pytest.raises(ValueError, match=re.escape(message)):
        adm.handler.summarize({"result_writer": writer, "run": RUN}, None)


def test_summarize_rejects_a_manifest_that_is_not_one(adm: AdmissionCode, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="m.json", Body=json.dumps({"ResultFiles": {"SUCCEEDED": "x"}}))
    s3.put_object(Bucket=BUCKET, Key="n.json", Body="{oops")

    with pytest.raises(ValueError, match=re.escape("ResultFiles.SUCCEEDED must be a list of {'Key', 'Size'}")):
        adm.handler.summarize({"result_writer": {"Bucket": BUCKET, "Key": "m.json"}, "run": RUN}, None)
    with pytest.raises(ValueError, match=re.escape(f"s3://{BUCKET}/n.json is not JSON")):
        adm.handler.summarize({"result_writer": {"Bucket": BUCKET, "Key": "n.json"}, "run": RUN}, None)
    with pytest.raises(ClientError, match="NoSuchKey"):
        adm.handler.summarize({"result_writer": {"Bucket": BUCKET, "Key": "missing.json"}, "run": RUN}, None)
