"""SQLite side of the derivation rules (``remem.index.rules``): entity rows and term counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from remem.index.rules import entity_rows, term_deltas

Owner = tuple[str, str, str]  # (namespace, user_id, agent_id)


def link_memory(
    conn: sqlite3.Connection, owner: Owner, kind: str, text: str, attributes: Mapping[str, Any]
) -> None:
    """Create the entity rows a new memory names and count a turn's words, both in the
    memory's own user/agent scope."""
    conn.executemany(
        "INSERT OR IGNORE INTO entities (namespace, user_id, agent_id, key, name, kind) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*owner, link.key, link.name, link.kind) for link in entity_rows(attributes)],
    )
    count_terms(conn, owner, kind, text, 1)


def count_terms(conn: sqlite3.Connection, owner: Owner, kind: str, text: str, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) a memory's words from its scope's term counts."""
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        [(*owner, term, delta) for term, delta in term_deltas(kind, text, sign)],
    )
