"""SQLite side of the derivation rules (``remem.index.rules``): entity rows and term counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from remem.index.rules import Linked, Owner, TermValues, link_rows, term_rows


def link_memories(conn: sqlite3.Connection, memories: Iterable[Linked]) -> None:
    """Create the entity rows new memories name and count their turns' words, each in
    the memory's own user/agent scope (two statements for the whole batch)."""
    entities, terms = link_rows(memories)
    conn.executemany(
        "INSERT OR IGNORE INTO entities (namespace, user_id, agent_id, key, name, kind) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        entities,
    )
    _count(conn, terms)


def link_memory(
    conn: sqlite3.Connection, owner: Owner, kind: str, text: str, attributes: Mapping[str, Any]
) -> None:
    """``link_memories`` for one memory."""
    link_memories(conn, [(owner, kind, text, attributes)])


def count_terms(conn: sqlite3.Connection, owner: Owner, kind: str, text: str, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) a memory's words from its scope's term counts."""
    _count(conn, term_rows(owner, kind, text, sign))


def _count(conn: sqlite3.Connection, rows: list[TermValues]) -> None:
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        rows,
    )
