"""Complete deletion in the PostgreSQL store (the rules: ``remem.stores.deletion``), and
compaction: ``VACUUM`` (or ``VACUUM FULL``) of remem's tables.

After a deletion no row of any remem table holds the deleted content. The bytes of the
old row versions stay in the table files until VACUUM frees their space and later writes
reuse it (``VACUUM FULL`` rewrites the files at once), and in the server's write-ahead
log, backups and replicas until those are recycled: ``docs/deletion.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from remem.annotations import ENTITIES, KEYPHRASES
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
from remem.stores.postgres import rows
from remem.stores.postgres.connection import Connection, Connections
from remem.stores.postgres.links import run_many, unlink_memories
from remem.util import utcnow

_OWNER = "namespace = %s AND user_id = %s AND agent_id = %s"
_EVENT = (
    "INSERT INTO memory_events (memory_id, namespace, action, before, after, reason, actor, "
    "at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def remove(
    conn: Connection, records: Sequence[MemoryRecord], revision: int, reason: str, actor: str
) -> None:
    """Delete memories and what was derived from them, inside the caller's write
    transaction: their events lose their content, a DELETE event without content is
    logged, the rows go (vectors with them), tombstones tell scope indexes, and their
    entity rows and term counts are counted down (dropped at zero)."""
    if not records:
        return
    keys = [(r.scope.namespace, r.id) for r in records]
    at = utcnow()
    scrub = "UPDATE memory_events SET before = NULL, after = NULL, reason = ''"
    run_many(conn, f"{scrub} WHERE namespace = %s AND memory_id = %s", keys)
    deleted = [(r.id, r.scope.namespace, "DELETE", None, None, reason, actor, at) for r in records]
    run_many(conn, _EVENT, deleted)
    run_many(conn, "DELETE FROM memories WHERE namespace = %s AND id = %s", keys)
    run_many(
        conn,
        "INSERT INTO memory_tombstones (namespace, user_id, agent_id, session_id, id, rev) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [(r.scope.namespace, r.scope.user_id or "", r.scope.agent_id or "",
          r.scope.session_id or "", r.id, revision) for r in records],
    )  # fmt: skip
    unlink_memories(conn, linked(records))


def _elements(field: str, alias: str = "m") -> str:
    """The objects of a memory's attribute list (``remem.annotations.entity_links``)."""
    value = f"{alias}.attributes -> '{field}'"
    return (f"jsonb_array_elements(CASE jsonb_typeof({value}) WHEN 'array' THEN {value} "
            "ELSE '[]'::jsonb END) e")  # fmt: skip


def delete_scope(conn: Connection, revision: int, flt: MemoryFilter, actor: str) -> tuple[int, int]:
    """Delete a scope's messages and memories, the memories elsewhere citing only its
    messages, and trim the sources of those citing others too; returns (memories,
    messages) deleted."""
    where, params = rows.filter_sql(replace(flt, current_only=False), "m")
    found = conn.execute(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.pk",
                         params, binary=True).fetchall()  # fmt: skip
    doomed = [rows.memory_from_row(r) for r in found]
    msg_where, msg_params = rows.scope_sql(
        Scope(flt.user_id, flt.agent_id, flt.session_id, flt.namespace)
    )
    gone: dict[Owner, set[str]] = {}
    for r in conn.execute(f"SELECT user_id, agent_id, id FROM messages WHERE {msg_where}",
                          msg_params).fetchall():  # fmt: skip
        gone.setdefault((flt.namespace, r["user_id"], r["agent_id"]), set()).add(r["id"])
    citing = _citing(conn, flt, gone) if reaches_beyond(flt) else []
    orphans, trimmed = split_citing(citing, gone)
    remove(conn, doomed, revision, "delete_all", actor)
    remove(conn, orphans, revision, f"delete_all: {SOURCES_DELETED}", actor)
    _trim(conn, trimmed, revision, actor)
    deleted = conn.execute(f"DELETE FROM messages WHERE {msg_where}", msg_params).rowcount
    return len(doomed) + len(orphans), deleted


def _citing(conn: Connection, flt: MemoryFilter, gone: dict[Owner, set[str]]) -> list[MemoryRecord]:
    """Memories outside the deleted session (of the users/agents whose messages go) that
    cite a deleted message."""
    statement = (
        f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.namespace = %s AND m.user_id = %s "
        "AND m.agent_id = %s AND m.session_id <> %s AND m.source_ids ?| %s::text[] "
        "ORDER BY m.pk"
    )
    found: list[MemoryRecord] = []
    for (namespace, user, agent), ids in gone.items():
        params = (namespace, user, agent, flt.session_id, sorted(ids))
        found.extend(map(rows.memory_from_row, conn.execute(statement, params, binary=True)))
    return found


def _trim(
    conn: Connection, pairs: Sequence[tuple[MemoryRecord, MemoryRecord]], revision: int,
    actor: str,
) -> None:  # fmt: skip
    """Write memories' trimmed ``source_ids`` (at the new revision), take the deleted ids
    out of their events' snapshots, and log an UPDATE saying sources were deleted."""
    run_many(
        conn,
        "UPDATE memories SET source_ids = %s, updated_at = %s, rev = %s "
        "WHERE namespace = %s AND id = %s",
        [(Jsonb(list(after.source_ids)), after.updated_at, revision, after.scope.namespace,
          after.id) for _, after in pairs],
    )  # fmt: skip
    for before, after in pairs:
        _scrub_sources(conn, after, removed_sources(before, after))
    at = utcnow()
    run_many(
        conn,
        _EVENT,
        [(after.id, after.scope.namespace, "UPDATE",
          Jsonb(record_snapshot(replace(before, source_ids=after.source_ids))),
          Jsonb(record_snapshot(after)), SOURCES_DELETED, actor, at) for before, after in pairs],
    )  # fmt: skip


def _scrub_sources(conn: Connection, record: MemoryRecord, deleted: set[str]) -> None:
    """Take ``deleted`` message ids out of the snapshots a memory's events keep."""
    found = conn.execute(
        "SELECT id, before, after FROM memory_events WHERE namespace = %s AND memory_id = %s",
        (record.scope.namespace, record.id),
    ).fetchall()
    changes = []
    for row in found:
        old = [row["before"], row["after"]]
        new = [without_sources(value, deleted) for value in old]
        if new != old:
            changes.append((*(None if v is None else Jsonb(v) for v in new), row["id"]))
    run_many(conn, "UPDATE memory_events SET before = %s, after = %s WHERE id = %s", changes)


# -- compaction --------------------------------------------------------------------------

_SWEEP_EVENTS = (
    "UPDATE memory_events ev SET before = NULL, after = NULL, "
    "reason = CASE WHEN action = 'DELETE' THEN reason ELSE '' END "
    "WHERE (before IS NOT NULL OR after IS NOT NULL OR (reason <> '' AND action <> 'DELETE')) "
    "AND NOT EXISTS (SELECT 1 FROM memories m WHERE m.namespace = ev.namespace "
    "AND m.id = ev.memory_id)"
)
_SWEEP_ENTITIES = (
    "WITH named AS ("
    + " UNION ".join(
        f"SELECT m.namespace, m.user_id, m.agent_id, e ->> 'key' AS key FROM memories m, "
        f"{_elements(field)} WHERE jsonb_typeof(e) = 'object'"
        for field in (ENTITIES, KEYPHRASES)
    )
    + ") DELETE FROM entities x WHERE NOT EXISTS (SELECT 1 FROM named n WHERE "
    "n.namespace = x.namespace AND n.user_id = x.user_id AND n.agent_id = x.agent_id "
    "AND n.key = x.key)"
)
_SWEEPS = (_SWEEP_EVENTS, _SWEEP_ENTITIES, "DELETE FROM term_counts WHERE docs <= 0")
_TABLES = (  # remem's tables: those of the current schema no extension owns
    "SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = "
    "current_schema()::regnamespace AND c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM "
    "pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND "
    "d.deptype = 'e') ORDER BY c.relname"
)


def compact(db: Connections, full: bool) -> CompactReport:
    """Clear what earlier deletions left, then VACUUM (``full``: VACUUM FULL) each of
    remem's tables, outside any transaction, on a connection of its own."""
    conn = db.connect()
    try:
        tables = [row["name"] for row in conn.execute(_TABLES).fetchall()]
        before = _size(conn, tables)
        with db.write() as (writer, _):
            swept = sum(writer.execute(statement).rowcount for statement in _SWEEPS)
        command = sql.SQL("VACUUM (FULL, ANALYZE) {}" if full else "VACUUM (ANALYZE) {}")
        for table in tables:
            conn.execute(command.format(sql.Identifier(table)))
        after = _size(conn, tables)
    except psycopg.Error as exc:
        raise db.error(exc, "compacting") from exc
    finally:
        conn.close()
    return CompactReport(before, after, swept, True)


def _size(conn: Connection, tables: Sequence[str]) -> int:
    """Bytes on disk of tables with their indexes and TOAST."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS n FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)",
        (list(tables),),
    ).fetchone()
    return int(row["n"]) if row else 0
