"""Rows derived from each memory: entity and time links, and the scope's term statistics.

All of it follows from a memory's text and attributes (see ``remem.annotations``), so it
is rebuilt the same way on insert and on import.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from remem.annotations import entity_links, time_links, words

Scope3 = tuple[str, str, str]  # (namespace, user_id, agent_id): entities and term counts
DOCS = ""  # the term_counts row holding how many turns the scope has


def link_memory(
    conn: sqlite3.Connection,
    memory_id: str,
    scope: Scope3,
    kind: str,
    text: str,
    attributes: Mapping[str, Any],
) -> None:
    """Insert a memory's entity links (creating entity rows) and time links, and count a
    turn's words in the scope's term statistics."""
    for link in entity_links(attributes):
        conn.execute(
            "INSERT OR IGNORE INTO entities (namespace, user_id, agent_id, key, name, kind) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*scope, link.key, link.name, link.kind),
        )
        conn.execute(
            "INSERT OR REPLACE INTO memory_entities (memory_id, entity_pk, weight) "
            "SELECT ?, pk, ? FROM entities WHERE namespace = ? AND user_id = ? "
            "AND agent_id = ? AND key = ?",
            (memory_id, link.weight, *scope, link.key),
        )
    periods = time_links(attributes)
    conn.executemany(
        "INSERT INTO memory_times (memory_id, start, end, kind) VALUES (?, ?, ?, ?)",
        [(memory_id, t.start.isoformat(), t.end.isoformat(), t.kind) for t in periods],
    )
    if kind == "turn":
        _count_terms(conn, scope, text, 1)


def unlink_memory(conn: sqlite3.Connection, memory_id: str, scope: Scope3, kind: str,
                  text: str) -> None:  # fmt: skip
    """Remove a memory's links and term counts (entity rows stay: others may name them)."""
    conn.execute("DELETE FROM memory_entities WHERE memory_id = ?", (memory_id,))
    conn.execute("DELETE FROM memory_times WHERE memory_id = ?", (memory_id,))
    if kind == "turn":
        _count_terms(conn, scope, text, -1)


def _count_terms(conn: sqlite3.Connection, scope: Scope3, text: str, sign: int) -> None:
    terms = [DOCS, *sorted(set(words(text)))]
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        [(*scope, term, sign) for term in terms],
    )
