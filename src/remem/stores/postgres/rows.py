"""Conversions between PostgreSQL rows and remem's records, and filter SQL.

Values arrive already converted by ``codec`` (naive UTC datetimes, JSON as Python values,
vectors as numpy arrays, text unescaped); this module only maps columns to fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from remem.models import ApiKey, MemoryEvent, MemoryRecord, Message, Scope
from remem.stores.base import AccessRow, IndexRow, MemoryFilter, ScopeKey
from remem.stores.common import as_of_sql, check_filter_key, lifetime

Row = Mapping[str, Any]
INDEX_COLUMNS = (
    "id, kind, user_id, agent_id, session_id, position, occurred_at, created_at, expires_at, "
    "superseded_by, expired_at, metadata, attributes, text, index_text, embedding, "
    "importance, pinned, strength, last_accessed_at, source_ids, valid_from, valid_to, "
    "updated_at, namespace, access_count"
)
ACCESS_COLUMNS = "id, strength, access_count, last_accessed_at"
KEY_COLUMNS = "id, tenant, name, admin, created_at, revoked_at"


def scope_of(row: Row) -> Scope:
    """The scope stored on a row ('' means unset)."""
    return Scope(
        user_id=row["user_id"] or None,
        agent_id=row["agent_id"] or None,
        session_id=row["session_id"] or None,
        namespace=row["namespace"],
    )


def memory_from_row(row: Row) -> MemoryRecord:
    """Build a ``MemoryRecord`` from a row selected with ``MEMORY_COLUMNS``."""
    return MemoryRecord(
        id=row["id"], kind=row["kind"], text=row["text"], scope=scope_of(row),
        source_ids=tuple(row["source_ids"]), occurred_at=row["occurred_at"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        metadata=row["metadata"], attributes=row["attributes"],
        importance=row["importance"], strength=row["strength"],
        access_count=row["access_count"], last_accessed_at=row["last_accessed_at"],
        pinned=row["pinned"], expires_at=row["expires_at"], valid_from=row["valid_from"],
        valid_to=row["valid_to"], expired_at=row["expired_at"],
        superseded_by=row["superseded_by"],
    )  # fmt: skip


def memory_values(record: MemoryRecord) -> tuple[Any, ...]:
    """Parameters in ``MEMORY_COLUMNS`` order."""
    s = record.scope
    return (
        record.id, s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "",
        record.kind, record.text, Jsonb(list(record.source_ids)), record.occurred_at,
        record.created_at, record.updated_at, Jsonb(record.metadata),
        Jsonb(record.attributes), record.importance, record.strength, record.access_count,
        record.last_accessed_at, record.pinned, record.expires_at, record.valid_from,
        record.valid_to, record.expired_at, record.superseded_by,
    )  # fmt: skip


def message_from_row(row: Row) -> Message:
    """Build a ``Message`` from a row selected with ``MESSAGE_COLUMNS``."""
    return Message(
        id=row["id"], scope=scope_of(row), role=row["role"], content=row["content"],
        speaker=row["speaker"], occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"], metadata=row["metadata"],
    )  # fmt: skip


def message_values(message: Message) -> tuple[Any, ...]:
    """Parameters in ``MESSAGE_COLUMNS`` order."""
    s = message.scope
    return (
        message.id, s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "",
        message.role, message.speaker, message.content, message.occurred_at,
        message.recorded_at, Jsonb(message.metadata),
    )  # fmt: skip


def event_from_row(row: Row) -> MemoryEvent:
    """Build a ``MemoryEvent`` from a ``memory_events`` row."""
    return MemoryEvent(
        id=row["id"], memory_id=row["memory_id"], action=row["action"],
        before=row["before"], after=row["after"], reason=row["reason"],
        actor=row["actor"], at=row["at"],
    )  # fmt: skip


def index_row(row: Row) -> IndexRow:
    """What a scope index keeps of a row selected with ``INDEX_COLUMNS`` (the record
    itself too, sharing its metadata and attributes)."""
    record = memory_from_row(row)
    start, end = lifetime(record.created_at, record.updated_at, record.valid_from,
                          record.valid_to, record.expired_at, record.superseded_by)  # fmt: skip
    return IndexRow(
        id=record.id, kind=record.kind, user_id=row["user_id"], agent_id=row["agent_id"],
        session_id=row["session_id"], position=row["position"],
        occurred_at=record.occurred_at, created_at=record.created_at,
        expires_at=record.expires_at, current=record.superseded_by is None
        and record.expired_at is None, metadata=record.metadata,
        attributes=record.attributes, text=record.text, index_text=row["index_text"],
        vector=row["embedding"], importance=record.importance, pinned=record.pinned,
        strength=record.strength, last_accessed_at=record.last_accessed_at,
        source_ids=record.source_ids, valid_from=start, valid_to=end, record=record,
    )  # fmt: skip


def access_row(row: Row) -> AccessRow:
    """A row's recall statistics, selected with ``ACCESS_COLUMNS``."""
    return AccessRow(row["id"], row["strength"], int(row["access_count"]),
                     row["last_accessed_at"])  # fmt: skip


def api_key(row: Row) -> ApiKey:
    """Build an ``ApiKey`` from a row selected with ``KEY_COLUMNS``."""
    return ApiKey(
        id=row["id"], tenant=row["tenant"], name=row["name"], admin=row["admin"],
        created_at=row["created_at"], revoked_at=row["revoked_at"],
    )  # fmt: skip


def filter_sql(
    flt: MemoryFilter, alias: str = "m", now: datetime | None = None
) -> tuple[str, list[Any]]:
    """A WHERE clause (without the keyword) and its parameters for a ``MemoryFilter``;
    the same rows as the SQLite store's."""
    clauses = [f"{alias}.namespace = %s"]
    params: list[Any] = [flt.namespace]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(flt, column)
        if value is not None:
            clauses.append(f"{alias}.{column} = %s")
            params.append(value)
    if flt.kinds:
        clauses.append(f"{alias}.kind = ANY(%s)")
        params.append(list(flt.kinds))
    if flt.ids:
        clauses.append(f"{alias}.id = ANY(%s)")
        params.append(list(flt.ids))
    for key, value in flt.metadata.items():
        clause, more = _metadata_sql(alias, check_filter_key(key), value)
        clauses.append(clause)
        params.extend(more)
    when = f"coalesce({alias}.occurred_at, {alias}.created_at)"  # as list shows them
    if flt.since is not None:
        clauses.append(f"{when} >= %s")
        params.append(flt.since)
    if flt.until is not None:
        clauses.append(f"{when} <= %s")
        params.append(flt.until)
    if flt.as_of is not None:
        clause, more = as_of_sql(alias, "%s", flt.as_of)
        clauses.append(clause)
        params.extend(more)
    elif flt.current_only:
        clauses.append(f"{alias}.superseded_by IS NULL AND {alias}.expired_at IS NULL")
        if now is not None:
            clauses.append(f"({alias}.expires_at IS NULL OR {alias}.expires_at > %s)")
            params.append(now)
    return " AND ".join(clauses), params


def _metadata_sql(alias: str, key: str, value: Any) -> tuple[str, list[Any]]:
    """One top-level metadata key equal to ``value``. As in SQLite (``json_extract``) and
    the scope index (Python ``==``), ``true``/``false`` equal 1/0 at the top level; jsonb
    alone would tell them apart. ``None`` matches a stored null, not a missing key."""
    field = f"{alias}.metadata -> %s"
    if value is None:
        return f"jsonb_typeof({field}) = 'null'", [key]
    same = [value]
    if isinstance(value, bool | int | float) and value in (0, 1):
        same = [bool(value), int(value)]  # 1.0 equals 1 in jsonb already
    marks = ", ".join("%s" for _ in same)
    return f"{field} IN ({marks})", [key, *(Jsonb(v) for v in same)]


def scope_sql(scope: Scope | ScopeKey) -> tuple[str, list[Any]]:
    """A WHERE clause selecting one scope's rows (unset fields do not filter)."""
    clauses, params = ["namespace = %s"], [scope.namespace]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, column)
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    return " AND ".join(clauses), params
