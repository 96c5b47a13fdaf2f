"""The JSONL export format's rows: their fields and the checks every importer applies.

Every field of every row is checked (types, ids, enums, ISO times, JSON sizes, numeric
ranges, the embedding's size) before anything is written, and times are rewritten in the
form the store keeps (naive UTC, fixed width), so an imported row reads back like a row
remem wrote itself. Errors name the file line and the field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

import numpy as np

from remem.errors import DataFormatError, InvalidInputError
from remem.models import MEMORY_KINDS, ROLES, EventAction
from remem.util import parse_timestamp, shown, to_db_time
from remem.validation import (
    MAX_ATTRIBUTES_BYTES,
    MAX_INT,
    check_count,
    check_flag,
    check_id,
    check_metadata,
    check_number,
    check_text,
)

MESSAGE_FIELDS = ("id", "user_id", "agent_id", "session_id", "role", "speaker", "content",
                  "occurred_at", "recorded_at", "metadata", "seq")  # fmt: skip
MEMORY_FIELDS = ("id", "user_id", "agent_id", "session_id", "kind", "text", "index_text",
                 "source_ids", "occurred_at", "created_at", "updated_at", "metadata",
                 "attributes", "importance", "strength", "access_count", "last_accessed_at",
                 "pinned", "expires_at", "valid_from", "valid_to", "expired_at",
                 "superseded_by", "position")  # fmt: skip
EVENT_FIELDS = ("memory_id", "action", "before", "after", "reason", "actor", "at")
FIELDS = {"message": MESSAGE_FIELDS, "memory": MEMORY_FIELDS, "event": EVENT_FIELDS}
JSON_FIELDS = frozenset({"metadata", "attributes", "source_ids", "before", "after"})
EVENT_ACTIONS: tuple[str, ...] = get_args(EventAction)
MAX_STRENGTH = 1e6

Check = Callable[[Any, str], Any]


def _scope_part(value: Any, name: str) -> str:
    """'' (or null) means unset; anything else is an id."""
    return "" if value is None or value == "" else check_id(value, name)


def _optional_id(value: Any, name: str) -> str | None:
    return None if value is None else check_id(value, name)


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise InvalidInputError(f"{name} is {shown(value)}; use one of {', '.join(choices)}")
        return value

    return check


def _time(value: Any, name: str) -> str:
    """A required ISO 8601 time, rewritten as the store keeps it."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{name} must be an ISO 8601 time string like '2023-05-08T13:56:00', not {shown(value)}"
        )
    return to_db_time(parse_timestamp(value, name)) or ""


def _optional_time(value: Any, name: str) -> str | None:
    return None if value is None else _time(value, name)


def _string(value: Any, name: str) -> str:
    """Any valid UTF-8 string without NUL, possibly empty (reasons, actors)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, not {shown(value)}")
    return check_text(value, name) if value.strip() else value


def _id_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise InvalidInputError(f"{name} must be a list of message ids, not {shown(value)}")
    return [check_id(item, f"{name}[{n}]") for n, item in enumerate(value)]


def _metadata(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a JSON object, not {shown(value)}")
    return check_metadata(value, name)


def _attributes(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a JSON object, not {shown(value)}")
    out = check_metadata(value, name, MAX_ATTRIBUTES_BYTES)
    for key in ("entities", "keyphrases", "times"):
        items = out.get(key)
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, dict) for i in items)
        ):
            raise InvalidInputError(f"{name}.{key} must be a list of JSON objects")
    if "turns" in out:  # a summary's turn count decides when it is refreshed
        check_count(out["turns"], f"{name}.turns")
    return out


def _snapshot(value: Any, name: str) -> dict[str, Any] | None:
    """An event's before/after: null or a JSON object (a memory as it was)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a JSON object or null, not {shown(value)}")
    return check_metadata(value, name, MAX_ATTRIBUTES_BYTES)


def _count(value: Any, name: str) -> int:
    return check_count(value, name, MAX_INT)


def _flag(value: Any, name: str) -> int:
    return int(check_flag(value, name))


def _unit(value: Any, name: str) -> float:
    return check_number(value, name, 0.0, 1.0)


def _strength(value: Any, name: str) -> float:
    return check_number(value, name, 0.0, MAX_STRENGTH)


def _text(value: Any, name: str) -> str:
    return check_text(value, name)


_IDS: dict[str, Check] = {"user_id": _scope_part, "agent_id": _scope_part,
                          "session_id": _scope_part}  # fmt: skip
CHECKS: dict[str, dict[str, Check]] = {
    "message": {
        "id": check_id, **_IDS, "role": _one_of(ROLES), "speaker": _optional_id,
        "content": _text, "occurred_at": _optional_time, "recorded_at": _time,
        "metadata": _metadata, "seq": _count,
    },
    "memory": {
        "id": check_id, **_IDS, "kind": _one_of(MEMORY_KINDS), "text": _text,
        "index_text": _text, "source_ids": _id_list, "occurred_at": _optional_time,
        "created_at": _time, "updated_at": _time, "metadata": _metadata,
        "attributes": _attributes, "importance": _unit, "strength": _strength,
        "access_count": _count, "last_accessed_at": _optional_time, "pinned": _flag,
        "expires_at": _optional_time, "valid_from": _optional_time, "valid_to": _optional_time,
        "expired_at": _optional_time, "superseded_by": _optional_id, "position": _count,
    },
    "event": {
        "memory_id": check_id, "action": _one_of(EVENT_ACTIONS), "before": _snapshot,
        "after": _snapshot, "reason": _string, "actor": _string, "at": _time,
    },
}  # fmt: skip


def check_row(row: Mapping[str, Any], where: str, dimensions: int) -> dict[str, Any]:
    """The row, every field checked and times normalised; ``DataFormatError`` naming
    ``where`` and the field unless it can be imported as is."""
    kind = row.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise DataFormatError(
            f"{where}: unknown row type {shown(kind)}; expected one of {', '.join(FIELDS)}"
        )
    missing = [f for f in FIELDS[kind] if f not in row]
    if missing:
        raise DataFormatError(f"{where} ({kind}): missing fields {missing}")
    allowed = {"type", *FIELDS[kind], *(("embedding",) if kind == "memory" else ())}
    unknown = sorted(str(k) for k in row if k not in allowed)
    if unknown:
        raise DataFormatError(
            f"{where} ({kind}): unknown fields {unknown}; a {kind} row has "
            f"{', '.join(FIELDS[kind])}"
        )
    out: dict[str, Any] = {"type": kind}
    for name, check in CHECKS[kind].items():
        try:
            out[name] = check(row[name], name)
        except InvalidInputError as exc:
            raise DataFormatError(f"{where} ({kind}): {exc}") from exc
    if kind == "memory":
        check_embedding(row.get("embedding"), where, dimensions)
        out["embedding"] = row.get("embedding")
    return out


def check_rows(
    numbered: Iterable[tuple[int, Mapping[str, Any]]], source: str, dimensions: int
) -> list[dict[str, Any]]:
    """Check every row (``check_row``) and that no id appears twice in the file."""
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, ...], int] = {}
    for number, row in numbered:
        where = f"{source} line {number}"
        clean = check_row(row, where, dimensions)
        key = _unique_key(clean)
        if key is not None:
            if key in seen:
                raise DataFormatError(
                    f"{where} ({clean['type']}): id {key[-1]!r} already appears on line "
                    f"{seen[key]}; each {clean['type']} may appear once"
                )
            seen[key] = number
        out.append(clean)
    return out


def _unique_key(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """What the store keeps unique: a memory's id; a message's id within its user/agent."""
    if row["type"] == "memory":
        return ("memory", row["id"])
    if row["type"] == "message":
        return ("message", row["user_id"], row["agent_id"], row["id"])
    return None


def check_embedding(value: Any, where: str, dimensions: int) -> None:
    """An embedding is null or base64 of exactly ``dimensions`` finite float32 values."""
    if value is None:
        return
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: embedding must be base64 text or null")
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DataFormatError(f"{where}: embedding is not valid base64") from exc
    if len(raw) != 4 * dimensions:
        raise DataFormatError(
            f"{where}: embedding has {len(raw) / 4:g} values, the embedder makes {dimensions}"
        )
    if not np.isfinite(np.frombuffer(raw, dtype="<f4")).all():
        raise DataFormatError(f"{where}: embedding holds NaN or infinite values")
