"""Rows derived from memories: entity and time links, term statistics, session documents.

All of it follows from a memory's text and attributes (see ``remem.annotations``), so it
is rebuilt the same way on insert and on import.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Mapping
from typing import Any

from remem.annotations import entity_links, stems, time_links, words

Scope4 = tuple[str, str, str, str]  # (namespace, user_id, agent_id, session_id)
DOCS = ""  # the term_counts row holding how many turns the scope has


def link_memory(
    conn: sqlite3.Connection,
    memory_id: str,
    where: Scope4,
    kind: str,
    text: str,
    attributes: Mapping[str, Any],
) -> None:
    """Insert a memory's entity links (creating entity rows) and time links; count a
    turn's words in its user's term statistics and its session's keyword document."""
    scope = where[:3]
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
        _count_session_terms(conn, where, text, 1)


def unlink_memory(conn: sqlite3.Connection, memory_id: str, where: Scope4, kind: str,
                  text: str) -> None:  # fmt: skip
    """Remove a memory's links and counts (entity rows stay: others may name them)."""
    conn.execute("DELETE FROM memory_entities WHERE memory_id = ?", (memory_id,))
    conn.execute("DELETE FROM memory_times WHERE memory_id = ?", (memory_id,))
    if kind == "turn":
        _count_terms(conn, where[:3], text, -1)
        _count_session_terms(conn, where, text, -1)


def _count_terms(conn: sqlite3.Connection, scope: tuple[str, ...], text: str, sign: int) -> None:
    terms = [DOCS, *sorted(set(words(text)))]
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        [(*scope, term, sign) for term in terms],
    )


def _count_session_terms(conn: sqlite3.Connection, where: Scope4, text: str, sign: int) -> None:
    """Add (or take away) a turn's stems to its session's document: term frequencies
    and length, for BM25 over whole sessions."""
    terms = Counter(stems(text))
    conn.execute(
        "INSERT INTO sessions (namespace, user_id, agent_id, session_id, length) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET length = max(length + "
        "excluded.length, 0)",
        (*where, sign * sum(terms.values())),
    )
    conn.executemany(
        "INSERT INTO session_terms (session_pk, term, tf) SELECT pk, ?, ? FROM sessions "
        "WHERE namespace = ? AND user_id = ? AND agent_id = ? AND session_id = ? "
        "ON CONFLICT DO UPDATE SET tf = max(tf + excluded.tf, 0)",
        [(term, sign * count, *where) for term, count in terms.items()],
    )


def bm25_documents(
    rows: list[tuple[str, int, str, int]], docs: int, mean_length: float,
    k1: float = 1.2, b: float = 0.75,
) -> dict[str, float]:  # fmt: skip
    """BM25 of documents from (document, length, term, tf) rows of the query's terms, with
    the idf ``log(1 + (N - n + 0.5) / (n + 0.5))`` that stays positive in small scopes
    (a user has tens of sessions, where FTS5's idf would zero out half the words)."""
    df = Counter(term for _, _, term, _ in rows)
    out: dict[str, float] = {}
    for doc, length, term, tf in rows:
        idf = math.log(1 + (docs - df[term] + 0.5) / (df[term] + 0.5))
        norm = k1 * (1 - b + b * length / mean_length) if mean_length > 0 else k1
        out[doc] = out.get(doc, 0.0) + idf * tf * (k1 + 1) / (tf + norm)
    return out
