"""Small pure helpers: time codecs, ids, JSON."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from remem.errors import InvalidInputError


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form remem stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """A fresh random id (32 hex characters)."""
    return uuid.uuid4().hex


def to_naive_utc(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken as they are."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def to_db_time(value: datetime | None) -> str | None:
    """Fixed-width ISO text, so that text order is time order."""
    if value is None:
        return None
    moment = to_naive_utc(value)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}"  # %Y does not pad years < 1000


def from_db_time(value: str | None) -> datetime | None:
    """Inverse of ``to_db_time``."""
    return None if value is None else datetime.fromisoformat(value)


def parse_timestamp(value: Any, what: str = "timestamp") -> datetime | None:
    """Accept a datetime, a date, an ISO 8601 string or POSIX seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a datetime, an ISO 8601 string or seconds")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(f"{what} {value!r} is out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return to_naive_utc(datetime.fromisoformat(text))
        except ValueError as exc:
            raise InvalidInputError(
                f"{what} {value!r} is not ISO 8601; use e.g. '2023-05-08T13:56:00'"
            ) from exc
    raise InvalidInputError(
        f"{what} must be a datetime, an ISO 8601 string or POSIX seconds, "
        f"not {type(value).__name__}"
    )


def dumps(value: Any) -> str:
    """Compact, key-sorted, strict JSON (no NaN/Infinity), stable for hashing and diffs."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
