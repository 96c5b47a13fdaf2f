"""Several processes and threads on one database file, and durability after a hard kill."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from remem import Memory
from remem.stores.sqlite import SQLiteStore

WORKERS = 3
PER_WORKER = 20


def word(worker: int, n: int) -> str:
    """A token that occurs in exactly one message."""
    return f"zq{worker}x{n}"


def _writer(path: str, worker: int, barrier) -> list[str]:
    """Open a Memory of its own and add PER_WORKER messages, one transaction each."""
    from remem import Memory as ProcessMemory

    with ProcessMemory(path) as mem:
        barrier.wait(timeout=120)
        for n in range(PER_WORKER):
            mem.add(
                [{"id": f"w{worker}-{n}", "role": "user",
                  "content": f"worker {worker} note {n}: the codeword is {word(worker, n)}"}],
                user_id=f"user{worker}", session_id="s",
            )  # fmt: skip
            mem.search(f"codeword {word(worker, n)}", user_id=f"user{worker}")
    return [f"w{worker}-{n}" for n in range(PER_WORKER)]


def _writer_process(path: str, worker: int, barrier, results) -> None:
    try:
        results.put((worker, _writer(path, worker, barrier), None))
    except BaseException as exc:  # report, so the parent fails with the real cause
        results.put((worker, [], repr(exc)))


def test_several_processes_write_the_same_file(tmp_path, embedder):
    path = tmp_path / "shared.db"
    Memory(path, embedder=embedder).close()  # create the schema once (see the race test)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_writer_process, args=(str(path), w, barrier, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [err for _, _, err in reports] == [None] * WORKERS
    assert [p.exitcode for p in procs] == [0] * WORKERS

    with Memory(path, embedder=embedder) as mem:
        stats = mem.stats()
        total = WORKERS * PER_WORKER
        # each session is summarised at 4, 8, 12, 16 and 20 turns; each new summary
        # supersedes the previous one
        summaries = WORKERS * (PER_WORKER // 4)
        assert (stats.messages, stats.memories_by_kind) == (
            total,
            {"turn": total, "summary": summaries},
        )
        assert stats.events == total + summaries + (summaries - WORKERS)  # ADD + SUPERSEDE
        assert stats.users == WORKERS
        for worker in range(WORKERS):
            current = mem.list(user_id=f"user{worker}", kinds=["summary"])
            assert len(current) == 1 and current[0].attributes["turns"] == PER_WORKER
        for worker in range(WORKERS):
            for n in range(PER_WORKER):
                hits = mem.search(word(worker, n), recipe="bm25", limit=3)
                assert [h.source_ids for h in hits] == [(f"w{worker}-{n}",)]
            found = mem.search(f"worker {worker} note 7 codeword {word(worker, 7)}",
                               user_id=f"user{worker}")  # fmt: skip
            assert found[0].source_ids == (f"w{worker}-7",)
            turns = mem.list(user_id=f"user{worker}", kinds=["turn"], limit=1000)
            assert len(turns) == PER_WORKER


def test_threads_share_one_memory(memory):
    threads_n, per_thread = 4, 10
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            barrier.wait(timeout=60)
            for n in range(per_thread):
                added = memory.add(f"thread {t} item {n} token {word(t, n)}", user_id=f"t{t}")
                hits = memory.search(f"token {word(t, n)}", user_id=f"t{t}")
                assert hits[0].memory.id == added.memories[0].id
                memory.list(user_id=f"t{t}")
                memory.stats()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    stats = memory.stats()
    assert (stats.messages, stats.memories) == (threads_n * per_thread, threads_n * per_thread)
    for t in range(threads_n):
        assert len(memory.list(user_id=f"t{t}")) == per_thread
        assert memory.search(word(t, 3), recipe="bm25")[0].text.endswith(word(t, 3))


def _add_then_hang(path: str, conn) -> None:
    """Add one message, report the acknowledged result, then wait to be killed."""
    from remem import Memory as ProcessMemory

    mem = ProcessMemory(path)
    result = mem.add("the spare key is under the blue flowerpot", user_id="ana")
    conn.send(result)
    conn.recv()  # blocks until the parent kills us; never closes the Memory


def _add_then_exit(path: str, conn) -> None:
    from remem import Memory as ProcessMemory

    mem = ProcessMemory(path)
    conn.send(mem.add("the wifi password is purple-otter-42", user_id="ana"))
    os._exit(0)  # no close, no atexit, no finalizers


@pytest.mark.parametrize("how", ["sigkill", "os_exit"])
def test_acknowledged_add_survives_a_hard_kill(tmp_path, embedder, how):
    path = tmp_path / "crash.db"
    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    target = _add_then_hang if how == "sigkill" else _add_then_exit
    child = ctx.Process(target=target, args=(str(path), child_end))
    child.start()
    assert parent_end.poll(300), "the child never acknowledged its add"
    acknowledged = parent_end.recv()
    if how == "sigkill":
        os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=60)
    assert child.exitcode == (-signal.SIGKILL if how == "sigkill" else 0)

    (record,) = acknowledged.memories
    with Memory(path, embedder=embedder) as mem:
        assert mem.get(record.id) == record
        query = "where is the spare key?" if how == "sigkill" else "wifi password"
        assert mem.search(query, user_id="ana")[0].memory.id == record.id
        assert mem.stats().messages == 1


def test_two_openers_of_a_new_file_do_not_race(tmp_path):
    # Deterministic interleaving: another connection holds the write lock with the schema
    # half-created while SQLiteStore opens the file; it commits once the opener is waiting.
    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE remem_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    other.execute("INSERT INTO remem_meta VALUES ('app', 'remem')")
    outcome: dict[str, object] = {}

    def open_store() -> None:
        try:
            outcome["store"] = SQLiteStore(path, busy_timeout_ms=60_000)
        except BaseException as exc:
            outcome["error"] = exc

    opener = threading.Thread(target=open_store)
    opener.start()
    time.sleep(1.0)  # let the opener read the (still empty) schema and wait for the lock
    other.execute("COMMIT")
    other.close()
    opener.join(timeout=120)
    store = outcome.get("store")
    if isinstance(store, SQLiteStore):
        store.close()
    assert "error" not in outcome, outcome.get("error")
    assert Path(path).exists()
