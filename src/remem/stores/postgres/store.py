"""PostgreSQL + pgvector store: the same contract as SQLite, for many processes and hosts.

Keyword and vector search run in-process on the live scope indexes (``remem.index``), as
with SQLite; this store keeps the rows, the revisions they were written at and the
tombstones of deleted memories, so every process's indexes take in exactly what changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from remem.errors import ConfigError, ConflictError, StoreError
from remem.models import (
    ApiKey,
    CompactReport,
    MemoryEvent,
    MemoryRecord,
    Message,
    Scope,
    Stats,
)
from remem.stores.base import (
    KEEP,
    Changes,
    MemoryFilter,
    MemoryPatch,
    NewMemory,
    Reinforce,
    ScopeKey,
    SessionInfo,
    Store,
    WriteBatch,
)
from remem.stores.common import (
    MEMORY_COLUMNS,
    MESSAGE_COLUMNS,
    SessionKey,
    archivable,
    by_memory,
    by_owner,
    check_same_message,
    embedder_conflict,
    exact,
    fresh_memories,
    import_conflict,
    key_not_found,
    memory_not_found,
    number_messages,
    owner,
    recalled,
    record_snapshot,
    unit,
)
from remem.stores.deletion import linked
from remem.stores.postgres import consolidation, deletion, rows
from remem.stores.postgres.connection import Connection, Connections, shown_url
from remem.stores.postgres.jobs import PostgresJobs, complete, delete_jobs, enqueue, job_counts
from remem.stores.postgres.links import link_memories, unlink_memories
from remem.stores.postgres.migrations import apply_migrations
from remem.stores.postgres.portable import dump_rows, load_rows
from remem.util import utcnow

Logged = tuple[MemoryRecord, str, MemoryRecord | None, MemoryRecord | None]


def _fetch(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of a read inside a write transaction (errors surface through ``write``)."""
    return conn.execute(sql, params, binary=True).fetchall()


class PostgresStore(PostgresJobs, Store):
    """A store in one PostgreSQL database with pgvector, shared by any number of
    processes: ``PostgresStore("postgresql://user:pass@host/db")``.

    Options: ``pool_size`` (connections kept per store), ``connect_timeout`` (seconds to
    open one), ``pool_timeout`` (seconds to wait for a free one).
    """

    def __init__(
        self,
        path: str,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
        pool_timeout: float = 30.0,
    ) -> None:
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"pool_size must be a whole number of at least 1, not {pool_size!r}")
        for name, value in (("connect_timeout", connect_timeout), ("pool_timeout", pool_timeout)):
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a number of seconds above 0, not {value!r}")
        self.path = shown_url(path)
        self._db = Connections(path, pool_size, float(connect_timeout), float(pool_timeout))
        self.schema_version = self._initialise()

    def _initialise(self) -> int:
        """Check the database, migrate it (once, whoever else is opening it), then start
        the pool."""
        conn = self._db.connect()
        try:
            encoding = conn.execute("SHOW server_encoding").fetchone()
            if encoding is None or encoding["server_encoding"] != "UTF8":
                raise StoreError(
                    f"{self.path} stores text as {encoding and encoding['server_encoding']}; "
                    "remem needs UTF8: CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0"
                )
            version = apply_migrations(conn, self.path)
            found = conn.execute("SELECT 'vector'::regtype::oid AS oid").fetchone()
            oid = int(found["oid"]) if found else 0
        except psycopg.Error as exc:
            raise self._db.error(exc, "setting up") from exc
        finally:
            conn.close()
        self._db.open_pool(oid)
        return version

    def bind_embedder(self, model_id: str, dimensions: int) -> None:
        """Remember the embedder that built this database; refuse a different one."""
        wanted = f"{model_id}:{dimensions}"
        recorded = self.embedder_id()
        if recorded is None:  # first use: record it (once, even with racing processes)
            with self._db.write() as (conn, _):
                conn.execute(
                    "INSERT INTO remem_meta (key, value) VALUES ('embedder', %s) "
                    "ON CONFLICT DO NOTHING",
                    (wanted,),
                )
            recorded = self.embedder_id()
        if recorded != wanted:
            raise embedder_conflict(self.path, recorded, wanted)

    def embedder_id(self) -> str | None:
        """The embedder recorded for this database, if any."""
        found = self._db.query("SELECT value FROM remem_meta WHERE key = 'embedder'")
        return None if not found else str(found[0]["value"])

    def snapshot(self) -> AbstractContextManager[int]:
        """Reads inside the block see one state of the database (a REPEATABLE READ
        transaction), and every write up to the revision it yields."""
        return self._db.snapshot()

    def latest_revision(self) -> int:
        """The newest committed revision (one read; inside a snapshot, its revision)."""
        return self._db.latest_revision()

    def reads(self) -> int:
        """How many queries this thread has run."""
        return self._db.reads()

    # -- writes ------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> tuple[str, ...]:
        """Insert messages and memories in one transaction; skip already-stored messages."""
        with self._db.write() as (conn, revision):
            if batch.complete is not None:
                complete(conn, batch.complete)  # first: a lost claim writes nothing
            skipped = self._skip_existing(conn, batch.messages)
            positions = self._insert_messages(conn, batch.messages, skipped)
            fresh = fresh_memories(batch.memories, skipped)
            self._insert_memories(conn, fresh, positions, revision)
            written = [n.record for n in fresh]
            self._log_all(conn, [(r, "ADD", None, r) for r in written], batch.reason,
                          batch.actor)  # fmt: skip
            link_memories(conn, [(owner(r.scope), r.kind, r.text, r.attributes) for r in written])
            for record in written:
                if record.kind in batch.singleton_kinds:
                    self._supersede_others(conn, record, revision, batch)
            consolidation.apply(conn, batch, revision, self._log_all)
            enqueue(conn, batch.jobs, skipped)
        return tuple(m.id for m in batch.messages if m.id in skipped)

    @staticmethod
    def _skip_existing(conn: Connection, messages: Sequence[Message]) -> set[str]:
        """Ids already stored with the same content; a reused id with new content conflicts."""
        skipped: set[str] = set()
        for key, group in by_owner(messages).items():
            chunk = {m.id: m for m in group}
            for row in _fetch(
                conn,
                "SELECT id, role, content FROM messages WHERE namespace = %s AND user_id = %s "
                "AND agent_id = %s AND id = ANY(%s)",
                (*key, list(chunk)),
            ):
                check_same_message(chunk[row["id"]], row["role"], row["content"])
                skipped.add(row["id"])
        return skipped

    @staticmethod
    def _insert_messages(
        conn: Connection, messages: Sequence[Message], skipped: set[str]
    ) -> dict[str, int]:
        """Insert new messages, numbering each within its session; returns id -> seq."""

        def last_seq(key: SessionKey) -> int:
            found = _fetch(
                conn,
                "SELECT coalesce(max(seq), 0) AS seq FROM messages WHERE namespace = %s AND "
                "user_id = %s AND agent_id = %s AND session_id = %s",
                key,
            )
            return int(found[0]["seq"])

        positions, numbered = number_messages(messages, skipped, last_seq)
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO messages ({MESSAGE_COLUMNS}, seq) VALUES ({', '.join(['%s'] * 12)})",
                [(*rows.message_values(message), seq) for message, seq in numbered],
            )
        return positions

    @staticmethod
    def _insert_memories(
        conn: Connection, fresh: Sequence[NewMemory], positions: Mapping[str, int], revision: int
    ) -> None:
        """Insert memories (unit vectors), each at the position of its first source."""
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO memories ({MEMORY_COLUMNS}, index_text, position, embedding, rev) "
                f"VALUES ({', '.join(['%s'] * 27)})",
                [(*rows.memory_values(n.record), n.index_text,
                  positions.get(n.record.source_ids[0], 0) if n.record.source_ids else 0,
                  None if n.vector is None else unit(n.vector), revision)
                 for n in fresh],
            )  # fmt: skip

    def _supersede_others(
        self, conn: Connection, record: MemoryRecord, revision: int, batch: WriteBatch
    ) -> None:
        """Mark every other current memory of the record's kind in exactly its scope as
        superseded by it, logging SUPERSEDE events."""
        where, params = rows.filter_sql(exact(record.scope, kinds=(record.kind,)), "m")
        found = _fetch(
            conn,
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} AND m.id != %s ORDER BY m.pk",
            [*params, record.id],
        )
        changed = [(before, replace(before, superseded_by=record.id, updated_at=utcnow()))
                   for before in map(rows.memory_from_row, found)]  # fmt: skip
        with conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE memories SET superseded_by = %s, updated_at = %s, rev = %s "
                "WHERE namespace = %s AND id = %s",
                [(record.id, after.updated_at, revision, before.scope.namespace, before.id)
                 for before, after in changed],
            )  # fmt: skip
        self._log_all(conn, [(after, "SUPERSEDE", before, after) for before, after in changed],
                      batch.reason, batch.actor)  # fmt: skip

    def update_memory(
        self, namespace: str, memory_id: str, patch: MemoryPatch, actor: str, reason: str
    ) -> MemoryRecord:
        """Apply a typed patch to one memory and log the UPDATE with before and after."""
        with self._db.write() as (conn, revision):
            before = self._get_one(conn, namespace, memory_id)
            after = replace(before, **patch.changes(), updated_at=utcnow())
            sets: dict[str, Any] = {
                "text": after.text, "metadata": Jsonb(after.metadata),
                "attributes": Jsonb(after.attributes), "pinned": after.pinned,
                "expires_at": after.expires_at, "importance": after.importance,
                "updated_at": after.updated_at,
            }  # fmt: skip
            if patch.index_text is not KEEP:
                sets["index_text"] = patch.index_text
            if patch.vector is not KEEP:
                sets["embedding"] = None if patch.vector is None else unit(patch.vector)
            sets["rev"] = revision
            conn.execute(
                f"UPDATE memories SET {', '.join(f'{k} = %s' for k in sets)} "
                "WHERE namespace = %s AND id = %s",
                [*sets.values(), namespace, memory_id],
            )
            if after.text != before.text or after.attributes != before.attributes:
                unlink_memories(conn, linked([before]))  # its old names and words
                link_memories(conn, [(owner(after.scope), after.kind, after.text,
                                      after.attributes)])  # fmt: skip
            self._log_all(conn, [(after, "UPDATE", before, after)], reason, actor)
        return after

    def record_access(
        self, namespace: str, accesses: Sequence[tuple[str, datetime]], reinforce: Reinforce
    ) -> int:
        """Reinforce recalled memories and count their recalls, in one transaction; the
        rows keep their ``rev`` and take the new revision as ``access_rev``."""
        times = by_memory(accesses)
        if not times:
            return 0
        with self._db.write() as (conn, revision):
            found = _fetch(
                conn,
                "SELECT id, strength, access_count, last_accessed_at, created_at FROM memories "
                "WHERE namespace = %s AND id = ANY(%s) ORDER BY pk FOR UPDATE",
                (namespace, list(times)),
            )
            updates = []
            for row in found:
                strength, count, last = recalled(
                    row["strength"], int(row["access_count"]), row["last_accessed_at"],
                    row["created_at"], times[row["id"]], reinforce,
                )  # fmt: skip
                updates.append((strength, count, last, revision, namespace, row["id"]))
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE memories SET strength = %s, access_count = %s, "
                    "last_accessed_at = %s, access_rev = %s WHERE namespace = %s AND id = %s",
                    updates,
                )
        return len(updates)

    def archive_memories(
        self, namespace: str, items: Sequence[tuple[MemoryRecord, str]], actor: str
    ) -> list[MemoryRecord]:
        """Set ``expired_at`` on memories still as the caller read them, logging ARCHIVE."""
        if not items:
            return []
        with self._db.write() as (conn, revision):
            found = _fetch(
                conn,
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = %s AND id = ANY(%s) "
                "ORDER BY pk FOR UPDATE",
                (namespace, list(dict.fromkeys(seen.id for seen, _ in items))),
            )
            stored = {r["id"]: rows.memory_from_row(r) for r in found}
            done: list[MemoryRecord] = []
            now = utcnow()
            for seen, reason in items:
                before = stored.get(seen.id)
                if before is None or not archivable(before, seen):
                    continue
                after = stored[seen.id] = replace(before, expired_at=now, updated_at=now)
                conn.execute(
                    "UPDATE memories SET expired_at = %s, updated_at = %s, rev = %s "
                    "WHERE namespace = %s AND id = %s",
                    (now, now, revision, namespace, seen.id),
                )
                self._log_all(conn, [(after, "ARCHIVE", before, after)], reason, actor)
                done.append(after)
        return done

    @staticmethod
    def _log_all(conn: Connection, entries: Sequence[Logged], reason: str, actor: str) -> None:
        """Audit-log entries (memory, action, before, after) in one statement."""
        at = utcnow()
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO memory_events (memory_id, namespace, action, before, after, "
                "reason, actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(record.id, record.scope.namespace, action,
                  Jsonb(record_snapshot(before)) if before else None,
                  Jsonb(record_snapshot(after)) if after else None, reason, actor, at)
                 for record, action, before, after in entries],
            )  # fmt: skip

    def delete_memory(self, namespace: str, memory_id: str, actor: str, reason: str) -> None:
        """Delete one memory and what was derived from it; its history keeps what
        happened, not what it said (``deletion``)."""
        with self._db.write() as (conn, revision):
            record = self._get_one(conn, namespace, memory_id)
            deletion.remove(conn, [record], revision, reason, actor)

    def delete_scope(self, flt: MemoryFilter, actor: str) -> tuple[int, int]:
        """Delete a scope's messages, memories, jobs and what was derived from them
        (``deletion``)."""
        msg_where, msg_params = rows.scope_sql(
            Scope(flt.user_id, flt.agent_id, flt.session_id, flt.namespace)
        )
        with self._db.write() as (conn, revision):
            counts = deletion.delete_scope(conn, revision, flt, actor)
            delete_jobs(conn, msg_where, msg_params)
        return counts

    def compact(self, full: bool = False) -> CompactReport:
        """Clear deletions' leftovers, then VACUUM remem's tables (``full``: VACUUM FULL,
        which rewrites them and locks each while it runs)."""
        return deletion.compact(self._db, full)

    # -- reads -------------------------------------------------------------------------

    @staticmethod
    def _get_one(conn: Connection, namespace: str, memory_id: str) -> MemoryRecord:
        found = _fetch(
            conn,
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = %s AND id = %s",
            (namespace, memory_id),
        )
        if not found:
            raise memory_not_found(namespace, memory_id)
        return rows.memory_from_row(found[0])

    def get_memories(self, namespace: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """Memories by id in the order asked; unknown or foreign ids are left out."""
        if not ids:
            return []
        found = {
            r["id"]: rows.memory_from_row(r)
            for r in self._db.query(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = %s AND id = ANY(%s)",
                (namespace, list(ids)),
            )
        }
        return [found[i] for i in ids if i in found]

    def list_memories(
        self, flt: MemoryFilter, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        """Memories matching the filter, most recent first."""
        where, params = rows.filter_sql(flt, "m", utcnow())
        found = self._db.query(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} "
            "ORDER BY coalesce(m.occurred_at, m.created_at) DESC, m.pk DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [rows.memory_from_row(r) for r in found]

    def existing_messages(self, scope: Scope, ids: Sequence[str]) -> dict[str, Message]:
        """Messages among ``ids`` already stored for the scope's user and agent."""
        return {m.id: m for m in self.get_messages(scope.namespace, scope, ids)}

    def get_messages(self, namespace: str, scope: Scope, ids: Sequence[str]) -> list[Message]:
        """Messages by id within one user/agent scope."""
        if not ids:
            return []
        found = self._db.query(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE namespace = %s AND user_id = %s "
            "AND agent_id = %s AND id = ANY(%s) ORDER BY pk",
            (namespace, scope.user_id or "", scope.agent_id or "", list(ids)),
        )
        return [rows.message_from_row(r) for r in found]

    def events(self, namespace: str, memory_id: str) -> list[MemoryEvent]:
        """The audit log of one memory, oldest first."""
        found = self._db.query(
            "SELECT * FROM memory_events WHERE namespace = %s AND memory_id = %s ORDER BY id",
            (namespace, memory_id),
        )
        return [rows.event_from_row(r) for r in found]

    def changes(self, scope: ScopeKey, since: int) -> Changes:
        """Rows of the scope written after revision ``since`` and ids deleted since."""
        where, params = rows.scope_sql(scope)
        with self.snapshot() as revision:
            deleted = self._db.query(
                f"SELECT id FROM memory_tombstones WHERE {where} AND rev > %s ORDER BY rev, pk",
                [*params, since],
            )
            found = self._db.query(
                f"SELECT {rows.INDEX_COLUMNS} FROM memories WHERE {where} AND rev > %s "
                "ORDER BY rev, pk",
                [*params, since],
            )
            accessed = self._db.query(  # ``access_rev > 0`` lets the partial indexes serve
                f"SELECT {rows.ACCESS_COLUMNS} FROM memories WHERE {where} AND access_rev > 0 "
                "AND access_rev > %s AND rev <= %s ORDER BY access_rev, pk",
                [*params, since, since],
            )
        return Changes(revision, tuple(map(rows.index_row, found)),
                       tuple(r["id"] for r in deleted),
                       tuple(map(rows.access_row, accessed)))  # fmt: skip

    def session_info(self, scope: Scope) -> SessionInfo:
        """How many messages the exact session has, and its current summary."""
        key = (scope.namespace, scope.user_id or "", scope.agent_id or "", scope.session_id or "")
        where, params = rows.filter_sql(exact(scope, kinds=("summary",)), "m")
        with self.snapshot():
            count = self._db.query(
                "SELECT coalesce(max(seq), 0) AS n FROM messages WHERE namespace = %s AND "
                "user_id = %s AND agent_id = %s AND session_id = %s",
                key,
            )[0]["n"]
            found = self._db.query(
                f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.pk DESC LIMIT 1",
                params,
            )
        return SessionInfo(int(count), rows.memory_from_row(found[0]) if found else None)

    def session_turns(self, scope: Scope) -> list[MemoryRecord]:
        """The exact session's current turns in conversation order."""
        where, params = rows.filter_sql(exact(scope, kinds=("turn",)), "m")
        found = self._db.query(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.position, m.pk",
            params,
        )
        return [rows.memory_from_row(r) for r in found]

    def entity_kinds(self, scope: Scope, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Key -> kind of the entities known to the scope's user and agent (among ``keys``)."""
        sql = (
            "SELECT key, kind FROM entities WHERE namespace = %s AND user_id = %s AND agent_id = %s"
        )
        if keys is None:
            found = self._db.query(sql, owner(scope))
        else:
            found = self._db.query(f"{sql} AND key = ANY(%s)", (*owner(scope), list(keys)))
        return {r["key"]: r["kind"] for r in found}

    def term_counts(self, scope: Scope, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many turns the scope's user/agent has, and how many contain each word."""
        wanted = list(dict.fromkeys(["", *terms]))
        found = {
            r["term"]: int(r["docs"])
            for r in self._db.query(
                "SELECT term, docs FROM term_counts WHERE namespace = %s AND user_id = %s "
                "AND agent_id = %s AND term = ANY(%s)",
                (*owner(scope), wanted),
            )
        }
        return found.pop("", 0), {t: found.get(t, 0) for t in terms}

    # -- whole-store -------------------------------------------------------------------

    def stats(self, namespace: str, scope: Scope | None = None) -> Stats:
        """Counts of messages, memories (by kind), events, users and sessions."""
        scope = scope or Scope(namespace=namespace)
        flt = MemoryFilter(namespace, scope.user_id, scope.agent_id, scope.session_id,
                           current_only=False)  # fmt: skip
        where, params = rows.filter_sql(flt, "m")
        msg_where, msg_params = rows.scope_sql(scope)
        with self.snapshot():  # every count from one state of the database
            by_kind = {r["kind"]: int(r["n"]) for r in self._db.query(
                f"SELECT kind, count(*) AS n FROM memories m WHERE {where} GROUP BY kind",
                params)}  # fmt: skip
            msg = self._db.query(
                "SELECT count(*) AS n, count(DISTINCT nullif(user_id, '')) AS users, "
                "count(DISTINCT (user_id, agent_id, session_id)) FILTER (WHERE session_id <> '') "
                f"AS sessions FROM messages WHERE {msg_where}",
                msg_params,
            )[0]
            events = self._db.query(
                "SELECT count(*) AS n FROM memory_events WHERE namespace = %s", (namespace,)
            )[0]["n"]
            embedder = self.embedder_id()
            jobs = job_counts(self._db, msg_where, msg_params)
        return Stats(
            messages=int(msg["n"]), memories=sum(by_kind.values()), memories_by_kind=by_kind,
            events=int(events), users=int(msg["users"]), sessions=int(msg["sessions"]),
            embedder=embedder, schema_version=self.schema_version, path=self.path, jobs=jobs,
        )  # fmt: skip

    def dump(self, namespace: str) -> Iterator[dict[str, Any]]:
        """Every message, memory (with its vector) and event of a namespace."""
        with self.snapshot():
            yield from dump_rows(self._db, namespace)

    def load(self, namespace: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Insert dumped rows in one transaction."""
        try:
            with self._db.write() as (conn, revision):
                return load_rows(conn, namespace, items, revision)
        except (StoreError, ConflictError) as exc:
            if isinstance(exc.__cause__, psycopg.IntegrityError):
                raise import_conflict(namespace, exc.__cause__) from exc
            raise

    # -- API keys ----------------------------------------------------------------------

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key's hash and owner."""
        with self._db.write() as (conn, _):
            conn.execute(
                "INSERT INTO api_keys (id, hash, tenant, name, admin, created_at, revoked_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key.id, key_hash, key.tenant, key.name, key.admin, key.created_at,
                 key.revoked_at),
            )  # fmt: skip

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        found = self._db.query(f"SELECT {rows.KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [rows.api_key(r) for r in found]

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        """Set a key's revocation time (kept if it was already revoked)."""
        with self._db.write() as (conn, _):
            found = _fetch(
                conn,
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s "
                f"RETURNING {rows.KEY_COLUMNS}",
                (at, key_id),
            )
            if not found:
                raise key_not_found(key_id)
        return rows.api_key(found[0])

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key stored with this hash."""
        found = self._db.query(f"SELECT {rows.KEY_COLUMNS} FROM api_keys WHERE hash = %s",
                               (key_hash,))  # fmt: skip
        return rows.api_key(found[0]) if found else None

    def close(self) -> None:
        """Close the pool (further calls fail)."""
        self._db.close()
