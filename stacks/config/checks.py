"""The checks every config rule is made of: each fails with one line naming the field, the value
and what is allowed (ConfigError)."""

from __future__ import annotations

import re
from typing import NoReturn

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# One or more key segments, each ending in '/'. No '*' or '?': the job reads the prefix as a Hadoop
# glob and IAM as a wildcard, while the EventBridge rule matches it literally.
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.'()\-]+")


class ConfigError(ValueError):
    """Invalid configuration: the message names the field, the value and what is allowed."""


def fail(path: str, value: object, allowed: str) -> NoReturn:
    raise ConfigError(f"config {path} = {value!r}: {allowed}")


def positive_int(path: str, value: object, *, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        fail(path, value, "must be an integer > 0")
    if maximum is not None and value > maximum:
        fail(path, value, f"must be an integer between 1 and {maximum}")


def boolean(path: str, value: object) -> None:
    if not isinstance(value, bool):
        fail(path, value, "must be True or False")


def one_of(path: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        fail(path, value, f"must be one of {', '.join(allowed)}")


def validate_prefix(path: str, prefix: object) -> None:
    allowed = "must be an S3 key prefix ending in '/' (e.g. 'landing/' or 'landing/orders/')"
    if not isinstance(prefix, str) or not prefix.endswith("/") or len(prefix) > 256:
        fail(path, prefix, f"{allowed}, at most 256 characters")
    for segment in prefix[:-1].split("/"):
        if segment in ("", ".", ".."):
            fail(path, prefix, f"{allowed}; no empty, '.' or '..' segment (S3 and Hadoop would disagree on the key)")
        if not _PREFIX_SEGMENT.fullmatch(segment):
            fail(path, prefix, f"{allowed}; segments of letters, digits and !_.'()- only (no '*', '?' or spaces)")


def validate_emails(path: str, emails: object) -> None:
    if not isinstance(emails, tuple):
        fail(path, emails, "must be a tuple of e-mail addresses, e.g. ('ops@example.com',)")
    seen: set[str] = set()
    for email in emails:
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            fail(path, email, "each must be an e-mail address")
        if email.lower() in seen:
            fail(path, email, "each address once (it is listed twice)")
        seen.add(email.lower())
