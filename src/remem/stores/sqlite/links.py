"""The entity table and the entity and time links of memories, derived from attributes."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from remem.annotations import entity_links, time_links


def link_memory(
    conn: sqlite3.Connection,
    memory_id: str,
    scope: tuple[str, str, str],
    attributes: Mapping[str, Any],
) -> None:
    """Insert a memory's entity links (creating entity rows) and time links.

    ``scope`` is (namespace, user_id, agent_id): entities are shared by the sessions of
    one user/agent and never across them.
    """
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


def unlink_memory(conn: sqlite3.Connection, memory_id: str) -> None:
    """Remove a memory's links (entity rows stay: other memories may name them)."""
    conn.execute("DELETE FROM memory_entities WHERE memory_id = ?", (memory_id,))
    conn.execute("DELETE FROM memory_times WHERE memory_id = ?", (memory_id,))
