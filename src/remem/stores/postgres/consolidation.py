"""Consolidation inside a PostgreSQL write transaction: the text-hash check, notes and
retirements of a ``WriteBatch`` (rules and errors in ``remem.stores.consolidation``).

Write transactions are serialised by the revision row lock they take first, and run at
READ COMMITTED, so every check below sees every batch committed before this one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remem.models import MemoryRecord
from remem.stores import consolidation as rules
from remem.stores.base import WriteBatch
from remem.stores.common import MEMORY_COLUMNS
from remem.stores.postgres import rows
from remem.stores.postgres.connection import Connection
from remem.util import utcnow


def apply(conn: Connection, batch: WriteBatch, revision: int, log: rules.LogAll) -> None:
    """The consolidation step of ``write`` (``remem.stores.consolidation.apply``)."""
    rules.apply(_Transaction(conn), batch, revision, log, conn)


class _Transaction:
    """PostgreSQL's SQL for ``remem.stores.consolidation.apply``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def memories(self, namespace: str, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        return _memories(self.conn, namespace, ids)

    def current_hashes(self, owner: rules.Owner, wanted: list[str]) -> list[tuple[str, str]]:
        return _current_hashes(self.conn, owner, wanted)

    def mark_retired(self, after: MemoryRecord, revision: int) -> None:
        self.conn.execute(
            "UPDATE memories SET valid_to = %s, superseded_by = %s, expired_at = %s, "
            "updated_at = %s, rev = %s WHERE namespace = %s AND id = %s",
            (after.valid_to, after.superseded_by, after.expired_at, after.updated_at,
             revision, after.scope.namespace, after.id),
        )  # fmt: skip


def _fetch(conn: Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return conn.execute(sql, params, binary=True).fetchall()


def _memories(conn: Connection, namespace: str, ids: Sequence[str]) -> dict[str, MemoryRecord]:
    """Memories by id, locked until the batch commits."""
    if not ids:
        return {}
    found = _fetch(
        conn,
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = %s AND id = ANY(%s) "
        "ORDER BY pk FOR UPDATE",
        (namespace, list(ids)),
    )
    return {r["id"]: rows.memory_from_row(r) for r in found}


def _current_hashes(
    conn: Connection, owner: rules.Owner, wanted: list[str]
) -> list[tuple[str, str]]:
    """(hash, id) of the owner's current derived memories carrying one of ``wanted``."""
    field = f"attributes ->> '{rules.TEXT_HASH}'"
    found = _fetch(
        conn,
        f"SELECT id, {field} AS h FROM memories WHERE namespace = %s AND user_id = %s "
        "AND agent_id = %s AND kind = ANY(%s) AND superseded_by IS NULL "
        "AND expired_at IS NULL AND (expires_at IS NULL OR expires_at > %s) "
        f"AND {field} = ANY(%s)",
        (*owner, list(rules.HASHED_KINDS), utcnow(), wanted),
    )
    return [(r["h"], r["id"]) for r in found]
