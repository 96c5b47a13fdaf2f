"""The JSONL export format's rows: their fields and the checks every importer applies."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from remem.errors import DataFormatError

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

_TEXT = {
    "message": ("id", "user_id", "agent_id", "session_id", "role", "content", "recorded_at"),
    "memory": ("id", "user_id", "agent_id", "session_id", "kind", "text", "index_text",
               "created_at", "updated_at"),
    "event": ("memory_id", "action", "reason", "actor", "at"),
}  # fmt: skip
_NUMBERS = {"memory": ("importance", "strength", "access_count", "position"), "message": ("seq",)}


def check_row(row: Mapping[str, Any], where: str, dimensions: int) -> None:
    """Raise ``DataFormatError`` (naming ``where``) unless the row can be imported as is."""
    kind = row.get("type")
    if kind not in FIELDS:
        raise DataFormatError(f"{where}: unknown row type {kind!r}; expected {sorted(FIELDS)}")
    missing = [f for f in FIELDS[kind] if f not in row]
    if missing:
        raise DataFormatError(f"{where} ({kind}): missing fields {missing}")
    for name in _TEXT[kind]:
        if not isinstance(row[name], str):
            raise DataFormatError(f"{where} ({kind}): {name} must be a string, not {row[name]!r}")
    for name in _NUMBERS.get(kind, ()):
        if isinstance(row[name], bool) or not isinstance(row[name], int | float):
            raise DataFormatError(f"{where} ({kind}): {name} must be a number")
    if kind == "memory":
        check_embedding(row.get("embedding"), where, dimensions)


def check_embedding(value: Any, where: str, dimensions: int) -> None:
    """An embedding is null or base64 of exactly ``dimensions`` float32 values."""
    if value is None:
        return
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DataFormatError(f"{where}: embedding is not valid base64") from exc
    if len(raw) != 4 * dimensions:
        raise DataFormatError(
            f"{where}: embedding has {len(raw) // 4} values, the embedder makes {dimensions}"
        )
