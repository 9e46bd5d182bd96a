"""What the demo prints of the Lambdas' log lines: the first ones, then where the rest are."""

from __future__ import annotations

import logging

import pytest

from localrun.console import LAMBDA_LINES_SHOWN, configure_logging


def test_the_demo_shows_the_first_lambda_lines_then_says_once_where_the_rest_are(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_log = logging.getLogger("localrun.lambda")
    monkeypatch.setattr(lambda_log, "handlers", [])  # the demo's console handler, for this test only
    monkeypatch.setattr(lambda_log, "level", lambda_log.level)
    configure_logging("demo")
    for number in range(LAMBDA_LINES_SHOWN + 5):
        logging.getLogger("localrun.lambda.Admission").info("decision %d", number)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:LAMBDA_LINES_SHOWN] == [f"             λ decision {n}" for n in range(LAMBDA_LINES_SHOWN)]
    assert lines[LAMBDA_LINES_SHOWN:] == [
        "             λ … more Lambda log lines: every one is in the log file named below"
    ]
