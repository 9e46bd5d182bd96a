"""What the demo prints of the Lambdas' log lines: the first ones, then where the rest are."""

from __future__ import annotations

import logging

import pytest

from localrun.console import FirstLines


def test_the_console_shows_the_first_lines_then_says_once_where_the_rest_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = FirstLines(3)
    kept = [first.filter(logging.makeLogRecord({"msg": n})) for n in range(6)]
    assert kept == [True, True, True, False, False, False]
    said = "             λ … more Lambda log lines: every one is in the log file named below\n"
    assert capsys.readouterr().out == said
