"""SQLite side of the derivation rules (``remem.index.rules``): entity rows and term counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from remem.index.rules import entity_rows, term_deltas

Owner = tuple[str, str, str]  # (namespace, user_id, agent_id)
Linked = tuple[Owner, str, str, Mapping[str, Any]]  # (owner, kind, text, attributes)


def link_memories(conn: sqlite3.Connection, memories: Iterable[Linked]) -> None:
    """Create the entity rows new memories name and count their turns' words, each in
    the memory's own user/agent scope (two statements for the whole batch)."""
    entities: list[tuple[str, ...]] = []
    terms: list[tuple[str, str, str, str, int]] = []
    for owner, kind, text, attributes in memories:
        entities.extend((*owner, e.key, e.name, e.kind) for e in entity_rows(attributes))
        terms.extend((*owner, term, delta) for term, delta in term_deltas(kind, text, 1))
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
    _count(conn, [(*owner, term, delta) for term, delta in term_deltas(kind, text, sign)])


def _count(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str, int]]) -> None:
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        rows,
    )
