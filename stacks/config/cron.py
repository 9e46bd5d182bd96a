"""EventBridge cron expressions: parsed once, validated field by field, and written as Airflow's cron.

EventBridge: `cron(minutes hours day-of-month month day-of-week year)`, days of the week 1-7 =
SUN-SAT, `?` in one of the day fields, `L`, `W` and `#`. Airflow (croniter): `minutes hours
day-of-month month day-of-week`, days of the week 0-6 = SUN-SAT, `L<day>` for the last such weekday
of the month. The config validates a stage's schedule (`validate_cron`, ConfigError); the MWAA
environment sets it as the DAG's schedule (`airflow_cron`: what Airflow cannot express fails with
one line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stacks.config.checks import fail

CRON_FORMAT = "must be an EventBridge expression cron(min hour day-of-month month day-of-week year)"
_CRON = re.compile(r"cron\((.+)\)")
# EventBridge cron: minutes hours day-of-month month day-of-week year, and exactly one of
# day-of-month / day-of-week is '?'. Each field: *, a value, a range, a list or an increment;
# day-of-month also L, LW or <day>W, day-of-week also <day>L or <day>#<1-5>, each on its own.
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29 in a leap year


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[0] stands for `low`

    def value(self, text: str) -> int | None:
        upper = text.upper()
        if upper in self.names:
            return self.low + self.names.index(upper)
        if text.isdigit() and self.low <= int(text) <= self.high:
            return int(text)
        return None


_DAY_OF_WEEK = _CronField("day-of-week", 1, 7, _WEEKDAYS)
_CRON_FIELDS = (
    _CronField("minutes", 0, 59),
    _CronField("hours", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField("month", 1, 12, _MONTHS),
    _DAY_OF_WEEK,
    _CronField("year", 1970, 2199),
)
_CRON_TERM = re.compile(r"(\*|[0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?(?:/(\d+))?")


def _cron_values(spec: _CronField, text: str) -> set[int] | str:
    """The values a cron field stands for, or why it is not valid."""
    if spec.name == "day-of-month" and text.upper() in ("L", "LW"):
        return {28, 29, 30, 31}  # the last day of the month: one of these
    special = {"day-of-month": r"(\w+)W", "day-of-week": r"(\w+)(?:L|#[1-5])"}.get(spec.name)
    if special and (match := re.fullmatch(special, text, flags=re.IGNORECASE)):
        day = spec.value(match.group(1))
        return {day} if day is not None else f"{match.group(1)!r} is not a {spec.name}"
    values: set[int] = set()
    for term in text.split(","):
        match = _CRON_TERM.fullmatch(term)
        if not match:
            return "expected *, a value, a range a-b, a list a,b or an increment a/n"
        first, last, step = match.groups()
        start = spec.low if first == "*" else spec.value(first)
        end = spec.high if first == "*" or (last is None and step) else spec.value(last or first)
        if start is None or end is None or (first == "*" and last is not None):
            return f"values are {spec.low}-{spec.high}" + (
                f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
            )
        if start > end:
            return f"the range {term!r} runs backwards"
        if step is not None and not 1 <= int(step) <= spec.high - spec.low:
            return f"the increment in {term!r} must be between 1 and {spec.high - spec.low}"
        values.update(range(start, end + 1, int(step or 1)))
    return values


def cron_fields(expression: object) -> list[str] | None:
    """The fields of an EventBridge `cron(...)` expression (six when valid), or None if it is not one."""
    match = _CRON.fullmatch(expression) if isinstance(expression, str) else None
    return match.group(1).split() if match else None


def validate_cron(path: str, expression: str) -> None:
    """Check an EventBridge `cron(...)` expression field by field, and that its dates exist."""
    allowed = CRON_FORMAT
    fields = cron_fields(expression)
    if fields is None:
        fail(path, expression, allowed)
    if len(fields) != 6:
        fail(path, expression, f"{allowed}, six fields (got {len(fields)})")
    values: dict[str, set[int]] = {}
    for spec, text in zip(_CRON_FIELDS, fields, strict=True):
        if text == "?" and spec.name in ("day-of-month", "day-of-week"):
            continue
        parsed = _cron_values(spec, text)
        if isinstance(parsed, str):
            fail(path, expression, f"{allowed}; field {spec.name} {text!r} is not valid: {parsed}")
        values[spec.name] = parsed
    day_of_month, month, year = fields[2], fields[3], fields[5]
    if (day_of_month == "?") == (fields[4] == "?"):
        fail(path, expression, f"{allowed}; exactly one of day-of-month and day-of-week must be '?'")
    if day_of_month != "?":
        leap = any(y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) for y in values["year"])
        longest = {m: _MONTH_DAYS[m - 1] - (m == 2 and not leap) for m in values["month"]}
        if not any(day <= longest[m] for day in values["day-of-month"] for m in longest):
            fail(
                path,
                expression,
                f"{allowed}; day-of-month {day_of_month!r} never occurs in month {month!r}"
                + ("" if year == "*" else f" of year {year!r}"),
            )


def _day_number(value: str) -> str:
    """An EventBridge day of the week (1-7 or SUN-SAT) as croniter's 0-6 (SUN = 0)."""
    day = _DAY_OF_WEEK.value(value)
    if day is None:
        raise ValueError(value)
    return str(day - 1)


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
    """`cron(0 2 ? * MON-FRI *)` -> `0 2 * * 1-5`; ValueError naming `name` for what Airflow lacks.

    The expression is assumed valid for EventBridge (the config validates it).
    """

    def failure(allowed: str) -> ValueError:
        return ValueError(f"{name} = {expression!r}: {allowed}")

    fields = cron_fields(expression.strip()) or []
    if len(fields) != 6:
        raise failure(CRON_FORMAT)
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if year != "*":
        raise failure("the Airflow DAG's cron has no year field; use * for the year")
    if day_of_month.upper() == "LW":
        raise failure("Airflow's cron (croniter) has no LW (last weekday of the month)")
    day_of_month = "*" if day_of_month == "?" else day_of_month
    try:
        day_of_week = "*" if day_of_week == "?" else ",".join(_day_of_week_term(t) for t in day_of_week.split(","))
    except ValueError:
        raise failure(f"day-of-week {day_of_week!r}: days of the week are 1-7 or SUN-SAT") from None
    return " ".join((minutes, hours, day_of_month, month, day_of_week))
