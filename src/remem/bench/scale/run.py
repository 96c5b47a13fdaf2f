"""One scale measurement (a backend at a size) in its own process, and the whole run.

Each measurement is spawned in a fresh process so that its peak memory (``ru_maxrss``)
is its own: ingest through ``Memory.add``, ``Memory.search`` within one user's scope and
across the tenant, size on disk, then approximate search against exact (``ann``).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from tqdm import tqdm

import remem
from remem import EmbedderConfig, Memory
from remem.bench.live import latency, live_queries
from remem.bench.scale.ann import EF_SEARCH, Corpus, channel_section, exact_section, usearch_ann
from remem.bench.scale.data import (
    Pool,
    PoolEmbedder,
    build_pool,
    embedder_speed,
    load_pool,
    tenant_sessions,
    user_ids,
)
from remem.bench.scratch import temporary_memory
from remem.registry import create_embedder
from remem.util import parse_timestamp

SCOPE_SIZE = 10_000  # memories per user by default: the size of the target's user scope
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Plan:
    """One measurement, as the spawned process receives it."""

    backend: str
    size: int
    users: int
    pool: str  # the stem ``build_pool`` wrote
    efs: tuple[int, ...]
    database: str | None  # PostgreSQL's URL
    progress: bool


def default_users(size: int) -> int:
    """Users for ``size`` memories: one per ``SCOPE_SIZE``, at least one."""
    return max(1, size // SCOPE_SIZE)


def peak_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --------------------------------------------------------------------------- backends


class SqliteTarget:
    """A fresh temporary SQLite file; vectors searched approximately with usearch."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @contextmanager
    def open(self, embedder: PoolEmbedder) -> Iterator[Memory]:
        with temporary_memory(embedder, None, "scale") as memory:
            yield memory

    def disk(self, memory: Memory) -> dict[str, Any]:
        path = Path(memory.config.store.path)
        parts = {s or "db": _size(Path(f"{path}{s}")) for s in ("", "-wal", "-shm")}
        return {"bytes": sum(parts.values()), "parts": parts}

    def corpus(self, memory: Memory) -> Corpus:
        with sqlite3.connect(memory.config.store.path) as conn:
            rows = conn.execute("SELECT pk, user_id, embedding FROM memories WHERE namespace = ? "
                                "AND embedding IS NOT NULL ORDER BY pk",
                                (memory.namespace,)).fetchall()  # fmt: skip
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        return Corpus(np.asarray([r[0] for r in rows], dtype=np.int64),
                      np.asarray([r[1] for r in rows]),
                      matrix.reshape(len(rows), -1))  # fmt: skip

    def ann(self, memory: Memory, corpus: Corpus, user: str, queries: Any) -> dict[str, Any]:
        return usearch_ann(corpus, user, self.plan.users, queries, self.plan.efs)


class PostgresTarget:
    """A new namespace in ``plan.database``; its growth is the size on disk (the
    database should hold nothing else being written meanwhile); pgvector HNSW."""

    def __init__(self, plan: Plan) -> None:
        if plan.database is None:
            raise ValueError("the postgres measurement needs a database URL")
        self.plan, self.url = plan, plan.database
        self.before = 0

    @contextmanager
    def open(self, embedder: PoolEmbedder) -> Iterator[Memory]:
        self.before = self._database_bytes()
        with temporary_memory(embedder, None, "scale", database=self.url) as memory:
            yield memory

    def _database_bytes(self) -> int:
        from remem.bench.scale.pgvector import connect

        with connect(self.url, vectors=False) as conn:
            size: int = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return size

    def disk(self, memory: Memory) -> dict[str, Any]:
        total = self._database_bytes()
        return {"bytes": total - self.before, "database_bytes": total}

    def corpus(self, memory: Memory) -> Corpus:
        from remem.bench.scale.pgvector import load_corpus

        return load_corpus(self.url, memory.namespace)

    def ann(self, memory: Memory, corpus: Corpus, user: str, queries: Any) -> dict[str, Any]:
        from remem.bench.scale.pgvector import drop_indexes, pgvector_ann

        try:
            return pgvector_ann(self.url, corpus, memory.namespace, user, self.plan.users,
                                queries, self.plan.efs)  # fmt: skip
        finally:
            drop_indexes(self.url)


Target = SqliteTarget | PostgresTarget
TARGETS: dict[str, Callable[[Plan], Target]] = {
    "sqlite": SqliteTarget,
    "postgres": PostgresTarget,
}


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# ------------------------------------------------------------------------ measurement


def ingest(memory: Memory, pool: Pool, plan: Plan, embedder: PoolEmbedder) -> dict[str, Any]:
    """Every user's sessions through ``Memory.add``, one add per session."""
    adds, last = 0, ""
    started = time.perf_counter()
    with tqdm(total=plan.size, desc=f"{plan.backend} ingest {plan.size:,}", unit="turn",
              disable=not plan.progress) as bar:  # fmt: skip
        for user, session, messages in tenant_sessions(pool, plan.size, plan.users):
            memory.add(messages, user_id=user, session_id=session)
            adds += 1
            last = max(last, messages[-1]["timestamp"])
            bar.update(len(messages))
    seconds = time.perf_counter() - started
    own = max(seconds - embedder.model_seconds, 1e-9)
    return {
        "turns": plan.size, "adds": adds, "seconds": round(seconds, 3),
        "model_seconds": round(embedder.model_seconds, 3),
        "model_texts": embedder.model_texts,
        "turns_per_second": round(plan.size / own, 1),
        "turns_per_second_with_model": round(plan.size / seconds, 1),
        "last_turn": last,
    }  # fmt: skip


def time_search(
    memory: Memory, queries: Sequence[str], user: str | None, reference: datetime | None
) -> dict[str, Any]:
    """The first search of a scope (it builds the scope's index), then each query warm."""
    started = time.perf_counter()
    memory.search(queries[0], user_id=user, reference_time=reference)
    first = (time.perf_counter() - started) * 1000
    timings, hits = [], 0
    for query in queries:
        started = time.perf_counter()
        found = memory.search(query, user_id=user, reference_time=reference)
        timings.append((time.perf_counter() - started) * 1000)
        hits += len(found.hits)
    return {"first_ms": round(first, 1), **latency(timings), "hits": hits}


def measure_run(plan: Plan) -> dict[str, Any]:
    """One backend at one size (run in its own process by ``run_scale``)."""
    pool = load_pool(Path(plan.pool))
    embedder = PoolEmbedder(create_embedder(EmbedderConfig()), pool)
    target = TARGETS[plan.backend](plan)
    try:
        with target.open(embedder) as memory:
            report = _measure(memory, target, pool, plan, embedder)
    finally:
        embedder.close()
    return {"backend": plan.backend, "size": plan.size, "users": plan.users, **report,
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def _measure(
    memory: Memory, target: Target, pool: Pool, plan: Plan, embedder: PoolEmbedder
) -> dict[str, Any]:
    """Ingest, search, size on disk, then approximate search against exact."""
    user = user_ids(plan.users)[0]
    vectors = np.vstack([pool.vectors[q] for q in pool.queries])
    loaded = ingest(memory, pool, plan, embedder)
    stats = memory.stats()
    reference = parse_timestamp(loaded["last_turn"])
    search = {
        "user": time_search(memory, pool.queries, user, reference),
        "tenant": time_search(memory, pool.queries, None, reference),
    }
    channel = channel_section(memory, vectors)
    disk, rss = target.disk(memory), peak_mb()
    corpus = target.corpus(memory)
    ann = {"exact": exact_section(corpus, user, vectors),
           **target.ann(memory, corpus, user, vectors)}  # fmt: skip
    return {
        "memories": stats.memories, "memories_by_kind": dict(stats.memories_by_kind),
        "vectors": len(corpus.keys), "scope_vectors": int(np.sum(corpus.users == user)),
        "ingest": loaded, "search": search, "dense_channel": channel, "disk": disk,
        "peak_rss_mb": {"ingest_and_search": rss, "with_ann": peak_mb()}, "ann": ann,
    }  # fmt: skip


# ---------------------------------------------------------------------------- the run


def _in_process(plan: Plan) -> dict[str, Any]:
    """``measure_run(plan)`` in a fresh spawned process (its own peak memory)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as executor:
        return executor.submit(measure_run, plan).result()


@contextmanager
def _postgres(database: str | None, wanted: bool) -> Iterator[str | None]:
    """``database``, else (if wanted) a throwaway local server's URL, stopped afterwards."""
    if database is not None or not wanted:
        yield database
        return
    from remem.stores.postgres import local

    with tempfile.TemporaryDirectory(prefix="remem-scale-pg-") as folder:
        try:
            yield local.start(folder, keep=False)
        finally:
            local.stop(folder)


def _fresh_database(server: str) -> str:
    """A new empty database on ``server`` (for one measurement), and its URL."""
    from remem.bench.scale.pgvector import connect

    name = f"remem_scale_{uuid.uuid4().hex[:10]}"
    with connect(server, vectors=False) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def _drop_database(server: str, url: str) -> None:
    from remem.bench.scale.pgvector import connect

    with connect(server, vectors=False) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


def _plan_database(backend: str, server: str | None, given: bool) -> str | None:
    if backend != "postgres" or server is None:
        return None
    return server if given else _fresh_database(server)


def run_scale(
    sizes: Sequence[int] = (100_000,),
    users: int | None = None,
    backends: Sequence[str] = BACKENDS,
    database: str | None = None,
    queries: int = 100,
    pool: int = 20_000,
    efs: Sequence[int] = EF_SEARCH,
    progress: bool = True,
    cache: Path | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every backend at every size (``users`` users, default one per 10,000 memories).

    PostgreSQL runs in ``database`` (a new namespace each time), else on a throwaway
    local server, a fresh database per measurement. The pool's vectors are cached in
    ``cache`` (default: the system's temporary folder).
    """
    model = create_embedder(EmbedderConfig())
    try:
        stem = build_pool(model, pool, live_queries(queries), cache or Path(tempfile.gettempdir()),
                          progress)  # fmt: skip
        speed = embedder_speed(model, load_pool(stem))
    finally:
        model.close()
    runs = []
    with _postgres(database, "postgres" in backends) as server:
        for size in sizes:
            for backend in backends:
                url = _plan_database(backend, server, database is not None)
                plan = Plan(backend, size, users or default_users(size), str(stem),
                            tuple(efs), url, progress)  # fmt: skip
                try:
                    result = _in_process(plan)
                finally:
                    if url is not None and database is None and server is not None:
                        _drop_database(server, url)
                result["ingest"]["over_embedder"] = round(
                    result["ingest"]["turns_per_second"] / speed["turns_per_second"], 2
                )
                runs.append(result)
                if on_run is not None:
                    on_run(result)
    return {"benchmark": "scale", "version": remem.__version__, "embedder": model.model_id,
            "pool": {"texts": pool, "queries": queries}, "embedder_speed": speed,
            "runs": runs}  # fmt: skip
