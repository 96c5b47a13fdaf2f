"""SQLite store: one file, WAL for many readers and processes, revisions for live indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from remem.errors import CorruptStoreError, StoreError
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
    Reinforce,
    ScopeKey,
    SessionInfo,
    Store,
    WriteBatch,
)
from remem.stores.common import (
    MEMORY_COLUMNS,
    MESSAGE_COLUMNS,
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
from remem.stores.sqlite import consolidation, deletion, rows
from remem.stores.sqlite.connection import Connections
from remem.stores.sqlite.jobs import SQLiteJobs, complete, delete_jobs, enqueue, job_counts
from remem.stores.sqlite.links import link_memories, link_memory, unlink_memories
from remem.stores.sqlite.migrations import apply_migrations
from remem.stores.sqlite.portable import dump_rows, load_rows
from remem.util import dumps, from_db_time, to_db_time, utcnow

APP_ID = "remem"


class SQLiteStore(SQLiteJobs, Store):
    """The default store: one file, safe for several threads and processes.

    Each thread has its own connection; reads that must agree run in ``snapshot()``;
    every write transaction stamps its rows with a new revision (``changes``).
    """

    def __init__(self, path: str | Path = "remem.db", busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self._db = Connections(self.path, busy_timeout_ms)
        self.schema_version = self._initialise()

    # -- setup -------------------------------------------------------------------------

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}

    def _check_ours(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if tables and "remem_meta" not in tables:
            self._db.close()  # refuse before touching the file (no WAL switch)
            raise CorruptStoreError(
                f"{self.path} is a SQLite database of another application "
                f"(tables: {', '.join(sorted(tables)[:5])}); use a new file for remem"
            )

    def _initialise(self) -> int:
        """Check the file is ours, then create or migrate it under the write lock."""
        conn = self._db.first
        try:
            self._check_ours(conn, self._tables(conn))
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = self._tables(conn)  # re-read: another process may have set it up
                self._check_ours(conn, tables)
                if "remem_meta" not in tables:
                    conn.execute(
                        "CREATE TABLE remem_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    conn.execute("INSERT INTO remem_meta VALUES ('app', ?)", (APP_ID,))
                version = apply_migrations(conn, to_db_time(utcnow()) or "")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._db.close()
                raise
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            self._db.configure(conn)
            return version
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self._db.open_error(exc) from exc

    def bind_embedder(self, model_id: str, dimensions: int) -> None:
        """Remember the embedder that built this file; refuse a different one."""
        wanted = f"{model_id}:{dimensions}"
        recorded = self.embedder_id()
        if recorded is None:  # first use: record it (once, even with racing processes)
            with self._db.write() as (conn, _):
                conn.execute("INSERT OR IGNORE INTO remem_meta VALUES ('embedder', ?)", (wanted,))
            recorded = self.embedder_id()
        if recorded != wanted:
            raise embedder_conflict(self.path, recorded, wanted)

    def embedder_id(self) -> str | None:
        """The embedder recorded for this file, if any."""
        found = self._db.query("SELECT value FROM remem_meta WHERE key = 'embedder'")
        return None if not found else str(found[0][0])

    def snapshot(self) -> AbstractContextManager[int]:
        """Reads inside the block see one state of the file (a read transaction)."""
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
            conn.executemany(
                f"INSERT INTO memories ({MEMORY_COLUMNS}, index_text, position, "
                f"embedding, rev) VALUES ({','.join('?' * 27)})",
                [(*rows.memory_values(n.record), n.index_text,
                  positions.get(n.record.source_ids[0], 0) if n.record.source_ids else 0,
                  None if n.vector is None else unit(n.vector).tobytes(), revision)
                 for n in fresh],
            )  # fmt: skip
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
    def _insert_messages(
        conn: sqlite3.Connection, messages: Sequence[Message], skipped: set[str]
    ) -> dict[str, int]:
        """Insert new messages, numbering each within its session; returns id -> seq."""

        def last_seq(key: tuple[str, str, str, str]) -> int:
            row = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM messages WHERE namespace = ? AND "
                "user_id = ? AND agent_id = ? AND session_id = ?",
                key,
            ).fetchone()
            return int(row[0])

        positions, numbered = number_messages(messages, skipped, last_seq)
        conn.executemany(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}, seq) VALUES ({','.join('?' * 12)})",
            [(*rows.message_values(message), seq) for message, seq in numbered],
        )
        return positions

    @staticmethod
    def _skip_existing(conn: sqlite3.Connection, messages: Sequence[Message]) -> set[str]:
        """Ids already stored with the same content; a reused id with new content conflicts."""
        skipped: set[str] = set()
        for key, group in by_owner(messages).items():
            for start in range(0, len(group), 500):
                chunk = {m.id: m for m in group[start : start + 500]}
                for row in conn.execute(
                    "SELECT id, role, content FROM messages WHERE namespace = ? AND user_id = ? "
                    f"AND agent_id = ? AND id IN ({','.join('?' * len(chunk))})",
                    (*key, *chunk),
                ):
                    check_same_message(chunk[row["id"]], row["role"], row["content"])
                    skipped.add(row["id"])
        return skipped

    def _supersede_others(
        self, conn: sqlite3.Connection, record: MemoryRecord, revision: int, batch: WriteBatch
    ) -> None:
        """Mark every other current memory of the record's kind in exactly its scope as
        superseded by it, logging SUPERSEDE events."""
        where, params = rows.filter_sql(exact(record.scope, kinds=(record.kind,)), "m")
        for row in conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} AND m.id != ?",
            [*params, record.id],
        ).fetchall():
            before = rows.memory_from_row(row)
            after = replace(before, superseded_by=record.id, updated_at=utcnow())
            conn.execute(
                "UPDATE memories SET superseded_by = ?, updated_at = ?, rev = ? "
                "WHERE namespace = ? AND id = ?",
                (record.id, to_db_time(after.updated_at), revision, before.scope.namespace,
                 before.id),
            )  # fmt: skip
            self._log(conn, after, "SUPERSEDE", before, after, batch.reason, batch.actor)

    def update_memory(
        self, namespace: str, memory_id: str, patch: MemoryPatch, actor: str, reason: str
    ) -> MemoryRecord:
        """Apply a typed patch to one memory and log the UPDATE with before and after."""
        with self._db.write() as (conn, revision):
            before = self._get_one(conn, namespace, memory_id)
            after = replace(before, **patch.changes(), updated_at=utcnow())
            values = dict(zip(MEMORY_COLUMNS.split(", "), rows.memory_values(after),
                              strict=True))  # fmt: skip
            sets = {k: values[k] for k in ("text", "metadata", "attributes", "pinned",
                                           "expires_at", "importance", "updated_at")}  # fmt: skip
            if patch.index_text is not KEEP:
                sets["index_text"] = patch.index_text
            if patch.vector is not KEEP:
                sets["embedding"] = None if patch.vector is None else unit(patch.vector).tobytes()
            sets["rev"] = revision
            conn.execute(
                f"UPDATE memories SET {', '.join(f'{k} = ?' for k in sets)} "
                "WHERE namespace = ? AND id = ?",
                [*sets.values(), namespace, memory_id],
            )
            if after.text != before.text or after.attributes != before.attributes:
                unlink_memories(conn, linked([before]))  # its old names and words
                link_memory(conn, owner(after.scope), after.kind, after.text, after.attributes)
            self._log(conn, after, "UPDATE", before, after, reason, actor)
        return after

    def record_access(
        self, namespace: str, accesses: Sequence[tuple[str, datetime]], reinforce: Reinforce
    ) -> int:
        """Reinforce recalled memories and count their recalls, in one transaction; the
        rows keep their ``rev`` and take the new revision as ``access_rev``."""
        times = by_memory(accesses)
        if not times:
            return 0
        columns = "id, strength, access_count, last_accessed_at, created_at"
        with self._db.write() as (conn, revision):
            updates = []
            for row in self._rows_by_id(conn, namespace, list(times), columns):
                strength, count, last = recalled(
                    row["strength"], row["access_count"], from_db_time(row["last_accessed_at"]),
                    from_db_time(row["created_at"]) or utcnow(), times[row["id"]], reinforce,
                )  # fmt: skip
                updates.append((strength, count, to_db_time(last), revision, namespace, row["id"]))
            conn.executemany(
                "UPDATE memories SET strength = ?, access_count = ?, last_accessed_at = ?, "
                "access_rev = ? WHERE namespace = ? AND id = ?",
                updates,
            )
        return len(updates)

    @staticmethod
    def _rows_by_id(
        conn: sqlite3.Connection, namespace: str, ids: list[str], columns: str
    ) -> list[sqlite3.Row]:
        """Some columns of the memories with these ids (in chunks of 500 parameters)."""
        out: list[sqlite3.Row] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {columns} FROM memories WHERE namespace = ? AND id IN ({marks})"
            out.extend(conn.execute(sql, [namespace, *chunk]).fetchall())
        return out

    def archive_memories(
        self, namespace: str, items: Sequence[tuple[MemoryRecord, str]], actor: str
    ) -> list[MemoryRecord]:
        """Set ``expired_at`` on memories still as the caller read them, logging ARCHIVE."""
        if not items:
            return []
        with self._db.write() as (conn, revision):
            ids = list(dict.fromkeys(seen.id for seen, _ in items))
            found = self._rows_by_id(conn, namespace, ids, MEMORY_COLUMNS)
            stored = {r["id"]: rows.memory_from_row(r) for r in found}
            done: list[MemoryRecord] = []
            now = utcnow()
            for seen, reason in items:
                before = stored.get(seen.id)
                if before is None or not archivable(before, seen):
                    continue
                after = stored[seen.id] = replace(before, expired_at=now, updated_at=now)
                conn.execute(
                    "UPDATE memories SET expired_at = ?, updated_at = ?, rev = ? "
                    "WHERE namespace = ? AND id = ?",
                    (to_db_time(now), to_db_time(now), revision, namespace, seen.id),
                )
                self._log(conn, after, "ARCHIVE", before, after, reason, actor)
                done.append(after)
        return done

    def _log(
        self,
        conn: sqlite3.Connection,
        record: MemoryRecord,
        action: str,
        before: MemoryRecord | None,
        after: MemoryRecord | None,
        reason: str,
        actor: str,
    ) -> None:
        self._log_all(conn, [(record, action, before, after)], reason, actor)

    @staticmethod
    def _log_all(
        conn: sqlite3.Connection,
        entries: Sequence[tuple[MemoryRecord, str, MemoryRecord | None, MemoryRecord | None]],
        reason: str,
        actor: str,
    ) -> None:
        """Audit-log entries (memory, action, before, after) in one statement."""
        at = to_db_time(utcnow())
        conn.executemany(
            "INSERT INTO memory_events (memory_id, namespace, action, before, after, reason, "
            "actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(record.id, record.scope.namespace, action,
              dumps(record_snapshot(before)) if before else None,
              dumps(record_snapshot(after)) if after else None, reason, actor, at)
             for record, action, before, after in entries],
        )  # fmt: skip

    def delete_memory(self, namespace: str, memory_id: str, actor: str, reason: str) -> None:
        """Delete one memory and what was derived from it; its history keeps what
        happened, not what it said (``deletion``)."""
        with self._db.write() as (conn, revision):
            deletion.remove(conn, [self._get_one(conn, namespace, memory_id)], revision,
                            reason, actor)  # fmt: skip
        deletion.after_delete(self._db)

    def delete_scope(self, flt: MemoryFilter, actor: str) -> tuple[int, int]:
        """Delete a scope's messages, memories, jobs and what was derived from them
        (``deletion``)."""
        msg_where, msg_params = rows.scope_sql(
            Scope(flt.user_id, flt.agent_id, flt.session_id, flt.namespace)
        )
        with self._db.write() as (conn, revision):
            counts = deletion.delete_scope(conn, revision, flt, actor)
            delete_jobs(conn, msg_where, msg_params)
        deletion.after_delete(self._db)
        return counts

    def compact(self, full: bool = False) -> CompactReport:
        """Clear deletions' leftovers, VACUUM and empty the write-ahead log (``full``
        changes nothing here: VACUUM always rewrites the whole file)."""
        return deletion.compact(self._db)

    # -- reads -------------------------------------------------------------------------

    def _get_one(self, conn: sqlite3.Connection, namespace: str, memory_id: str) -> MemoryRecord:
        row = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE namespace = ? AND id = ?",
            (namespace, memory_id),
        ).fetchone()
        if row is None:
            raise memory_not_found(namespace, memory_id)
        return rows.memory_from_row(row)

    def get_memories(self, namespace: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """Memories by id in the order asked; unknown or foreign ids are left out."""
        found: dict[str, MemoryRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for row in self._db.query(
                f"SELECT {MEMORY_COLUMNS} FROM memories "
                f"WHERE namespace = ? AND id IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk],
            ):
                found[row["id"]] = rows.memory_from_row(row)
        return [found[i] for i in ids if i in found]

    def list_memories(
        self, flt: MemoryFilter, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        """Memories matching the filter, most recent first."""
        where, params = rows.filter_sql(flt, "m", to_db_time(utcnow()))
        found = self._db.query(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} "
            "ORDER BY coalesce(m.occurred_at, m.created_at) DESC, m.pk DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [rows.memory_from_row(r) for r in found]

    def existing_messages(self, scope: Scope, ids: Sequence[str]) -> dict[str, Message]:
        """Messages among ``ids`` already stored for the scope's user and agent."""
        return {m.id: m for m in self.get_messages(scope.namespace, scope, ids)}

    def get_messages(self, namespace: str, scope: Scope, ids: Sequence[str]) -> list[Message]:
        """Messages by id within one user/agent scope."""
        out: list[Message] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            out.extend(
                rows.message_from_row(r)
                for r in self._db.query(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE namespace = ? "
                    f"AND user_id = ? AND agent_id = ? AND id IN ({','.join('?' * len(chunk))})",
                    [namespace, scope.user_id or "", scope.agent_id or "", *chunk],
                )
            )
        return out

    def events(self, namespace: str, memory_id: str) -> list[MemoryEvent]:
        """The audit log of one memory, oldest first."""
        found = self._db.query(
            "SELECT * FROM memory_events WHERE namespace = ? AND memory_id = ? ORDER BY id",
            [namespace, memory_id],
        )
        return [rows.event_from_row(r) for r in found]

    def changes(self, scope: ScopeKey, since: int) -> Changes:
        """Rows of the scope written after revision ``since`` and ids deleted since."""
        with self.snapshot() as revision:
            where, params = rows.scope_sql(
                Scope(scope.user_id, scope.agent_id, scope.session_id, scope.namespace)
            )
            deleted = [r[0] for r in self._db.query(
                f"SELECT id FROM memory_tombstones WHERE {where} AND rev > ? ORDER BY rev, pk",
                [*params, since])]  # fmt: skip
            found = self._db.query(
                f"SELECT {rows.INDEX_COLUMNS} FROM memories WHERE {where} AND rev > ? "
                "ORDER BY rev, pk",
                [*params, since],
            )
            accessed = self._db.query(  # ``access_rev > 0`` lets the partial indexes serve
                f"SELECT {rows.ACCESS_COLUMNS} FROM memories WHERE {where} AND access_rev > 0 "
                "AND access_rev > ? AND rev <= ? ORDER BY access_rev, pk",
                [*params, since, since],
            )
            return Changes(revision, tuple(rows.index_row(r) for r in found), tuple(deleted),
                           tuple(rows.access_row(r) for r in accessed))  # fmt: skip

    def session_info(self, scope: Scope) -> SessionInfo:
        """How many messages the exact session has, and its current summary."""
        key = [scope.namespace, scope.user_id or "", scope.agent_id or "", scope.session_id or ""]
        with self.snapshot():
            count = self._db.query(
                "SELECT coalesce(max(seq), 0) FROM messages WHERE namespace = ? AND "
                "user_id = ? AND agent_id = ? AND session_id = ?",
                key,
            )[0][0]
            where, params = rows.filter_sql(exact(scope, kinds=("summary",)), "m")
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
        sql = "SELECT key, kind FROM entities WHERE namespace = ? AND user_id = ? AND agent_id = ?"
        if keys is None:
            return {r[0]: r[1] for r in self._db.query(sql, list(owner(scope)))}
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            for r in self._db.query(f"{sql} AND key IN ({','.join('?' * len(chunk))})",
                                    [*owner(scope), *chunk]):  # fmt: skip
                found[r[0]] = r[1]
        return found

    def term_counts(self, scope: Scope, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many turns the scope's user/agent has, and how many contain each word."""
        wanted = list(dict.fromkeys(["", *terms]))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for r in self._db.query(
                "SELECT term, docs FROM term_counts WHERE namespace = ? AND user_id = ? "
                f"AND agent_id = ? AND term IN ({','.join('?' * len(chunk))})",
                [*owner(scope), *chunk],
            ):
                found[r[0]] = int(r[1])
        return found.pop("", 0), {t: found.get(t, 0) for t in terms}

    # -- whole-store -------------------------------------------------------------------

    def stats(self, namespace: str, scope: Scope | None = None) -> Stats:
        """Counts of messages, memories (by kind), events, users and sessions."""
        scope = scope or Scope(namespace=namespace)
        flt = MemoryFilter(namespace, scope.user_id, scope.agent_id, scope.session_id,
                           current_only=False)  # fmt: skip
        where, params = rows.filter_sql(flt, "m")
        msg_where, msg_params = rows.scope_sql(scope)
        with self.snapshot():  # every count from one state of the file
            by_kind = {
                r[0]: r[1]
                for r in self._db.query(
                    f"SELECT kind, count(*) FROM memories m WHERE {where} GROUP BY kind", params
                )
            }
            msg = self._db.query(
                "SELECT count(*), count(DISTINCT nullif(user_id, '')), count(DISTINCT CASE "
                "WHEN session_id != '' THEN user_id || '/' || agent_id || '/' || session_id "
                f"END) FROM messages WHERE {msg_where}",
                msg_params,
            )[0]
            events = self._db.query(
                "SELECT count(*) FROM memory_events WHERE namespace = ?", [namespace]
            )[0][0]
            embedder = self.embedder_id()
            jobs = job_counts(self._db, msg_where, msg_params)
        return Stats(
            messages=msg[0], memories=sum(by_kind.values()), memories_by_kind=by_kind,
            events=events, users=msg[1], sessions=msg[2], embedder=embedder,
            schema_version=self.schema_version, path=self.path, jobs=jobs,
        )  # fmt: skip

    def dump(self, namespace: str) -> Iterator[dict[str, Any]]:
        """Every message, memory (with its vector) and event of a namespace."""
        with self.snapshot():
            yield from dump_rows(self._db.get(), namespace)

    def load(self, namespace: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Insert dumped rows in one transaction."""
        try:
            with self._db.write() as (conn, revision):
                return load_rows(conn, namespace, items, revision)
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise import_conflict(namespace, exc.__cause__) from exc
            raise

    # -- API keys ----------------------------------------------------------------------

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key's hash and owner."""
        with self._db.write() as (conn, _):
            conn.execute(
                "INSERT INTO api_keys (id, hash, tenant, name, admin, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, key_hash, key.tenant, key.name, int(key.admin),
                 to_db_time(key.created_at), to_db_time(key.revoked_at)),
            )  # fmt: skip

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return [_api_key(r) for r in self._db.query(f"{_KEY_SELECT} ORDER BY created_at, id")]

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        """Set a key's revocation time (kept if it was already revoked)."""
        with self._db.write() as (conn, _):
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                (to_db_time(at), key_id),
            )
            row = conn.execute(f"{_KEY_SELECT} WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise key_not_found(key_id)
        return _api_key(row)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key stored with this hash."""
        found = self._db.query(f"{_KEY_SELECT} WHERE hash = ?", (key_hash,))
        return _api_key(found[0]) if found else None

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        self._db.close()


_KEY_SELECT = "SELECT id, tenant, name, admin, created_at, revoked_at FROM api_keys"


def _api_key(r: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=r["id"], tenant=r["tenant"], name=r["name"], admin=bool(r["admin"]),
        created_at=from_db_time(r["created_at"]) or utcnow(),
        revoked_at=from_db_time(r["revoked_at"]),
    )  # fmt: skip
