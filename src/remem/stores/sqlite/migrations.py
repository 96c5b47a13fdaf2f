"""Ordered, named schema migrations for the SQLite store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from remem.stores.sqlite.links import link_memory

Migration = tuple[int, str, Callable[[sqlite3.Connection], None]]


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run statements one by one; ``executescript`` would commit the open transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def _create_core(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE messages (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            session_id TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL,
            speaker TEXT,
            content TEXT NOT NULL,
            occurred_at TEXT,
            recorded_at TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            seq INTEGER NOT NULL DEFAULT 0,
            UNIQUE (namespace, user_id, agent_id, id)
        );
        CREATE TABLE memories (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            session_id TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            index_text TEXT NOT NULL,
            source_ids TEXT NOT NULL DEFAULT '[]',
            occurred_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            attributes TEXT NOT NULL DEFAULT '{}',
            importance REAL NOT NULL DEFAULT 0.5,
            strength REAL NOT NULL DEFAULT 1.0,
            access_count INTEGER NOT NULL DEFAULT 0,
            last_accessed_at TEXT,
            pinned INTEGER NOT NULL DEFAULT 0,
            expires_at TEXT,
            valid_from TEXT,
            valid_to TEXT,
            expired_at TEXT,
            superseded_by TEXT,
            position INTEGER NOT NULL DEFAULT 0,
            embedding BLOB
        );
        CREATE INDEX messages_session ON messages (namespace, user_id, agent_id, session_id, seq);
        CREATE INDEX memories_scope ON memories (namespace, user_id, agent_id, session_id);
        CREATE INDEX memories_time ON memories (namespace, occurred_at);
        CREATE TABLE memory_events (
            id INTEGER PRIMARY KEY,
            memory_id TEXT NOT NULL,
            namespace TEXT NOT NULL,
            action TEXT NOT NULL,
            before TEXT,
            after TEXT,
            reason TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        );
        CREATE INDEX memory_events_memory ON memory_events (namespace, memory_id);
        """,
    )


def _create_fts(conn: sqlite3.Connection) -> None:
    # External-content FTS5 kept in sync by triggers; porter stemming for BM25.
    _run_script(
        conn,
        """
        CREATE VIRTUAL TABLE memories_fts USING fts5(
            index_text, content='memories', content_rowid='pk',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts (rowid, index_text) VALUES (new.pk, new.index_text);
        END;
        CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts (memories_fts, rowid, index_text)
            VALUES ('delete', old.pk, old.index_text);
        END;
        CREATE TRIGGER memories_au AFTER UPDATE OF index_text ON memories BEGIN
            INSERT INTO memories_fts (memories_fts, rowid, index_text)
            VALUES ('delete', old.pk, old.index_text);
            INSERT INTO memories_fts (rowid, index_text) VALUES (new.pk, new.index_text);
        END;
        """,
    )


def _create_links(conn: sqlite3.Connection) -> None:
    # Entities and term counts are per user/agent; links name memories by id, which
    # survives rewrites. term_counts: in how many turns each word occurs (for key phrases).
    # sessions, session_terms: each session's turns as one bag of stemmed words (BM25 over
    # whole sessions, with statistics per user rather than per file).
    _run_script(
        conn,
        """
        CREATE TABLE entities (
            pk INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            UNIQUE (namespace, user_id, agent_id, key)
        );
        CREATE TABLE memory_entities (
            memory_id TEXT NOT NULL,
            entity_pk INTEGER NOT NULL,
            weight REAL NOT NULL DEFAULT 1.0,
            PRIMARY KEY (memory_id, entity_pk)
        ) WITHOUT ROWID;
        CREATE INDEX memory_entities_entity ON memory_entities (entity_pk);
        CREATE TABLE memory_times (
            memory_id TEXT NOT NULL,
            start TEXT NOT NULL,
            end TEXT NOT NULL,
            kind TEXT NOT NULL
        );
        CREATE INDEX memory_times_memory ON memory_times (memory_id);
        CREATE TABLE sessions (
            pk INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            length INTEGER NOT NULL DEFAULT 0,
            UNIQUE (namespace, user_id, agent_id, session_id)
        );
        CREATE TABLE session_terms (
            session_pk INTEGER NOT NULL,
            term TEXT NOT NULL,
            tf INTEGER NOT NULL,
            PRIMARY KEY (session_pk, term)
        ) WITHOUT ROWID;
        CREATE TABLE term_counts (
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            term TEXT NOT NULL,
            docs INTEGER NOT NULL,
            PRIMARY KEY (namespace, user_id, agent_id, term)
        ) WITHOUT ROWID;
        """,
    )


def _link_existing(conn: sqlite3.Connection) -> None:
    """Derive links, term counts and session documents for memories written before them."""
    for row in conn.execute(
        "SELECT id, namespace, user_id, agent_id, session_id, kind, text, attributes "
        "FROM memories ORDER BY pk"
    ).fetchall():
        link_memory(conn, row[0], (row[1], row[2], row[3], row[4]), row[5], row[6],
                    json.loads(row[7]))  # fmt: skip


MIGRATIONS: tuple[Migration, ...] = (
    (1, "create_core_tables", _create_core),
    (2, "create_fts5_index", _create_fts),
    (3, "create_entity_time_term_and_session_tables", _create_links),
    (4, "link_existing_memories", _link_existing),
)


def apply_migrations(conn: sqlite3.Connection, now: str) -> int:
    """Apply pending migrations in order; the caller holds a write transaction, so two
    processes opening one new file never both migrate. Returns the schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT id FROM schema_migrations")}
    for number, name, migrate in MIGRATIONS:
        if number in applied:
            continue
        migrate(conn)
        conn.execute(
            "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
            (number, name, now),
        )
    return max(number for number, _, _ in MIGRATIONS)
