"""Ordered, named schema migrations for the SQLite store, and the rules that keep them.

- A released migration is never edited: its number, name and what it does stay as
  released (``tests/test_migrations.py`` keeps a checksum of each). A change of layout is a
  new migration appended to ``MIGRATIONS``. Migrations never call live code (it changes);
  what they need is copied in here and frozen.
- A file written by any earlier remem opens and migrates (``tests/fixtures/layouts`` holds
  one per layout there has been).
- A file written by a newer remem (a migration number above the newest here) is refused
  before anything is written, with a message that says to upgrade.

Two released migrations were edited in place before these rules, so a file's
``schema_migrations`` does not always say what it holds: ``_repair_layout`` documents the
history and brings such files up to today's layout before pending migrations run.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date
from functools import cache
from typing import Any

import snowballstemmer

from remem.errors import StoreError

log = logging.getLogger(__name__)
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
    """Derive links, term counts and session documents for memories written before them.

    Frozen in 7ff4347: this is what ``links.link_memory`` and the ``remem.annotations``
    helpers it used did then, copied (the ``_v4_`` functions below) so that later changes
    to the live code cannot change what this released migration does.
    """
    stemmer = snowballstemmer.stemmer("english")
    stemmed: dict[str, str] = {}

    def stem(word: str) -> str:
        if word not in stemmed:
            stemmed[word] = stemmer.stemWord(word)
        return stemmed[word]

    for row in conn.execute(
        "SELECT id, namespace, user_id, agent_id, session_id, kind, text, attributes "
        "FROM memories ORDER BY pk"
    ).fetchall():
        _v4_link_memory(conn, row[0], (row[1], row[2], row[3], row[4]), row[5], row[6],
                        json.loads(row[7]), stem)  # fmt: skip


def _live_store(conn: sqlite3.Connection) -> None:
    """Revisions and tombstones for live scope indexes; memory ids unique per namespace
    (not per file); keyword search leaves FTS5 for per-scope BM25 (``remem.index``), and
    the link tables it replaces go (scope indexes derive links from attributes)."""
    columns = (
        "pk, id, namespace, user_id, agent_id, session_id, kind, text, index_text, source_ids, "
        "occurred_at, created_at, updated_at, metadata, attributes, importance, strength, "
        "access_count, last_accessed_at, pinned, expires_at, valid_from, valid_to, "
        "expired_at, superseded_by, position, embedding"
    )
    _run_script(
        conn,
        f"""
        CREATE TABLE memories_v5 (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
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
            metadata TEXT NOT NULL DEFAULT '{{}}',
            attributes TEXT NOT NULL DEFAULT '{{}}',
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
            embedding BLOB,
            rev INTEGER NOT NULL DEFAULT 1,
            UNIQUE (namespace, id)
        );
        INSERT INTO memories_v5 ({columns}) SELECT {columns} FROM memories;
        DROP TRIGGER IF EXISTS memories_ai;
        DROP TRIGGER IF EXISTS memories_ad;
        DROP TRIGGER IF EXISTS memories_au;
        DROP TABLE IF EXISTS memories_fts;
        DROP TABLE memories;
        ALTER TABLE memories_v5 RENAME TO memories;
        CREATE INDEX memories_scope ON memories (namespace, user_id, agent_id, session_id, kind);
        CREATE INDEX memories_time ON memories (namespace, occurred_at);
        CREATE INDEX memories_rev ON memories (namespace, rev);
        CREATE INDEX memories_user_rev ON memories (namespace, user_id, rev);
        CREATE INDEX memories_agent_rev ON memories (namespace, agent_id, rev);
        DROP TABLE IF EXISTS memory_entities;
        DROP TABLE IF EXISTS memory_times;
        DROP TABLE IF EXISTS session_terms;
        DROP TABLE IF EXISTS sessions;
        CREATE TABLE memory_tombstones (
            pk INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,
            user_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            id TEXT NOT NULL,
            rev INTEGER NOT NULL
        );
        CREATE INDEX memory_tombstones_rev ON memory_tombstones (namespace, rev);
        CREATE TABLE store_revision (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL
        );
        INSERT INTO store_revision (id, revision) VALUES (1, 1);
        """,
    )


def _api_keys(conn: sqlite3.Connection) -> None:
    """API keys of the REST server: each belongs to one tenant (namespace); only a hash of
    the key is kept."""
    _run_script(
        conn,
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            admin INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        """,
    )


def _access_revisions(conn: sqlite3.Connection) -> None:
    """Recalls (strength, access count, last recall) are written at their own revision,
    ``access_rev``, so scope indexes update them in place instead of re-indexing the row;
    partial indexes find the recalled rows of a scope after a revision (0: never)."""
    _run_script(
        conn,
        """
        ALTER TABLE memories ADD COLUMN access_rev INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX memories_access_rev ON memories (namespace, access_rev)
            WHERE access_rev > 0;
        CREATE INDEX memories_user_access_rev ON memories (namespace, user_id, access_rev)
            WHERE access_rev > 0;
        CREATE INDEX memories_agent_access_rev ON memories (namespace, agent_id, access_rev)
            WHERE access_rev > 0;
        """,
    )


def _jobs(conn: sqlite3.Connection) -> None:
    """The persistent job queue: background work (deriving memories from messages)
    enqueued with the messages it names, claimed by one worker at a time under a lease,
    retried with backoff, and kept with its result or the reason it failed. Scope
    fields use '' for unset, as elsewhere; JSON columns are text."""
    _run_script(
        conn,
        """
        CREATE TABLE jobs (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            namespace TEXT NOT NULL,
            kind TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            session_id TEXT NOT NULL DEFAULT '',
            message_ids TEXT NOT NULL DEFAULT '[]',
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            token TEXT,
            worker TEXT,
            lease_until TEXT,
            run_after TEXT NOT NULL,
            result TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_runnable ON jobs (status, namespace, pk)
            WHERE status IN ('pending', 'running');
        CREATE INDEX jobs_namespace ON jobs (namespace, status, pk);
        CREATE INDEX jobs_scope ON jobs (namespace, user_id, agent_id, session_id, kind);
        """,
    )


def _entity_refs(conn: sqlite3.Connection) -> None:
    """Entity rows count the memories of their user/agent that name them (``refs``: names
    under ``attributes.entities``, key phrases under ``attributes.keyphrases``, one per
    key and memory), so deleting a memory drops the rows nothing names any more without a
    scan. Rows nothing names now, and term counts at zero, are what deletions left before
    this: they go (they may hold the words of deleted memories)."""
    named = " UNION ".join(
        "SELECT m.pk, m.namespace, m.user_id, m.agent_id, json_extract(j.value, '$.key') "
        f"AS key FROM memories m, json_each(m.attributes, '$.{field}') j "
        f"WHERE json_type(m.attributes, '$.{field}') = 'array' AND j.type = 'object' "
        "AND json_type(j.value, '$.key') = 'text' AND json_extract(j.value, '$.key') != ''"
        for field in ("entities", "keyphrases")
    )
    _run_script(
        conn,
        f"""
        ALTER TABLE entities ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
        CREATE TEMP TABLE v9_refs (
            namespace TEXT, user_id TEXT, agent_id TEXT, key TEXT, refs INTEGER,
            PRIMARY KEY (namespace, user_id, agent_id, key)
        );
        INSERT INTO v9_refs SELECT namespace, user_id, agent_id, key, count(*)
            FROM ({named}) GROUP BY namespace, user_id, agent_id, key;
        UPDATE entities SET refs = coalesce((SELECT r.refs FROM v9_refs r
            WHERE r.namespace = entities.namespace AND r.user_id = entities.user_id
            AND r.agent_id = entities.agent_id AND r.key = entities.key), 0);
        DROP TABLE v9_refs;
        DELETE FROM entities WHERE refs = 0;
        DELETE FROM term_counts WHERE docs <= 0;
        """,
    )


MIGRATIONS: tuple[Migration, ...] = (
    (1, "create_core_tables", _create_core),
    (2, "create_fts5_index", _create_fts),
    (3, "create_entity_time_term_and_session_tables", _create_links),
    (4, "link_existing_memories", _link_existing),
    (5, "live_store_revisions_tombstones_and_ids_per_namespace", _live_store),
    (6, "api_keys", _api_keys),
    (7, "memory_access_revisions", _access_revisions),
    (8, "job_queue", _jobs),
    (9, "entity_reference_counts", _entity_refs),
)


def apply_migrations(conn: sqlite3.Connection, now: str) -> int:
    """Refuse a file from a newer remem, repair earlier layouts, then apply pending
    migrations in order; the caller holds a write transaction, so two processes opening one
    new file never both migrate. Returns the schema version.

    The refusal comes before any statement that writes, so a refused file is left as it
    was (the caller's transaction has nothing to roll back)."""
    applied = _applied(conn)
    latest = max(number for number, _, _ in MIGRATIONS)
    newest = max(applied, default=0)
    if newest > latest:
        raise StoreError(
            f"{_path(conn)} was written by a newer remem (schema {newest}, this remem knows "
            f"up to {latest}); upgrade remem (pip install -U remem) to open it"
        )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    _repair_layout(conn, applied)
    for number, name, migrate in MIGRATIONS:
        if number in applied:
            continue
        log.info("applying migration %d (%s) to %s", number, name, _path(conn))
        migrate(conn)
        conn.execute(
            "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
            (number, name, now),
        )
    return latest


def _applied(conn: sqlite3.Connection) -> set[int]:
    """The migration numbers a file records, read without writing anything."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if found is None:
        return set()
    return {int(row[0]) for row in conn.execute("SELECT id FROM schema_migrations")}


def _path(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or ":memory:")
    return "the database"  # pragma: no cover - every connection has a main database


# -- layout repair -------------------------------------------------------------------
#
# Before the rules above, two released migrations were edited in place, so a file that
# records a migration as applied may hold an older version of it:
#
#   migration 1 (7609d02) had no messages.seq, no messages_session index and no
#     memories.position; e80cac6 added them.
#   migration 3 (459d536) made entities, memory_entities and memory_times only; 7eb6ce2
#     added term_counts, 0243a5a added sessions and session_terms.
#
# Those files were refused as damaged (a missing column or table). The repair adds what
# is missing, as the migration makes it today, and fills the two columns the way the code
# of e80cac6 did on insert; migrations 1 to 3 stay as released. It runs on every open and
# does nothing to a file that is already complete. It looks only at files whose newest
# migration is at most 4 (a file that took a later one was repaired on the way). This list
# is closed: an edit to a released migration is now a test failure, and a new layout is a
# new migration.

_REPAIRED_UP_TO = 4  # the newest migration when the repair was written

_ADDED_AFTER_RELEASE: tuple[tuple[int, str], ...] = (
    (1, "messages.seq"),
    (1, "memories.position"),  # filled from messages.seq, so after it
    (1, "messages_session"),
    (3, "term_counts"),
    (3, "sessions"),
    (3, "session_terms"),
)

# How e80cac6 numbered messages on insert: 1, 2, ... within each session, in insert order.
# A memory's position is the number of its first source message (0 when there is none).
_BACKFILL = {
    "messages.seq": (
        "UPDATE messages SET seq = numbered.n FROM (SELECT pk, row_number() OVER "
        "(PARTITION BY namespace, user_id, agent_id, session_id ORDER BY pk) AS n "
        "FROM messages) AS numbered WHERE numbered.pk = messages.pk"
    ),
    "memories.position": (
        "UPDATE memories SET position = coalesce((SELECT m.seq FROM messages m "
        "WHERE m.namespace = memories.namespace AND m.user_id = memories.user_id "
        "AND m.agent_id = memories.agent_id AND m.id = json_extract(memories.source_ids, "
        "'$[0]')), 0) WHERE json_valid(memories.source_ids)"
    ),
}

# Rows migration 4 derives for every memory. Ingest already wrote some of them in a file
# whose migration 3 ran before migration 4 existed (builds 459d536 to 0243a5a); deriving
# them again would count turns twice and repeat time links, so they are cleared first and
# migration 4 derives all of them once. Entity rows stay (links find them by key).
_DERIVED_BY_4 = ("memory_entities", "memory_times", "term_counts", "session_terms", "sessions")


def _repair_layout(conn: sqlite3.Connection, applied: set[int]) -> None:
    """Bring a file whose applied migrations are older versions of released ones up to
    today's layout (see the comment above), and clear what migration 4 is about to
    derive. Runs in the caller's transaction, before pending migrations."""
    if max(applied, default=0) > _REPAIRED_UP_TO:
        return
    objects, columns = _released_layout()
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    for number, item in _ADDED_AFTER_RELEASE:
        if number not in applied:
            continue  # the migration is pending and will make it
        if "." in item:
            table, column = item.split(".")
            if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {columns[item]}")
                conn.execute(_BACKFILL[item])
        elif item not in present:
            conn.execute(objects[item])
    if 3 in applied and 4 not in applied:
        for table in _DERIVED_BY_4:
            conn.execute(f"DELETE FROM {table}")


@cache
def _released_layout() -> tuple[dict[str, str], dict[str, str]]:
    """What migrations 1 to 3 make today, read from a scratch in-memory database they ran
    on: each object's CREATE statement by name, and each column's definition by
    "table.column"."""
    scratch = sqlite3.connect(":memory:")
    try:
        for number, _, migrate in MIGRATIONS:
            if number <= 3:
                migrate(scratch)
        objects = {
            str(name): str(sql)
            for name, sql in scratch.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            )
        }
        columns: dict[str, str] = {}
        for (table,) in scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for _, name, kind, notnull, default, _ in scratch.execute(
                f"PRAGMA table_info({table})"
            ):
                columns[f"{table}.{name}"] = (
                    f"{name} {kind}"
                    + (" NOT NULL" if notnull else "")
                    + (f" DEFAULT {default}" if default is not None else "")
                )
        return objects, columns
    finally:
        scratch.close()


# -- migration 4's frozen copy of links.link_memory and remem.annotations (7ff4347) ----

_V4_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_V4_DOCS = ""  # the term_counts row holding how many turns the scope has


def _v4_link_memory(
    conn: sqlite3.Connection,
    memory_id: str,
    where: tuple[str, str, str, str],
    kind: str,
    text: str,
    attributes: Mapping[str, Any],
    stem: Callable[[str], str],
) -> None:
    scope = where[:3]
    for key, name, entity_kind, weight in _v4_entity_links(attributes):
        conn.execute(
            "INSERT OR IGNORE INTO entities (namespace, user_id, agent_id, key, name, kind) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*scope, key, name, entity_kind),
        )
        conn.execute(
            "INSERT OR REPLACE INTO memory_entities (memory_id, entity_pk, weight) "
            "SELECT ?, pk, ? FROM entities WHERE namespace = ? AND user_id = ? "
            "AND agent_id = ? AND key = ?",
            (memory_id, weight, *scope, key),
        )
    conn.executemany(
        "INSERT INTO memory_times (memory_id, start, end, kind) VALUES (?, ?, ?, ?)",
        [(memory_id, start, end, time_kind)
         for start, end, time_kind in _v4_time_links(attributes)],
    )  # fmt: skip
    if kind == "turn":
        terms = [_V4_DOCS, *sorted(set(_v4_words(text)))]
        conn.executemany(
            "INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET docs = max(docs + excluded.docs, 0)",
            [(*scope, term, 1) for term in terms],
        )
        counts = Counter(stem(w) for w in _v4_words(text))
        conn.execute(
            "INSERT INTO sessions (namespace, user_id, agent_id, session_id, length) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET length = max(length + "
            "excluded.length, 0)",
            (*where, sum(counts.values())),
        )
        conn.executemany(
            "INSERT INTO session_terms (session_pk, term, tf) SELECT pk, ?, ? FROM sessions "
            "WHERE namespace = ? AND user_id = ? AND agent_id = ? AND session_id = ? "
            "ON CONFLICT DO UPDATE SET tf = max(tf + excluded.tf, 0)",
            [(term, count, *where) for term, count in counts.items()],
        )


def _v4_entity_links(attributes: Mapping[str, Any]) -> list[tuple[str, str, str, float]]:
    """(key, name, kind, weight) of a memory's entity and key-phrase links, one per key."""
    out: dict[str, tuple[str, str, str, float]] = {}
    for item in _v4_items(attributes, "entities"):
        key, name = item.get("key"), item.get("name")
        if isinstance(key, str) and key and key not in out:
            shown = name if isinstance(name, str) and name else key
            out[key] = (key, shown, str(item.get("kind") or "name"), 1.0)
    for item in _v4_items(attributes, "keyphrases"):
        key, score = item.get("key"), item.get("score")
        if isinstance(key, str) and key and key not in out:
            weight = (
                min(1.0, float(score) / 8.0)
                if isinstance(score, int | float) and score > 0
                else 0.5
            )
            out[key] = (key, key, "keyphrase", weight)
    return list(out.values())


def _v4_time_links(attributes: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(start, end, kind) of the periods a memory mentions, as ISO dates."""
    out: list[tuple[str, str, str]] = []
    for item in _v4_items(attributes, "times"):
        try:
            start = date.fromisoformat(str(item["start"]))
            end = date.fromisoformat(str(item["end"]))
        except (KeyError, ValueError):
            continue
        if start <= end:
            out.append((start.isoformat(), end.isoformat(), str(item.get("kind") or "date")))
    return out


def _v4_items(attributes: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = attributes.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _v4_words(text: str) -> list[str]:
    return [m.group(0).split("'")[0] for m in _V4_WORD.finditer(text.lower())]
