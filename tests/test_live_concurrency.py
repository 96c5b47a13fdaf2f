"""A live store: many threads and processes reading and writing one file at once.

Writers are acknowledged only for what they stored, readers never fail and never see
another user's memories or half of an add, and a search right after an add finds it, from
the same ``Memory``, another one, or another process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import string
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from remem import AsyncMemory, EmbedderConfig, Memory, SearchResults
from remem.embedders.base import Embedder
from remem.registry import create_embedder

SENTENCES = [
    "I moved to Lisbon in May",
    "We adopted a beagle called Oscar",
    "Maria went hiking near the lake yesterday",
    "The concert last Friday was loud",
    "I started painting lessons last week",
    "Oscar chewed my running shoes",
    "We are camping at the lake next weekend",
    "My sister Maria works at the hospital in Porto",
]
QUESTIONS = [
    "where did Maria go hiking?",
    "what did Oscar chew?",
    "what happened last week?",
    "where does my sister work?",
    "lake camping",
]
BASE = datetime(2023, 5, 1, 9, 0)


def code(*parts: int) -> str:
    """A word that occurs in exactly one message."""
    return "zq" + "x".join(str(p) for p in parts)


def seed(mem: Memory, user: str, session: str = "s0") -> tuple[str, ...]:
    """Give a user some turns first: with a corpus of one or two turns BM25's idf is
    clamped to nothing and a word found in one turn would not stand out."""
    messages = [
        {"id": f"seed-{user}-{n}", "name": "Ana", "content": sentence}
        for n, sentence in enumerate(SENTENCES)
    ]
    return mem.add(messages, user_id=user, session_id=session, timestamp=BASE).message_ids


def foreign_hits(hits: SearchResults, user: str) -> list[str]:
    """Hits that belong to someone other than ``user`` (there must be none)."""
    return [f"{h.memory.scope.user_id}: {h.text}" for h in hits if h.memory.scope.user_id != user]


def assert_each_message_once(mem: Memory, acked: dict[str, list[str]]) -> None:
    """Every acknowledged message id has exactly one turn memory, in its user's scope,
    and there is no turn for a message that was not acknowledged."""
    for user, ids in acked.items():
        turns = mem.list(user_id=user, kinds="turn", limit=10_000)
        cited = Counter(s for turn in turns if turn.scope.user_id == user for s in turn.source_ids)
        assert len(ids) == len(set(ids)), f"{user}: an id was acknowledged twice"
        assert {i: n for i, n in cited.items() if n != 1} == {}, f"{user}: duplicated turns"
        assert sorted(cited) == sorted(ids), f"{user}: lost or unacknowledged messages"


def assert_one_summary_per_session(mem: Memory, sessions: dict[str, set[str]]) -> None:
    """Each (user, session) that has four or more turns has exactly one current summary."""
    for user, names in sessions.items():
        for session in sorted(names):
            current = [
                r
                for r in mem.list(user_id=user, session_id=session, kinds="summary", limit=100)
                if r.scope.user_id == user
            ]
            assert len(current) == 1, f"{user}/{session}: {len(current)} current summaries"


@pytest.fixture(scope="module")
def shared_embedder() -> Iterator[Embedder]:
    """The default embedder, built once for this module."""
    model = create_embedder(EmbedderConfig())
    yield model
    model.close()


# -- threads ---------------------------------------------------------------------------------

THREADS = 8
OPS = 30


def test_threads_share_one_memory(shared_embedder, tmp_path):
    """8 threads interleave adds with search, list, context and entities on one Memory:
    threads 0-3 each have their own user, threads 4-7 write to one shared user."""
    errors: list[str] = []
    acked: dict[str, list[str]] = {}
    sessions: dict[str, set[str]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def user_of(t: int) -> str:
        return f"own{t}" if t < THREADS // 2 else "shared"

    def work(mem: Memory, t: int) -> None:
        rng = random.Random(t)
        user = user_of(t)
        barrier.wait(timeout=60)
        for n in range(OPS):
            try:
                if n % 2 == 0:
                    ids = [f"t{t}-{n}-{j}" for j in range(rng.randint(1, 2))]
                    session = f"s{(n // 2) % 2}"
                    messages = [
                        {"id": i, "name": "Ana",
                         "content": f"{rng.choice(SENTENCES)} {code(t, n, j)}"}
                        for j, i in enumerate(ids)
                    ]  # fmt: skip
                    when = BASE + timedelta(hours=n, minutes=t)
                    result = mem.add(messages, user_id=user, session_id=session, timestamp=when)
                    with lock:
                        acked.setdefault(user, []).extend(result.message_ids)
                        sessions.setdefault(user, set()).add(session)
                    if result.message_ids != tuple(ids):
                        errors.append(f"{user}: add acknowledged {result.message_ids}, not {ids}")
                    hits = mem.search(f"codeword {code(t, n, 0)}", user_id=user)
                    if not hits or hits[0].source_ids != (ids[0],):
                        errors.append(f"{user}: the add of {ids[0]} is not the top hit")
                    errors.extend(foreign_hits(hits, user))
                elif n % 6 == 1:
                    hits = mem.search(rng.choice(QUESTIONS), user_id=user, limit=20)
                    errors.extend(foreign_hits(hits, user))
                elif n % 6 == 3:
                    found = mem.list(user_id=user, limit=50)
                    errors.extend(r.text for r in found if r.scope.user_id != user)
                    context = mem.context(rng.choice(QUESTIONS), user_id=user, budget_tokens=200)
                    errors.extend(i.line for i in context.items if i.memory.scope.user_id != user)
                else:
                    mem.entities(user_id=user, limit=20)
            except Exception as exc:
                errors.append(f"thread {t} op {n}: {type(exc).__name__}: {exc}")

    with Memory(tmp_path / "threads.db", embedder=shared_embedder) as mem:
        for user in sorted({user_of(t) for t in range(THREADS)}):
            acked[user] = list(seed(mem, user))
            sessions[user] = {"s0"}
        threads = [threading.Thread(target=work, args=(mem, t)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert sorted(acked) == sorted({user_of(t) for t in range(THREADS)})
        assert_each_message_once(mem, acked)
        assert_one_summary_per_session(mem, sessions)
        assert mem.stats().messages == sum(len(ids) for ids in acked.values())


def test_async_memory_runs_adds_and_searches_concurrently(shared_embedder, tmp_path):
    users = ["ana", "bo", "cy"]

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with AsyncMemory(tmp_path / "async.db", embedder=shared_embedder) as mem:
            adds = [
                mem.add(
                    [{"id": f"a{n}", "name": "Ana",
                      "content": f"{SENTENCES[n % len(SENTENCES)]} {code(n)}"}],
                    user_id=users[n % 3], session_id="s1",
                    timestamp=(BASE + timedelta(minutes=n)).isoformat(),
                )
                for n in range(24)
            ]  # fmt: skip
            searches = [
                mem.search(QUESTIONS[n % len(QUESTIONS)], user_id=users[n % 3]) for n in range(24)
            ]
            done = await asyncio.gather(*adds, *searches, return_exceptions=True)
            found = await asyncio.gather(*(mem.search(code(n), user_id=users[n % 3])
                                           for n in range(24)))  # fmt: skip
            return list(done), list(found)

    done, found = asyncio.run(scenario())
    assert [repr(r) for r in done if isinstance(r, BaseException)] == []
    for n, hits in enumerate(done[24:]):
        assert foreign_hits(hits, users[n % 3]) == []
    assert [hits[0].source_ids if hits else () for hits in found] == [(f"a{n}",) for n in range(24)]
    acked: dict[str, list[str]] = {}
    for n, result in enumerate(done[:24]):
        acked.setdefault(users[n % 3], []).extend(result.message_ids)
    with Memory(tmp_path / "async.db", embedder=shared_embedder) as mem:
        assert_each_message_once(mem, acked)
        assert_one_summary_per_session(mem, {user: {"s1"} for user in users})


def test_stemming_is_thread_safe():
    from remem.annotations import stem

    rng = random.Random(11)
    roots = ["connect", "nation", "hope", "run", "argu", "generous", "happi", "relat", "cycl"]
    suffixes = ["ing", "ational", "fulness", "ization", "ously", "ies", "ed", "ly", "ments",
                "iveness", "ement", "ness", "ings", "able", "ically"]  # fmt: skip
    # random letters first, so no earlier test has put these words in any cache
    words = [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 6)))
        + rng.choice(roots) + rng.choice(suffixes)
        for _ in range(8 * 4000)
    ]  # fmt: skip
    chunks = [words[t::8] for t in range(8)]
    got: dict[int, list[str]] = {}
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        barrier.wait(timeout=60)
        try:
            got[t] = [stem(w) for w in chunks[t]]
        except Exception as exc:
            failures.append(f"thread {t}: {type(exc).__name__}: {exc}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a busy server would
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    cache_clear = getattr(stem, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()  # the reference must be computed afresh, not read back
    for t in range(8):
        expected = [stem(w) for w in chunks[t]]
        wrong = [(w, a, b) for w, a, b in zip(chunks[t], got[t], expected, strict=True) if a != b]
        assert wrong == [], f"thread {t}: {len(wrong)} wrong stems, e.g. {wrong[:3]}"


# -- processes -------------------------------------------------------------------------------

WRITERS = 4
SEARCHERS = 2
WRITER_ADDS = 40
USERS = ("u0", "u1")
PROCESS_SESSIONS = ("s0", "s1")


def _writer(path: str, w: int, barrier: Any, out: Any) -> None:
    """Add WRITER_ADDS batches of 1-3 messages with client ids to 2 users x 2 sessions."""
    acked: list[tuple[str, str, str]] = []
    error = None
    try:
        from remem import Memory as ProcessMemory

        rng = random.Random(w)
        with ProcessMemory(path) as mem:
            barrier.wait(timeout=180)
            for n in range(WRITER_ADDS):
                user, session = USERS[(n + w) % 2], PROCESS_SESSIONS[(n // 2 + w) % 2]
                messages = [
                    {"id": f"w{w}-{n}-{j}", "name": "Ana",
                     "content": f"{rng.choice(SENTENCES)} {code(w, n, j)}"}
                    for j in range(rng.randint(1, 3))
                ]  # fmt: skip
                when = BASE + timedelta(minutes=10 * n + w)
                result = mem.add(messages, user_id=user, session_id=session, timestamp=when)
                acked.extend((user, session, i) for i in result.message_ids)
    except BaseException as exc:  # report, so the parent fails with the real cause
        error = f"writer {w}: {type(exc).__name__}: {exc}"
    out.put(("writer", w, acked, error))


def _searcher(path: str, s: int, barrier: Any, done: Any, out: Any) -> None:
    """Search, list and read the context of both users until the writers are done."""
    failures: list[str] = []
    count = 0
    try:
        from remem import Memory as ProcessMemory

        rng = random.Random(100 + s)
        with ProcessMemory(path) as mem:
            barrier.wait(timeout=180)
            deadline = time.monotonic() + 90
            while not done.is_set() and time.monotonic() < deadline:
                user = USERS[count % 2]
                try:
                    hits = mem.search(rng.choice(QUESTIONS), user_id=user, limit=20)
                    failures.extend(foreign_hits(hits, user))
                    for session in PROCESS_SESSIONS:
                        current = mem.list(user_id=user, session_id=session, kinds="summary")
                        if len([r for r in current if r.scope.user_id == user]) > 1:
                            failures.append(f"{user}/{session}: {len(current)} current summaries")
                    mem.context(rng.choice(QUESTIONS), user_id=user, budget_tokens=200)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                count += 1
                time.sleep(0.02)  # leave the writers some of the two cores
    except BaseException as exc:
        failures.append(f"searcher {s}: {type(exc).__name__}: {exc}")
    out.put(("searcher", s, count, failures))


def test_writer_and_searcher_processes_share_one_file(shared_embedder, tmp_path):
    path = tmp_path / "processes.db"
    Memory(path, embedder=shared_embedder).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS + SEARCHERS)
    done = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), w, barrier, out))
             for w in range(WRITERS)]  # fmt: skip
    procs += [ctx.Process(target=_searcher, args=(str(path), s, barrier, done, out))
              for s in range(SEARCHERS)]  # fmt: skip
    for proc in procs:
        proc.start()
    try:
        writers = [out.get(timeout=240) for _ in range(WRITERS)]
        done.set()
        searchers = [out.get(timeout=120) for _ in range(SEARCHERS)]
    finally:
        done.set()
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    assert [r[0] for r in writers] == ["writer"] * WRITERS, "a searcher stopped early"
    assert [r[3] for r in writers] == [None] * WRITERS
    assert [failure for r in searchers for failure in r[3]] == []
    assert all(r[2] > 0 for r in searchers), "a searcher never ran alongside the writers"
    assert [p.exitcode for p in procs] == [0] * len(procs)

    acked: dict[str, list[str]] = {user: [] for user in USERS}
    for _, _, items, _ in writers:
        for user, _, message_id in items:
            acked[user].append(message_id)
    with Memory(path, embedder=shared_embedder) as mem:
        assert_each_message_once(mem, acked)
        assert_one_summary_per_session(mem, {user: set(PROCESS_SESSIONS) for user in USERS})
        assert mem.stats().messages == sum(len(ids) for ids in acked.values())


# -- snapshots -------------------------------------------------------------------------------

BATCHES = 24  # sizes 2, 3, 4: 72 turns, fewer than the 100 dense candidates of a search


def batch_size(n: int) -> int:
    return 2 + n % 3


def _batch_writer(path: str, ready: Any, go: Any, out: Any) -> None:
    """Add BATCHES batches, each one add of ``batch_size(n)`` messages of one session."""
    error = None
    try:
        from remem import Memory as ProcessMemory

        with ProcessMemory(path) as mem:
            ready.set()
            go.wait(timeout=120)
            for n in range(BATCHES):
                k = batch_size(n)
                messages = [
                    {"id": f"b{n}-{j}", "name": "Ana",
                     "content": f"lantern {SENTENCES[(n + j) % len(SENTENCES)]}"}
                    for j in range(k)
                ]  # fmt: skip
                mem.add(
                    messages, user_id="ana", session_id=f"s{n % 3}",
                    metadata={"batch": n, "size": k},
                    timestamp=(BASE + timedelta(hours=n)).isoformat(),
                )  # fmt: skip
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    out.put(error)


def half_batches(records: list[Any], what: str) -> list[str]:
    """Batches of which some but not all messages are visible."""
    seen = Counter((r.metadata["batch"], r.metadata["size"]) for r in records)
    return [f"{what}: {n} of batch {b} (size {k})" for (b, k), n in seen.items() if n != k]


def test_readers_never_see_half_an_add(shared_embedder, tmp_path):
    path = tmp_path / "snapshot.db"
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=_batch_writer, args=(str(path), ready, go, out))
    with Memory(path, embedder=shared_embedder) as mem:
        writer.start()
        try:
            assert ready.wait(timeout=180), "the writer never opened the store"
            problems: list[str] = []
            states: set[int] = set()
            go.set()
            while True:
                finished = not writer.is_alive()
                turns = mem.list(user_id="ana", kinds="turn", limit=10_000)
                problems += half_batches(turns, "list")
                states.add(len({r.metadata["batch"] for r in turns}))
                current = mem.list(user_id="ana", kinds="summary", limit=100)
                summaries = Counter(r.scope.session_id for r in current)
                problems += [f"{s}: {n} current summaries" for s, n in summaries.items() if n > 1]
                hits = mem.search("lantern", user_id="ana", recipe="bm25", limit=100)
                problems += half_batches([h.memory for h in hits], "bm25 search")
                hits = mem.search("what did Oscar chew?", user_id="ana", limit=100)
                problems += half_batches([h.memory for h in hits], "search")
                if finished:
                    break
        finally:
            writer.join(timeout=120)
            if writer.is_alive():
                writer.kill()
        assert out.get(timeout=10) is None
        assert problems == []
        assert len(mem.list(user_id="ana", kinds="turn", limit=10_000)) == sum(
            batch_size(n) for n in range(BATCHES)
        )
        # the reader ran alongside the writer: it saw the store part-way through
        assert len(states - {0, BATCHES}) >= 2, f"the reader saw only {sorted(states)} batches"


# -- read your writes ------------------------------------------------------------------------


def test_search_right_after_add_finds_it_in_the_same_process(shared_embedder, tmp_path):
    path = tmp_path / "fresh.db"
    with (
        Memory(path, embedder=shared_embedder) as first,
        Memory(path, embedder=shared_embedder) as second,
    ):
        seed(first, "ana")
        for n in range(8):
            writer, reader = (first, second) if n % 2 == 0 else (second, first)
            for mem in (first, second):  # fill both instances' caches before the write
                mem.search("what did Oscar chew?", user_id="ana")
            added = writer.add(
                f"{SENTENCES[n % len(SENTENCES)]}, the codeword is {code(7, n)}",
                user_id="ana", session_id="s1", timestamp=BASE + timedelta(minutes=n),
            )  # fmt: skip
            for mem in (writer, reader):
                hits = mem.search(f"codeword {code(7, n)}", user_id="ana")
                assert hits[0].source_ids == added.message_ids, f"add {n}"


def _peer(path: str, conn: Any) -> None:
    """Add or search on request, on a Memory of its own, until told to stop."""
    from remem import Memory as ProcessMemory

    try:
        with ProcessMemory(path) as mem:
            conn.send(("ready", None))
            while True:
                command, text = conn.recv()
                if command == "stop":
                    break
                if command == "add":
                    result = mem.add(text, user_id="ana", session_id="s1")
                    conn.send(("ok", result.message_ids))
                else:
                    hits = mem.search(text, user_id="ana")
                    conn.send(("ok", hits[0].source_ids if hits else ()))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def test_search_right_after_add_finds_it_from_another_process(shared_embedder, tmp_path):
    path = tmp_path / "peer.db"
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    peer = ctx.Process(target=_peer, args=(str(path), there))
    with Memory(path, embedder=shared_embedder) as mem:
        seed(mem, "ana")
        peer.start()

        def ask(command: str, text: str) -> Any:
            here.send((command, text))
            assert here.poll(120), f"the other process did not answer {command}"
            status, value = here.recv()
            assert status == "ok", value
            return value

        try:
            assert here.poll(180) and here.recv()[0] == "ready"
            for n in range(5):
                # the other process writes; this one reads at once, with a warm cache
                mem.search("what did Oscar chew?", user_id="ana")
                ids = ask("add", f"{SENTENCES[n]}, the codeword is {code(8, n)}")
                hits = mem.search(f"codeword {code(8, n)}", user_id="ana")
                assert hits[0].source_ids == ids, f"add {n} in the other process"
                # this one writes; the other process reads at once, with a warm cache
                ask("search", "what did Oscar chew?")
                added = mem.add(f"{SENTENCES[n + 1]}, the codeword is {code(9, n)}",
                                user_id="ana", session_id="s1")  # fmt: skip
                assert ask("search", f"codeword {code(9, n)}") == added.message_ids, f"add {n}"
        finally:
            here.send(("stop", ""))
            peer.join(timeout=60)
            if peer.is_alive():
                peer.kill()
        assert peer.exitcode == 0
