"""PostgreSQL side of the derivation rules (``remem.index.rules``): entity rows and term
counts, written inside the caller's write transaction. As in SQLite (``sqlite.links``), an
entity row counts the memories naming it (``refs``) and a term count the turns holding
the word; a row at zero is dropped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from remem.index.rules import Linked, TermValues, link_rows
from remem.stores.deletion import entity_refs, term_removals
from remem.stores.postgres.connection import Connection

_OWNER = "namespace = %s AND user_id = %s AND agent_id = %s"


def run_many(conn: Connection, statement: str, params: Sequence[Sequence[Any]]) -> None:
    """One statement for each parameter row (nothing for none)."""
    if params:
        with conn.cursor() as cursor:
            cursor.executemany(statement, params)


def link_memories(conn: Connection, memories: Iterable[Linked]) -> None:
    """Create or count up the entity rows new memories name and count their turns'
    words, each in the memory's own user/agent scope."""
    linked = list(memories)
    entities, terms = link_rows(linked)
    refs = entity_refs(linked)
    run_many(
        conn,
        "INSERT INTO entities (namespace, user_id, agent_id, key, name, kind, refs) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (namespace, user_id, agent_id, key) "
        "DO UPDATE SET refs = entities.refs + excluded.refs",
        [(*row, refs[row[:4]]) for row in entities],
    )
    count_terms(conn, terms)


def unlink_memories(conn: Connection, memories: Iterable[Linked]) -> None:
    """Undo ``link_memories`` for memories removed (or about to change): count their
    entity rows and words down, dropping the rows that reach zero."""
    linked = list(memories)
    refs = entity_refs(linked)
    counted = [(n, *key) for key, n in refs.items()]
    run_many(conn, f"UPDATE entities SET refs = refs - %s WHERE {_OWNER} AND key = %s", counted)
    run_many(conn, f"DELETE FROM entities WHERE {_OWNER} AND key = %s AND refs <= 0", list(refs))
    count_terms(conn, term_removals(linked))


def count_terms(conn: Connection, rows: list[TermValues]) -> None:
    """Add signed changes to term counts (a count never goes below zero; a word no turn
    of its user/agent holds any more loses its row)."""
    run_many(
        conn,
        "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, user_id, agent_id, term) "
        "DO UPDATE SET docs = greatest(term_counts.docs + excluded.docs, 0)",
        rows,
    )
    zeroed = [(*where, term) for *where, term, delta in rows if delta < 0]
    run_many(conn, f"DELETE FROM term_counts WHERE {_OWNER} AND term = %s AND docs <= 0", zeroed)
