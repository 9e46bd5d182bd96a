"""The DAG runs on the config's EventBridge schedule: `cron(...)` translated to Airflow's 5-field cron.

The stack sets `pipeline.schedule` (stacks/airflow_cron.py); the DAG reads it when parsed. Each
translation is checked against what EventBridge means (days of the week 1-7 = SUN-SAT there, 0-6
here) by the fire times Airflow's own timetable computes for November-December 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stacks.config.cron import airflow_cron
from stacks.config.stages import STAGE_BUILDERS
from tests.conftest import stage_config

# EventBridge expression, Airflow cron, the first two fire times after 2026-11-01 00:00 UTC
# (2026-11-01 is a Sunday).
TRANSLATIONS = [
    ("cron(0 2 * * ? *)", "0 2 * * *", ["2026-11-01 02:00", "2026-11-02 02:00"]),
    ("cron(30 4 ? * MON-FRI *)", "30 4 * * 1-5", ["2026-11-02 04:30", "2026-11-03 04:30"]),
    ("cron(30 4 ? * 2-6 *)", "30 4 * * 1-5", ["2026-11-02 04:30", "2026-11-03 04:30"]),
    ("cron(0 6 ? * 1,7 *)", "0 6 * * 0,6", ["2026-11-01 06:00", "2026-11-07 06:00"]),
    ("cron(0 6 ? * SUN,SAT *)", "0 6 * * 0,6", ["2026-11-01 06:00", "2026-11-07 06:00"]),
    ("cron(0 2 ? * 6L *)", "0 2 * * L5", ["2026-11-27 02:00", "2026-12-25 02:00"]),  # last Friday
    ("cron(0 2 ? * FRIL *)", "0 2 * * L5", ["2026-11-27 02:00", "2026-12-25 02:00"]),
    ("cron(0 2 ? * 6#2 *)", "0 2 * * 5#2", ["2026-11-13 02:00", "2026-12-11 02:00"]),  # second Friday
    ("cron(0 2 ? * 2/2 *)", "0 2 * * 1/2", ["2026-11-02 02:00", "2026-11-04 02:00"]),  # MON, WED, FRI
    ("cron(0 2 L * ? *)", "0 2 L * *", ["2026-11-30 02:00", "2026-12-31 02:00"]),
    ("cron(0 2 15W * ? *)", "0 2 15W * *", ["2026-11-16 02:00", "2026-12-15 02:00"]),  # 15 Nov: a Sunday
    ("cron(0/20 9-10 * NOV ? *)", "0/20 9-10 * NOV *", ["2026-11-01 09:00", "2026-11-01 09:20"]),
]


@pytest.mark.parametrize(("eventbridge", "airflow", "fires"), TRANSLATIONS)
def test_eventbridge_cron_becomes_the_airflow_cron_that_fires_at_the_same_times(
    airflow_home: Path, eventbridge: str, airflow: str, fires: list[str]
) -> None:
    from airflow.timetables.trigger import CronTriggerTimetable
    from croniter import croniter  # what Airflow's cron timetables compute with

    assert airflow_cron(eventbridge) == airflow
    CronTriggerTimetable(airflow, timezone="UTC").validate()  # what a DAG's schedule string becomes
    times = croniter(airflow, datetime(2026, 11, 1, tzinfo=UTC))
    assert [times.get_next(datetime).strftime("%Y-%m-%d %H:%M") for _ in fires] == fires


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 2 * * ? 2027)", "the Airflow DAG's cron has no year field; use * for the year"),
        ("cron(0 2 LW * ? *)", "Airflow's cron (croniter) has no LW (last weekday of the month)"),
        ("cron(0 2 ? * 8 *)", "day-of-week '8': days of the week are 1-7 or SUN-SAT"),
        ("rate(1 day)", "must be an EventBridge expression cron(min hour day-of-month month day-of-week year)"),
    ],
)
def test_what_airflow_cannot_express_fails_with_one_line(expression: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        airflow_cron(expression, name="MwaaEnvironment schedule")
    assert str(raised.value) == f"MwaaEnvironment schedule = {expression!r}: {reason}"


@pytest.mark.parametrize("stage", sorted(STAGE_BUILDERS))
def test_every_stage_schedule_translates(stage: str) -> None:
    """Every shipped config synthesizes an Orchestration stack, so each schedule must translate."""
    assert len(airflow_cron(stage_config(stage).schedule).split()) == 5
