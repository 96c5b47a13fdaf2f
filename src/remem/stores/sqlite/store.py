"""SQLite store: WAL for many readers and processes, FTS5 for BM25, numpy for vectors."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.annotations import TimeLink, stem, words
from remem.errors import (
    ConfigError,
    ConflictError,
    CorruptStoreError,
    NotFoundError,
    StoreError,
)
from remem.models import MemoryEvent, MemoryRecord, Message, Scope, Stats
from remem.stores.base import (
    EntityRow,
    MemoryFilter,
    ScopeIndex,
    ScoredId,
    Store,
    StoreCapabilities,
    WriteBatch,
    session_key,
)
from remem.stores.sqlite import rows
from remem.stores.sqlite.links import DOCS, bm25_documents, link_memory, unlink_memory
from remem.stores.sqlite.migrations import apply_migrations
from remem.stores.sqlite.portable import dump_rows, load_rows
from remem.util import dumps, from_db_time, to_db_time, utcnow

APP_ID = "remem"
# ids, their unit vectors, and expiry times (None when nothing in the scope expires)
_CachedVectors = tuple[list[str], npt.NDArray[np.float32], npt.NDArray[Any] | None]


def _session_ref(record: MemoryRecord) -> tuple[str, str, str, str]:
    s = record.scope
    return (s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "")


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The vector scaled to length 1, so a dot product is the cosine."""
    data = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(data))
    out: npt.NDArray[np.float32] = data / norm if norm > 0 else data
    return out


class SQLiteStore(Store):
    """The default store: one file, safe for several threads and processes.

    Vectors live as float32 blobs beside each memory; searches load a scope's matrix
    once and keep it until any connection writes (``PRAGMA data_version``).
    """

    capabilities = StoreCapabilities()

    def __init__(self, path: str | Path = "remem.db", busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._generation = 0
        self._cache: dict[tuple[Any, ...], Any] = {}  # (what, filter) -> vectors or index
        self._cache_version: tuple[int, int] = (-1, -1)
        self._slots: dict[str, tuple[str, int]] = {}  # memory id -> slot; slots never change
        self._conn = self._connect(busy_timeout_ms)
        self.schema_version = self._initialise()

    # -- setup -------------------------------------------------------------------------

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot create {self.path}: folder {parent} does not exist")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc
        return conn

    def _open_error(self, exc: sqlite3.DatabaseError) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(f"{self.path} is locked by another process ({exc}); try again")
        return CorruptStoreError(
            f"{self.path} is damaged or not a remem database ({exc}); point --db / REMEM_DB "
            "at a remem database or a new file, or restore it from a backup or an export"
        )

    def _tables(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}

    def _check_ours(self, tables: set[str]) -> None:
        if tables and "remem_meta" not in tables:
            self._conn.close()  # refuse before touching the file (no WAL switch)
            raise CorruptStoreError(
                f"{self.path} is a SQLite database of another application "
                f"(tables: {', '.join(sorted(tables)[:5])}); use a new file for remem"
            )

    def _initialise(self) -> int:
        """Check the file is ours, then create or migrate it under the write lock."""
        try:
            self._check_ours(self._tables())
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                tables = self._tables()  # re-read: another process may have set it up
                self._check_ours(tables)
                if "remem_meta" not in tables:
                    self._conn.execute(
                        "CREATE TABLE remem_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    self._conn.execute("INSERT INTO remem_meta VALUES ('app', ?)", (APP_ID,))
                version = apply_migrations(self._conn, to_db_time(utcnow()) or "")
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            return version
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc

    def bind_embedder(self, model_id: str, dimensions: int) -> None:
        """Remember the embedder that built this file; refuse a different one."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM remem_meta WHERE key = 'embedder'"
            ).fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT OR IGNORE INTO remem_meta VALUES ('embedder', ?)",
                    (f"{model_id}:{dimensions}",),
                )
            elif row[0] != f"{model_id}:{dimensions}":
                raise ConfigError(
                    f"{self.path} was built with embedder {row[0]!r}, not "
                    f"'{model_id}:{dimensions}'; use the same embedder, or export and "
                    "import into a new database to re-embed"
                )

    def embedder_id(self) -> str | None:
        """The embedder recorded for this file, if any."""
        row = self._conn.execute("SELECT value FROM remem_meta WHERE key = 'embedder'").fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path} is busy or read-only: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._generation += 1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"query on {self.path} failed: {exc}") from exc

    # -- writes ------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> tuple[str, ...]:
        """Insert messages and memories in one transaction; skip already-stored messages."""
        try:
            with self._transaction() as conn:
                skipped = self._skip_existing(conn, batch.messages)
                positions = self._insert_messages(conn, batch.messages, skipped)
                written: set[str] = set()
                for new in batch.memories:
                    sources = set(new.record.source_ids)
                    if sources and sources <= skipped:
                        continue
                    first = new.record.source_ids[0] if new.record.source_ids else None
                    self._insert_memory(
                        conn, new.record, new.index_text, new.vector, positions.get(first or "", 0)
                    )
                    self._log(conn, new.record, "ADD", None, new.record, batch.reason, batch.actor)
                    written.add(new.record.id)
                self._supersede(conn, batch, written)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"write to {self.path} violated a constraint: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"write to {self.path} failed, nothing was stored: {exc}") from exc
        return tuple(m.id for m in batch.messages if m.id in skipped)

    @staticmethod
    def _insert_messages(
        conn: sqlite3.Connection, messages: Sequence[Message], skipped: set[str]
    ) -> dict[str, int]:
        """Insert new messages, numbering each within its session; returns id -> seq."""
        positions: dict[str, int] = {}
        last: dict[tuple[str, ...], int] = {}
        for message in messages:
            if message.id in skipped:
                continue
            s = message.scope
            key = (s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "")
            if key not in last:
                row = conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM messages WHERE namespace = ? AND "
                    "user_id = ? AND agent_id = ? AND session_id = ?",
                    key,
                ).fetchone()
                last[key] = int(row[0])
            last[key] += 1
            positions[message.id] = last[key]
            conn.execute(
                f"INSERT INTO messages ({rows.MESSAGE_COLUMNS}, seq) VALUES ({','.join('?' * 12)})",
                (*rows.message_values(message), last[key]),
            )
        return positions

    @staticmethod
    def _skip_existing(conn: sqlite3.Connection, messages: Sequence[Message]) -> set[str]:
        """Ids already stored with the same content; a reused id with new content conflicts."""
        skipped: set[str] = set()
        for message in messages:
            s = message.scope
            row = conn.execute(
                "SELECT role, content, session_id FROM messages WHERE namespace = ? AND "
                "user_id = ? AND agent_id = ? AND id = ?",
                (s.namespace, s.user_id or "", s.agent_id or "", message.id),
            ).fetchone()
            if row is None:
                continue
            if row["content"] != message.content or row["role"] != message.role:
                raise ConflictError(
                    f"message id {message.id!r} already exists in this scope with different "
                    "content; give the new message another id (or none), or delete the old one"
                )
            skipped.add(message.id)
        return skipped

    @staticmethod
    def _insert_memory(
        conn: sqlite3.Connection,
        record: MemoryRecord,
        index_text: str,
        vector: npt.NDArray[np.float32] | None,
        position: int = 0,
    ) -> None:
        blob = None if vector is None else _unit(vector).tobytes()
        conn.execute(
            f"INSERT INTO memories ({rows.MEMORY_COLUMNS}, index_text, position, embedding) "
            f"VALUES ({','.join('?' * 26)})",
            (*rows.memory_values(record), index_text, position, blob),
        )
        link_memory(conn, record.id, _session_ref(record), record.kind, record.text,
                    record.attributes)  # fmt: skip

    def _supersede(self, conn: sqlite3.Connection, batch: WriteBatch, written: set[str]) -> None:
        """Mark memories replaced by ones this batch wrote, logging SUPERSEDE events."""
        for old_id, new_id in batch.supersedes.items():
            if new_id not in written:
                continue
            namespace = batch.memories[0].record.scope.namespace
            before = self._get_one(namespace, old_id)
            after = replace(before, superseded_by=new_id, updated_at=utcnow())
            conn.execute(
                "UPDATE memories SET superseded_by = ?, updated_at = ? WHERE id = ?",
                (new_id, to_db_time(after.updated_at), old_id),
            )
            self._log(conn, after, "SUPERSEDE", before, after, batch.reason, batch.actor)

    def update_memory(
        self,
        namespace: str,
        memory_id: str,
        changes: Mapping[str, Any],
        index_text: str | None,
        vector: npt.NDArray[np.float32] | None,
        actor: str,
        reason: str,
    ) -> MemoryRecord:
        """Apply changes to one memory and log the UPDATE with before and after."""
        with self._transaction() as conn:
            before = self._get_one(namespace, memory_id)
            after = replace(before, **dict(changes), updated_at=utcnow())
            old = conn.execute(
                "SELECT index_text, position, embedding FROM memories WHERE id = ?", (memory_id,)
            ).fetchone()
            conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,))  # keeps FTS in sync
            unlink_memory(conn, memory_id, _session_ref(before), before.kind, before.text)
            if vector is None and old["embedding"] is not None:
                vector = np.frombuffer(old["embedding"], dtype=np.float32)
            self._insert_memory(
                conn, after, index_text or old["index_text"], vector, old["position"]
            )
            self._log(conn, after, "UPDATE", before, after, reason, actor)
        return after

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
        conn.execute(
            "INSERT INTO memory_events (memory_id, namespace, action, before, after, reason, "
            "actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.scope.namespace, action,
             dumps(rows.record_snapshot(before)) if before else None,
             dumps(rows.record_snapshot(after)) if after else None,
             reason, actor, to_db_time(utcnow())),
        )  # fmt: skip

    def delete_memory(self, namespace: str, memory_id: str, actor: str, reason: str) -> None:
        """Delete one memory; the audit log keeps what it was."""
        with self._transaction() as conn:
            before = self._get_one(namespace, memory_id)
            conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
            unlink_memory(conn, memory_id, _session_ref(before), before.kind, before.text)
            self._log(conn, before, "DELETE", before, None, reason, actor)

    def delete_scope(self, flt: MemoryFilter, actor: str) -> tuple[int, int]:
        """Delete the memories and messages of a scope, logging each memory's DELETE."""
        where, params = rows.filter_sql(flt, "m")
        msg_where, msg_params = rows.scope_sql(
            Scope(flt.user_id, flt.agent_id, flt.session_id, flt.namespace)
        )
        with self._transaction() as conn:
            doomed = [
                rows.memory_from_row(r)
                for r in conn.execute(
                    f"SELECT {rows.MEMORY_COLUMNS} FROM memories m WHERE {where}", params
                )
            ]
            for record in doomed:
                self._log(conn, record, "DELETE", record, None, "delete_all", actor)
                conn.execute("DELETE FROM memories WHERE id = ?", (record.id,))
                unlink_memory(conn, record.id, _session_ref(record), record.kind, record.text)
            deleted = conn.execute(f"DELETE FROM messages WHERE {msg_where}", msg_params)
        return len(doomed), deleted.rowcount

    # -- reads -------------------------------------------------------------------------

    def _get_one(self, namespace: str, memory_id: str) -> MemoryRecord:
        found = self.get_memories(namespace, [memory_id])
        if not found:
            raise NotFoundError(
                f"no memory {memory_id!r} in namespace {namespace!r}; "
                "list ids with `remem list` or Memory.list()"
            )
        return found[0]

    def get_memories(self, namespace: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """Memories by id in the order asked; unknown or foreign ids are left out."""
        if not ids:
            return []
        found: dict[str, MemoryRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for row in self._query(
                f"SELECT {rows.MEMORY_COLUMNS} FROM memories "
                f"WHERE +namespace = ? AND id IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk],
            ):
                found[row["id"]] = rows.memory_from_row(row)
        return [found[i] for i in ids if i in found]

    def list_memories(
        self, flt: MemoryFilter, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        """Memories matching the filter, most recent first."""
        where, params = rows.filter_sql(flt, "m", to_db_time(utcnow()))
        found = self._query(
            f"SELECT {rows.MEMORY_COLUMNS} FROM memories m WHERE {where} "
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
                for r in self._query(
                    f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE namespace = ? "
                    f"AND user_id = ? AND agent_id = ? AND id IN ({','.join('?' * len(chunk))})",
                    [namespace, scope.user_id or "", scope.agent_id or "", *chunk],
                )
            )
        return out

    def events(self, namespace: str, memory_id: str) -> list[MemoryEvent]:
        """The audit log of one memory, oldest first."""
        found = self._query(
            "SELECT * FROM memory_events WHERE namespace = ? AND memory_id = ? ORDER BY id",
            [namespace, memory_id],
        )
        return [rows.event_from_row(r) for r in found]

    # -- search ------------------------------------------------------------------------

    def keyword_search(self, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[ScoredId]:
        """FTS5 BM25 (k1=1.2, b=0.75, porter-stemmed) over the memories' index text."""
        quoted = [f'"{t.replace(chr(34), "")}"' for t in terms if t.replace('"', "").strip()]
        if not quoted:
            return []
        where, params = rows.filter_sql(flt, "m", to_db_time(utcnow()))
        found = self._query(
            "SELECT m.id AS id, -bm25(memories_fts) AS score FROM memories_fts "
            "JOIN memories m ON m.pk = memories_fts.rowid "
            f"WHERE memories_fts MATCH ? AND {where} ORDER BY score DESC LIMIT ?",
            [" OR ".join(quoted), *params, limit],
        )
        return [ScoredId(r["id"], float(r["score"])) for r in found]

    def session_search(self, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[ScoredId]:
        """BM25 over each session's turns as one bag of stems, with the statistics (document
        frequency, mean length) of the filter's own sessions, not of the whole file."""
        wanted = sorted({stem(w) for term in terms for w in words(term)})
        if not wanted:
            return []
        clauses, params = ["s.namespace = ?"], [flt.namespace]
        for column in ("user_id", "agent_id", "session_id"):
            if getattr(flt, column) is not None:
                clauses.append(f"s.{column} = ?")
                params.append(getattr(flt, column))
        where = " AND ".join(clauses)
        docs = self._query(f"SELECT count(*), avg(s.length) FROM sessions s WHERE {where} "
                           "AND s.length > 0", params)[0]  # fmt: skip
        found = self._query(
            "SELECT s.user_id, s.agent_id, s.session_id, s.length, t.term, t.tf FROM sessions s "
            f"JOIN session_terms t ON t.session_pk = s.pk WHERE {where} AND t.tf > 0 "
            f"AND t.term IN ({','.join('?' * len(wanted))})",
            [*params, *wanted],
        )
        rows_ = [(session_key(r[0], r[1], r[2]), r[3], r[4], r[5]) for r in found]
        scored = bm25_documents(rows_, int(docs[0]), float(docs[1] or 0.0))
        best = sorted(scored.items(), key=lambda kv: -kv[1])[:limit]
        return [ScoredId(key, score) for key, score in best]

    def positions(self, namespace: str, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Each memory's conversation slot: (session key, position of its first message)."""
        out = {i: self._slots[i] for i in ids if i in self._slots}
        missing = [i for i in ids if i not in out]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            for r in self._query(
                "SELECT id, user_id, agent_id, session_id, position FROM memories "
                f"WHERE +namespace = ? AND id IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk],
            ):
                key = session_key(r["user_id"], r["agent_id"], r["session_id"])
                out[r["id"]] = (key, int(r["position"]))
        if len(self._slots) > 1_000_000:
            self._slots.clear()
        self._slots.update(out)
        return out

    def vector_search(
        self, vector: npt.NDArray[np.float32], flt: MemoryFilter, limit: int
    ) -> list[ScoredId]:
        """Exact cosine search over the scope's vectors (brute force in numpy)."""
        ids, matrix, expires = self._vectors(flt)
        if not ids:
            return []
        scores = matrix @ _unit(vector)
        if expires is not None:  # expiry moves with the clock, so it is applied per query
            scores = np.where(expires > np.datetime64(utcnow()), scores, -np.inf)
        live = int(np.isfinite(scores).sum())
        k = min(limit, live)
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ScoredId(ids[i], float(scores[i])) for i in top]

    def _vectors(self, flt: MemoryFilter) -> _CachedVectors:
        cached: _CachedVectors = self._cached("vectors", flt, self._load_vectors)
        return cached

    def _cached(self, what: str, flt: MemoryFilter, load: Callable[[MemoryFilter], Any]) -> Any:
        """``load(flt)``, kept until any connection writes to the file."""
        with self._lock:
            version = (self._generation, self._data_version())
            if version != self._cache_version:
                self._cache.clear()
                self._cache_version = version
            key = (what, flt.namespace, flt.user_id, flt.agent_id, flt.session_id, flt.kinds,
                   tuple(sorted(flt.metadata.items())), flt.since, flt.until, flt.ids,
                   flt.current_only)  # fmt: skip
            if key not in self._cache:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = load(flt)
            return self._cache[key]

    def scope_index(self, flt: MemoryFilter) -> ScopeIndex:
        """Slots, times and entity links of the filter's memories (cached like vectors)."""
        index: ScopeIndex = self._cached("index", flt, self._load_index)
        return index

    def _load_index(self, flt: MemoryFilter) -> ScopeIndex:
        where, params = rows.filter_sql(flt, "m")
        found = self._query(
            "SELECT m.id, m.kind, m.user_id, m.agent_id, m.session_id, m.position, "
            f"m.occurred_at, m.expires_at FROM memories m WHERE {where} ORDER BY m.pk",
            params,
        )
        row_of = {r["id"]: i for i, r in enumerate(found)}
        entity_rows: dict[int, int] = {}
        entities: list[EntityRow] = []
        mentions: list[tuple[int, int, float]] = []
        for r in self._query(
            "SELECT me.memory_id, me.entity_pk, me.weight, e.key, e.name, e.kind "
            "FROM memory_entities me JOIN entities e ON e.pk = me.entity_pk "
            f"JOIN memories m ON m.id = me.memory_id WHERE {where} ORDER BY m.pk, e.pk",
            params,
        ):
            if r["entity_pk"] not in entity_rows:
                entity_rows[r["entity_pk"]] = len(entities)
                entities.append(EntityRow(r["key"], r["name"], r["kind"]))
            mentions.append((row_of[r["memory_id"]], entity_rows[r["entity_pk"]], r["weight"]))
        times = [
            (row_of[r["memory_id"]], TimeLink(date.fromisoformat(r["start"]),
                                              date.fromisoformat(r["end"]), r["kind"]))
            for r in self._query(
                "SELECT t.memory_id, t.start, t.end, t.kind FROM memory_times t "
                f"JOIN memories m ON m.id = t.memory_id WHERE {where} ORDER BY m.pk",
                params,
            )
        ]  # fmt: skip
        return ScopeIndex(
            ids=tuple(r["id"] for r in found), kinds=tuple(r["kind"] for r in found),
            sessions=tuple(session_key(r["user_id"], r["agent_id"], r["session_id"])
                           for r in found),
            positions=tuple(int(r["position"]) for r in found),
            occurred=tuple(from_db_time(r["occurred_at"]) for r in found),
            expires=tuple(from_db_time(r["expires_at"]) for r in found),
            entities=tuple(entities), mentions=tuple(mentions), times=tuple(times),
        )  # fmt: skip

    def entity_kinds(self, scope: Scope) -> dict[str, str]:
        """Key -> kind of the entities known to the scope's user and agent."""
        found = self._query(
            "SELECT key, kind FROM entities WHERE namespace = ? AND user_id = ? AND agent_id = ?",
            [scope.namespace, scope.user_id or "", scope.agent_id or ""],
        )
        return {r[0]: r[1] for r in found}

    def term_counts(self, scope: Scope, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many turns the scope's user/agent has, and how many contain each word."""
        wanted = list(dict.fromkeys([DOCS, *terms]))
        found: dict[str, int] = {}
        key = [scope.namespace, scope.user_id or "", scope.agent_id or ""]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for r in self._query(
                "SELECT term, docs FROM term_counts WHERE namespace = ? AND user_id = ? "
                f"AND agent_id = ? AND term IN ({','.join('?' * len(chunk))})",
                [*key, *chunk],
            ):
                found[r[0]] = int(r[1])
        return found.pop(DOCS, 0), {t: found.get(t, 0) for t in terms}

    def _load_vectors(self, flt: MemoryFilter) -> _CachedVectors:
        where, params = rows.filter_sql(flt, "m")  # no clock: expiry is applied per query
        found = self._query(
            f"SELECT m.id, m.embedding, m.expires_at FROM memories m WHERE {where} "
            "AND m.embedding IS NOT NULL",
            params,
        )
        if not found:
            return [], np.zeros((0, 0), dtype=np.float32), None
        matrix = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in found])
        expires = None
        if any(r[2] is not None for r in found):
            far = np.datetime64("9999-12-31")
            expires = np.array([np.datetime64(r[2]) if r[2] else far for r in found])
        return [r[0] for r in found], matrix, expires

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    # -- whole-store -------------------------------------------------------------------

    def stats(self, namespace: str, scope: Scope | None = None) -> Stats:
        """Counts of messages, memories (by kind), events, users and sessions."""
        scope = scope or Scope(namespace=namespace)
        flt = MemoryFilter(namespace, scope.user_id, scope.agent_id, scope.session_id,
                           current_only=False)  # fmt: skip
        where, params = rows.filter_sql(flt, "m")
        by_kind = {
            r[0]: r[1]
            for r in self._query(
                f"SELECT kind, count(*) FROM memories m WHERE {where} GROUP BY kind", params
            )
        }
        msg_where, msg_params = rows.scope_sql(scope)
        msg = self._query(
            "SELECT count(*), count(DISTINCT nullif(user_id, '')), count(DISTINCT CASE WHEN "
            "session_id != '' THEN user_id || '/' || agent_id || '/' || session_id END) "
            f"FROM messages WHERE {msg_where}",
            msg_params,
        )[0]
        events = self._query("SELECT count(*) FROM memory_events WHERE namespace = ?", [namespace])[
            0
        ][0]
        return Stats(
            messages=msg[0], memories=sum(by_kind.values()), memories_by_kind=by_kind,
            events=events, users=msg[1], sessions=msg[2], embedder=self.embedder_id(),
            schema_version=self.schema_version, path=self.path,
        )  # fmt: skip

    def dump(self, namespace: str) -> Iterator[dict[str, Any]]:
        """Every message, memory (with its vector) and event of a namespace."""
        with self._lock:
            yield from dump_rows(self._conn, namespace)

    def load(self, namespace: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Insert dumped rows in one transaction."""
        try:
            with self._transaction() as conn:
                return load_rows(conn, namespace, items)
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"import into {self.path} conflicts with existing rows ({exc}); "
                "import into a new database or delete the conflicting scope first"
            ) from exc

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        with self._lock:
            self._conn.close()
