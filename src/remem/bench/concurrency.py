"""Concurrency benchmark: writer and searcher processes on one database (a fresh
temporary SQLite file, or an empty database given by URL, e.g. PostgreSQL).

W writer processes add messages with client ids to a few shared users and sessions while
S searcher processes search continuously; each process opens its own ``Memory``. At the
end the file is checked through the public API: searches that raised, acknowledged
messages that are missing, messages cited by more than one turn memory, and sessions with
more than one current summary.
"""

from __future__ import annotations

import queue
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

import remem
from remem import EmbedderConfig, Memory, MemoryConfig, MemoryRecord
from remem.bench.live import SyntheticChat, latency, live_queries
from remem.errors import InvalidInputError
from remem.registry import store_config

START_TIMEOUT = 300.0  # seconds for every process to open its Memory (model loads)
REPORT_TIMEOUT = 600.0  # seconds a process may take to report after its work is due
EXAMPLES = 3  # error messages kept per exception type
PAGE = 10_000  # Memory.list's largest page


@dataclass(frozen=True)
class Plan:
    """What every process needs; pickled to the spawned processes."""

    path: str
    embedder: EmbedderConfig
    users: tuple[str, ...]
    sessions: tuple[str, ...]
    seconds: float
    adds_per_writer: int | None
    seed: int = 5


class ErrorLog:
    """Exceptions by type: a count and the first few messages."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def record(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.counts[name] += 1
        kept = self.examples.setdefault(name, [])
        if len(kept) < EXAMPLES:
            kept.append(f"{name}: {exc}"[:300])

    def report(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"count": count, "examples": self.examples[name]}
            for name, count in self.counts.items()
        }


def merge_errors(reports: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Join per-process error reports: counts added, examples up to ``EXAMPLES``."""
    out: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, info in report.items():
            entry = out.setdefault(name, {"count": 0, "examples": []})
            entry["count"] += info["count"]
            entry["examples"] = (entry["examples"] + list(info["examples"]))[:EXAMPLES]
    return out


# ------------------------------------------------------------------------ processes


def _open(plan: Plan) -> Memory:
    return Memory(MemoryConfig(store_config(plan.path), plan.embedder))


def _writer(plan: Plan, number: int, start: Any, progress: Any) -> dict[str, Any]:
    """Add 1-3 messages at a time to a random shared user and session until due."""
    rng = random.Random(plan.seed * 1000 + number)
    chat = SyntheticChat(seed=plan.seed * 1000 + number)
    acked: dict[str, list[str]] = {user: [] for user in plan.users}
    attempted: dict[str, list[str]] = {user: [] for user in plan.users}
    errors, timings, sent = ErrorLog(), [], 0
    with _open(plan) as memory:
        start.wait(START_TIMEOUT)
        due = time.monotonic() + plan.seconds
        calls = 0
        while _more(plan, calls, due):
            user, session = rng.choice(plan.users), rng.choice(plan.sessions)
            ids = [f"w{number}-{sent + i}" for i in range(rng.randint(1, 3))]
            sent += len(ids)
            attempted[user].extend(ids)
            started = time.perf_counter()
            try:
                result = memory.add(chat.next_turns(len(ids), ids), user_id=user,
                                    session_id=session)  # fmt: skip
            except Exception as exc:  # the bench's edge: record, the check counts it
                errors.record(exc)
            else:
                timings.append((time.perf_counter() - started) * 1000)
                acked[user].extend([*result.message_ids, *result.duplicate_ids])
            calls += 1
            with progress.get_lock():
                progress.value += 1
    return {"role": "writer", "number": number, "calls": calls, "acked": acked,
            "attempted": attempted, "errors": errors.report(), "timings": timings}  # fmt: skip


def _more(plan: Plan, calls: int, due: float) -> bool:
    """Whether a writer has more to add: ``adds_per_writer`` calls, else until ``due``."""
    if plan.adds_per_writer:
        return calls < plan.adds_per_writer
    return time.monotonic() < due


def _searcher(plan: Plan, number: int, start: Any, stop: Any) -> dict[str, Any]:
    """Search the shared users (every third search within one session) until stopped."""
    rng = random.Random(plan.seed * 2000 + number)
    queries = live_queries(50, seed=plan.seed + number)
    errors, timings, searches = ErrorLog(), [], 0
    with _open(plan) as memory:
        start.wait(START_TIMEOUT)
        while not stop.is_set():
            session = rng.choice(plan.sessions) if searches % 3 == 2 else None
            started = time.perf_counter()
            try:
                memory.search(queries[searches % len(queries)], user_id=rng.choice(plan.users),
                              session_id=session)  # fmt: skip
            except Exception as exc:  # the bench's edge: record and count it
                errors.record(exc)
            else:
                timings.append((time.perf_counter() - started) * 1000)
            searches += 1
    return {"role": "searcher", "number": number, "searches": searches,
            "errors": errors.report(), "timings": timings}  # fmt: skip


def worker_main(role: str, plan: Plan, number: int, start: Any, flag: Any, out: Any) -> None:
    """Entry point of a spawned process: run its part and put the report on ``out``."""
    try:
        if role == "writer":
            out.put(_writer(plan, number, start, flag))
        else:
            out.put(_searcher(plan, number, start, flag))
    except BaseException as exc:  # report, so the parent can say what went wrong
        start.abort()  # release the others at once if this one never reached the start
        out.put({"role": role, "number": number, "crashed": f"{type(exc).__name__}: {exc}"})


# ---------------------------------------------------------------------------- parent


def _collect(
    out: Any, expected: int, due: float, on_wait: Callable[[], None]
) -> list[dict[str, Any]]:
    """Reports from ``expected`` processes, or as many as arrive before ``due``."""
    reports: list[dict[str, Any]] = []
    while len(reports) < expected and time.monotonic() < due:
        try:
            reports.append(out.get(timeout=0.5))
        except queue.Empty:
            on_wait()
    return reports


def _all_memories(memory: Memory, user: str, kind: str) -> list[MemoryRecord]:
    found: list[MemoryRecord] = []
    while True:
        page = memory.list(user_id=user, kinds=kind, limit=PAGE, offset=len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def check(memory: Memory, plan: Plan, writers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lost and duplicated messages, and sessions with several current summaries."""
    acked = {u: {i for w in writers for i in w.get("acked", {}).get(u, [])} for u in plan.users}
    tried = {u: {i for w in writers for i in w.get("attempted", {}).get(u, [])} for u in plan.users}
    lost: list[str] = []
    duplicated: list[str] = []
    unacked = stored = 0
    doubled_sessions: dict[str, int] = {}
    for user in plan.users:
        cited = Counter(s for m in _all_memories(memory, user, "turn") for s in m.source_ids)
        stored += len(cited)
        lost += sorted(acked[user] - set(cited))
        duplicated += sorted(i for i, n in cited.items() if n > 1)
        unacked += len((set(cited) & tried[user]) - acked[user])
        current = Counter(
            (m.scope.agent_id or "", m.scope.session_id or "")
            for m in _all_memories(memory, user, "summary")
        )
        doubled_sessions.update(
            {f"{user}/{session}": n for (_, session), n in current.items() if n > 1}
        )
    return {
        "acknowledged_messages": sum(len(ids) for ids in acked.values()),
        "stored_messages": stored,
        "lost": len(lost),
        "lost_ids": lost[:20],
        "duplicated": len(duplicated),
        "duplicated_ids": duplicated[:20],
        "unacknowledged_stored": unacked,
        "duplicate_current_summaries": len(doubled_sessions),
        "extra_current_summaries": sum(n - 1 for n in doubled_sessions.values()),
        "sessions_with_duplicate_summaries": doubled_sessions,
    }


def _part(reports: Sequence[Mapping[str, Any]], count: str) -> dict[str, Any]:
    """Totals of one role: calls, failures by type, latency of the successful calls."""
    errors = merge_errors([r.get("errors", {}) for r in reports])
    return {
        count: sum(r.get(count, 0) for r in reports),
        "failed": sum(e["count"] for e in errors.values()),
        "errors": errors,
        **latency([t for r in reports for t in r.get("timings", [])]),
    }


def _spawn(plan: Plan, writers: int, searchers: int, progress: bool) -> list[dict[str, Any]]:
    """Run the processes; returns every report that arrived (a missing one is noted)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start, stop, out = ctx.Barrier(writers + searchers + 1), ctx.Event(), ctx.Queue()
    counter = ctx.Value("i", 0)
    roles: list[tuple[str, int, Any]] = [("writer", n, counter) for n in range(writers)]
    roles += [("searcher", n, stop) for n in range(searchers)]
    procs = [
        ctx.Process(target=worker_main, args=(role, plan, n, start, flag, out), daemon=True)
        for role, n, flag in roles
    ]
    for proc in procs:
        proc.start()
    reports: list[dict[str, Any]] = []
    try:
        start.wait(START_TIMEOUT)
        due = time.monotonic() + (plan.seconds if not plan.adds_per_writer else 0) + REPORT_TIMEOUT
        total = writers * plan.adds_per_writer if plan.adds_per_writer else None
        with tqdm(total=total, desc="adds", unit="add", disable=not progress) as bar:

            def tick() -> None:
                bar.update(counter.value - bar.n)

            reports += _collect(out, writers, due, tick)
            tick()
        stop.set()
        reports += _collect(out, searchers, time.monotonic() + REPORT_TIMEOUT, lambda: None)
    except threading.BrokenBarrierError:
        stop.set()
        reports += _collect(out, len(procs), time.monotonic() + 5, lambda: None)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    return reports


def run_concurrency(
    writers: int = 4,
    searchers: int = 2,
    seconds: float = 30.0,
    adds_per_writer: int | None = None,
    users: int = 2,
    sessions: int = 2,
    embedder: EmbedderConfig | None = None,
    progress: bool = True,
    database: str | None = None,
) -> dict[str, Any]:
    """Run writers and searchers on one database; returns the report.

    The database is a fresh temporary SQLite file, or ``database`` (a path or URL such as
    ``postgresql://...``), which must hold no memories. With ``adds_per_writer`` each
    writer makes that many ``add`` calls; otherwise each writes for ``seconds``.
    Searchers run until every writer is done.
    """
    config = embedder or EmbedderConfig()
    with tempfile.TemporaryDirectory(prefix="remem-concurrency-") as tmp:
        plan = Plan(
            path=database or str(Path(tmp) / "shared.db"), embedder=config,
            users=tuple(f"user{n}" for n in range(users)),
            sessions=tuple(f"s{n}" for n in range(sessions)),
            seconds=seconds, adds_per_writer=adds_per_writer,
        )  # fmt: skip
        with _open(plan) as first:  # one process creates the schema before the others start
            if first.stats().memories:
                raise InvalidInputError(
                    f"{database} already holds memories; the concurrency bench needs an "
                    "empty database (it counts every record)"
                )
        started = time.perf_counter()
        reports = _spawn(plan, writers, searchers, progress)
        elapsed = time.perf_counter() - started
        done = [r for r in reports if "crashed" not in r]
        with _open(plan) as memory:
            found = check(memory, plan, [r for r in done if r["role"] == "writer"])
            stats = memory.stats()
            model = memory.embedder.model_id
    return _report(plan, writers, searchers, reports, found, stats, model, elapsed)


def _report(
    plan: Plan,
    writers: int,
    searchers: int,
    reports: Sequence[Mapping[str, Any]],
    found: Mapping[str, Any],
    stats: remem.Stats,
    model: str,
    elapsed: float,
) -> dict[str, Any]:
    done = [r for r in reports if "crashed" not in r]
    by_role = {role: [r for r in done if r["role"] == role] for role in ("writer", "searcher")}
    return {
        "benchmark": "concurrency",
        "embedder": model,
        "version": remem.__version__,
        "writers": writers,
        "searchers": searchers,
        "seconds": plan.seconds if not plan.adds_per_writer else None,
        "adds_per_writer": plan.adds_per_writer,
        "users": list(plan.users),
        "sessions": list(plan.sessions),
        "elapsed_seconds": round(elapsed, 3),
        "adds": _part(by_role["writer"], "calls"),
        "searches": _part(by_role["searcher"], "searches"),
        "check": dict(found),
        "stats": {
            "messages": stats.messages,
            "memories": stats.memories,
            "memories_by_kind": dict(stats.memories_by_kind),
        },
        "processes": {
            "reported": len(reports),
            "missing": writers + searchers - len(reports),
            "crashed": [
                f"{r['role']} {r['number']}: {r['crashed']}" for r in reports if "crashed" in r
            ],
        },
    }
