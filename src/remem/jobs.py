"""The job runner: claims jobs from the store's queue, runs each kind's handler (from
``remem.registry``), and writes the handler's results together with the job's completion
in one transaction, so a job's results are written exactly once.

A run that fails is recorded with its reason: the job goes back to pending after a
backoff (``DeriveConfig.retry_seconds``, doubling) until it has run
``DeriveConfig.max_attempts`` times, then it is failed, visible with its reason, until
``retry_job``. A run whose write conflicts with another writer's (``ConflictError``:
a memory it retires was retired meanwhile) is rerun at once, within the same limit. A
worker that dies mid-run holds its job only until the lease runs out; whoever takes it
over reruns it, and the dead run's token no longer completes anything. Nothing here
retries forever or waits without bound: the LLM client has timeouts, the attempts a cap.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from remem.errors import ConflictError, LLMError, RememError
from remem.models import Job, JobRun, JobsReport, Message
from remem.registry import job_handler
from remem.stores.base import JobClaim, NewJob, WriteBatch

if TYPE_CHECKING:
    from remem.engine import Memory

log = logging.getLogger(__name__)
DERIVE = "derive"  # the kind of job ``add`` enqueues when an LLM is configured
MAX_BACKOFF_SECONDS = 3600.0
POLL_SECONDS = 1.0  # how often an idle background runner looks for due jobs


@dataclass(frozen=True)
class JobOutput:
    """What one run of a handler writes: ``batch`` (memories, retirements, notes; its
    ``complete`` is set by the runner), and ``result``, what the run did (counts, LLM
    calls, tokens), kept on the done job."""

    batch: WriteBatch = field(default_factory=WriteBatch)
    result: Mapping[str, Any] = field(default_factory=dict)


def worker_name() -> str:
    """This process's name as a worker (host and process id), shown on its claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff_seconds(retry_seconds: float, attempts: int) -> float:
    """The wait before the next attempt after ``attempts`` failed runs: ``retry_seconds``
    doubled per attempt after the first, at most an hour."""
    return float(min(max(0.0, retry_seconds) * 2 ** max(0, attempts - 1), MAX_BACKOFF_SECONDS))


# -- running one job -------------------------------------------------------------------


def run_claimed(memory: Memory, job: Job) -> JobRun:
    """Run a job this worker has claimed, and write its results with its completion, or
    record why it failed. Never raises for what the job did (a handler's error, an LLM's,
    a conflict); a store failure while recording a failure is raised (the lease then
    runs out and another worker takes the job over)."""
    view = memory if job.scope.namespace == memory.namespace else memory.tenant(job.scope.namespace)
    claim = JobClaim(job.id, job.token or "")
    started = time.perf_counter()
    try:
        output = job_handler(job.kind)(view, job)
        result = {**output.result, "seconds": round(time.perf_counter() - started, 3)}
        view.store.write(replace(output.batch, complete=replace(claim, result=result)))
    except ConflictError as exc:  # lost the claim, or another writer changed what we retire
        return _failed(memory, job, claim, f"conflict: {exc}", retry_after=0.0)
    except LLMError as exc:
        retry = backoff_seconds(memory.config.derive.retry_seconds, job.attempts)
        return _failed(memory, job, claim, f"LLM: {exc.reason}", retry_after=retry)
    except RememError as exc:
        retry = backoff_seconds(memory.config.derive.retry_seconds, job.attempts)
        return _failed(memory, job, claim, f"{type(exc).__name__}: {exc}", retry_after=retry)
    except Exception as exc:  # a handler's bug: recorded on the job, and logged in full
        log.exception("job %s (%s) raised", job.id, job.kind)
        retry = backoff_seconds(memory.config.derive.retry_seconds, job.attempts)
        return _failed(memory, job, claim, f"{type(exc).__name__}: {exc}", retry_after=retry)
    written = tuple(n.record for n in output.batch.memories)
    return JobRun(job.id, job.kind, "done", job.attempts, result=result, memories=written)


def _failed(memory: Memory, job: Job, claim: JobClaim, reason: str, retry_after: float) -> JobRun:
    """Record a failed run: pending again after ``retry_after`` seconds, or failed once
    the job has had its attempts; ``lost`` if another worker holds it now."""
    last = job.attempts >= memory.config.derive.max_attempts
    stored = memory.store.fail_job(claim, reason, None if last else retry_after)
    if stored is None:
        log.info("job %s was taken over by another worker; this run wrote nothing", job.id)
        return JobRun(job.id, job.kind, "lost", job.attempts, error=reason)
    log.info("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, reason)
    return JobRun(job.id, job.kind, stored.status, job.attempts, error=stored.error,
                  retry_in=None if last else retry_after)  # fmt: skip


class StopFlag(Protocol):
    """What ``run_jobs`` checks between jobs: a ``threading.Event``, or a flag a signal
    handler sets (``remem worker``)."""

    def is_set(self) -> bool: ...


def run_jobs(
    memory: Memory,
    namespace: str | None,
    worker: str,
    *,
    limit: int | None = None,
    kinds: Sequence[str] = (),
    stop: StopFlag | None = None,
    on_run: Callable[[JobRun], None] | None = None,
) -> JobsReport:
    """Claim and run runnable jobs of ``namespace`` (``None``: every namespace) one after
    another until none is left, ``limit`` runs were made or ``stop`` is set."""
    runs: list[JobRun] = []
    lease = memory.config.derive.lease_seconds
    while (limit is None or len(runs) < limit) and not (stop is not None and stop.is_set()):
        job = memory.store.claim_job(namespace, worker, lease, kinds)
        if job is None:
            break
        run = run_claimed(memory, job)
        runs.append(run)
        if on_run is not None:
            on_run(run)
    return JobsReport(tuple(runs))


def run_now(memory: Memory, job_id: str, worker: str) -> JobRun:
    """Run one job now, in this thread (``add(wait=True)``), and return how it ended.

    A run to be retried at once (after a conflict, say) is rerun here, up to the job's
    attempts. If another worker holds it, wait for that run to end (polling), or for its
    lease to run out and then run it here; a job already done, failed or deleted is
    reported as it stands."""
    store, namespace = memory.store, memory.namespace
    pause = 0.02
    while True:
        job = store.claim_job_by_id(namespace, job_id, worker, memory.config.derive.lease_seconds)
        if job is not None:
            run = run_claimed(memory, job)
            if run.status != "pending" or run.retry_in:
                return run
            continue  # due again now: a conflict with another writer, or no backoff
        current = store.get_job(namespace, job_id)
        if current is None:
            return JobRun(job_id, DERIVE, "lost", error="the job was deleted (its scope was)")
        if current.status != "running":
            return job_state(current)
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def job_state(job: Job) -> JobRun:
    """A job as it stands, as a ``JobRun`` (what ``add(wait=False)`` reports)."""
    return JobRun(job.id, job.kind, job.status, job.attempts, error=job.error,
                  result=job.result)  # fmt: skip


def after_add(memory: Memory, job: NewJob, skipped: set[str], wait: bool) -> JobRun | None:
    """What ``add`` does with the derive job it enqueued: run it now (``wait``), or find
    where it went (it may have joined a pending job) and wake the background runner."""
    stored = [i for i in job.message_ids if i not in skipped]
    if not stored:
        return None  # every message was already stored: no job was enqueued
    background = memory.config.derive.background
    if wait:
        run = run_now(memory, job.id, worker_name())
        if run.status == "pending" and background:
            memory._drainer.wake(memory.namespace)  # retried in the background
        return run
    found = memory.store.job_of(memory.namespace, job.kind, job.scope, stored[0])
    if background:
        memory._drainer.wake(memory.namespace)
    return None if found is None else job_state(found)


# -- the derive handler ----------------------------------------------------------------


def derive_job(memory: Memory, job: Job) -> JobOutput:
    """The ``derive`` handler: facts, events, profile entries and procedures from the
    job's messages (``remem.evolution.derive``), consolidated with what is stored."""
    from remem.evolution.derive import derive

    messages = job_messages(memory, job)
    if not messages:  # deleted since: nothing to derive from
        return JobOutput(result={"messages": 0})
    derivation = derive(memory, job.scope, messages)
    usage = derivation.usage
    return JobOutput(
        derivation.batch,
        {
            "messages": len(messages),
            "candidates": derivation.candidates,
            "dropped": derivation.dropped,
            "memories": len(derivation.batch.memories),
            "retired": len(derivation.batch.retire),
            "llm_calls": derivation.llm_calls,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "llm_seconds": round(derivation.seconds, 3),
        },
    )


def job_messages(memory: Memory, job: Job) -> list[Message]:
    """The job's messages still in the log, in the job's order."""
    found = {m.id: m for m in memory.store.get_messages(job.scope.namespace, job.scope,
                                                        job.message_ids)}  # fmt: skip
    return [found[i] for i in job.message_ids if i in found]


# -- the background runner -------------------------------------------------------------


class Drainer:
    """A daemon thread of one ``Memory`` that runs the jobs its adds enqueue
    (``DeriveConfig.background``): started by the first ``add(wait=False)``, it claims
    through the store like any worker (so it never runs a job another process runs),
    looks again every ``POLL_SECONDS`` for jobs whose backoff has passed, and stops in
    ``Memory.close``, after the job it is running."""

    def __init__(self, memory: Memory, poll_seconds: float = POLL_SECONDS) -> None:
        self._memory = memory
        self._poll = poll_seconds
        self._namespaces: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self, namespace: str) -> None:
        """Run ``namespace``'s jobs soon (starting the thread on first use)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._namespaces.add(namespace)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="remem-jobs", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        worker = f"{worker_name()}:background"
        gather = max(0.0, self._memory.config.derive.gather_seconds)
        while not self._stop.is_set():
            if self._wake.wait(self._poll) and gather:  # an add: let its burst gather
                self._stop.wait(gather)
            self._wake.clear()
            while self._drain(worker) and not self._stop.is_set():
                pass  # until nothing is due

    def _drain(self, worker: str) -> int:
        """Run the due jobs of the namespaces woken so far; how many runs were made."""
        ran = 0
        for namespace in sorted(self._namespaces):
            try:
                ran += len(run_jobs(self._memory, namespace, worker, stop=self._stop).runs)
            except Exception:  # a store failure: logged, and tried again next round
                log.exception("the background job runner failed; it tries again shortly")
        return ran

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current job; wait up to ``timeout`` seconds for it. A job still
        running then keeps its lease and is rerun by another worker after it."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("a background job did not finish in %.0f s; it will be rerun "
                            "once its lease runs out", timeout)  # fmt: skip
