"""The persistent job queue end to end: ``add(wait=...)`` enqueues derive jobs atomically
with its messages, runners in threads and processes claim them, and crashes, restarts,
expired leases and LLM failures never lose a job, run one twice or write its results
twice; the verbatim log stays intact throughout.

The ``derive`` handler is replaced, through the real registry, by ``fact_handler``: one
structured call to the LLM (a ``ScriptedLLM`` that restates each message) and one fact
per message, written with ``Memory._derived`` like the real pipeline's memories.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

from remem import Memory
from remem.cli.main import main
from remem.config import DeriveConfig, MemoryConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.errors import InvalidInputError, LLMError, NotFoundError
from remem.formation.derived import Candidate
from remem.jobs import JobOutput, backoff_seconds, job_messages
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.models import Job, Scope
from remem.registry import job_handler, register_job_handler, register_llm, store_config
from remem.settings import ENV_VARS
from remem.stores.base import Retire, WriteBatch
from remem.util import utcnow

Handler = Callable[[Memory, Job], JobOutput]


class Facts(BaseModel):
    """What the test extraction asks the LLM for."""

    model_config = ConfigDict(extra="forbid")
    facts: list[str]


def restate(request: ScriptedRequest) -> dict[str, Any]:
    """The scripted model's answer: one fact per ``MSG:`` line of the prompt."""
    lines = request.messages[0]["content"].splitlines()
    return {"facts": [f"noted: {line[5:]}" for line in lines if line.startswith("MSG: ")]}


def scripted(n: int = 100) -> ScriptedLLM:
    return ScriptedLLM([restate] * n)


def fact_handler(memory: Memory, job: Job) -> JobOutput:
    """One LLM call for the job's messages; one fact per message, citing them all."""
    messages = job_messages(memory, job)
    assert memory.llm is not None
    prompt = "\n".join(f"MSG: {m.content}" for m in messages)
    answer = memory.llm.structured([{"role": "user", "content": prompt}], Facts)
    candidates = [
        Candidate("fact", text, tuple(m.id for m in messages), metadata={"job": job.id})
        for text in answer.value.facts
    ]
    new = memory._derived(job.scope, candidates, utcnow())
    return JobOutput(
        WriteBatch(memories=tuple(new), actor="remem", reason="derive (test)"),
        {"messages": len(messages), "llm_calls": 1, "memories": len(new)},
    )


@pytest.fixture
def use_handler() -> Iterator[Callable[[Handler], None]]:
    """``use_handler(fn)`` makes ``fn`` the ``derive`` handler for this test."""
    original = job_handler("derive")
    yield lambda handler: register_job_handler("derive", handler)
    register_job_handler("derive", original)


@pytest.fixture
def facts(use_handler: Callable[[Handler], None]) -> None:
    use_handler(fact_handler)


def open_memory(
    path: Path | str, embedder: OnnxMiniLMEmbedder | None = None, llm: ScriptedLLM | None = None,
    **derive: Any,
) -> Memory:  # fmt: skip
    """A ``Memory`` on ``path`` whose background runner is off unless asked for."""
    settings = DeriveConfig(**{"background": False, "retry_seconds": 0.0, **derive})
    config = MemoryConfig(store=store_config(str(path)), derive=settings)
    return Memory(config, embedder=embedder, llm=llm)


def facts_by_job(memory: Memory) -> Counter[str]:
    """How many fact memories each job wrote."""
    found = memory.list(kinds="fact", limit=1000, user_id=None)
    return Counter(str(r.metadata.get("job")) for r in found)


def log_intact(memory: Memory, user_id: str, contents: list[str]) -> None:
    """Every message added is in the log, verbatim."""
    turns = memory.list(user_id=user_id, kinds="turn", limit=1000)
    ids = [i for t in turns for i in t.source_ids]
    scope = Scope(user_id=user_id, namespace=memory.namespace)
    logged = memory.store.get_messages(memory.namespace, scope, ids)
    assert sorted(m.content for m in logged) == sorted(contents)
    assert memory.stats().messages == len(contents)


def wait_until(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- add ---------------------------------------------------------------------------------


def test_without_an_llm_add_enqueues_nothing(memory: Memory) -> None:
    result = memory.add("I moved to Lisbon in May", user_id="ana", wait=False)
    assert result.job is None and len(result.memories) == 1
    assert memory.jobs() == [] and dict(memory.stats().jobs) == {}
    assert memory.run_jobs().runs == ()


def test_add_runs_its_derive_job_and_returns_what_it_wrote(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    llm = scripted()
    with open_memory(tmp_path / "m.db", embedder, llm) as mem:
        result = mem.add([{"role": "user", "content": "I moved to Lisbon in May"},
                          {"role": "user", "content": "My dog is called Pixel"}],
                         user_id="ana")  # fmt: skip
        assert result.job is not None and result.job.status == "done"
        derived = [r.text for r in result.derived if r.kind == "fact"]
        assert derived == ["noted: I moved to Lisbon in May", "noted: My dog is called Pixel"]
        assert all(r.source_ids == result.message_ids for r in result.derived)
        assert len(llm.requests) == 1  # one call for the add's batch
        (job,) = mem.jobs()
        assert (job.id, job.status, job.attempts) == (result.job.job_id, "done", 1)
        assert job.message_ids == result.message_ids and job.result["llm_calls"] == 1
        assert dict(mem.stats().jobs) == {"done": 1}
        again = mem.add([{"id": m, "role": "user", "content": c} for m, c in zip(
            result.message_ids, ["I moved to Lisbon in May", "My dog is called Pixel"],
            strict=True)], user_id="ana")  # fmt: skip
        assert again.job is None and again.duplicate_ids == result.message_ids


def test_adds_that_do_not_wait_return_at_once_and_are_derived_in_batches(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    llm = scripted()
    with open_memory(tmp_path / "m.db", embedder, llm, batch_turns=4) as mem:
        results = [mem.add(f"note {i}", user_id="ana", session_id="s1", wait=False)
                   for i in range(6)]  # fmt: skip
        assert llm.requests == [] and not [
            d for r in results for d in r.derived if d.kind == "fact"
        ]
        job_ids = [r.job.job_id for r in results if r.job is not None]
        assert [r.job.status for r in results if r.job] == ["pending"] * 6
        assert job_ids[:4] == [job_ids[0]] * 4 and job_ids[4:] == [job_ids[4]] * 2
        other = mem.add("elsewhere", user_id="ana", session_id="s2", wait=False)
        assert other.job is not None and other.job.job_id not in job_ids
        assert dict(mem.stats().jobs) == {"pending": 3}
        report = mem.run_jobs()
        assert (report.done, report.failed, report.retrying) == (3, 0, 0)
        assert len(llm.requests) == 3  # one call per batch, not per message
        assert sorted(len(j.message_ids) for j in mem.jobs()) == [1, 2, 4]
        assert len(mem.list(kinds="fact", user_id="ana")) == 7


def test_the_background_thread_gathers_a_burst_into_one_call(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    llm = scripted()
    mem = open_memory(tmp_path / "m.db", embedder, llm, background=True, gather_seconds=3.0)
    try:
        for i in range(5):
            mem.add(f"burst {i}", user_id="ana", session_id="s1", wait=False)
        wait_until(lambda: mem.stats().jobs.get("done") == 1)
        assert len(llm.requests) == 1
        assert len(mem.list(kinds="fact", user_id="ana")) == 5
    finally:
        mem.close()  # stops the thread cleanly
    assert not any(t.name == "remem-jobs" and t.is_alive() for t in threading.enumerate())


def test_the_default_derive_handler_runs_extraction_and_consolidation_as_one_job(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    from remem.evolution.consolidate_prompt import Consolidation, ConsolidationDecision
    from remem.formation.extract import Extraction, FactItem

    extracted = Extraction(facts=[FactItem(text="Ana moved to Lisbon in May", turns=[1])],
                           events=[], profile=[], procedures=[])  # fmt: skip
    decided = Consolidation(decisions=[ConsolidationDecision(
        candidate=1, action="ADD", targets=[], links=[], text="", reason="new")])  # fmt: skip
    llm = ScriptedLLM([extracted, decided])
    with open_memory(tmp_path / "m.db", embedder, llm) as mem:
        # a close stored fact, so consolidation has something to ask the model about
        mem.remember("Ana moved to Lisbon in April", user_id="ana")
        added = mem.add("I moved to Lisbon in May", user_id="ana", session_id="s1", wait=False)
        assert added.job is not None and llm.requests == []
        (run,) = mem.run_jobs().runs
        assert run.status == "done" and run.result["llm_calls"] == 2
        assert (run.result["messages"], run.result["candidates"], run.result["memories"]) == (
            1, 1, 1)  # fmt: skip
        (fact,) = [f for f in mem.list(kinds="fact", user_id="ana") if "May" in f.text]
        assert fact.text == "Ana moved to Lisbon in May"
        assert fact.source_ids == added.message_ids
        assert [e.action for e in mem.history(fact.id)] == ["ADD"]


# -- restarts, failures and retries -----------------------------------------------------


def test_jobs_survive_a_restart(tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None) -> None:
    path = tmp_path / "m.db"
    with open_memory(path, embedder, scripted()) as first:
        first.add("I moved to Lisbon in May", user_id="ana", wait=False)
        first.add("Pixel is a greyhound", user_id="ana", wait=False)
    with open_memory(path, embedder) as plain:  # no LLM: the jobs wait
        assert dict(plain.stats().jobs) == {"pending": 1}
    with open_memory(path, embedder, scripted()) as second:
        report = second.run_jobs()
        assert report.done == 1 and report.runs[0].result["messages"] == 2
        texts = sorted(r.text for r in second.list(kinds="fact", user_id="ana"))
        assert texts == ["noted: I moved to Lisbon in May", "noted: Pixel is a greyhound"]
        log_intact(second, "ana", ["I moved to Lisbon in May", "Pixel is a greyhound"])


def test_an_llm_failure_is_retried_then_failed_with_its_reason_and_retry_runs_it(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    timeout = LLMError("the LLM endpoint timed out", reason="timed out after 60 s",
                       transient=True)  # fmt: skip
    llm = ScriptedLLM([timeout, {"facts": "not a list"}], max_reasks=0)
    with open_memory(tmp_path / "m.db", embedder, llm, max_attempts=2) as mem:
        added = mem.add("I moved to Lisbon in May", user_id="ana", wait=False)
        report = mem.run_jobs()  # attempt 1 times out, attempt 2 (no backoff) is invalid
        assert [(r.status, r.attempts) for r in report.runs] == [("pending", 1), ("failed", 2)]
        assert report.runs[0].error == "LLM: timed out after 60 s"
        assert (report.done, report.retrying, report.failed) == (0, 1, 1)
        (job,) = mem.jobs(status="failed")
        assert added.job is not None and job.id == added.job.job_id
        assert job.attempts == 2 and job.error is not None and "LLM:" in job.error
        assert "facts" in job.error  # the validation error names the bad field
        assert dict(mem.stats().jobs) == {"failed": 1}
        assert mem.run_jobs().runs == ()  # failed stays failed: no silent retries
        assert mem.list(kinds="fact") == []
        log_intact(mem, "ana", ["I moved to Lisbon in May"])
        llm.add(restate)
        assert mem.retry_job(job.id).status == "pending"
        with pytest.raises(InvalidInputError):
            mem.retry_job(job.id)
        with pytest.raises(NotFoundError):
            mem.retry_job("no-such-job")
        assert mem.run_jobs().done == 1
        assert [r.text for r in mem.list(kinds="fact")] == ["noted: I moved to Lisbon in May"]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(10, n) for n in (1, 2, 3)] == [10, 20, 40]
    assert backoff_seconds(10, 40) == 3600 and backoff_seconds(0, 5) == 0


def test_a_failing_job_waits_out_its_backoff(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    llm = ScriptedLLM([LLMError("down", reason="connection refused", transient=True)])
    with open_memory(tmp_path / "m.db", embedder, llm, retry_seconds=30.0) as mem:
        mem.add("hello there", user_id="ana", wait=False)
        report = mem.run_jobs()
        assert [(r.status, r.retry_in) for r in report.runs] == [("pending", 30.0)]
        (job,) = mem.jobs()
        assert job.run_after is not None and job.run_after > utcnow()
        assert mem.run_jobs().runs == ()  # not due yet


def test_a_handler_bug_is_recorded_not_swallowed(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    def broken(memory: Memory, job: Job) -> JobOutput:
        raise ZeroDivisionError("division by zero")

    use_handler(broken)
    with open_memory(tmp_path / "m.db", embedder, scripted(), max_attempts=1) as mem:
        added = mem.add("hello there", user_id="ana")  # the add itself succeeds
        assert added.job is not None and added.job.status == "failed"
        assert added.job.error == "ZeroDivisionError: division by zero"
        assert len(added.memories) == 1 and not added.derived


def test_a_conflicting_write_sends_the_job_back_to_run_again(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    """Another writer retired the memory a run meant to retire: the run writes nothing
    and the job reruns (against the new state)."""
    runs: list[int] = []

    def superseding(memory: Memory, job: Job) -> JobOutput:
        runs.append(job.attempts)
        output = fact_handler(memory, job)
        current = memory.get(porto.id).superseded_by is None  # decided on what it read
        if job.attempts == 1:  # meanwhile, another writer supersedes the same memory
            memory.store.write(retiring(fact_handler(memory, job).batch, porto.id))
        return JobOutput(retiring(output.batch, porto.id), output.result) if current else output

    with open_memory(tmp_path / "m.db", embedder, scripted()) as mem:
        porto = mem.remember("Ana lives in Porto", user_id="ana")
        use_handler(superseding)
        added = mem.add("I moved to Lisbon in May", user_id="ana")
        assert runs == [1, 2]  # the conflicting run wrote nothing and ran again at once
        assert added.job is not None and (added.job.status, added.job.attempts) == ("done", 2)
        (job,) = mem.jobs()
        assert job.error is not None and job.error.startswith("conflict:")
        assert len(mem.history(porto.id)) == 2  # ADD, then one SUPERSEDE: not two


def retiring(batch: WriteBatch, memory_id: str) -> WriteBatch:
    """``batch`` also retiring ``memory_id``, superseded by its first memory."""
    first = batch.memories[0].record
    retire = Retire(memory_id, first.id, utcnow(), reason="test", namespace=first.scope.namespace)
    return WriteBatch(memories=batch.memories, retire=(retire,), actor=batch.actor,
                      reason=batch.reason)  # fmt: skip


# -- leases, crashes and concurrent workers ----------------------------------------------


def test_a_run_that_outlived_its_lease_writes_nothing_and_the_rerun_writes_once(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    entered, release = threading.Event(), threading.Event()

    def stalling(memory: Memory, job: Job) -> JobOutput:
        output = fact_handler(memory, job)  # the work is done ...
        if job.attempts == 1:
            entered.set()
            release.wait(60)  # ... but the worker stalls past its lease
        return output

    use_handler(stalling)
    with open_memory(tmp_path / "m.db", embedder, scripted(), lease_seconds=0.5) as mem:
        mem.add("I moved to Lisbon in May", user_id="ana", wait=False)
        stalled: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: stalled.update(r=mem.run_jobs(worker="slow")))
        thread.start()
        assert entered.wait(60)
        time.sleep(0.6)  # the lease runs out
        rerun = mem.run_jobs(worker="quick")
        release.set()
        thread.join(60)
        assert [(r.status, r.attempts) for r in rerun.runs] == [("done", 2)]
        assert [r.status for r in stalled["r"].runs] == ["lost"]
        assert list(facts_by_job(mem).values()) == [1]  # written once
        (job,) = mem.jobs()
        assert (job.status, job.worker) == ("done", "quick")
        log_intact(mem, "ana", ["I moved to Lisbon in May"])


def _claim_then_hang(path: str, conn: Any) -> None:
    """A worker process that claims the job, derives, reports, and hangs before writing."""

    def hanging(memory: Memory, job: Job) -> JobOutput:
        fact_handler(memory, job)
        conn.send(job.id)
        conn.recv()  # killed here, its results never written
        raise AssertionError("unreachable")

    register_job_handler("derive", hanging)
    with open_memory(Path(path), llm=scripted(), lease_seconds=1.0) as mem:
        mem.run_jobs(worker="doomed")


def test_a_worker_killed_mid_job_is_rerun_once_its_lease_runs_out(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    path = tmp_path / "m.db"
    with open_memory(path, embedder, scripted()) as mem:
        mem.add("I moved to Lisbon in May", user_id="ana", wait=False)
        mem.add("Pixel is a greyhound", user_id="ana", wait=False)  # joins the first job
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_claim_then_hang, args=(str(path), child_end))
        child.start()
        assert parent_end.poll(300), "the worker never claimed the job"
        job_id = parent_end.recv()
        held = mem.jobs()[0]
        assert (held.id, held.status, held.worker) == (job_id, "running", "doomed")
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(60)
        assert child.exitcode == -signal.SIGKILL
        assert held.lease_until is not None
        wait_until(lambda: utcnow() > (held.lease_until or utcnow()), 10)
        report = mem.run_jobs(worker="survivor")
        assert [(r.job_id, r.status, r.attempts) for r in report.runs] == [(job_id, "done", 2)]
        assert facts_by_job(mem) == Counter({job_id: 2})  # two messages, one fact each, once
        log_intact(mem, "ana", ["I moved to Lisbon in May", "Pixel is a greyhound"])


def _drain(path: str, started_log: str, barrier: Any, results: Any) -> None:
    """A worker process: run jobs until none is left, logging each handler start."""
    try:
        register_job_handler("derive", _logged(started_log))
        with open_memory(Path(path), llm=scripted()) as mem:
            barrier.wait(timeout=300)
            report = mem.run_jobs(worker=f"process-{os.getpid()}")
        results.put(([r.status for r in report.runs], None))
    except BaseException as exc:  # report, so the parent fails with the real cause
        results.put(([], repr(exc)))


def _logged(started_log: str) -> Handler:
    def handler(memory: Memory, job: Job) -> JobOutput:
        with open(started_log, "a", encoding="utf-8") as log:  # one short append per run
            log.write(job.id + "\n")
        time.sleep(0.02)  # let the workers interleave
        return fact_handler(memory, job)

    return handler


def test_workers_in_threads_and_processes_run_each_job_once(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    path, started = tmp_path / "m.db", tmp_path / "started.log"
    contents = [f"note number {i}" for i in range(24)]
    with open_memory(path, embedder, scripted()) as mem:
        for i, text in enumerate(contents):  # a session each: 24 jobs, none coalesced
            mem.add(text, user_id="ana", session_id=f"s{i}", wait=False)
        assert dict(mem.stats().jobs) == {"pending": 24}
        use_handler(_logged(str(started)))
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_drain, args=(str(path), str(started), barrier, results))
                 for _ in range(2)]  # fmt: skip
        for proc in procs:
            proc.start()
        barrier.wait(timeout=300)
        threads = [threading.Thread(target=mem.run_jobs) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        reports = [results.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join(60)
        assert [error for _, error in reports] == [None, None]
        runs = started.read_text(encoding="utf-8").split()
        assert len(runs) == 24 and len(set(runs)) == 24  # no job ran twice
        assert all(j.status == "done" and j.attempts == 1 for j in mem.jobs())
        workers = Counter(j.worker for j in mem.jobs())
        assert sum(n for w, n in workers.items() if w and w.startswith("process-")) > 0
        assert facts_by_job(mem) == Counter(dict.fromkeys(runs, 1))  # each written once
        log_intact(mem, "ana", contents)


@pytest.mark.postgres
def test_memories_on_one_postgres_database_share_its_queue(
    postgres_url: str, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    from conftest import database_url  # tests/conftest.py (tests/ is on sys.path)

    url = database_url(postgres_url, f"t_{uuid.uuid4().hex[:16]}")
    runs: list[str] = []
    use_handler(_logged_in(runs))
    contents = [f"note number {i}" for i in range(12)]
    mem, other = open_memory(url, embedder, scripted()), open_memory(url, embedder, scripted())
    with mem, other:
        for i, text in enumerate(contents):
            mem.add(text, user_id="ana", session_id=f"s{i}", wait=False)
        assert dict(other.stats().jobs) == {"pending": 12}  # the other process sees them
        threads = [threading.Thread(target=m.run_jobs) for m in (mem, other, mem, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert len(runs) == 12 and len(set(runs)) == 12  # no job ran twice
        assert dict(mem.stats().jobs) == {"done": 12}
        assert facts_by_job(other) == Counter(dict.fromkeys(runs, 1))
        log_intact(other, "ana", contents)


def _logged_in(runs: list[str]) -> Handler:
    def handler(memory: Memory, job: Job) -> JobOutput:
        runs.append(job.id)
        time.sleep(0.02)
        return fact_handler(memory, job)

    return handler


# -- deletion ----------------------------------------------------------------------------


def test_deleting_a_scope_removes_its_jobs_and_a_running_one_writes_nothing(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, use_handler: Callable[[Handler], None]
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(memory: Memory, job: Job) -> JobOutput:
        output = fact_handler(memory, job)
        entered.set()
        release.wait(60)
        return output

    use_handler(slow)
    with open_memory(tmp_path / "m.db", embedder, scripted()) as mem:
        mem.add("Ana's secret", user_id="ana", session_id="s1", wait=False)
        mem.add("Ana's other secret", user_id="ana", session_id="s2", wait=False)
        mem.add("Ben's note", user_id="ben", wait=False)
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(r=mem.run_jobs(limit=1)))
        thread.start()
        assert entered.wait(60)
        mem.delete_all(user_id="ana")
        release.set()
        thread.join(60)
        assert [r.status for r in done["r"].runs] == ["lost"]
        assert [j.scope.user_id for j in mem.jobs()] == ["ben"]
        assert mem.list(kinds="fact", user_id="ana") == []


# -- the command line --------------------------------------------------------------------


def _runner(**env: str) -> CliRunner:
    return CliRunner(env={**{name: None for name in ENV_VARS}, **env})


@pytest.fixture
def cli_llm() -> Iterator[ScriptedLLM]:
    """``REMEM_LLM_*`` settings build this scripted LLM (the real registry's ``openai``
    name points at it for the test)."""
    from remem import registry

    llm = scripted()
    original = registry._LLMS["openai"]
    register_llm("openai", lambda **options: llm)
    yield llm
    register_llm("openai", original)


def test_remem_add_no_wait_queues_and_remem_worker_runs_the_queue(
    tmp_path: Path, facts: None, cli_llm: ScriptedLLM
) -> None:
    path = tmp_path / "m.db"
    env = {"REMEM_LLM_BASE_URL": "http://127.0.0.1:9/v1", "REMEM_LLM_MODEL": "test"}
    added = _runner(**env).invoke(main, ["--db", str(path), "add", "-u", "ana", "--no-wait",
                                         "I moved to Lisbon in May"])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert cli_llm.requests == []  # queued, not derived
    result = _runner(**env).invoke(main, ["worker", "--db", str(path), "--once"])
    assert result.exit_code == 0, result.output
    assert "done" in result.stdout and "1 messages -> 1 memories, 1 LLM call" in result.stdout
    assert "ran 1 jobs: 1 done, 0 failed, 0 to retry" in result.stderr
    assert len(cli_llm.requests) == 1
    listed = _runner().invoke(main, ["--json", "jobs", "list", "--db", str(path)])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "done" and row["result"]["llm_calls"] == 1


def test_remem_worker_needs_an_llm(tmp_path: Path) -> None:
    result = _runner().invoke(main, ["worker", "--db", str(tmp_path / "m.db"), "--once"])
    assert result.exit_code == 2 and "needs an LLM" in result.stderr
    result = _runner().invoke(main, ["worker", "--db", str(tmp_path / "m.db"),
                                     "--llm-url", "http://x/v1"])  # fmt: skip
    assert result.exit_code == 2 and "--llm-model" in result.stderr


def test_remem_jobs_lists_failures_and_retries_them(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, facts: None
) -> None:
    path = tmp_path / "m.db"
    bad = LLMError("bad answer", reason="facts: input should be a valid list")
    with open_memory(path, embedder, ScriptedLLM([bad]), max_attempts=1) as mem:
        job_id = mem.add("hello", user_id="ana").job.job_id  # type: ignore[union-attr]
    listed = _runner().invoke(main, ["jobs", "list", "--db", str(path), "--status", "failed"])
    assert listed.exit_code == 0, listed.output
    assert job_id in listed.stdout and "LLM: facts: input should be a valid list" in listed.stdout
    stats = _runner().invoke(main, ["--db", str(path), "stats"])
    assert "jobs:     failed 1" in stats.stdout  # the backlog, failures included
    retried = _runner().invoke(main, ["jobs", "retry", "--db", str(path), job_id])
    assert retried.exit_code == 0 and f"queued {job_id} again" in retried.stdout
    again = _runner().invoke(main, ["jobs", "retry", "--db", str(path), job_id])
    assert again.exit_code == 2 and "only failed jobs" in again.stderr
    unknown = _runner().invoke(main, ["jobs", "retry", "--db", str(path), "nope"])
    assert unknown.exit_code == 3


def test_remem_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(REMEM_LLM_BASE_URL="http://127.0.0.1:9/v1", REMEM_LLM_MODEL="test")
    proc = subprocess.Popen(
        [sys.executable, "-m", "remem", "worker", "--db", str(tmp_path / "m.db"), "--poll", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # printed once the worker runs
        assert "running the jobs of namespace 'default'" in first, first
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping after the current job" in err and "ran 0 jobs" in err
