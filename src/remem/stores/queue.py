"""What both stores' job queues share: how a job row reads back, the rules of a claim,
and the errors they raise (the SQL lives in ``sqlite/jobs.py`` and ``postgres/jobs.py``).

A job row goes ``pending -> running -> done``; a failed run sends it back to ``pending``
(after a backoff) or on to ``failed``. A claim is a fresh random token: every write that
finishes or fails a run names it, and matches only while the job is still running under
it, so a worker whose lease ran out (and whose job someone else took over) can never
write its results, or its failure, over the new run's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from remem.errors import ConflictError, InvalidInputError, NotFoundError
from remem.models import JOB_STATUSES, Job, Scope
from remem.stores.base import JobClaim, NewJob

JOB_COLUMNS = (
    "id, namespace, kind, user_id, agent_id, session_id, message_ids, payload, status, "
    "attempts, error, token, worker, lease_until, run_after, result, created_at, updated_at"
)
MAX_ERROR_CHARS = 2000  # a failure's reason as kept (an LLM's raw answer can be long)


def job_from_values(
    row: Mapping[str, Any], times: Callable[[Any], datetime | None], load: Callable[[Any], Any]
) -> Job:
    """A ``Job`` from a row selected with ``JOB_COLUMNS``; ``times`` reads a stored time,
    ``load`` a stored JSON value (each backend stores both its own way)."""
    created = times(row["created_at"]) or datetime.min
    return Job(
        id=row["id"],
        kind=row["kind"],
        scope=Scope(
            row["user_id"] or None,
            row["agent_id"] or None,
            row["session_id"] or None,
            row["namespace"],
        ),
        message_ids=tuple(load(row["message_ids"])),
        status=row["status"],
        attempts=int(row["attempts"]),
        created_at=created,
        updated_at=times(row["updated_at"]) or created,
        run_after=times(row["run_after"]),
        payload=load(row["payload"]),
        error=row["error"],
        token=row["token"],
        worker=row["worker"],
        lease_until=times(row["lease_until"]),
        result=load(row["result"]),
    )


def enqueued_ids(job: NewJob, skipped: set[str]) -> tuple[str, ...]:
    """The job's message ids the batch really stored (duplicates another writer stored
    first came with their own job), each once, in order."""
    return tuple(dict.fromkeys(i for i in job.message_ids if i not in skipped))


def merged_ids(stored: Sequence[str], new: Sequence[str]) -> list[str]:
    """A coalesced job's message ids: the stored ones, then the new ones not among them."""
    return list(dict.fromkeys([*stored, *new]))


def lease_end(now: datetime, seconds: float) -> datetime:
    """When a claim taken ``now`` for ``seconds`` runs out."""
    return now + timedelta(seconds=max(0.0, float(seconds)))


def reason_text(reason: str) -> str:
    """A failure's reason as kept: at most ``MAX_ERROR_CHARS`` characters."""
    text = str(reason) or "failed (no reason given)"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def check_status(status: str | None) -> str | None:
    """A status filter as given, or ``InvalidInputError`` naming the statuses."""
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInputError(
            f"job status must be one of {', '.join(JOB_STATUSES)}, not {status!r}"
        )
    return status


def claim_lost(claim: JobClaim) -> ConflictError:
    """The error of a write that finishes a job the writer no longer holds."""
    return ConflictError(
        f"job {claim.job_id} is no longer held by this run (its lease ran out and another "
        "worker took it over, or its scope was deleted); nothing of this run was written, "
        "the other run's results count"
    )


def job_not_found(namespace: str, job_id: str) -> NotFoundError:
    return NotFoundError(
        f"no job {job_id!r} in namespace {namespace!r}; list jobs with Memory.jobs() or "
        "`remem jobs list`"
    )


def not_failed(job: Job) -> InvalidInputError:
    return InvalidInputError(
        f"job {job.id} is {job.status}, not failed; only failed jobs are retried (a "
        "pending or running one will run anyway)"
    )
