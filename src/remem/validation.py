"""Checks and normalisation of what callers pass in, with errors that say what to do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from remem.errors import InvalidInputError, MessageTooLargeError
from remem.models import MEMORY_KINDS, ROLES, Message, Scope
from remem.util import dumps, new_id, parse_timestamp

MAX_ID_CHARS = 256


def check_text(value: Any, what: str, max_chars: int | None = None) -> str:
    """A non-empty, valid UTF-8 string within ``max_chars``."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} is empty; give some text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid UTF-8 text (position {exc.start}); decode your input "
            "as UTF-8 before passing it"
        ) from exc
    if max_chars is not None and len(value) > max_chars:
        raise MessageTooLargeError(
            f"{what} has {len(value):,} characters, over the limit of {max_chars:,}; split it, "
            "or raise MemoryConfig.max_message_chars (REMEM_MAX_MESSAGE_CHARS)"
        )
    return value


def check_id(value: Any, what: str) -> str:
    """A short non-empty string id."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, not {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{what} is longer than {MAX_ID_CHARS} characters")
    return check_text(value, what)


def check_scope(
    namespace: str, user_id: Any = None, agent_id: Any = None, session_id: Any = None
) -> Scope:
    """A ``Scope`` from caller values; each must be None or a non-empty string."""
    values: dict[str, str | None] = {}
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("session_id", session_id)):
        values[name] = None if value is None else check_id(value, name)
    return Scope(namespace=namespace, **values)


def check_metadata(value: Any, what: str = "metadata") -> dict[str, Any]:
    """A JSON-serialisable mapping with string keys."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(f"{what} must be a dict with string keys")
    try:
        dumps(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} holds text that is not valid UTF-8") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must be JSON-serialisable (no NaN or Infinity): {exc}"
        ) from exc
    return dict(value)


def check_kinds(kinds: Any) -> tuple[str, ...]:
    """Memory kinds to filter by (a string or a list of them)."""
    if kinds is None:
        return ()
    items = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in items:
        if kind not in MEMORY_KINDS:
            raise InvalidInputError(f"unknown memory kind {kind!r}; use one of {MEMORY_KINDS}")
    return items


def check_limit(limit: Any, what: str = "limit", maximum: int = 10_000) -> int:
    """A positive integer up to ``maximum``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInputError(f"{what} must be an integer from 1 to {maximum}, not {limit!r}")
    return limit


def normalize_messages(
    messages: Any,
    scope: Scope,
    timestamp: datetime | None,
    metadata: Mapping[str, Any],
    max_chars: int,
    now: datetime,
) -> list[Message]:
    """Turn ``add``'s input (a string or a list of message dicts) into ``Message`` records."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError(
            "messages must be a non-empty list of {'role', 'content'} dicts, or a string"
        )
    out = [
        _one_message(item, n, scope, timestamp, metadata, max_chars, now)
        for n, item in enumerate(messages)
    ]
    seen: set[str] = set()
    for message in out:
        if message.id in seen:
            raise InvalidInputError(f"message id {message.id!r} appears twice in one add")
        seen.add(message.id)
    return out


def _one_message(
    item: Any,
    n: int,
    scope: Scope,
    timestamp: datetime | None,
    metadata: Mapping[str, Any],
    max_chars: int,
    now: datetime,
) -> Message:
    where = f"messages[{n}]"
    if not isinstance(item, Mapping):
        raise InvalidInputError(f"{where} must be a dict with 'role' and 'content'")
    unknown = set(item) - {"role", "content", "name", "speaker", "timestamp", "id", "metadata"}
    if unknown:
        raise InvalidInputError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: role, content, name, "
            "speaker, timestamp, id, metadata"
        )
    role = item.get("role", "user")
    if role not in ROLES:
        raise InvalidInputError(f"{where}.role {role!r} is unknown; use one of {ROLES}")
    speaker = item.get("speaker", item.get("name"))
    return Message(
        id=check_id(item["id"], f"{where}.id") if item.get("id") is not None else new_id(),
        scope=scope,
        role=role,
        content=check_text(item.get("content"), f"{where}.content", max_chars),
        speaker=None if speaker is None else check_id(speaker, f"{where}.name"),
        occurred_at=parse_timestamp(item.get("timestamp"), f"{where}.timestamp") or timestamp,
        recorded_at=now,
        metadata={**metadata, **check_metadata(item.get("metadata"), f"{where}.metadata")},
    )
