"""The job queue in PostgreSQL: enqueue (with coalescing) and complete inside a batch's
write transaction; claims pick the oldest runnable row ``FOR UPDATE SKIP LOCKED``, so
workers on any number of hosts never take the same job; failures, retries, listings.

``PostgresJobs`` holds the ``Store`` job methods; ``PostgresStore`` inherits them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from remem.models import Job, Scope
from remem.stores.base import JobClaim, NewJob
from remem.stores.postgres.connection import Connection, Connections
from remem.stores.queue import (
    JOB_COLUMNS,
    check_status,
    claim_lost,
    enqueued_ids,
    job_from_values,
    job_not_found,
    lease_end,
    merged_ids,
    not_failed,
    reason_text,
)
from remem.util import new_id, utcnow

_RUNNABLE = (
    "((status = 'pending' AND run_after <= %s) OR (status = 'running' AND lease_until <= %s))"
)


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A ``Job`` from a row selected with ``JOB_COLUMNS`` (times and JSON come decoded)."""
    return job_from_values(row, lambda value: value, lambda value: value)


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of a statement inside a write transaction (errors surface through ``write``)."""
    return conn.execute(sql, params, binary=True).fetchall()


def enqueue(conn: Connection, jobs: Sequence[NewJob], skipped: set[str]) -> None:
    """Insert a batch's jobs (inside its write transaction), each coalesced into a
    pending one with room when it asks to be."""
    now = utcnow()
    for job in jobs:
        ids = enqueued_ids(job, skipped)
        if job.message_ids and not ids:
            continue  # every message was stored before, by a writer that enqueued its own
        if job.batch_size > 0 and _coalesce(conn, job, ids, now):
            continue
        s = job.scope
        conn.execute(
            f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join(['%s'] * 18)})",
            (job.id, s.namespace, job.kind, s.user_id or "", s.agent_id or "",
             s.session_id or "", Jsonb(list(ids)), Jsonb(dict(job.payload)), "pending", 0,
             None, None, None, None, now, Jsonb({}), now, now),
        )  # fmt: skip


def _coalesce(conn: Connection, job: NewJob, ids: Sequence[str], now: datetime) -> bool:
    """Append ``ids`` to the newest job of the same kind, exact scope and payload that
    is pending, never run, unclaimed and has room; whether one took them."""
    s = job.scope
    found = _rows(
        conn,
        "SELECT pk, message_ids FROM jobs WHERE namespace = %s AND user_id = %s AND "
        "agent_id = %s AND session_id = %s AND kind = %s AND payload = %s AND "
        "status = 'pending' AND attempts = 0 AND token IS NULL AND "
        "jsonb_array_length(message_ids) + %s <= %s ORDER BY pk DESC LIMIT 1 "
        "FOR UPDATE SKIP LOCKED",
        (s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "", job.kind,
         Jsonb(dict(job.payload)), len(ids), job.batch_size),
    )  # fmt: skip
    if not found:
        return False
    merged = merged_ids(found[0]["message_ids"], ids)
    conn.execute(
        "UPDATE jobs SET message_ids = %s, updated_at = %s WHERE pk = %s",
        (Jsonb(merged), now, found[0]["pk"]),
    )
    return True


def complete(conn: Connection, claim: JobClaim) -> None:
    """Mark a claimed job done with its result, inside the write transaction of its
    results; ``ConflictError`` (the transaction rolls back) if the claim no longer holds."""
    done = conn.execute(
        "UPDATE jobs SET status = 'done', result = %s, lease_until = NULL, updated_at = %s "
        "WHERE id = %s AND status = 'running' AND token = %s",
        (Jsonb(dict(claim.result)), utcnow(), claim.job_id, claim.token),
    )
    if done.rowcount != 1:
        raise claim_lost(claim)


def delete_jobs(conn: Connection, where: str, params: Sequence[Any]) -> int:
    """Delete the jobs of a scope being deleted (``where`` selects its messages): those
    waiting would derive from messages that are gone, and a running one can then no
    longer complete (its claim fails), so nothing derived from them is written later."""
    return conn.execute(f"DELETE FROM jobs WHERE {where}", params).rowcount


def job_counts(db: Connections, where: str, params: Sequence[Any]) -> dict[str, int]:
    """Jobs of a scope (``where`` as for its messages) by status."""
    found = db.query(
        f"SELECT status, count(*) AS n FROM jobs WHERE {where} GROUP BY status", params
    )
    return {r["status"]: int(r["n"]) for r in found}


class PostgresJobs:
    """The ``Store`` job methods of ``PostgresStore``."""

    _db: Connections

    def claim_job(
        self,
        namespace: str | None,
        worker: str,
        lease_seconds: float,
        kinds: Sequence[str] = (),
    ) -> Job | None:
        """Take the oldest runnable job (see ``Store.claim_job``)."""
        now = utcnow()
        where, params = _runnable(namespace, kinds, now)
        sql = f"SELECT pk FROM jobs WHERE {where} ORDER BY pk LIMIT 1"
        if not self._db.query(sql, params):  # idle workers poll without writing
            return None
        with self._db.write() as (conn, _):
            found = _rows(conn, f"{sql} FOR UPDATE SKIP LOCKED", params)
            return _take(conn, found[0]["pk"], worker, lease_seconds, now) if found else None

    def claim_job_by_id(
        self, namespace: str, job_id: str, worker: str, lease_seconds: float
    ) -> Job | None:
        """Take one job now, if it is pending or its lease ran out."""
        now = utcnow()
        with self._db.write() as (conn, _):
            found = _rows(
                conn,
                "SELECT pk FROM jobs WHERE namespace = %s AND id = %s AND (status = 'pending' "
                "OR (status = 'running' AND lease_until <= %s)) FOR UPDATE SKIP LOCKED",
                (namespace, job_id, now),
            )
            return _take(conn, found[0]["pk"], worker, lease_seconds, now) if found else None

    def fail_job(
        self, claim: JobClaim, reason: str, retry_after_seconds: float | None
    ) -> Job | None:
        """Send a claimed job back to pending after a backoff, or to failed."""
        now = utcnow()
        retry = retry_after_seconds is not None
        after = lease_end(now, retry_after_seconds or 0.0) if retry else None
        with self._db.write() as (conn, _):
            found = _rows(
                conn,
                "UPDATE jobs SET status = %s, error = %s, token = NULL, lease_until = NULL, "
                "run_after = coalesce(%s, run_after), updated_at = %s WHERE id = %s AND "
                f"status = 'running' AND token = %s RETURNING {JOB_COLUMNS}",
                ("pending" if retry else "failed", reason_text(reason), after, now,
                 claim.job_id, claim.token),
            )  # fmt: skip
        return job_from_row(found[0]) if found else None

    def retry_job(self, namespace: str, job_id: str) -> Job:
        """Make a failed job pending again, from its first attempt."""
        now = utcnow()
        with self._db.write() as (conn, _):
            found = _rows(
                conn,
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = %s AND id = %s FOR UPDATE",
                (namespace, job_id),
            )
            if not found:
                raise job_not_found(namespace, job_id)
            if found[0]["status"] != "failed":
                raise not_failed(job_from_row(found[0]))
            found = _rows(
                conn,
                "UPDATE jobs SET status = 'pending', attempts = 0, run_after = %s, "
                "token = NULL, lease_until = NULL, updated_at = %s WHERE namespace = %s AND "
                f"id = %s RETURNING {JOB_COLUMNS}",
                (now, now, namespace, job_id),
            )
        return job_from_row(found[0])

    def get_job(self, namespace: str, job_id: str) -> Job | None:
        """One job by id."""
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = %s AND id = %s",
            (namespace, job_id),
        )
        return job_from_row(found[0]) if found else None

    def jobs(self, namespace: str, status: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs of a namespace, newest first."""
        where, params = "namespace = %s", [namespace]
        if check_status(status) is not None:
            where, params = where + " AND status = %s", [namespace, status or ""]
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY pk DESC LIMIT %s",
            [*params, int(limit)],
        )
        return [job_from_row(r) for r in found]

    def job_of(self, namespace: str, kind: str, scope: Scope, message_id: str) -> Job | None:
        """The newest job of ``kind`` and exactly ``scope`` holding ``message_id``."""
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = %s AND kind = %s AND "
            "user_id = %s AND agent_id = %s AND session_id = %s AND message_ids @> %s "
            "ORDER BY pk DESC LIMIT 1",
            (namespace, kind, scope.user_id or "", scope.agent_id or "", scope.session_id or "",
             Jsonb([message_id])),
        )  # fmt: skip
        return job_from_row(found[0]) if found else None


def _runnable(namespace: str | None, kinds: Sequence[str], now: datetime) -> tuple[str, list[Any]]:
    """The WHERE clause of runnable jobs of a namespace (``None``: any) and kinds."""
    clauses: list[str] = [_RUNNABLE]
    params: list[Any] = [now, now]
    if namespace is not None:
        clauses.append("namespace = %s")
        params.append(namespace)
    if kinds:
        clauses.append("kind = ANY(%s)")
        params.append(list(kinds))
    return " AND ".join(clauses), params


def _take(conn: Connection, pk: int, worker: str, lease_seconds: float, now: datetime) -> Job:
    """Claim the job at ``pk`` for ``worker`` under a fresh token."""
    found = _rows(
        conn,
        "UPDATE jobs SET status = 'running', token = %s, worker = %s, "
        "attempts = attempts + 1, lease_until = %s, updated_at = %s WHERE pk = %s "
        f"RETURNING {JOB_COLUMNS}",
        (new_id(), worker, lease_end(now, lease_seconds), now, pk),
    )
    return job_from_row(found[0])
