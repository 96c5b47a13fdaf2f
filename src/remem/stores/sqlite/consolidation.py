"""Consolidation inside a SQLite write transaction: the text-hash check, notes and
retirements of a ``WriteBatch`` (rules and errors in ``remem.stores.consolidation``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from remem.models import MemoryRecord
from remem.stores import consolidation as rules
from remem.stores.base import WriteBatch
from remem.stores.common import MEMORY_COLUMNS
from remem.stores.sqlite import rows
from remem.util import to_db_time, utcnow

CHUNK = 400  # parameters per IN list


def apply(conn: sqlite3.Connection, batch: WriteBatch, revision: int, log: rules.LogAll) -> None:
    """The consolidation step of ``write`` (``remem.stores.consolidation.apply``)."""
    rules.apply(_Transaction(conn), batch, revision, log, conn)


class _Transaction:
    """SQLite's SQL for ``remem.stores.consolidation.apply``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def memories(self, namespace: str, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        return _memories(self.conn, namespace, ids)

    def current_hashes(self, owner: rules.Owner, wanted: list[str]) -> list[tuple[str, str]]:
        return _current_hashes(self.conn, owner, wanted)

    def mark_retired(self, after: MemoryRecord, revision: int) -> None:
        self.conn.execute(
            "UPDATE memories SET valid_to = ?, superseded_by = ?, expired_at = ?, "
            "updated_at = ?, rev = ? WHERE namespace = ? AND id = ?",
            (to_db_time(after.valid_to), after.superseded_by, to_db_time(after.expired_at),
             to_db_time(after.updated_at), revision, after.scope.namespace, after.id),
        )  # fmt: skip


def _memories(
    conn: sqlite3.Connection, namespace: str, ids: Sequence[str]
) -> dict[str, MemoryRecord]:
    if not ids:
        return {}
    found = conn.execute(
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = ? "
        f"AND id IN ({','.join('?' * len(ids))})",
        [namespace, *ids],
    ).fetchall()
    return {r["id"]: rows.memory_from_row(r) for r in found}


def _current_hashes(
    conn: sqlite3.Connection, owner: rules.Owner, wanted: list[str]
) -> list[tuple[str, str]]:
    """(hash, id) of the owner's current derived memories carrying one of ``wanted``."""
    kinds = ",".join("?" * len(rules.HASHED_KINDS))
    field = f"json_extract(attributes, '$.{rules.TEXT_HASH}')"
    out: list[tuple[str, str]] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for r in conn.execute(
            f"SELECT id, {field} AS h FROM memories "
            f"WHERE namespace = ? AND user_id = ? AND agent_id = ? AND kind IN ({kinds}) "
            "AND superseded_by IS NULL AND expired_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?) "
            f"AND {field} IN ({','.join('?' * len(chunk))})",
            [*owner, *rules.HASHED_KINDS, to_db_time(utcnow()), *chunk],
        ):
            out.append((r["h"], r["id"]))
    return out
