"""The metrics the Lambdas log in CloudWatch embedded metric format (EMF), for the dashboard.

Each Lambda directory is deployed alone, so the admission summary (lambda/admission/summary.py) and
the check (lambda/check_results/handler.py) each keep a copy of the names in
stacks/pipeline_contract.py and of a small emitter: pinned here to the contract and to each other,
and to the EMF specification (CloudWatch User Guide, "Specification: Embedded metric format").
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from localrun.emulator.lambda_code import load_lambda_modules
from stacks import pipeline_contract as contract

LAMBDA = Path(__file__).resolve().parents[2] / "lambda"
# The units CloudWatch accepts for a metric (PutMetricData's StandardUnit).
UNITS = {
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes"),
    *("Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count"),
    *("Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second"),
    *("Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second"),
    *("Count/Second", "None"),
}


def emf_document(line: str) -> dict[str, Any]:
    """Parse one log line and check it against the EMF specification; return the document."""
    assert len(line.encode()) < 256 * 1024, "a log event is at most 256 KiB"
    document = json.loads(line)  # the whole line is one JSON object, nothing before or after it
    assert isinstance(document, dict)
    metadata = document["_aws"]
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}, "the metadata object holds nothing else"
    timestamp = metadata["Timestamp"]
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool), "milliseconds since the epoch"
    assert abs(timestamp - time.time() * 1000) < 10 * 60 * 1000, "a timestamp of now, in milliseconds"
    assert isinstance(metadata["CloudWatchMetrics"], list) and metadata["CloudWatchMetrics"]
    for directive in metadata["CloudWatchMetrics"]:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for dimension in dimension_set:
                value = document[dimension]  # a target member of the root
                assert isinstance(value, str) and 0 < len(value) <= 1024, f"dimension {dimension}: {value!r}"
        assert 0 < len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"} and metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]  # a target member of the root
            assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return document


def metrics_of(document: dict[str, Any]) -> dict[str, Any]:
    """{namespace, dimensions, values by metric name} of an EMF document with one directive."""
    [directive] = document["_aws"]["CloudWatchMetrics"]
    dimensions = {name: document[name] for names in directive["Dimensions"] for name in names}
    values = {metric["Name"]: document[metric["Name"]] for metric in directive["Metrics"]}
    return {"namespace": directive["Namespace"], "dimensions": dimensions, "values": values}


@pytest.fixture
def admission_summary() -> ModuleType:
    return load_lambda_modules(LAMBDA / "admission", "handler", name="emf_admission_handler")["summary"]


@pytest.fixture
def check_results() -> ModuleType:
    return load_lambda_modules(LAMBDA / "check_results", "handler", name="emf_check_results_handler")["handler"]


def test_the_names_are_the_pipeline_contracts(admission_summary: ModuleType, check_results: ModuleType) -> None:
    assert admission_summary.METRICS_NAMESPACE == check_results.METRICS_NAMESPACE == contract.METRICS_NAMESPACE
    assert admission_summary.FILES_ADMITTED_METRIC == contract.FILES_ADMITTED_METRIC
    assert admission_summary.FILES_QUARANTINED_METRIC == contract.FILES_QUARANTINED_METRIC
    assert check_results.ROWS_PUBLISHED_METRIC == contract.ROWS_PUBLISHED_METRIC
    assert check_results.ROWS_REJECTED_METRIC == contract.ROWS_REJECTED_METRIC


def test_both_emitters_write_the_same_spec_valid_document(
    admission_summary: ModuleType, check_results: ModuleType
) -> None:
    now = int(time.time() * 1000)
    values = {"FilesAdmitted": 3, "FilesQuarantined": 0}

    documents = [
        emitter.embedded_metrics(values, function_name="Pipeline-AdmitFn-1A2B", timestamp_ms=now)
        for emitter in (admission_summary, check_results)
    ]

    assert documents[0] == documents[1]
    document = emf_document(json.dumps(documents[0]))
    assert metrics_of(document) == {
        "namespace": contract.METRICS_NAMESPACE,
        "dimensions": {"FunctionName": "Pipeline-AdmitFn-1A2B"},
        "values": values,
    }
    assert all(metric["Unit"] == "Count" for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"])
