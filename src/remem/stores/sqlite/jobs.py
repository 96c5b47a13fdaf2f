"""The job queue in SQLite: enqueue (with coalescing) and complete inside a batch's write
transaction, claims under ``BEGIN IMMEDIATE`` (one writer at a time, so two workers in
any threads or processes never take the same job), failures, retries and listings.

``SQLiteJobs`` holds the ``Store`` job methods; ``SQLiteStore`` inherits them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from remem.models import Job, Scope
from remem.stores.base import JobClaim, NewJob
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
from remem.stores.sqlite.connection import Connections
from remem.util import dumps, from_db_time, new_id, to_db_time, utcnow

_RUNNABLE = "((status = 'pending' AND run_after <= ?) OR (status = 'running' AND lease_until <= ?))"


def job_from_row(row: sqlite3.Row) -> Job:
    """A ``Job`` from a row selected with ``JOB_COLUMNS``."""
    return job_from_values(dict(row), from_db_time, json.loads)


def enqueue(conn: sqlite3.Connection, jobs: Sequence[NewJob], skipped: set[str]) -> None:
    """Insert a batch's jobs (inside its write transaction), each coalesced into a
    pending one with room when it asks to be."""
    now = to_db_time(utcnow())
    for job in jobs:
        ids = enqueued_ids(job, skipped)
        if job.message_ids and not ids:
            continue  # every message was stored before, by a writer that enqueued its own
        if job.batch_size > 0 and _coalesce(conn, job, ids, now):
            continue
        s = job.scope
        conn.execute(
            f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({','.join('?' * 18)})",
            (job.id, s.namespace, job.kind, s.user_id or "", s.agent_id or "",
             s.session_id or "", dumps(list(ids)), dumps(dict(job.payload)), "pending", 0,
             None, None, None, None, now, "{}", now, now),
        )  # fmt: skip


def _coalesce(conn: sqlite3.Connection, job: NewJob, ids: Sequence[str], now: str | None) -> bool:
    """Append ``ids`` to the newest job of the same kind, exact scope and payload that
    is pending, never run, unclaimed and has room; whether one took them."""
    s = job.scope
    row = conn.execute(
        "SELECT pk, message_ids FROM jobs WHERE namespace = ? AND user_id = ? AND "
        "agent_id = ? AND session_id = ? AND kind = ? AND payload = ? AND status = 'pending' "
        "AND attempts = 0 AND token IS NULL AND json_array_length(message_ids) + ? <= ? "
        "ORDER BY pk DESC LIMIT 1",
        (s.namespace, s.user_id or "", s.agent_id or "", s.session_id or "", job.kind,
         dumps(dict(job.payload)), len(ids), job.batch_size),
    ).fetchone()  # fmt: skip
    if row is None:
        return False
    merged = merged_ids(json.loads(row["message_ids"]), ids)
    conn.execute(
        "UPDATE jobs SET message_ids = ?, updated_at = ? WHERE pk = ?",
        (dumps(merged), now, row["pk"]),
    )
    return True


def complete(conn: sqlite3.Connection, claim: JobClaim) -> None:
    """Mark a claimed job done with its result, inside the write transaction of its
    results; ``ConflictError`` (the transaction rolls back) if the claim no longer holds."""
    now = to_db_time(utcnow())
    done = conn.execute(
        "UPDATE jobs SET status = 'done', result = ?, lease_until = NULL, updated_at = ? "
        "WHERE id = ? AND status = 'running' AND token = ?",
        (dumps(dict(claim.result)), now, claim.job_id, claim.token),
    )
    if done.rowcount != 1:
        raise claim_lost(claim)


def delete_jobs(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Delete the jobs of a scope being deleted (``where`` selects its messages): those
    waiting would derive from messages that are gone, and a running one can then no
    longer complete (its claim fails), so nothing derived from them is written later."""
    return conn.execute(f"DELETE FROM jobs WHERE {where}", params).rowcount


def job_counts(db: Connections, where: str, params: Sequence[Any]) -> dict[str, int]:
    """Jobs of a scope (``where`` as for its messages) by status."""
    found = db.query(f"SELECT status, count(*) FROM jobs WHERE {where} GROUP BY status", params)
    return {r[0]: int(r[1]) for r in found}


class SQLiteJobs:
    """The ``Store`` job methods of ``SQLiteStore``."""

    _db: Connections

    def claim_job(
        self,
        namespace: str | None,
        worker: str,
        lease_seconds: float,
        kinds: Sequence[str] = (),
    ) -> Job | None:
        """Take the oldest runnable job under the write lock (see ``Store.claim_job``)."""
        now = utcnow()
        where, params = _runnable(namespace, kinds, now)
        sql = f"SELECT pk FROM jobs WHERE {where} ORDER BY pk LIMIT 1"
        if not self._db.query(sql, params):  # idle workers poll without taking the lock
            return None
        with self._db.write() as (conn, _):
            row = conn.execute(sql, params).fetchone()  # again: another worker may have won
            return None if row is None else _take(conn, row["pk"], worker, lease_seconds, now)

    def claim_job_by_id(
        self, namespace: str, job_id: str, worker: str, lease_seconds: float
    ) -> Job | None:
        """Take one job now, if it is pending or its lease ran out."""
        now = utcnow()
        moment = to_db_time(now)
        with self._db.write() as (conn, _):
            row = conn.execute(
                "SELECT pk FROM jobs WHERE namespace = ? AND id = ? AND (status = 'pending' "
                "OR (status = 'running' AND lease_until <= ?))",
                (namespace, job_id, moment),
            ).fetchone()
            return None if row is None else _take(conn, row["pk"], worker, lease_seconds, now)

    def fail_job(
        self, claim: JobClaim, reason: str, retry_after_seconds: float | None
    ) -> Job | None:
        """Send a claimed job back to pending after a backoff, or to failed."""
        now = utcnow()
        retry = retry_after_seconds is not None
        after = lease_end(now, retry_after_seconds or 0.0) if retry else None
        with self._db.write() as (conn, _):
            found = conn.execute(
                "UPDATE jobs SET status = ?, error = ?, token = NULL, lease_until = NULL, "
                "run_after = coalesce(?, run_after), updated_at = ? WHERE id = ? AND "
                f"status = 'running' AND token = ? RETURNING {JOB_COLUMNS}",
                ("pending" if retry else "failed", reason_text(reason), to_db_time(after),
                 to_db_time(now), claim.job_id, claim.token),
            ).fetchall()  # fmt: skip
        return job_from_row(found[0]) if found else None

    def retry_job(self, namespace: str, job_id: str) -> Job:
        """Make a failed job pending again, from its first attempt."""
        now = to_db_time(utcnow())
        with self._db.write() as (conn, _):
            row = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = ? AND id = ?",
                (namespace, job_id),
            ).fetchone()
            if row is None:
                raise job_not_found(namespace, job_id)
            if row["status"] != "failed":
                raise not_failed(job_from_row(row))
            found = conn.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, run_after = ?, token = NULL, "
                "lease_until = NULL, updated_at = ? WHERE namespace = ? AND id = ? "
                f"RETURNING {JOB_COLUMNS}",
                (now, now, namespace, job_id),
            ).fetchall()
        return job_from_row(found[0])

    def get_job(self, namespace: str, job_id: str) -> Job | None:
        """One job by id."""
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = ? AND id = ?", (namespace, job_id)
        )
        return job_from_row(found[0]) if found else None

    def jobs(self, namespace: str, status: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs of a namespace, newest first."""
        where, params = "namespace = ?", [namespace]
        if check_status(status) is not None:
            where, params = where + " AND status = ?", [namespace, status or ""]
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY pk DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [job_from_row(r) for r in found]

    def job_of(self, namespace: str, kind: str, scope: Scope, message_id: str) -> Job | None:
        """The newest job of ``kind`` and exactly ``scope`` holding ``message_id``."""
        found = self._db.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = ? AND kind = ? AND user_id = ? "
            "AND agent_id = ? AND session_id = ? AND EXISTS (SELECT 1 FROM "
            "json_each(jobs.message_ids) WHERE value = ?) ORDER BY pk DESC LIMIT 1",
            (namespace, kind, scope.user_id or "", scope.agent_id or "", scope.session_id or "",
             message_id),
        )  # fmt: skip
        return job_from_row(found[0]) if found else None


def _runnable(namespace: str | None, kinds: Sequence[str], now: datetime) -> tuple[str, list[Any]]:
    """The WHERE clause of runnable jobs of a namespace (``None``: any) and kinds."""
    moment = to_db_time(now)
    clauses, params = [_RUNNABLE], [moment, moment]
    if namespace is not None:
        clauses.append("namespace = ?")
        params.append(namespace)
    if kinds:
        clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
        params.extend(kinds)
    return " AND ".join(clauses), params


def _take(
    conn: sqlite3.Connection, pk: int, worker: str, lease_seconds: float, now: datetime
) -> Job:
    """Claim the job at ``pk`` for ``worker`` under a fresh token."""
    found = conn.execute(
        "UPDATE jobs SET status = 'running', token = ?, worker = ?, attempts = attempts + 1, "
        f"lease_until = ?, updated_at = ? WHERE pk = ? RETURNING {JOB_COLUMNS}",
        (new_id(), worker, to_db_time(lease_end(now, lease_seconds)), to_db_time(now), pk),
    ).fetchall()  # all rows: a RETURNING statement must finish before the commit
    return job_from_row(found[0])
