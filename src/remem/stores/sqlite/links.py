"""SQLite side of the derivation rules (``remem.index.rules``): entity rows and term counts.

An entity row counts the memories of its user/agent that name it (``refs``) and a term
count the turns that hold the word (``docs``); a row goes when its count reaches zero, so
a deleted memory's names and words leave the store with it. Every memory written goes
through ``link_memories``, every one removed through ``unlink_memories``, and a change of
text or attributes through both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from remem.annotations import ENTITIES, KEYPHRASES
from remem.index.rules import Linked, Owner, TermValues, link_rows, term_rows
from remem.stores.deletion import entity_refs, term_removals

_OWNER = "namespace = ? AND user_id = ? AND agent_id = ?"


def link_memories(conn: sqlite3.Connection, memories: Iterable[Linked]) -> None:
    """Create or count up the entity rows new memories name and count their turns' words,
    each in the memory's own user/agent scope (two statements for the whole batch)."""
    linked = list(memories)
    entities, terms = link_rows(linked)
    refs = entity_refs(linked)
    conn.executemany(
        "INSERT INTO entities (namespace, user_id, agent_id, key, name, kind, refs) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET refs = refs + excluded.refs",
        [(*row, refs[row[:4]]) for row in entities],
    )
    change_terms(conn, terms)


def link_memory(
    conn: sqlite3.Connection, owner: Owner, kind: str, text: str, attributes: Mapping[str, Any]
) -> None:
    """``link_memories`` for one memory."""
    link_memories(conn, [(owner, kind, text, attributes)])


def unlink_memories(conn: sqlite3.Connection, memories: Iterable[Linked]) -> None:
    """Undo ``link_memories`` for memories removed (or about to change): count their
    entity rows and words down, dropping the rows that reach zero."""
    linked = list(memories)
    refs = entity_refs(linked)
    conn.executemany(
        f"UPDATE entities SET refs = refs - ? WHERE {_OWNER} AND key = ?",
        [(n, *key) for key, n in refs.items()],
    )
    conn.executemany(f"DELETE FROM entities WHERE {_OWNER} AND key = ? AND refs <= 0", list(refs))
    change_terms(conn, term_removals(linked))


def count_terms(conn: sqlite3.Connection, owner: Owner, kind: str, text: str, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) a memory's words from its scope's term counts."""
    change_terms(conn, term_rows(owner, kind, text, sign))


def change_terms(conn: sqlite3.Connection, rows: list[TermValues]) -> None:
    """Apply signed term-count changes (a count never goes below zero; a word no turn of
    its user/agent holds any more loses its row)."""
    conn.executemany(
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
        rows,
    )
    conn.executemany(  # a row at zero would still hold a word of a deleted turn
        f"DELETE FROM term_counts WHERE {_OWNER} AND term = ? AND docs <= 0",
        [(*where, term) for *where, term, delta in rows if delta < 0],
    )


def sweep(conn: sqlite3.Connection) -> int:
    """Drop the entity rows no memory of their user/agent names and the term counts at
    zero, whatever their counts say (``compact``); returns how many."""
    named = " UNION ".join(
        "SELECT m.namespace, m.user_id, m.agent_id, json_extract(j.value, '$.key') "
        f"FROM memories m, json_each(m.attributes, '$.{field}') j WHERE j.type = 'object' "
        "AND json_extract(j.value, '$.key') IS NOT NULL"
        for field in (ENTITIES, KEYPHRASES)
    )
    entities = conn.execute(
        f"DELETE FROM entities WHERE (namespace, user_id, agent_id, key) NOT IN ({named})"
    ).rowcount
    return entities + conn.execute("DELETE FROM term_counts WHERE docs <= 0").rowcount
