"""Complete deletion in the SQLite store (the rules: ``remem.stores.deletion``), and
compaction, after which deleted content is in none of the database's files.

Every connection runs with ``secure_delete`` on (``connection.Connections.configure``), so
the space a deletion frees is zeroed as it is freed. After a deletion the write-ahead log,
which still holds older copies of the changed pages, is checkpointed and truncated when
no reader holds it (never waiting: a reader would only delay it to ``compact``).
``compact`` clears what earlier deletions left, checkpoints, rebuilds the file (VACUUM)
and truncates the log.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from remem.errors import StoreError
from remem.index.rules import Owner
from remem.models import CompactReport, MemoryRecord, Scope
from remem.stores.base import MemoryFilter
from remem.stores.common import MEMORY_COLUMNS, record_snapshot
from remem.stores.deletion import (
    SOURCES_DELETED,
    linked,
    reaches_beyond,
    removed_sources,
    split_citing,
    without_sources,
)
from remem.stores.sqlite import rows
from remem.stores.sqlite.connection import Connections
from remem.stores.sqlite.links import sweep, unlink_memories
from remem.util import dumps, to_db_time, utcnow

log = logging.getLogger(__name__)
_EVENT = (
    "INSERT INTO memory_events (memory_id, namespace, action, before, after, reason, actor, "
    "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def remove(
    conn: sqlite3.Connection, records: Sequence[MemoryRecord], revision: int, reason: str,
    actor: str,
) -> None:  # fmt: skip
    """Delete memories and what was derived from them, inside the caller's write
    transaction: their events lose their content, a DELETE event without content is
    logged, the rows go (vectors with them), tombstones tell scope indexes, and their
    entity rows and term counts are counted down (dropped at zero)."""
    if not records:
        return
    keys = [(r.scope.namespace, r.id) for r in records]
    at = to_db_time(utcnow())
    conn.executemany(
        "UPDATE memory_events SET before = NULL, after = NULL, reason = '' "
        "WHERE namespace = ? AND memory_id = ?",
        keys,
    )
    conn.executemany(
        _EVENT,
        [(r.id, r.scope.namespace, "DELETE", None, None, reason, actor, at) for r in records],
    )
    conn.executemany("DELETE FROM memories WHERE namespace = ? AND id = ?", keys)
    conn.executemany(
        "INSERT INTO memory_tombstones (namespace, user_id, agent_id, session_id, id, rev) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(r.scope.namespace, r.scope.user_id or "", r.scope.agent_id or "",
          r.scope.session_id or "", r.id, revision) for r in records],
    )  # fmt: skip
    unlink_memories(conn, linked(records))


def delete_scope(
    conn: sqlite3.Connection, revision: int, flt: MemoryFilter, actor: str
) -> tuple[int, int]:
    """Delete a scope's messages and memories, the memories elsewhere citing only its
    messages, and trim the sources of those citing others too; returns (memories,
    messages) deleted."""
    where, params = rows.filter_sql(replace(flt, current_only=False), "m")
    selected = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.pk"
    doomed = [rows.memory_from_row(r) for r in conn.execute(selected, params)]
    msg_where, msg_params = rows.scope_sql(
        Scope(flt.user_id, flt.agent_id, flt.session_id, flt.namespace)
    )
    gone: dict[Owner, set[str]] = {}
    for user, agent, message_id in conn.execute(
        f"SELECT user_id, agent_id, id FROM messages WHERE {msg_where}", msg_params
    ):
        gone.setdefault((flt.namespace, user, agent), set()).add(message_id)
    citing = _citing(conn, flt, gone) if reaches_beyond(flt) else []
    orphans, trimmed = split_citing(citing, gone)
    remove(conn, doomed, revision, "delete_all", actor)
    remove(conn, orphans, revision, f"delete_all: {SOURCES_DELETED}", actor)
    _trim(conn, trimmed, revision, actor)
    deleted = conn.execute(f"DELETE FROM messages WHERE {msg_where}", msg_params).rowcount
    return len(doomed) + len(orphans), deleted


def _citing(
    conn: sqlite3.Connection, flt: MemoryFilter, gone: dict[Owner, set[str]]
) -> list[MemoryRecord]:
    """Memories outside the deleted session (of the users/agents whose messages go) that
    cite a deleted message."""
    statement = (
        f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.namespace = ? AND m.user_id = ? "
        "AND m.agent_id = ? AND m.session_id != ? AND EXISTS (SELECT 1 FROM "
        "json_each(m.source_ids) j WHERE j.value IN (SELECT value FROM json_each(?))) "
        "ORDER BY m.pk"
    )
    found: list[MemoryRecord] = []
    for (namespace, user, agent), ids in gone.items():
        params = (namespace, user, agent, flt.session_id, dumps(sorted(ids)))
        found.extend(map(rows.memory_from_row, conn.execute(statement, params)))
    return found


def _trim(
    conn: sqlite3.Connection, pairs: Sequence[tuple[MemoryRecord, MemoryRecord]], revision: int,
    actor: str,
) -> None:  # fmt: skip
    """Write memories' trimmed ``source_ids`` (at the new revision), take the deleted ids
    out of their events' snapshots, and log an UPDATE saying sources were deleted."""
    conn.executemany(
        "UPDATE memories SET source_ids = ?, updated_at = ?, rev = ? WHERE namespace = ? "
        "AND id = ?",
        [(dumps(list(after.source_ids)), to_db_time(after.updated_at), revision,
          after.scope.namespace, after.id) for _, after in pairs],
    )  # fmt: skip
    for before, after in pairs:
        _scrub_sources(conn, after, removed_sources(before, after))
    at = to_db_time(utcnow())
    conn.executemany(
        _EVENT,
        [(after.id, after.scope.namespace, "UPDATE",
          dumps(record_snapshot(replace(before, source_ids=after.source_ids))),
          dumps(record_snapshot(after)), SOURCES_DELETED, actor, at) for before, after in pairs],
    )  # fmt: skip


def _scrub_sources(conn: sqlite3.Connection, record: MemoryRecord, deleted: set[str]) -> None:
    """Take ``deleted`` message ids out of the snapshots a memory's events keep."""
    found = conn.execute(
        "SELECT id, before, after FROM memory_events WHERE namespace = ? AND memory_id = ?",
        (record.scope.namespace, record.id),
    ).fetchall()
    changes = []
    for event_id, *kept in found:
        old = [None if value is None else json.loads(value) for value in kept]
        new = [without_sources(value, deleted) for value in old]
        if new != old:
            changes.append((*(None if v is None else dumps(v) for v in new), event_id))
    conn.executemany("UPDATE memory_events SET before = ?, after = ? WHERE id = ?", changes)


def checkpoint(conn: sqlite3.Connection, wait_ms: int, busy_timeout_ms: int) -> bool:
    """Copy the write-ahead log into the file and truncate it to nothing, waiting at most
    ``wait_ms`` for readers and writers; returns whether it was emptied."""
    conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return not busy


def after_delete(db: Connections) -> None:
    """Empty the write-ahead log if nothing holds it now (it keeps older copies of the
    pages a deletion changed); never waits, never fails the deletion, which committed."""
    try:
        if not checkpoint(db.get(), 0, db.busy_timeout_ms):
            log.info("%s: the write-ahead log is in use; compact() empties it later", db.path)
    except sqlite3.Error as exc:
        log.info("%s: no checkpoint after the deletion (%s); compact() does it", db.path, exc)


def compact(db: Connections) -> CompactReport:
    """Clear what earlier deletions left, then checkpoint, VACUUM and truncate the log."""
    before = _size(db.path)
    with db.write() as (conn, _):
        swept = _sweep_events(conn) + sweep(conn)
    conn = db.get()
    try:
        checkpoint(conn, db.busy_timeout_ms, db.busy_timeout_ms)
        conn.execute("VACUUM")
        complete = checkpoint(conn, db.busy_timeout_ms, db.busy_timeout_ms)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot compact {db.path} ({exc}); try again when it is idle") from exc
    return CompactReport(before, _size(db.path), swept, complete)


def _sweep_events(conn: sqlite3.Connection) -> int:
    """Clear the content audit events kept of memories that no longer exist (deleted by an
    earlier remem, or imported so); DELETE events keep their reason."""
    return conn.execute(
        "UPDATE memory_events SET before = NULL, after = NULL, "
        "reason = CASE WHEN action = 'DELETE' THEN reason ELSE '' END "
        "WHERE (before IS NOT NULL OR after IS NOT NULL OR (reason != '' AND action != "
        "'DELETE')) AND NOT EXISTS (SELECT 1 FROM memories m WHERE m.namespace = "
        "memory_events.namespace AND m.id = memory_events.memory_id)"
    ).rowcount


def _size(path: str) -> int:
    """Bytes of a database file and its write-ahead log (0 in memory)."""
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
