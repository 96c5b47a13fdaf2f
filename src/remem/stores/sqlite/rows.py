"""Conversions between SQLite rows and remem's records, and filter SQL."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from remem.models import MemoryEvent, MemoryRecord, Message, Scope
from remem.stores.base import AccessRow, IndexRow, MemoryFilter
from remem.stores.common import as_of_sql, check_filter_key, lifetime
from remem.util import dumps, from_db_time, to_db_time

INDEX_COLUMNS = (
    "id, kind, user_id, agent_id, session_id, position, occurred_at, created_at, expires_at, "
    "superseded_by, expired_at, metadata, attributes, text, index_text, embedding, "
    "importance, pinned, strength, last_accessed_at, source_ids, valid_from, valid_to, "
    "updated_at, namespace, access_count"
)
ACCESS_COLUMNS = "id, strength, access_count, last_accessed_at"


def _opt(value: str) -> str | None:
    return value or None


def scope_of(row: sqlite3.Row) -> Scope:
    """The scope stored on a row ('' means unset)."""
    return Scope(
        user_id=_opt(row["user_id"]),
        agent_id=_opt(row["agent_id"]),
        session_id=_opt(row["session_id"]),
        namespace=row["namespace"],
    )


def memory_from_row(row: sqlite3.Row) -> MemoryRecord:
    """Build a ``MemoryRecord`` from a row selected with ``MEMORY_COLUMNS``."""
    return MemoryRecord(
        id=row["id"],
        kind=row["kind"],
        text=row["text"],
        scope=scope_of(row),
        source_ids=tuple(json.loads(row["source_ids"])),
        occurred_at=from_db_time(row["occurred_at"]),
        created_at=from_db_time(row["created_at"]) or _missing("created_at"),
        updated_at=from_db_time(row["updated_at"]) or _missing("updated_at"),
        metadata=json.loads(row["metadata"]),
        attributes=json.loads(row["attributes"]),
        importance=row["importance"],
        strength=row["strength"],
        access_count=row["access_count"],
        last_accessed_at=from_db_time(row["last_accessed_at"]),
        pinned=bool(row["pinned"]),
        expires_at=from_db_time(row["expires_at"]),
        valid_from=from_db_time(row["valid_from"]),
        valid_to=from_db_time(row["valid_to"]),
        expired_at=from_db_time(row["expired_at"]),
        superseded_by=row["superseded_by"],
    )


def _missing(name: str) -> Any:
    raise ValueError(f"stored memory has no {name}")


def memory_values(record: MemoryRecord) -> tuple[Any, ...]:
    """Values in ``MEMORY_COLUMNS`` order."""
    s = record.scope
    return (
        record.id, s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "",
        record.kind, record.text, dumps(list(record.source_ids)), to_db_time(record.occurred_at),
        to_db_time(record.created_at), to_db_time(record.updated_at), dumps(record.metadata),
        dumps(record.attributes), record.importance, record.strength, record.access_count,
        to_db_time(record.last_accessed_at), int(record.pinned), to_db_time(record.expires_at),
        to_db_time(record.valid_from), to_db_time(record.valid_to),
        to_db_time(record.expired_at), record.superseded_by,
    )  # fmt: skip


def message_from_row(row: sqlite3.Row) -> Message:
    """Build a ``Message`` from a row selected with ``MESSAGE_COLUMNS``."""
    return Message(
        id=row["id"],
        scope=scope_of(row),
        role=row["role"],
        content=row["content"],
        speaker=row["speaker"],
        occurred_at=from_db_time(row["occurred_at"]),
        recorded_at=from_db_time(row["recorded_at"]) or _missing("recorded_at"),
        metadata=json.loads(row["metadata"]),
    )


def message_values(message: Message) -> tuple[Any, ...]:
    """Values in ``MESSAGE_COLUMNS`` order."""
    s = message.scope
    return (
        message.id, s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "",
        message.role, message.speaker, message.content, to_db_time(message.occurred_at),
        to_db_time(message.recorded_at), dumps(message.metadata),
    )  # fmt: skip


def event_from_row(row: sqlite3.Row) -> MemoryEvent:
    """Build a ``MemoryEvent`` from a ``memory_events`` row."""
    return MemoryEvent(
        id=row["id"],
        memory_id=row["memory_id"],
        action=row["action"],
        before=json.loads(row["before"]) if row["before"] else None,
        after=json.loads(row["after"]) if row["after"] else None,
        reason=row["reason"],
        actor=row["actor"],
        at=from_db_time(row["at"]) or _missing("at"),
    )


def filter_sql(
    flt: MemoryFilter, alias: str = "m", now: str | None = None
) -> tuple[str, list[Any]]:
    """A WHERE clause (without the keyword) and its parameters for a ``MemoryFilter``."""
    clauses = [f"{alias}.namespace = ?"]
    params: list[Any] = [flt.namespace]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(flt, column)
        if value is not None:
            clauses.append(f"{alias}.{column} = ?")
            params.append(value)
    if flt.kinds:
        clauses.append(f"{alias}.kind IN ({','.join('?' * len(flt.kinds))})")
        params.extend(flt.kinds)
    if flt.ids:
        clauses.append(f"{alias}.id IN ({','.join('?' * len(flt.ids))})")
        params.extend(flt.ids)
    for key, value in flt.metadata.items():
        check_filter_key(key)
        if value is None:  # a stored null, not a missing key
            clauses.append(f"json_type({alias}.metadata, '$.{key}') = 'null'")
            continue
        clauses.append(f"json_extract({alias}.metadata, '$.{key}') = json_extract(?, '$')")
        params.append(dumps(value))
    when = f"coalesce({alias}.occurred_at, {alias}.created_at)"  # as list shows them
    if flt.since is not None:
        clauses.append(f"{when} >= ?")
        params.append(to_db_time(flt.since))
    if flt.until is not None:
        clauses.append(f"{when} <= ?")
        params.append(to_db_time(flt.until))
    if flt.as_of is not None:
        clause, more = as_of_sql(alias, "?", to_db_time(flt.as_of))
        clauses.append(clause)
        params.extend(more)
    elif flt.current_only:
        clauses.append(f"{alias}.superseded_by IS NULL AND {alias}.expired_at IS NULL")
        if now is not None:
            clauses.append(f"({alias}.expires_at IS NULL OR {alias}.expires_at > ?)")
            params.append(now)
    return " AND ".join(clauses), params


def scope_sql(scope: Scope) -> tuple[str, list[Any]]:
    """A WHERE clause selecting one scope's messages (unset fields do not filter)."""
    clauses, params = ["namespace = ?"], [scope.namespace]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def index_row(r: sqlite3.Row) -> IndexRow:
    """What a scope index keeps of a row selected with ``INDEX_COLUMNS`` (the record
    itself too, sharing its parsed metadata, attributes and times)."""
    record = memory_from_row(r)
    blob = r["embedding"]
    start, end = lifetime(record.created_at, record.updated_at, record.valid_from,
                          record.valid_to, record.expired_at, record.superseded_by)  # fmt: skip
    return IndexRow(
        id=record.id, kind=record.kind, user_id=r["user_id"], agent_id=r["agent_id"],
        session_id=r["session_id"], position=int(r["position"]),
        occurred_at=record.occurred_at, created_at=record.created_at,
        expires_at=record.expires_at, current=record.superseded_by is None
        and record.expired_at is None, metadata=record.metadata,
        attributes=record.attributes, text=record.text, index_text=r["index_text"],
        vector=None if blob is None else np.frombuffer(blob, dtype=np.float32),
        importance=record.importance, pinned=record.pinned, strength=record.strength,
        last_accessed_at=record.last_accessed_at, source_ids=record.source_ids,
        valid_from=start, valid_to=end, record=record,
    )  # fmt: skip


def access_row(r: sqlite3.Row) -> AccessRow:
    """A row's recall statistics, selected with ``ACCESS_COLUMNS``."""
    return AccessRow(r["id"], r["strength"], r["access_count"],
                     from_db_time(r["last_accessed_at"]))  # fmt: skip
