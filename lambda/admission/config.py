"""The admission functions' configuration, from environment variables read on each call.

LANDING_BUCKET (one bucket holds incoming, landing and quarantine), INCOMING_PREFIX,
LANDING_PREFIX, QUARANTINE_PREFIX, MAX_FILE_BYTES, CONTRACT_COLUMNS (comma-separated; the stack
passes glue/contract.py COLUMNS). A missing or invalid variable is a wiring bug: one ValueError
names every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# S3 bucket names: what CDK generates and what a console user can create (no s3:// URI, no ARN).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, kw_only=True)
class Config:
    bucket: str
    incoming_prefix: str
    landing_prefix: str
    quarantine_prefix: str
    max_file_bytes: int
    columns: tuple[str, ...]


def load_config(environ: Mapping[str, str]) -> Config:
    """Read the configuration; raise one ValueError naming every missing or invalid variable."""
    problems: list[str] = []

    def get(name: str, check: Any, expected: str) -> str:
        value = environ.get(name)
        if value is None:
            problems.append(f"{name} is not set; expected {expected}")
            return ""
        if not check(value):
            problems.append(f"{name} is {value!r}; expected {expected}")
        return value

    bucket = get("LANDING_BUCKET", BUCKET_NAME.fullmatch, "an S3 bucket name (not an s3:// URI or an ARN)")
    prefix_expected = "a key prefix ending in '/', not starting with '/', e.g. 'incoming/'"
    prefixes = {
        name: get(name, lambda v: v.endswith("/") and not v.startswith("/") and v != "/", prefix_expected)
        for name in ("INCOMING_PREFIX", "LANDING_PREFIX", "QUARANTINE_PREFIX")
    }
    max_bytes = get("MAX_FILE_BYTES", lambda v: v.isascii() and v.isdigit() and int(v) > 0, "a positive integer")
    columns = get("CONTRACT_COLUMNS", _valid_columns, "comma-separated, distinct, non-empty column names")
    ordered = sorted(prefixes.items(), key=lambda item: item[1])
    for (name_a, a), (name_b, b) in zip(ordered, ordered[1:], strict=False):
        if a and b and b.startswith(a):
            # Landed or quarantined files would be listed again as incoming ones, or the reverse.
            problems.append(f"{name_b} {b!r} is inside {name_a} {a!r}; the three prefixes must not overlap")
    if problems:
        raise ValueError("admission configuration: " + "; ".join(problems))
    return Config(
        bucket=bucket,
        incoming_prefix=prefixes["INCOMING_PREFIX"],
        landing_prefix=prefixes["LANDING_PREFIX"],
        quarantine_prefix=prefixes["QUARANTINE_PREFIX"],
        max_file_bytes=int(max_bytes),
        columns=tuple(columns.split(",")),
    )


def _valid_columns(value: str) -> bool:
    names = value.split(",")
    return all(name and name == name.strip() for name in names) and len(set(names)) == len(names)


def preview(value: Any, limit: int = 200) -> str:
    """A value as an error message or a reason shows it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
