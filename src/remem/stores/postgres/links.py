"""PostgreSQL side of the derivation rules (``remem.index.rules``): entity rows and term
counts, written inside the caller's write transaction."""

from __future__ import annotations

from collections.abc import Iterable

from remem.index.rules import Linked, TermValues, link_rows
from remem.stores.postgres.connection import Connection


def link_memories(conn: Connection, memories: Iterable[Linked]) -> None:
    """Create the entity rows new memories name and count their turns' words, each in
    the memory's own user/agent scope."""
    entities, terms = link_rows(memories)
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO entities (namespace, user_id, agent_id, key, name, kind) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            entities,
        )
    count_terms(conn, terms)


def count_terms(conn: Connection, rows: list[TermValues]) -> None:
    """Add signed changes to term counts (a count never goes below zero)."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, user_id, agent_id, term) "
            "DO UPDATE SET docs = greatest(term_counts.docs + excluded.docs, 0)",
            rows,
        )
