"""Approximate nearest neighbours against exact search, over one tenant's stored vectors.

Recall@k counts a returned memory as right when its exact cosine score is at least the
k-th best exact score (less ``TIE``): texts repeat across users, so many memories share a
vector, and which of equal vectors a search returns does not matter. Each experiment
reports recall@k and per-query p50/p95 (ms) over the same query vectors. ``usearch_ann``
is the in-process index a SQLite deployment would use; ``pgvector`` (a sibling module)
is PostgreSQL's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.bench.live import latency
from remem.errors import ConfigError
from remem.index import ann
from remem.retrieval.run import HIT_KINDS
from remem.stores.base import MemoryFilter
from remem.util import utcnow

K = 10
TIE = 1e-4  # float32 scores computed in another order differ in the 7th digit
M, EF_CONSTRUCTION = 16, 64  # HNSW build parameters (pgvector's defaults), both engines
EF_SEARCH = (40, 100, 200)
Matrix = npt.NDArray[np.float32]
Keys = npt.NDArray[np.int64]
Search = Callable[[Matrix], Sequence[int]]


@dataclass(frozen=True)
class Corpus:
    """A tenant's stored vectors: ``keys`` (the store's row numbers, ascending), each
    row's user and vector."""

    keys: Keys
    users: npt.NDArray[np.str_]
    matrix: Matrix

    def scope(self, user: str) -> Corpus:
        """The rows of one user."""
        mask = self.users == user
        return Corpus(self.keys[mask], self.users[mask], self.matrix[mask])

    def users_of(self, keys: Sequence[int]) -> npt.NDArray[np.str_]:
        """The user of each of ``keys`` (which must be in the corpus)."""
        return self.users[np.searchsorted(self.keys, np.asarray(keys, dtype=np.int64))]


@dataclass(frozen=True)
class Truth:
    """Exact search over a corpus: per query, the k-th best score."""

    corpus: Corpus
    kth: npt.NDArray[np.float32]

    def recall(self, queries: Matrix, found: Sequence[Sequence[int]]) -> float:
        """Mean recall@k of ``found`` (keys per query), ties counted as right."""
        keys = self.corpus.keys
        total = 0
        for query, kth, got in zip(queries, self.kth, found, strict=True):
            unique = np.unique(np.asarray(got, dtype=np.int64))
            rows = np.searchsorted(keys, unique)
            inside = (rows < len(keys)) & (keys[np.minimum(rows, len(keys) - 1)] == unique)
            scores = self.corpus.matrix[rows[inside]] @ query
            total += min(K, int(np.count_nonzero(scores >= kth - TIE)))
        return round(total / (K * len(found)), 4) if len(found) else 0.0


def exact_top(corpus: Corpus, query: Matrix, k: int = K) -> list[int]:
    """The keys of the ``k`` best rows by cosine (vectors are unit length), best first."""
    scores = corpus.matrix @ query
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return [int(corpus.keys[i]) for i in top[np.argsort(-scores[top])]]


def truth(corpus: Corpus, queries: Matrix) -> Truth:
    """Exact search of every query over ``corpus``."""
    kth = []
    for query in queries:
        scores = corpus.matrix @ query
        k = min(K, len(scores))
        kth.append(float(np.partition(-scores, k - 1)[k - 1]) * -1)
    return Truth(corpus, np.asarray(kth, dtype=np.float32))


def measure(search: Search, queries: Matrix, right: Truth) -> dict[str, Any]:
    """Run ``search`` on each query (after one uncounted): recall@k, p50/p95 ms."""
    search(queries[0])
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(search(query))
        times.append((time.perf_counter() - started) * 1000)
    return {"recall@10": right.recall(queries, found), **latency(times)}


def exact_section(corpus: Corpus, user: str, queries: Matrix) -> dict[str, Any]:
    """The baseline: numpy over the tenant and over one user's rows (recall 1 by
    definition; the check that recall is computed right)."""
    scoped = corpus.scope(user)
    return {
        "tenant": measure(lambda q: exact_top(corpus, q), queries, truth(corpus, queries)),
        "scope": measure(lambda q: exact_top(scoped, q), queries, truth(scoped, queries)),
    }


def overfetch(users: int) -> int:
    """How many times k a filter-after search fetches: twice a user's expected share."""
    return 2 * max(1, users)


# ----------------------------------------------------------------------------- usearch


def _usearch_index(corpus: Corpus, m: int, ef_construction: int) -> tuple[Any, float]:
    try:
        from usearch.index import Index
    except ImportError:
        raise ConfigError(
            "the SQLite ANN figures need usearch: pip install 'remem[bench]'"
        ) from None
    started = time.perf_counter()
    index = Index(ndim=corpus.matrix.shape[1], metric="cos", dtype="f32", connectivity=m,
                  expansion_add=ef_construction)  # fmt: skip
    index.add(corpus.keys, corpus.matrix)
    return index, round(time.perf_counter() - started, 3)


def _usearch_search(index: Any, ef: int, fetch: int = K) -> Search:
    def search(query: Matrix) -> list[int]:
        index.expansion_search = max(ef, fetch)
        return [int(key) for key in index.search(query, fetch).keys]

    return search


def _after(search: Search, corpus: Corpus, user: str) -> Search:
    """Filter after: keep the user's keys among what ``search`` fetched, first k."""

    def kept(query: Matrix) -> list[int]:
        found = list(search(query))
        if not found:
            return []
        mine = corpus.users_of(found) == user
        return [key for key, ok in zip(found, mine, strict=True) if ok][:K]

    return kept


def usearch_ann(
    corpus: Corpus, user: str, users: int, queries: Matrix, efs: Sequence[int]
) -> dict[str, Any]:
    """usearch HNSW over the tenant, and for one user's scope: filter before (its own
    index) and after (over-fetch from the tenant's index, then keep the user's)."""
    scoped = corpus.scope(user)
    tenant_truth, scope_truth = truth(corpus, queries), truth(scoped, queries)
    index, built = _usearch_index(corpus, M, EF_CONSTRUCTION)
    own, own_built = _usearch_index(scoped, M, EF_CONSTRUCTION)
    fetch = K * overfetch(users)
    tenant, before, after = {}, {}, {}
    for ef in efs:
        tenant[str(ef)] = measure(_usearch_search(index, ef), queries, tenant_truth)
        before[str(ef)] = measure(_usearch_search(own, ef), queries, scope_truth)
        after[str(ef)] = measure(_after(_usearch_search(index, ef, fetch), corpus, user), queries,
                            scope_truth)  # fmt: skip
    return {
        "engine": "usearch",
        "params": {"m": M, "ef_construction": EF_CONSTRUCTION},
        "tenant": {"build_s": built, "index_mb": _mb(index.memory_usage), "by_ef": tenant},
        "scope_before": {
            "build_s": own_built,
            "index_mb": _mb(own.memory_usage),
            "by_ef": before,
        },
        "scope_after": {"fetch": fetch, "by_ef": after},
    }


def _mb(size: int) -> float:
    return round(size / (1 << 20), 1)


# ------------------------------------------------------------ remem's own dense channel


CHANNEL_EF = (256, 512, 1024)  # ef_search values the dense channel's graph is measured at


def channel_section(memory: Any, queries: Matrix) -> dict[str, Any]:
    """remem's dense channel across the whole tenant, as a search runs it: the scope
    index's HNSW graph (``remem.index.ann``, candidates rescored exactly) against the
    exact scan of the same index, on the same queries: recall@10 (ties counted as right)
    and p50/p95 ms, the graph at its ``ef_search`` (``ann.EXPANSION_SEARCH``) and at each
    of ``CHANNEL_EF``. Run after the tenant-wide searches, which built the graph (their
    first search's time includes building it)."""
    flt = MemoryFilter(namespace=memory.namespace, kinds=HIT_KINDS)
    default_ef = ann.EXPANSION_SEARCH
    with memory.index.open(flt) as scope:
        mask = scope.mask(flt, utcnow())
        exact_ms, best = [], []
        for query in queries:
            started = time.perf_counter()
            best.append(scope.vector_top(query, mask, K, exact=True)[1])
            exact_ms.append((time.perf_counter() - started) * 1000)
        by_ef = {}
        try:
            for ef in sorted({default_ef, *CHANNEL_EF}):
                ann.EXPANSION_SEARCH = ef  # the graph reads it on each search
                by_ef[str(ef)] = _channel_graph(scope, mask, queries, best)
        finally:
            ann.EXPANSION_SEARCH = default_ef
        rows, nodes = len(scope), scope.graph_nodes()
    return {"rows": rows, "graph_from_rows": ann.MIN_ROWS, "graph_nodes": nodes,
            "graph": by_ef[str(default_ef)], "graph_by_ef": by_ef,
            "exact": latency(exact_ms)}  # fmt: skip


def _channel_graph(scope: Any, mask: Any, queries: Matrix, best: list[Any]) -> dict[str, Any]:
    """The dense channel's top 10 per query: recall against ``best`` (the exact scores)."""
    graph_ms, right = [], 0
    for query, exact in zip(queries, best, strict=True):
        started = time.perf_counter()
        _, found = scope.vector_top(query, mask, K)
        graph_ms.append((time.perf_counter() - started) * 1000)
        right += min(K, int(np.count_nonzero(found >= exact[-1] - TIE))) if exact.size else 0
    return {"recall@10": round(right / (K * len(queries)), 4), **latency(graph_ms)}
