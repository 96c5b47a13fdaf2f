"""SQLite connections: one per thread, snapshots (read transactions) and write transactions.

Every thread gets its own connection, so threads never share cursor or transaction state;
WAL lets readers in any thread or process keep reading while one writer writes. A
snapshot is a read transaction: every query inside it sees one state of the file. Each
write transaction bumps the store's revision, which stamps every row it writes, so scope
indexes can ask for exactly what changed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from remem.errors import CorruptStoreError, StoreError

log = logging.getLogger(__name__)
SLOW_QUERY_S = 1.0


class Connections:
    """Per-thread connections to one SQLite file, with snapshot and write helpers."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._target, self._uri = path, False
        if path == ":memory:":  # one in-memory database shared by this store's threads
            self._target, self._uri = (
                f"file:remem-{uuid.uuid4().hex}?mode=memory&cache=shared",
                True,
            )
        else:
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot create {path}: folder {parent} does not exist")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.closed = False
        self.first = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._target, isolation_level=None, check_same_thread=False,
                                   uri=self._uri)  # fmt: skip
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        except sqlite3.DatabaseError as exc:
            raise self.open_error(exc) from exc
        with self._lock:
            self._all.append(conn)
        self._local.conn = conn
        return conn

    def configure(self, conn: sqlite3.Connection) -> None:
        """Per-connection settings once the file is known to be ours. ``secure_delete``:
        the space deleted or overwritten content leaves is zeroed, not kept in free pages
        (``docs/deletion.md``; it cost nothing measurable at ingest)."""
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA secure_delete = ON")

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        if self.closed:
            raise StoreError(f"the store for {self.path} is closed; open a new Memory")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self.configure(conn)
        return conn

    def open_error(self, exc: sqlite3.DatabaseError) -> StoreError:
        """The remem error for a failure to open or read the file."""
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(f"{self.path} is locked by another process ({exc}); try again")
        return CorruptStoreError(
            f"{self.path} is damaged or not a remem database ({exc}); point --db / REMEM_DB "
            "at a remem database or a new file, or restore it from a backup or an export"
        )

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction on this thread's connection (re-entrant); yields the store
        revision it sees."""
        conn = self.get()
        depth = getattr(self._local, "depth", 0)
        if depth or conn.in_transaction:
            self._local.depth = depth + 1
            try:
                yield self.revision(conn)
            finally:
                self._local.depth = depth
            return
        try:
            conn.execute("BEGIN")
            revision = self.revision(conn)  # the first read fixes the snapshot
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        self._local.depth = 1
        try:
            yield revision
        finally:
            self._local.depth = 0
            if conn.in_transaction:
                conn.execute("COMMIT")

    def latest_revision(self) -> int:
        """The newest committed revision, in one statement (no transaction is held after
        it); inside a snapshot, the snapshot's revision."""
        try:
            return self.revision(self.get())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc

    def reads(self) -> int:
        """How many queries (``query``) this thread has run."""
        return int(getattr(self._local, "reads", 0))

    @staticmethod
    def revision(conn: sqlite3.Connection) -> int:
        """The store revision as this connection sees it."""
        return int(conn.execute("SELECT revision FROM store_revision WHERE id = 1").fetchone()[0])

    @contextmanager
    def write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction and the new revision its rows carry; sqlite3 errors become
        ``StoreError`` and nothing is written."""
        conn = self.get()
        if conn.in_transaction:
            raise StoreError("cannot write inside a read snapshot of the same thread")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is busy or read-only: {exc}") from exc
        try:
            conn.execute("UPDATE store_revision SET revision = revision + 1 WHERE id = 1")
            yield conn, self.revision(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise StoreError(f"write to {self.path} violated a constraint, nothing was "
                                 f"stored: {exc}") from exc  # fmt: skip
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"write to {self.path} failed, nothing was stored: {exc}") from exc
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query on this thread's connection; errors become ``StoreError``."""
        started = time.perf_counter()
        self._local.reads = self.reads() + 1
        try:
            found = self.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"query on {self.path} failed: {exc}") from exc
        took = time.perf_counter() - started
        if took > SLOW_QUERY_S:
            log.info("slow query on %s (%.2f s): %s", self.path, took, sql[:120])
        return found

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self.closed = True
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:  # closing from another thread than the user's
                    log.debug("could not close a connection to %s", self.path)
            self._all.clear()
