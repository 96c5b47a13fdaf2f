"""What every SQL store shares: the tables' column lists, scope helpers, message numbering
and conflict rules, the checks a dump row passes before it is loaded, and the errors a
store raises (each backend words them the same way)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.errors import (
    ConfigError,
    ConflictError,
    DataFormatError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from remem.export_format import FIELDS
from remem.index.rules import Linked
from remem.models import MemoryRecord, Message, Scope
from remem.stores.base import MemoryFilter, NewMemory, Reinforce
from remem.util import to_db_time

MEMORY_COLUMNS = (
    "id, namespace, user_id, agent_id, session_id, kind, text, source_ids, occurred_at, "
    "created_at, updated_at, metadata, attributes, importance, strength, access_count, "
    "last_accessed_at, pinned, expires_at, valid_from, valid_to, expired_at, superseded_by"
)
MESSAGE_COLUMNS = (
    "id, namespace, user_id, agent_id, session_id, role, speaker, content, occurred_at, "
    "recorded_at, metadata"
)
DUMP_TABLES = {"message": "messages", "memory": "memories", "event": "memory_events"}
SessionKey = tuple[str, str, str, str]  # (namespace, user_id, agent_id, session_id)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def owner(scope: Scope) -> tuple[str, str, str]:
    """The (namespace, user, agent) that entity rows and term counts belong to."""
    return (scope.namespace, scope.user_id or "", scope.agent_id or "")


def session_of(scope: Scope) -> SessionKey:
    """The exact session a message is numbered in ('' for unset fields)."""
    return (scope.namespace, scope.user_id or "", scope.agent_id or "", scope.session_id or "")


def exact(scope: Scope, **more: Any) -> MemoryFilter:
    """A filter for exactly this scope ('' matches an unset field)."""
    return MemoryFilter(scope.namespace, scope.user_id or "", scope.agent_id or "",
                        scope.session_id or "", **more)  # fmt: skip


def unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The vector scaled to length 1, so a dot product is the cosine."""
    data = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(data))
    out: npt.NDArray[np.float32] = data / norm if norm > 0 else data
    return out


_RECORD_FIELDS = tuple(f.name for f in fields(MemoryRecord))
_SCOPE_FIELDS = tuple(f.name for f in fields(Scope))


def record_snapshot(record: MemoryRecord) -> dict[str, Any]:
    """A JSON-ready dict of a memory for the audit log and exports (what
    ``dataclasses.asdict`` gives, without its deep copies: this runs once per write)."""
    data: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        value = getattr(record, name)
        data[name] = to_db_time(value) if isinstance(value, datetime) else value
    data["scope"] = {name: getattr(record.scope, name) for name in _SCOPE_FIELDS}
    data["source_ids"] = list(record.source_ids)
    data["metadata"], data["attributes"] = dict(record.metadata), dict(record.attributes)
    return data


def check_filter_key(key: str) -> str:
    """A metadata filter key, which stores splice into a JSON path: letters, digits, '_'."""
    if not _KEY.match(key):
        raise InvalidInputError(
            f"metadata filter key {key!r} is not allowed: use letters, digits and '_'"
        )
    return key


# -- writes --------------------------------------------------------------------------------


def number_messages(
    messages: Sequence[Message], skipped: set[str], last_seq: Callable[[SessionKey], int]
) -> tuple[dict[str, int], list[tuple[Message, int]]]:
    """Number new messages 1, 2, ... within their session after the session's last number
    (``last_seq``, asked once per session); returns id -> number and the messages to
    insert with theirs. ``skipped`` messages are already stored."""
    positions: dict[str, int] = {}
    last: dict[SessionKey, int] = {}
    numbered: list[tuple[Message, int]] = []
    for message in messages:
        if message.id in skipped:
            continue
        key = session_of(message.scope)
        if key not in last:
            last[key] = last_seq(key)
        last[key] += 1
        positions[message.id] = last[key]
        numbered.append((message, last[key]))
    return positions, numbered


def by_owner(messages: Iterable[Message]) -> dict[tuple[str, str, str], list[Message]]:
    """Messages grouped by the (namespace, user, agent) their ids are unique in."""
    groups: dict[tuple[str, str, str], list[Message]] = {}
    for message in messages:
        groups.setdefault(owner(message.scope), []).append(message)
    return groups


def check_same_message(message: Message, role: str, content: str) -> None:
    """An id already stored is skipped if its content is the same; else it conflicts."""
    if content != message.content or role != message.role:
        raise message_conflict(message.id)


def message_conflict(message_id: str) -> ConflictError:
    """The error for a client message id reused with different content."""
    return ConflictError(
        f"message id {message_id!r} already exists in this scope with different content; "
        "give the new message another id (or none), or delete the old one"
    )


def fresh_memories(memories: Sequence[NewMemory], skipped: set[str]) -> list[NewMemory]:
    """The batch's memories, except those citing only skipped (already stored) messages."""
    return [
        n for n in memories
        if not (n.record.source_ids and set(n.record.source_ids) <= skipped)
    ]  # fmt: skip


def by_memory(accesses: Sequence[tuple[str, datetime]]) -> dict[str, list[datetime]]:
    """Recall times per memory id, each list in time order."""
    out: dict[str, list[datetime]] = {}
    for memory_id, at in accesses:
        out.setdefault(memory_id, []).append(at)
    for times in out.values():
        times.sort()
    return out


def recalled(
    strength: float,
    count: int,
    last: datetime | None,
    created: datetime,
    times: Sequence[datetime],
    reinforce: Reinforce,
) -> tuple[float, int, datetime | None]:
    """A memory's (strength, access_count, last_accessed_at) after recalls at ``times``
    (in order): each reinforces the strength from the recall before it (or the storing);
    the last recall time only moves forward (a late write of an old recall keeps it)."""
    for at in times:
        strength = reinforce(strength, last or created, at)
        count += 1
        last = at if last is None or at > last else last
    return strength, count, last


def lifetime(
    created_at: datetime,
    updated_at: datetime,
    valid_from: datetime | None,
    valid_to: datetime | None,
    expired_at: datetime | None,
    superseded_by: str | None,
) -> tuple[datetime, datetime | None]:
    """When a memory was current: from ``valid_from`` (else its storing) until the first of
    ``valid_to`` and ``expired_at`` (archived, invalidated), ``None`` if it has not ended.
    A memory superseded without a ``valid_to`` (a session summary) ended when it was
    superseded (its ``updated_at``). ``as_of_sql`` is the same rule in SQL."""
    ends = [t for t in (valid_to, expired_at) if t is not None]
    if superseded_by is not None and valid_to is None:
        ends.append(updated_at)
    return valid_from or created_at, min(ends) if ends else None


def as_of_sql(alias: str, mark: str, at: Any) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) admitting the memories current at ``at`` (see
    ``lifetime``) and not yet past their ``expires_at`` then; ``mark`` is the driver's
    parameter mark, ``at`` the time as the driver takes it."""
    a = alias
    clause = (
        f"coalesce({a}.valid_from, {a}.created_at) <= {mark} "
        f"AND ({a}.valid_to IS NULL OR {a}.valid_to > {mark}) "
        f"AND ({a}.expired_at IS NULL OR {a}.expired_at > {mark}) "
        f"AND ({a}.superseded_by IS NULL OR {a}.valid_to IS NOT NULL "
        f"OR {a}.updated_at > {mark}) "
        f"AND ({a}.expires_at IS NULL OR {a}.expires_at > {mark})"
    )
    return clause, [at] * 5


def archivable(stored: MemoryRecord, seen: MemoryRecord) -> bool:
    """Whether ``archive_memories`` may archive ``stored``, decided about as ``seen``: it is
    current, not pinned, and neither updated nor recalled since."""
    return (
        not stored.pinned
        and stored.superseded_by is None
        and stored.expired_at is None
        and stored.updated_at == seen.updated_at
        and stored.last_accessed_at == seen.last_accessed_at
    )


# -- errors every backend words the same way -----------------------------------------------


def memory_not_found(namespace: str, memory_id: str) -> NotFoundError:
    """The error for an unknown memory id (or one of another namespace)."""
    return NotFoundError(
        f"no memory {memory_id!r} in namespace {namespace!r}; "
        "list ids with `remem list` or Memory.list()"
    )


def key_not_found(key_id: str) -> NotFoundError:
    """The error for revoking an unknown API key."""
    return NotFoundError(f"no API key {key_id!r}; list keys with `remem keys list`")


def embedder_conflict(where: str, recorded: str | None, wanted: str) -> ConfigError:
    """The error for opening a database with another embedder than the one that built it."""
    return ConfigError(
        f"{where} was built with embedder {recorded!r}, not {wanted!r}; use the "
        "same embedder, or export and import into a new database to re-embed"
    )


def newer_schema(where: str, newest: int, latest: int) -> StoreError:
    """The error for a database written by a newer remem."""
    return StoreError(
        f"{where} was written by a newer remem (schema {newest}, this remem knows "
        f"up to {latest}); upgrade remem (pip install -U remem) to open it"
    )


def import_conflict(namespace: str, cause: BaseException | None) -> ConflictError:
    """The error for an import that clashes with rows already stored."""
    return ConflictError(
        f"the import conflicts with rows already in namespace {namespace!r} "
        f"({cause}); import into another namespace or a new database, "
        "or delete the conflicting scope first"
    )


# -- load ----------------------------------------------------------------------------------


def dumped_fields(number: int, item: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A dumped row's type and fields, or ``DataFormatError`` naming its number."""
    kind = item.get("type")
    if kind not in FIELDS:
        raise DataFormatError(f"row {number}: unknown type {kind!r}; expected {sorted(FIELDS)}")
    kind = str(kind)
    missing = [f for f in FIELDS[kind] if f not in item]
    if missing:
        raise DataFormatError(f"row {number} ({kind}): missing fields {missing}")
    return kind, FIELDS[kind]


def dumped_links(namespace: str, item: Mapping[str, Any]) -> Linked:
    """What a loaded memory row derives (entity rows, term counts), in its own scope."""
    where = (namespace, str(item["user_id"] or ""), str(item["agent_id"] or ""))
    return (where, str(item["kind"]), str(item["text"]), item["attributes"] or {})


def dumped_embedding(value: Any, number: int) -> bytes | None:
    """A dumped embedding's bytes (little-endian float32), or ``None``."""
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise DataFormatError(f"row {number}: embedding is not valid base64") from exc
