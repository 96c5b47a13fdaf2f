"""Ordered, named schema migrations for the PostgreSQL store, and the rules that keep them.

- A released migration is never edited; a change of layout is a new migration appended to
  ``MIGRATIONS``. Migrations never call live code.
- Migration 1 creates today's layout directly (the SQLite store's after its migration 6):
  PostgreSQL databases start here, with no history to repair.
- ``apply_migrations`` runs in one transaction under a transaction-scoped advisory lock,
  so two processes opening a new database at once never both migrate: the second waits,
  then finds everything applied. DDL is transactional in PostgreSQL, so a failed
  migration leaves nothing behind.
- A database of another application (tables, but no ``remem_meta``) and a database written
  by a newer remem are refused before anything is written.

Layout choices: times are ``timestamptz`` (an instant, read back as naive UTC by
``codec``); JSON is ``jsonb``; ids and scope fields are ``text`` with ``''`` for unset, as
in SQLite; ``pk``/``id`` identity columns keep insertion order for dumps and tie-breaks;
``embedding`` is an untyped pgvector ``vector`` (the dimensions are known only once an
embedder is bound).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from remem.errors import CorruptStoreError, StoreError
from remem.stores.common import newer_schema

log = logging.getLogger(__name__)
Connection = psycopg.Connection[Any]
Migration = tuple[int, str, Callable[[Connection], None]]
# pg_advisory_xact_lock key of remem's migrations ("remem" in ASCII); per database.
MIGRATION_LOCK = 0x72656D656D

_TABLES_V1 = """
CREATE TABLE remem_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO remem_meta (key, value) VALUES ('app', 'remem');
CREATE TABLE messages (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL,
    namespace text NOT NULL,
    user_id text NOT NULL DEFAULT '',
    agent_id text NOT NULL DEFAULT '',
    session_id text NOT NULL DEFAULT '',
    role text NOT NULL,
    speaker text,
    content text NOT NULL,
    occurred_at timestamptz,
    recorded_at timestamptz NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    seq bigint NOT NULL DEFAULT 0,
    CONSTRAINT messages_client_id UNIQUE (namespace, user_id, agent_id, id)
);
CREATE INDEX messages_session ON messages (namespace, user_id, agent_id, session_id, seq);
CREATE TABLE memories (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL,
    namespace text NOT NULL,
    user_id text NOT NULL DEFAULT '',
    agent_id text NOT NULL DEFAULT '',
    session_id text NOT NULL DEFAULT '',
    kind text NOT NULL,
    text text NOT NULL,
    index_text text NOT NULL,
    source_ids jsonb NOT NULL DEFAULT '[]',
    occurred_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    attributes jsonb NOT NULL DEFAULT '{}',
    importance double precision NOT NULL DEFAULT 0.5,
    strength double precision NOT NULL DEFAULT 1.0,
    access_count bigint NOT NULL DEFAULT 0,
    last_accessed_at timestamptz,
    pinned boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    valid_from timestamptz,
    valid_to timestamptz,
    expired_at timestamptz,
    superseded_by text,
    position bigint NOT NULL DEFAULT 0,
    embedding vector,
    rev bigint NOT NULL,
    CONSTRAINT memories_id UNIQUE (namespace, id)
);
CREATE INDEX memories_scope ON memories (namespace, user_id, agent_id, session_id, kind);
CREATE INDEX memories_listed ON memories (namespace, (coalesce(occurred_at, created_at)), pk);
CREATE INDEX memories_rev ON memories (namespace, rev);
CREATE INDEX memories_user_rev ON memories (namespace, user_id, rev);
CREATE INDEX memories_agent_rev ON memories (namespace, agent_id, rev);
CREATE TABLE memory_tombstones (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace text NOT NULL,
    user_id text NOT NULL,
    agent_id text NOT NULL,
    session_id text NOT NULL,
    id text NOT NULL,
    rev bigint NOT NULL
);
CREATE INDEX memory_tombstones_rev ON memory_tombstones (namespace, rev);
CREATE INDEX memory_tombstones_user_rev ON memory_tombstones (namespace, user_id, rev);
CREATE TABLE memory_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    memory_id text NOT NULL,
    namespace text NOT NULL,
    action text NOT NULL,
    before jsonb,
    after jsonb,
    reason text NOT NULL DEFAULT '',
    actor text NOT NULL DEFAULT '',
    at timestamptz NOT NULL
);
CREATE INDEX memory_events_memory ON memory_events (namespace, memory_id);
CREATE TABLE entities (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace text NOT NULL,
    user_id text NOT NULL DEFAULT '',
    agent_id text NOT NULL DEFAULT '',
    key text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    CONSTRAINT entities_key UNIQUE (namespace, user_id, agent_id, key)
);
CREATE TABLE term_counts (
    namespace text NOT NULL,
    user_id text NOT NULL,
    agent_id text NOT NULL,
    term text NOT NULL,
    docs bigint NOT NULL,
    PRIMARY KEY (namespace, user_id, agent_id, term)
);
CREATE TABLE store_revision (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 1);
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    tenant text NOT NULL,
    name text NOT NULL DEFAULT '',
    admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
"""


def _create_tables(conn: Connection) -> None:
    """Today's layout (the SQLite store's after its migration 6), with pgvector."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(_TABLES_V1)


def _access_revisions(conn: Connection) -> None:
    """Recalls (strength, access count, last recall) are written at their own revision,
    ``access_rev``, so scope indexes update them in place instead of re-indexing the row;
    partial indexes find the recalled rows of a scope after a revision (0: never)."""
    conn.execute(
        """
        ALTER TABLE memories ADD COLUMN access_rev bigint NOT NULL DEFAULT 0;
        CREATE INDEX memories_access_rev ON memories (namespace, access_rev)
            WHERE access_rev > 0;
        CREATE INDEX memories_user_access_rev ON memories (namespace, user_id, access_rev)
            WHERE access_rev > 0;
        CREATE INDEX memories_agent_access_rev ON memories (namespace, agent_id, access_rev)
            WHERE access_rev > 0;
        """
    )


def _jobs(conn: Connection) -> None:
    """The persistent job queue (the SQLite store's migration 8): background work
    enqueued with the messages it names, claimed by one worker at a time under a lease
    (``FOR UPDATE SKIP LOCKED``), retried with backoff, kept with its result or the
    reason it failed."""
    conn.execute(
        """
        CREATE TABLE jobs (
            pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            namespace text NOT NULL,
            kind text NOT NULL,
            user_id text NOT NULL DEFAULT '',
            agent_id text NOT NULL DEFAULT '',
            session_id text NOT NULL DEFAULT '',
            message_ids jsonb NOT NULL DEFAULT '[]',
            payload jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            error text,
            token text,
            worker text,
            lease_until timestamptz,
            run_after timestamptz NOT NULL,
            result jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE INDEX jobs_runnable ON jobs (status, namespace, pk)
            WHERE status IN ('pending', 'running');
        CREATE INDEX jobs_namespace ON jobs (namespace, status, pk);
        CREATE INDEX jobs_scope ON jobs (namespace, user_id, agent_id, session_id, kind);
        """
    )


def _entity_refs(conn: Connection) -> None:
    """Entity rows count the memories of their user/agent that name them (``refs``: names
    under ``attributes.entities``, key phrases under ``attributes.keyphrases``, one per
    key and memory), so deleting a memory drops the rows nothing names any more without a
    scan. Rows nothing names now, and term counts at zero, are what deletions left before
    this: they go (they may hold the words of deleted memories)."""
    named = " UNION ".join(
        f"SELECT m.pk, m.namespace, m.user_id, m.agent_id, e ->> 'key' AS key FROM memories m, "
        f"jsonb_array_elements(CASE jsonb_typeof(m.attributes -> '{field}') WHEN 'array' "
        f"THEN m.attributes -> '{field}' ELSE '[]'::jsonb END) e WHERE jsonb_typeof(e) = "
        "'object' AND jsonb_typeof(e -> 'key') = 'string' AND e ->> 'key' <> ''"
        for field in ("entities", "keyphrases")
    )
    conn.execute("ALTER TABLE entities ADD COLUMN refs bigint NOT NULL DEFAULT 0")
    conn.execute(
        f"WITH named AS ({named}), counted AS (SELECT namespace, user_id, agent_id, key, "
        "count(*) AS refs FROM named GROUP BY namespace, user_id, agent_id, key) "
        "UPDATE entities x SET refs = c.refs FROM counted c WHERE c.namespace = x.namespace "
        "AND c.user_id = x.user_id AND c.agent_id = x.agent_id AND c.key = x.key"
    )
    conn.execute("DELETE FROM entities WHERE refs = 0")
    conn.execute("DELETE FROM term_counts WHERE docs <= 0")


MIGRATIONS: tuple[Migration, ...] = (
    (1, "create_tables", _create_tables),
    (2, "memory_access_revisions", _access_revisions),
    (3, "job_queue", _jobs),
    (4, "entity_reference_counts", _entity_refs),
)


def apply_migrations(conn: Connection, where: str) -> int:
    """Check the database is remem's (or empty), refuse one from a newer remem, then apply
    pending migrations, all in one transaction under ``MIGRATION_LOCK``; returns the
    schema version. ``conn`` is in autocommit mode and in no transaction."""
    latest = max(number for number, _, _ in MIGRATIONS)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        tables = _tables(conn)
        if tables and "remem_meta" not in tables:
            raise CorruptStoreError(
                f"{where} is a PostgreSQL database of another application "
                f"(tables: {', '.join(sorted(tables)[:5])}); use a new database for remem"
            )
        applied = _applied(conn, tables)
        newest = max(applied, default=0)
        if newest > latest:
            raise newer_schema(where, newest, latest)
        if "schema_migrations" not in tables:
            conn.execute(
                "CREATE TABLE schema_migrations (id integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for number, name, migrate in MIGRATIONS:
            if number in applied:
                continue
            log.info("applying migration %d (%s) to %s", number, name, where)
            _run(conn, migrate, where)
            conn.execute("INSERT INTO schema_migrations (id, name) VALUES (%s, %s)", (number, name))
    return latest


def _run(conn: Connection, migrate: Callable[[Connection], None], where: str) -> None:
    """Run one migration; a missing or forbidden pgvector gets a message saying what to do."""
    try:
        migrate(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreError(
            f"cannot set up remem's tables in {where}: {exc.diag.message_primary}; "
            "connect as the database owner, or have an administrator run "
            "CREATE EXTENSION vector in this database first"
        ) from exc
    except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as exc:
        raise StoreError(
            f"{where} has no pgvector ({exc.diag.message_primary}); install pgvector on "
            "the server (https://github.com/pgvector/pgvector), or run a local server with "
            "it: remem postgres start"
        ) from exc


def _tables(conn: Connection) -> set[str]:
    """Tables and views in the current schema, except those an extension owns."""
    found = conn.execute(
        "SELECT c.relname AS name FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
    ).fetchall()
    return {str(_value(row, "name")) for row in found}


def _applied(conn: Connection, tables: set[str]) -> set[int]:
    """The migration numbers a database records, read without writing anything."""
    if "schema_migrations" not in tables:
        return set()
    return {int(_value(row, "id")) for row in conn.execute("SELECT id FROM schema_migrations")}


def _value(row: Any, name: str) -> Any:
    """A column of a row from a dict or tuple row factory."""
    return row[name] if isinstance(row, dict) else row[0]
