"""pgvector HNSW over one tenant's ``memories`` rows, against exact search (see ``ann``).

``memories.embedding`` is an untyped ``vector`` (the store learns the dimensions only
when an embedder is bound), and an HNSW index needs a fixed dimension, so the indexes are
built on the expression ``embedding::vector(384)`` and queries order by that same
expression: no copy of the vectors, and rows of another model's width stay out of it
(a partial index can exclude them). Every index is partial on the tenant's namespace,
and the per-scope one on its user too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from remem.bench.scale.ann import (
    EF_CONSTRUCTION,
    Corpus,
    K,
    M,
    Matrix,
    Search,
    Truth,
    measure,
    overfetch,
    truth,
)

EF_MAX = 1000  # pgvector's largest hnsw.ef_search
BUILD_MEMORY_MB = 1024  # maintenance_work_mem at least: the graph must fit, or builds crawl


def build_memory_mb(rows: int, dimensions: int) -> int:
    """``maintenance_work_mem`` for an HNSW build over ``rows`` vectors: their floats and
    the graph (about 2.5 times the floats at m = 16), at least ``BUILD_MEMORY_MB``."""
    return max(BUILD_MEMORY_MB, int(2.5 * rows * dimensions * 4) >> 20)


@contextmanager
def connect(url: str, vectors: bool = True) -> Iterator[Any]:
    """An autocommit connection; with ``vectors``, it sends numpy arrays as ``vector``
    (the database must have pgvector's extension)."""
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(url, autocommit=True) as conn:
        if vectors:
            register_vector(conn)
        yield conn


def load_corpus(url: str, namespace: str) -> Corpus:
    """Every stored vector of the namespace, by row number."""
    keys, users, rows = [], [], []
    with connect(url) as conn, conn.cursor(binary=True) as cur:
        cur.execute("SELECT pk, user_id, embedding FROM memories WHERE namespace = %s "
                    "AND embedding IS NOT NULL ORDER BY pk", (namespace,))  # fmt: skip
        for key, user, vector in cur:
            keys.append(key)
            users.append(user)
            rows.append(vector.to_numpy().astype(np.float32, copy=False))
    matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return Corpus(np.asarray(keys, dtype=np.int64), np.asarray(users), matrix)


INDEXES = ("scale_tenant_hnsw", "scale_scope_hnsw")


def drop_indexes(url: str) -> None:
    """Drop the bench's HNSW indexes (remem does not use them yet)."""
    with connect(url) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")


class Tenant:
    """SQL over one tenant's rows, with its namespace (and a user) as literals so the
    planner can match them against partial indexes."""

    def __init__(self, conn: Any, namespace: str, dimensions: int) -> None:
        from psycopg import sql

        self.conn, self.sql = conn, sql
        self.namespace = sql.Literal(namespace)
        self.dimensions = int(dimensions)
        self.vector = sql.SQL(f"embedding::vector({self.dimensions})")

    def build(self, name: str, user: str | None) -> dict[str, Any]:
        """Create HNSW index ``name`` (over the user's rows when given); time and size."""
        sql = self.sql
        where = sql.SQL("namespace = {}").format(self.namespace)
        if user is not None:
            where = sql.SQL("{} AND user_id = {}").format(where, sql.Literal(user))
        statement = sql.SQL(
            "CREATE INDEX {} ON memories USING hnsw (({}) vector_cosine_ops) "
            "WITH (m = {}, ef_construction = {}) WHERE {}"
        ).format(sql.Identifier(name), self.vector, M, EF_CONSTRUCTION, where)
        rows = self.conn.execute(
            sql.SQL("SELECT count(*) FROM memories WHERE {}").format(where)
        ).fetchone()[0]
        memory = build_memory_mb(rows, self.dimensions)
        self.conn.execute(f"SET maintenance_work_mem = '{memory}MB'")
        started = time.perf_counter()
        self.conn.execute(statement)
        built = round(time.perf_counter() - started, 3)
        size = self.conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
        return {"build_s": built, "index_mb": round(size / (1 << 20), 1)}

    def nearest(self, user: str | None, limit: int = K) -> Any:
        """Top ``limit`` rows by the indexed expression (of one user when given)."""
        sql = self.sql
        where = sql.SQL("namespace = {}").format(self.namespace)
        if user is not None:
            where = sql.SQL("{} AND user_id = {}").format(where, sql.Literal(user))
        return sql.SQL("SELECT pk, user_id FROM memories WHERE {} ORDER BY {} <=> %s "
                       "LIMIT {}").format(where, self.vector, limit)  # fmt: skip

    def settings(self, ef: int, iterative: str = "off", sort: bool = False) -> None:
        """Set ``hnsw.ef_search`` and ``hnsw.iterative_scan`` for the next searches, and
        forbid sorting unless ``sort``: else, for a user's rows or a large LIMIT, the
        planner may prefer a b-tree scan and a sort (exact) to the HNSW index."""
        self.conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        self.conn.execute(f"SET hnsw.iterative_scan = {iterative}")
        self.conn.execute(f"SET enable_sort = {'on' if sort else 'off'}")

    def search(self, statement: Any, ef: int, iterative: str = "off") -> Search:
        """Run ``statement`` per query with these settings."""
        self.settings(ef, iterative)

        def run(query: Matrix) -> list[int]:
            return [row[0] for row in self.conn.execute(statement, (query,))]

        return run

    def exact_scope(self, user: str) -> Search:
        """Filter before, exactly: the user's rows (b-tree), sorted by distance."""
        statement = self.sql.SQL(
            "WITH s AS MATERIALIZED (SELECT pk, embedding FROM memories WHERE namespace = {} "
            "AND user_id = {}) SELECT pk FROM s ORDER BY embedding <=> %s LIMIT {}"
        ).format(self.namespace, self.sql.Literal(user), K)
        self.settings(K, sort=True)
        return lambda query: [row[0] for row in self.conn.execute(statement, (query,))]

    def after(self, user: str, fetch: int, ef: int) -> Search:
        """Filter after: ``fetch`` nearest of the tenant, then the user's first k."""
        statement = self.nearest(None, fetch)
        self.settings(min(EF_MAX, max(ef, fetch)))

        def run(query: Matrix) -> list[int]:
            rows = self.conn.execute(statement, (query,)).fetchall()
            return [key for key, owner in rows if owner == user][:K]

        return run

    def plan(self, statement: Any, query: Matrix) -> str:
        """The index (or scan) the planner chose for ``statement``."""
        explain = self.sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement)
        node = self.conn.execute(explain, (query,)).fetchone()[0][0]["Plan"]
        while "Index Name" not in node and node.get("Plans"):
            node = node["Plans"][0]
        return str(node.get("Index Name") or node.get("Node Type"))


def pgvector_ann(
    url: str, corpus: Corpus, namespace: str, user: str, users: int, queries: Matrix,
    efs: Sequence[int],
) -> dict[str, Any]:  # fmt: skip
    """pgvector HNSW over the tenant; for one user's scope: exact before (b-tree scan),
    after (over-fetch), after with pgvector 0.8's iterative scans, and before with a
    partial per-scope index."""
    scoped = corpus.scope(user)
    tenant_truth, scope_truth = truth(corpus, queries), truth(scoped, queries)
    with connect(url) as conn:
        sql = Tenant(conn, namespace, corpus.matrix.shape[1])
        out: dict[str, Any] = {"engine": "pgvector",
                               "params": {"m": M, "ef_construction": EF_CONSTRUCTION}}  # fmt: skip
        out["scope_exact_sql"] = measure(sql.exact_scope(user), queries, scope_truth)
        out["tenant"] = {**sql.build(INDEXES[0], None),
                         "by_ef": _by_ef(sql, None, "off", queries, tenant_truth, efs),
                         "plan": sql.plan(sql.nearest(None), queries[0])}  # fmt: skip
        fetch = min(EF_MAX, K * overfetch(users))
        out["scope_after"] = {
            "fetch": fetch,
            "by_ef": {
                str(ef): measure(sql.after(user, fetch, ef), queries, scope_truth) for ef in efs
            },
            "plan": sql.plan(sql.nearest(None, fetch), queries[0]),
        }
        out["scope_iterative"] = _scoped(sql, user, "relaxed_order", queries, scope_truth, efs)
        conn.execute(f"DROP INDEX {INDEXES[0]}")  # else the planner may still pick it
        built = sql.build(INDEXES[1], user)
        out["scope_before"] = {**built, **_scoped(sql, user, "off", queries, scope_truth, efs)}
    return out


def _scoped(
    sql: Tenant, user: str, iterative: str, queries: Matrix, right: Truth, efs: Sequence[int]
) -> dict[str, Any]:
    """One user's nearest by the indexed expression: the plan chosen, and each ef."""
    sql.settings(efs[0], iterative)
    plan = sql.plan(sql.nearest(user), queries[0])
    return {"plan": plan, "by_ef": _by_ef(sql, user, iterative, queries, right, efs)}


def _by_ef(
    sql: Tenant, user: str | None, iterative: str, queries: Matrix, right: Truth,
    efs: Sequence[int],
) -> dict[str, Any]:  # fmt: skip
    statement = sql.nearest(user)
    return {str(ef): measure(sql.search(statement, ef, iterative), queries, right) for ef in efs}
