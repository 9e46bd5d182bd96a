"""The EventBridge schedule as an Airflow (5-field, croniter) cron expression.

EventBridge: `cron(minutes hours day-of-month month day-of-week year)`, days of the week 1-7 =
SUN-SAT, `?` in one of the day fields, `L`, `W` and `#`. Airflow: `minutes hours day-of-month month
day-of-week`, days of the week 0-6 = SUN-SAT, `L<day>` for the last such weekday of the month. The
expression is assumed valid for EventBridge (config validation checks it); what Airflow cannot
express fails with one line.
"""

from __future__ import annotations

import re

_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON = re.compile(r"cron\((.+)\)")


def _day_number(value: str) -> str:
    """An EventBridge day of the week (1-7 or SUN-SAT) as croniter's 0-6 (SUN = 0)."""
    if value.isdigit() and 1 <= int(value) <= 7:
        return str(int(value) - 1)
    return str(_DAYS.index(value.upper()))  # ValueError for anything else


def _day_of_week_term(term: str) -> str:
    if term.upper().endswith("L") and term != "L":  # 6L: the last Friday of the month
        return f"L{_day_number(term[:-1])}"
    if "#" in term:  # 6#2: the second Friday of the month
        day, nth = term.split("#", 1)
        return f"{_day_number(day)}#{nth}"
    range_part, slash, step = term.partition("/")
    days = "-".join(part if part == "*" else _day_number(part) for part in range_part.split("-"))
    return f"{days}{slash}{step}"


def airflow_cron(expression: str, *, name: str = "schedule") -> str:
    """`cron(0 2 ? * MON-FRI *)` -> `0 2 * * 1-5`; ValueError naming `name` for what Airflow lacks."""

    def fail(allowed: str) -> ValueError:
        return ValueError(f"{name} = {expression!r}: {allowed}")

    match = _CRON.fullmatch(expression.strip())
    fields = match.group(1).split() if match else []
    if len(fields) != 6:
        raise fail("must be an EventBridge expression cron(min hour day-of-month month day-of-week year)")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if year != "*":
        raise fail("the Airflow DAG's cron has no year field; use * for the year")
    if day_of_month.upper() == "LW":
        raise fail("Airflow's cron (croniter) has no LW (last weekday of the month)")
    day_of_month = "*" if day_of_month == "?" else day_of_month
    try:
        day_of_week = "*" if day_of_week == "?" else ",".join(_day_of_week_term(t) for t in day_of_week.split(","))
    except ValueError:
        raise fail(f"day-of-week {day_of_week!r}: days of the week are 1-7 or SUN-SAT") from None
    return " ".join((minutes, hours, day_of_month, month, day_of_week))
