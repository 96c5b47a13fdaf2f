"""PostgreSQL connections: a pool, per-thread snapshots, and writes that commit in order.

**Revisions.** Every write transaction starts with ``UPDATE store_revision SET revision =
revision + 1 WHERE id = 1 RETURNING revision`` and stamps its rows with that number. The
row lock the UPDATE takes is held until the transaction ends, so writers queue on it and
commit in revision order: when revision R commits, every lower revision has committed.
A snapshot is a ``REPEATABLE READ, READ ONLY`` transaction whose first statement reads
the revision, which fixes its view; seeing R, it sees every write with rev <= R (R's
rows committed together with R, and all earlier writers before R's could take the lock)
and none above. Live scope indexes rely on exactly this: ``changes(scope, since)`` read
inside a snapshot never misses a row and never sees half a write.

**Connections** come from a ``psycopg_pool.ConnectionPool`` in autocommit mode: a read
outside a snapshot is one statement on any free connection. A thread's snapshot keeps one
connection until its outermost block ends (snapshots are re-entrant per thread, as in
SQLite), and every read of that thread inside it uses that connection.

**Errors** all become ``RememError``s (``error``). A read that finds its connection
dropped (the server restarted, an idle connection was cut) is retried once on a fresh
one; so is the ``BEGIN`` of a snapshot or a write, before anything was written. A write
that loses its connection later is never retried: the error says whether it may have
been stored.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from remem.errors import ConflictError, RememError, StoreError
from remem.stores.postgres import codec

log = logging.getLogger(__name__)
Connection = psycopg.Connection[DictRow]
MESSAGE_IDS = "messages_client_id"  # the unique constraint on client message ids
REVISION_SQL = "SELECT revision FROM store_revision WHERE id = 1"


def shown_url(url: str) -> str:
    """The URL without its password, for messages and ``Stats.path``."""
    parts = urlsplit(url)
    if parts.scheme and parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}@{host}")
        return urlunsplit(parts)
    if not parts.scheme and "password" in url:  # a key=value conninfo string
        return " ".join(p for p in url.split() if not p.startswith("password"))
    return url


def dropped(conn: Connection) -> bool:
    """Whether the connection was lost (as opposed to a statement failing on it)."""
    return conn.closed or conn.broken


class Connections:
    """A pool of connections to one database, with snapshot and write helpers."""

    def __init__(
        self, url: str, pool_size: int, connect_timeout: float, pool_timeout: float
    ) -> None:
        self.url = url
        self.where = shown_url(url)
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.adapters = codec.adapters()
        # No startup ``options`` (PgBouncer refuses them): times travel in binary, so the
        # session's time zone never matters (``codec``).
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "context": self.adapters,
            "connect_timeout": max(1, round(connect_timeout)),
            "client_encoding": "utf8",
        }
        self._local = threading.local()
        self._pool: ConnectionPool[Connection] | None = None
        self.closed = False

    def connect(self) -> Connection:
        """One connection outside the pool (to set the database up)."""
        try:
            return psycopg.Connection[DictRow].connect(self.url, **self._kwargs)
        except psycopg.Error as exc:
            raise self.error(exc, "connecting to") from exc

    def open_pool(self, vector_oid: int) -> None:
        """Start the pool, once the database holds remem's tables and pgvector's type."""
        codec.register_vectors(self.adapters, vector_oid)
        self._pool = ConnectionPool(
            self.url, connection_class=psycopg.Connection[DictRow], kwargs=self._kwargs,
            min_size=1, max_size=self.pool_size, timeout=self.pool_timeout, open=True,
            name=f"remem {self.where}", num_workers=1,
        )  # fmt: skip

    # -- errors --------------------------------------------------------------------------

    def error(self, exc: psycopg.Error, action: str = "reading") -> RememError:
        """The remem error for a psycopg error raised while ``action`` the database."""
        if isinstance(exc, PoolClosed):
            return self.closed_error()
        if isinstance(exc, PoolTimeout):
            return self._pool_timeout_error()
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return StoreError(
                f"{action} {self.where} took longer than the server allows ({_reason(exc)}); "
                "try again, or raise statement_timeout for remem's user"
            )
        if isinstance(exc, psycopg.OperationalError):
            lead = (f"cannot connect to PostgreSQL at {self.where}" if action == "connecting to"
                    else f"lost or could not open the connection to PostgreSQL while {action} "
                    f"{self.where}")  # fmt: skip
            return StoreError(f"{lead} ({_reason(exc)}); {_advice(exc)}")
        return StoreError(f"{action} {self.where} failed: {_reason(exc)}")

    def closed_error(self) -> StoreError:
        """The error for using a closed store."""
        return StoreError(f"the store for {self.where} is closed; open a new Memory")

    def _pool_timeout_error(self) -> StoreError:
        """No pooled connection came in time: say whether the server is unreachable (and
        why) or every connection stayed busy."""
        try:
            psycopg.connect(self.url, **{**self._kwargs, "context": None}).close()
        except psycopg.Error as exc:
            return StoreError(
                f"cannot connect to PostgreSQL at {self.where} ({_reason(exc)}); check that "
                "the server is running and reachable and that the URL is right, then try again"
            )
        return StoreError(
            f"all {self.pool_size} connections to {self.where} stayed busy for "
            f"{self.pool_timeout:g} s; try again, or raise pool_size or pool_timeout"
        )

    # -- connections ---------------------------------------------------------------------

    def _get(self) -> Connection:
        if self.closed or self._pool is None:
            raise self.closed_error()
        try:
            return self._pool.getconn()
        except psycopg.Error as exc:
            raise self.error(exc) from exc

    def _put(self, conn: Connection) -> None:
        """Give a connection back to the pool, rolled back (a dropped one is discarded)."""
        if not dropped(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                log.debug("could not roll back a connection to %s", self.where)
        if self._pool is not None:
            try:
                self._pool.putconn(conn)
            except PoolClosed:  # closed while this thread read: close it ourselves
                conn.close()

    def _begin(self, sql: str) -> Connection:
        """A pooled connection with ``sql`` (a BEGIN) run on it, retried once on another
        connection if the first turns out dropped: nothing has happened yet either way."""
        for attempt in (1, 2):
            conn = self._get()
            try:
                conn.execute(sql)
                return conn
            except psycopg.Error as exc:
                self._put(conn)
                if attempt == 2 or not dropped(conn):
                    raise self.error(exc) from exc
                log.info("connection to %s was dropped; retrying on a new one", self.where)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- snapshots and reads -------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read-only REPEATABLE READ transaction for this thread (re-entrant); yields
        the store revision it sees."""
        local = self._local
        if getattr(local, "conn", None) is not None:
            local.depth += 1
            try:
                yield local.revision
            finally:
                local.depth -= 1
            return
        conn = self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            local.revision = self.revision(conn)  # the first read fixes the snapshot
        except BaseException:
            self._put(conn)
            raise
        local.conn, local.depth = conn, 1
        try:
            yield local.revision
        finally:
            local.conn = None
            self._put(conn)  # rolls back: a read-only transaction has nothing to keep

    def latest_revision(self) -> int:
        """The newest committed revision, in one statement on a pooled connection (no
        transaction is held after it); inside a snapshot, the snapshot's revision."""
        if getattr(self._local, "conn", None) is not None:
            return int(self._local.revision)
        return int(self._read(REVISION_SQL)[0]["revision"])

    def reads(self) -> int:
        """How many queries (``query``) this thread has run."""
        return int(getattr(self._local, "reads", 0))

    def revision(self, conn: Connection) -> int:
        """The store revision as this connection sees it."""
        row = self.run(conn, REVISION_SQL).fetchone()
        if row is None:  # pragma: no cover - migration 1 inserts the row
            raise StoreError(f"{self.where} has no store revision; restore it from an export")
        return int(row["revision"])

    def run(
        self, conn: Connection, sql: str, params: Sequence[Any] = ()
    ) -> psycopg.Cursor[DictRow]:
        """One statement on ``conn`` (results in binary); errors become ``RememError``."""
        try:
            return conn.execute(sql, params, binary=True)
        except psycopg.Error as exc:
            raise self.error(exc) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
        """Rows of one query: inside this thread's snapshot on its connection, else on a
        pooled one, retried once on a fresh connection if the first was dropped."""
        self._local.reads = self.reads() + 1
        return self._read(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
        held: Connection | None = getattr(self._local, "conn", None)
        if held is not None:
            return self.run(held, sql, params).fetchall()
        for attempt in (1, 2):
            conn = self._get()
            try:
                return conn.execute(sql, params, binary=True).fetchall()
            except psycopg.Error as exc:
                if attempt == 2 or not dropped(conn):
                    raise self.error(exc) from exc
                log.info("connection to %s was dropped; retrying the read", self.where)
            finally:
                self._put(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[DictRow]:
        """Rows of one query inside this thread's snapshot, fetched in batches (a
        server-side cursor), for results too large to hold at once."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            raise StoreError("stream() reads inside a snapshot; open one with snapshot()")
        try:
            with conn.cursor(name=f"remem_{uuid.uuid4().hex}", binary=True) as cursor:
                cursor.itersize = 500
                cursor.execute(sql, params)
                yield from cursor
        except psycopg.Error as exc:
            raise self.error(exc) from exc

    # -- writes --------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[tuple[Connection, int]]:
        """A write transaction and the new revision its rows carry. On any error it rolls
        back and raises a ``RememError``; it is never retried once it has begun."""
        if getattr(self._local, "conn", None) is not None:
            raise StoreError("cannot write inside a read snapshot of the same thread")
        conn = self._begin("BEGIN")
        step = "writing"
        try:
            row = conn.execute(
                "UPDATE store_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
            ).fetchone()
            yield conn, int(row["revision"]) if row else 0
            step = "committing"
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise self._write_error(exc, conn, step) from exc
        finally:
            self._put(conn)

    def _write_error(self, exc: psycopg.Error, conn: Connection, step: str) -> RememError:
        if isinstance(exc, psycopg.errors.UniqueViolation) and (
            exc.diag.constraint_name == MESSAGE_IDS
        ):
            return ConflictError(
                f"a message id is already used in this scope ({_reason(exc)}); give each "
                "message its own id (or none), or delete the old one"
            )
        if isinstance(exc, psycopg.IntegrityError):
            return StoreError(
                f"write to {self.where} violated a constraint, nothing was stored: {_reason(exc)}"
            )
        if dropped(conn) and step == "committing":
            return StoreError(
                f"the connection to {self.where} was lost while committing ({_reason(exc)}); "
                "the write may or may not be stored: check (e.g. `remem list`) before "
                "writing it again"
            )
        if dropped(conn):
            return StoreError(
                f"the connection to {self.where} was lost during a write, nothing was stored "
                f"({_reason(exc)}); check that the server is running, then try again"
            )
        return StoreError(f"write to {self.where} failed, nothing was stored: {_reason(exc)}")

    def close(self) -> None:
        """Close every connection (snapshots still open in other threads end with errors)."""
        self.closed = True
        if self._pool is not None:
            self._pool.close(timeout=5)


_ADVICE = (  # (what the server or libpq says, what to do), for failures to connect
    (r"too many clients|connection slots are reserved|53300",
     "the server has no connection to spare: lower pool_size, close idle clients, or raise "
     "the server's max_connections, then try again"),
    (r'database ".*" does not exist|3D000',
     "create the database first (createdb NAME, or CREATE DATABASE NAME), or fix its name "
     "in the URL"),
    (r'password authentication failed|no password supplied|role ".*" does not exist|28P01',
     "check the user and password in the URL"),
)  # fmt: skip


def _advice(exc: psycopg.Error) -> str:
    """What to do about an operational error (a failure to connect or a lost connection)."""
    said = f"{exc} {exc.sqlstate or ''}"
    for signs, advice in _ADVICE:
        if re.search(signs, said):
            return advice
    return (
        "check that the server is running and reachable and that the URL (user, password, "
        "host, database) is right, then try again"
    )


def _reason(exc: psycopg.Error) -> str:
    """The server's message (or libpq's), on one line."""
    text = exc.diag.message_primary or str(exc) or type(exc).__name__
    detail = exc.diag.message_detail
    return " ".join(f"{text} {detail or ''}".split())
