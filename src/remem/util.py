"""Small pure helpers: time codecs, ids, JSON."""

from __future__ import annotations

import json
import math
import reprlib
import uuid
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from remem.errors import InvalidInputError

T = TypeVar("T")
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


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


TIMESTAMP_HINT = (
    "use an ISO 8601 time like '2023-05-08T13:56:00' or '2023-05-08T13:56:00+02:00' "
    "(years 0001 to 9999 in UTC), a datetime, a date or POSIX seconds"
)


def parse_timestamp(value: Any, what: str = "timestamp") -> datetime | None:
    """Accept a datetime, a date, an ISO 8601 string or POSIX seconds; None stays None.

    Aware times are converted to naive UTC; anything that cannot be (a time outside years
    1 to 9999 once in UTC, NaN, an overflowing number) raises ``InvalidInputError``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value, value, what)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_seconds(value, what)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInputError(
                f"{what} {shown(value)} is not an ISO 8601 time; {TIMESTAMP_HINT}"
            ) from exc
        return _utc(moment, value, what)
    raise InvalidInputError(f"{what} cannot be a {type(value).__name__}; {TIMESTAMP_HINT}")


def _utc(moment: datetime, value: Any, what: str) -> datetime:
    try:
        return to_naive_utc(moment)
    except (OverflowError, ValueError, TypeError) as exc:  # year 1 at +05:00 is year 0 in UTC
        raise InvalidInputError(
            f"{what} {shown(value)} falls outside years 0001 to 9999 once converted to UTC; "
            f"{TIMESTAMP_HINT}"
        ) from exc


def _from_seconds(value: float, what: str) -> datetime:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{what} is {value!r}, not a number of seconds; {TIMESTAMP_HINT}")
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} {shown(value)} is out of range as POSIX seconds (years 0001 to 9999 "
            f"are about -62e9 to 253e9); {TIMESTAMP_HINT}"
        ) from exc


def shown(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters, for error messages (never an exception,
    never a megabyte echoed back)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # e.g. an int of more than 4300 digits, or a broken __repr__
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def dumps(value: Any) -> str:
    """Compact, key-sorted, strict JSON (no NaN/Infinity), stable for hashing and diffs."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def replaced(obj: T, **changes: Any) -> T:
    """A copy of a (frozen) dataclass instance with ``changes``: ``dataclasses.replace``
    without its per-field machinery, which took 8 µs an object on a search's hot path.
    Only for dataclasses without ``__post_init__`` or init-only fields."""
    fresh: T = object.__new__(type(obj))
    fresh.__dict__.update(obj.__dict__, **changes)
    return fresh
