from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from glue.manifest import build_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
VALID: dict[str, Any] = {
    "run_id": "jr_0123456789abcdef",
    "admitted_records": 40,
    "input_rows": 40,
    "output_rows": 38,
    "rejected_rows": 2,
    "output_path": "s3://curated-bucket/orders/",
    "rejected_path": "s3://curated-bucket/rejected/orders/",
    "input_files": ["s3://landing-bucket/landing/orders.csv"],
}


def test_manifest_has_exact_shape_and_survives_json() -> None:
    manifest = build_manifest(**VALID)

    assert manifest == {"schema_version": 2, **VALID}
    assert json.loads(json.dumps(manifest)) == manifest


@pytest.mark.slow  # a fresh interpreter
def test_manifest_module_imports_without_pyspark() -> None:
    # The Lambda tests and the local runner import it without Spark; a None
    # entry in sys.modules makes any pyspark import fail in the child process.
    code = "import sys; sys.modules['pyspark'] = None; import glue.manifest"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)

    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("field", ["admitted_records", "input_rows", "output_rows", "rejected_rows"])
@pytest.mark.parametrize("value", [-1, True, 1.0, "3", None])
def test_bad_count_raises(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a non-negative int, got {value!r}"):
        build_manifest(**{**VALID, field: value})


@pytest.mark.parametrize("field", ["run_id", "output_path", "rejected_path"])
@pytest.mark.parametrize("value", ["", None, 5])
def test_bad_text_raises(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a non-empty string"):
        build_manifest(**{**VALID, field: value})


def test_zero_counts_are_allowed() -> None:
    # An empty batch is a fact to record; judging it is the Lambda's job.
    manifest = build_manifest(**{**VALID, "admitted_records": 0, "input_rows": 0, "output_rows": 0, "rejected_rows": 0})

    assert (manifest["input_rows"], manifest["output_rows"], manifest["rejected_rows"]) == (0, 0, 0)
