"""The admission Lambda's entry points (lambda/admission/handler.py, config.py): configuration,
events, log lines and packaging."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from glue.contract import COLUMNS
from tests.lambdas import admission_support as support
from tests.lambdas.admission_support import (
    BUCKET,
    EMPTY_BATCH,
    ENV,
    GOOD,
    HANDLER_DIR,
    MAX_FILE_BYTES,
    REORDERED,
    RUN,
    AdmissionCode,
    admit,
    load_admission,
    put,
)

# The admission tests' fixtures: the Lambda's modules loaded fresh with their environment, and moto S3.
aws_credentials, env, adm, s3 = support.aws_credentials, support.env, support.adm, support.s3


# --- the client and the configuration ---------------------------------------------------------


def test_s3_client_is_created_on_first_use_and_reused(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    def fake_client(service: str, **_: Any) -> object:
        created.append(service)
        return object()

    monkeypatch.setattr(boto3, "client", fake_client)
    code = load_admission()
    assert created == []
    assert code.moves.s3_client() is code.moves.s3_client()
    assert created == ["s3"]


def test_configuration_is_read_when_called_not_at_import(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    code = load_admission()  # imports with no configuration at all

    with pytest.raises(ValueError, match="LANDING_BUCKET is not set"):
        code.handler.handler({"items": []}, None)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert code.handler.handler({"items": []}, None) == EMPTY_BATCH


def test_configuration_from_the_environment(adm: AdmissionCode) -> None:
    assert adm.config.load_config(ENV) == adm.config.Config(
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
    adm: AdmissionCode, overrides: dict[str, str | None], message: str
) -> None:
    environ = {name: value for name, value in {**ENV, **overrides}.items() if value is not None}

    with pytest.raises(ValueError, match="^admission configuration: .*" + re.escape(message)):
        adm.config.load_config(environ)


def test_every_configuration_problem_in_one_error(adm: AdmissionCode) -> None:
    with pytest.raises(ValueError) as raised:
        adm.config.load_config({"INCOMING_PREFIX": "incoming/", "MAX_FILE_BYTES": "lots"})

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
def test_malformed_event_raises_before_any_s3_call(adm: AdmissionCode, event: Any, message: str) -> None:
    # No S3 fixture: a call would fail on credentials, not with this message.
    with pytest.raises(ValueError, match=re.escape(message)):
        adm.handler.handler(event, None)


def test_an_empty_batch_admits_nothing(adm: AdmissionCode, s3: Any) -> None:
    assert admit(adm) == {"admitted": [], "quarantined": []}


# --- logging -------------------------------------------------------------------------------------


def test_logs_one_json_line_per_file_decision(adm: AdmissionCode, s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(s3, "incoming/good.csv", GOOD)
    put(s3, "incoming/bad.csv", REORDERED)

    result = admit(adm, "incoming/good.csv", "incoming/bad.csv")

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["decision"] for line in logged] == ["admitted", "quarantined"]
    assert all(line["message"] == "admission decision" and line["run"] == RUN for line in logged)
    assert {k: logged[0][k] for k in result["admitted"][0]} == result["admitted"][0]
    assert {k: logged[1][k] for k in result["quarantined"][0]} == result["quarantined"][0]
    assert (logged[0]["size"], logged[0]["resumed"]) == (len(GOOD), False)


# --- packaging ----------------------------------------------------------------------------------


@pytest.mark.slow  # a subprocess
def test_imports_from_its_asset_directory_alone(tmp_path: Path) -> None:
    # Lambda loads handler.py from the asset directory, which it puts on sys.path (its siblings import
    # flat): nothing else from this repository is on its path.
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
    shipped = sorted(p.name for p in HANDLER_DIR.iterdir() if p.name != "__pycache__")
    assert shipped == ["checks.py", "config.py", "handler.py", "moves.py", "summary.py"]
