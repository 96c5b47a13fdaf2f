"""``remem bench scale`` at CI size (2,000 memories, 4 users) on SQLite and PostgreSQL:
the report's structure and invariants (never its timings), plus the recall arithmetic and
the synthetic tenant it is built on."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import database_url

from remem.bench.scale import run_scale
from remem.bench.scale.ann import Corpus, exact_top, truth
from remem.bench.scale.data import Pool, tenant_sessions, turns_per_user, user_ids
from remem.bench.scale.report import tables
from remem.cli.bench_scale import scale
from remem.cli.common import State

SIZE, USERS, QUERIES, POOL, EFS = 2000, 4, 10, 2000, (10, 40)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for both backends' runs, so the pool is embedded once."""
    return tmp_path_factory.mktemp("scale")


def _recalls(run: Mapping[str, Any]) -> list[float]:
    found = []
    for key, section in run["ann"].items():
        if key == "exact":
            found += [v["recall@10"] for v in section.values()]
        elif isinstance(section, dict) and "by_ef" in section:
            assert sorted(section["by_ef"], key=int) == [str(ef) for ef in EFS]
            found += [v["recall@10"] for v in section["by_ef"].values()]
        elif isinstance(section, dict) and "recall@10" in section:
            found.append(section["recall@10"])
    return found


def check_run(run: Mapping[str, Any], backend: str) -> None:
    """Counts match what was ingested, recall is a fraction, sizes are positive."""
    assert (run["backend"], run["size"], run["users"]) == (backend, SIZE, USERS)
    kinds = run["memories_by_kind"]
    assert kinds["turn"] == SIZE == run["ingest"]["turns"]
    assert run["memories"] == sum(kinds.values()) == run["vectors"]
    assert run["scope_vectors"] >= SIZE // USERS  # the user's turns and summaries
    # every turn's text came from the pool: the model embedded only summaries' topics
    assert run["ingest"]["model_texts"] <= kinds.get("summary", 0)
    assert 0 < kinds["summary"] <= run["ingest"]["adds"]  # at most one per session
    assert run["search"]["user"]["hits"] == run["search"]["tenant"]["hits"] == 10 * QUERIES
    recalls = _recalls(run)
    assert len(recalls) >= 2 + 3 * len(EFS)
    assert all(0.0 <= r <= 1.0 for r in recalls)
    assert run["ann"]["exact"]["tenant"]["recall@10"] == 1.0
    assert run["ann"]["exact"]["scope"]["recall@10"] == 1.0
    channel = run["dense_channel"]
    assert channel["rows"] >= run["memories"]
    assert 0.0 <= channel["graph"]["recall@10"] <= 1.0 and channel["exact"]["p50_ms"] > 0
    if channel["rows"] < channel["graph_from_rows"]:  # a small run scans exactly either way
        assert channel["graph"]["recall@10"] == 1.0 and channel["graph_nodes"] == 0
    assert run["disk"]["bytes"] > 0
    assert run["peak_rss_mb"]["with_ann"] >= run["peak_rss_mb"]["ingest_and_search"] > 0


def test_scale_sqlite_cli(cache: Path) -> None:
    out = cache / "sqlite.json"
    args = ["--sizes", str(SIZE), "--users", str(USERS), "--backends", "sqlite", "--queries",
            str(QUERIES), "--pool", str(POOL), "--ef-search", "10,40", "--out", str(out),
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(scale, args, obj=State(None, None, False))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [r["backend"] for r in report["runs"]] == ["sqlite"]
    check_run(report["runs"][0], "sqlite")
    assert report["runs"][0]["ann"]["engine"] == "usearch"
    assert "tenant_p95" in result.output and "usearch tenant HNSW, ef 40" in result.output
    assert list(cache.glob("remem-scale-pool-*.npy"))  # the pool's vectors, cached


@pytest.mark.postgres
def test_scale_postgres(postgres_url: str, cache: Path) -> None:
    url = database_url(postgres_url, f"scale_{uuid.uuid4().hex[:12]}")
    report = run_scale((SIZE,), USERS, ("postgres",), url, QUERIES, POOL, EFS,
                       progress=False, cache=cache)  # fmt: skip
    run = report["runs"][0]
    check_run(run, "postgres")
    assert run["ann"]["engine"] == "pgvector"
    assert run["ann"]["scope_exact_sql"]["recall@10"] == 1.0  # exact in SQL == numpy
    assert run["ann"]["scope_before"]["index_mb"] > 0
    assert "pgvector user: own index (before), ef 10" in tables(report)


def test_recall_counts_equal_vectors_as_right() -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((30, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    matrix = np.vstack([base, base])  # every vector twice: keys n and n + 30 tie
    corpus = Corpus(np.arange(60, dtype=np.int64), np.asarray(["u"] * 60), matrix)
    queries = base[:5]
    right = truth(corpus, queries)
    exact = [exact_top(corpus, q) for q in queries]
    twins = [[(k + 30) % 60 for k in keys] for keys in exact]
    assert right.recall(queries, exact) == right.recall(queries, twins) == 1.0
    halves = [keys[:5] + [int(k) for k in np.argsort(matrix @ q)[:5]] for keys, q in
              zip(exact, queries, strict=True)]  # fmt: skip
    assert right.recall(queries, halves) == 0.5
    assert right.recall(queries, [keys[:1] * 10 for keys in exact]) == 0.1  # no double count


def test_tenant_sessions_split_users_and_draw_from_the_pool() -> None:
    pool = Pool(("Maya", "Sam"), (("a", "b"), ("c",)), (), {})
    counts: Counter[str] = Counter()
    sessions = set()
    for user, session, messages in tenant_sessions(pool, 1003, 3):
        counts[user] += len(messages)
        sessions.add((user, session))
        assert all(m["content"] in ("a", "b") for m in messages[::2])
        assert all(m["content"] == "c" and m["name"] == "Sam" for m in messages[1::2])
    assert [counts[u] for u in user_ids(3)] == turns_per_user(1003, 3) == [335, 334, 334]
    assert len(sessions) >= 3 * (334 // 40)
    # seeded: the same tenant every run
    assert list(tenant_sessions(pool, 1003, 3)) == list(tenant_sessions(pool, 1003, 3))
