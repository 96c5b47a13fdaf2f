"""Checks and normalisation of what callers pass in, with errors that say what to do.

Limits on what is stored, stated in the error messages (and in the README):

- ids (user, agent, session, message, memory ids, namespaces, speaker names): 1 to
  ``MAX_ID_CHARS`` characters of valid UTF-8, no control characters (NUL, tab, newline);
- text (message content, memory text, queries): non-empty valid UTF-8 without NUL;
- metadata: a dict with string keys holding JSON values (no NaN or Infinity), at most
  ``MAX_METADATA_BYTES`` of UTF-8 JSON and ``MAX_METADATA_DEPTH`` levels of nesting;
- a memory's ``attributes`` and the snapshots in its history (import only): the same
  rules with ``MAX_ATTRIBUTES_BYTES``;
- whole numbers fit SQLite's 64-bit integers (``MAX_INT``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from remem.errors import InvalidInputError, MessageTooLargeError
from remem.models import MEMORY_KINDS, ROLES, Message, Scope
from remem.util import dumps, new_id, parse_timestamp, shown

MAX_ID_CHARS = 256
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 20
MAX_ATTRIBUTES_BYTES = 1024 * 1024
MAX_INT = 2**63 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MESSAGE_KEYS = ("role", "content", "name", "speaker", "timestamp", "id", "metadata")


def check_text(value: Any, what: str, max_chars: int | None = None) -> str:
    """A non-empty, valid UTF-8 string without NUL, within ``max_chars``."""
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
    if "\x00" in value:
        raise InvalidInputError(
            f"{what} contains a NUL character (position {value.index(chr(0))}); remove it"
        )
    if max_chars is not None and len(value) > max_chars:
        raise MessageTooLargeError(
            f"{what} has {len(value):,} characters, over the limit of {max_chars:,}; split it, "
            "or raise MemoryConfig.max_message_chars (REMEM_MAX_MESSAGE_CHARS)"
        )
    return value


def check_id(value: Any, what: str) -> str:
    """A non-empty string id of at most ``MAX_ID_CHARS`` characters, without control
    characters (NUL, tab, newline: an id is one line of text)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, not {shown(value)}")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(
            f"{what} has {len(value):,} characters; ids are at most {MAX_ID_CHARS}"
        )
    check_text(value, what)
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidInputError(
            f"{what} contains the control character {bad.group()!r} at position "
            f"{bad.start()}; ids are one line of printable text"
        )
    return value


def check_scope(
    namespace: str, user_id: Any = None, agent_id: Any = None, session_id: Any = None
) -> Scope:
    """A ``Scope`` from caller values; each must be None or a non-empty string."""
    values: dict[str, str | None] = {}
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("session_id", session_id)):
        values[name] = None if value is None else check_id(value, name)
    return Scope(namespace=namespace, **values)


def check_metadata(
    value: Any,
    what: str = "metadata",
    max_bytes: int = MAX_METADATA_BYTES,
    max_depth: int = MAX_METADATA_DEPTH,
) -> dict[str, Any]:
    """A dict with string keys of JSON values, within ``max_bytes`` of JSON and
    ``max_depth`` levels of nesting; None is an empty dict."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{what} must be a dict with string keys, not {type(value).__name__}"
        )
    check_json_tree(value, what, max_depth)
    try:
        size = len(dumps(value).encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} holds text that is not valid UTF-8; decode it as UTF-8 first"
        ) from exc
    except (TypeError, ValueError) as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidInputError(f"{what} must be JSON-serialisable: {exc}") from exc
    if size > max_bytes:
        raise InvalidInputError(
            f"{what} is {size:,} bytes as JSON, over the limit of {max_bytes:,} "
            f"({max_bytes // 1024} KiB); store large data elsewhere and keep a reference"
        )
    return dict(value)


def check_metadata_filter(value: Any) -> dict[str, Any]:
    """A metadata filter: metadata whose keys are names (letters, digits and '_'), as
    every backend can address them."""
    wanted = check_metadata(value, "metadata filter")
    for key in wanted:
        if not _FILTER_KEY.match(key):
            raise InvalidInputError(
                f"metadata filter key {key!r} is not allowed: use letters, digits and '_'"
            )
    return wanted


def check_json_tree(value: Any, what: str, max_depth: int = MAX_METADATA_DEPTH) -> None:
    """Raise unless ``value`` is JSON data: dicts with string keys, lists, strings, finite
    numbers, booleans and None, nested at most ``max_depth`` levels. Iterative, so a
    deeply nested value cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > max_depth:
                raise InvalidInputError(
                    f"{what} is nested more than {max_depth} levels deep (dicts and lists); "
                    "flatten it"
                )
            if isinstance(item, Mapping):
                for key in item:
                    if not isinstance(key, str):
                        raise InvalidInputError(
                            f"{what} must be a dict with string keys, not the key {shown(key)} "
                            f"({type(key).__name__}): JSON object keys are strings"
                        )
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInputError(f"{what} holds {item!r}; JSON has no NaN or Infinity")
        elif item is not None and not isinstance(item, str | int | float):
            raise InvalidInputError(
                f"{what} holds a {type(item).__name__}, which JSON cannot store; use "
                "strings, numbers, booleans, None, lists and dicts"
            )


def check_kinds(kinds: Any) -> tuple[str, ...]:
    """Memory kinds to filter by (a kind name, or a list, tuple or set of them)."""
    if kinds is None:
        return ()
    if isinstance(kinds, str):
        items: tuple[Any, ...] = (kinds,)
    elif isinstance(kinds, list | tuple | set | frozenset):
        items = tuple(kinds)
    else:
        raise InvalidInputError(
            f"kinds must be a kind name or a list of them ({', '.join(MEMORY_KINDS)}), "
            f"not {type(kinds).__name__}"
        )
    for kind in items:
        if not isinstance(kind, str) or kind not in MEMORY_KINDS:
            raise InvalidInputError(
                f"unknown memory kind {shown(kind)}; use one of {', '.join(MEMORY_KINDS)}"
            )
    return tuple(dict.fromkeys(items))  # a repeated kind would only lengthen the query


def check_limit(limit: Any, what: str = "limit", maximum: int = 10_000) -> int:
    """A positive integer up to ``maximum``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInputError(
            f"{what} must be an integer from 1 to {maximum}, not {shown(limit)}"
        )
    return limit


def check_count(value: Any, what: str, maximum: int = MAX_INT) -> int:
    """A whole number from 0 to ``maximum`` (offsets, counters, positions)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidInputError(
            f"{what} must be an integer from 0 to {maximum:,}, not {shown(value)}"
        )
    return value


def check_number(value: Any, what: str, minimum: float = 0.0, maximum: float = 1.0) -> float:
    """A finite number from ``minimum`` to ``maximum`` (importance, strength)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        raise InvalidInputError(
            f"{what} must be a number from {minimum:g} to {maximum:g}, not {shown(value)}"
        )
    return float(value)


def check_flag(value: Any, what: str) -> bool:
    """True or False (0 and 1 are accepted too: SQLite stores flags as integers)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidInputError(f"{what} must be True or False, not {shown(value)}")


def check_path(value: Any, what: str = "path") -> Path:
    """A file path (a string or ``os.PathLike``) that the OS can represent."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidInputError(
            f"{what} must be a file path (str or pathlib.Path), not {type(value).__name__}"
        )
    text = os.fspath(value)
    try:
        usable = isinstance(text, str) and bool(text) and b"\x00" not in os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate that did not come from undecodable bytes
        usable = False
    if not usable:
        raise InvalidInputError(
            f"{what} {shown(text)} is not a usable file name (empty, NUL, or not encodable)"
        )
    return Path(text)


def normalize_messages(
    messages: Any,
    scope: Scope,
    timestamp: datetime | None,
    metadata: Mapping[str, Any],
    max_chars: int,
    now: datetime,
) -> list[Message]:
    """Turn ``add``'s input (a string or a list of message dicts) into ``Message`` records."""
    if isinstance(messages, bytes | bytearray | memoryview):
        raise InvalidInputError(
            "messages must be a string or a list of dicts, not bytes; decode it as UTF-8 first"
        )
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
        raise InvalidInputError(
            f"{where} must be a dict with 'role' and 'content', not {type(item).__name__}"
        )
    unknown = set(item) - set(_MESSAGE_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{where} has unknown keys {sorted(str(k) for k in unknown)}; allowed: "
            f"{', '.join(_MESSAGE_KEYS)}"
        )
    role = item.get("role", "user")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInputError(
            f"{where}.role {shown(role)} is unknown; use one of {', '.join(ROLES)}"
        )
    speaker = item.get("speaker", item.get("name"))
    own = check_metadata(item.get("metadata"), f"{where}.metadata")
    return Message(
        id=check_id(item["id"], f"{where}.id") if item.get("id") is not None else new_id(),
        scope=scope,
        role=role,
        content=check_text(item.get("content"), f"{where}.content", max_chars),
        speaker=None if speaker is None else check_id(speaker, f"{where}.name"),
        occurred_at=parse_timestamp(item.get("timestamp"), f"{where}.timestamp") or timestamp,
        recorded_at=now,
        metadata=check_metadata({**metadata, **own}, f"{where}.metadata (with add's metadata)")
        if own
        else dict(metadata),
    )
