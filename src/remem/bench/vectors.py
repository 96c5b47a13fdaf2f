"""Vector index options measured on one machine: speed per query and recall against exact.

Options: ``numpy-cached`` (what the SQLite store does: the scope's matrix is loaded once
and kept until a write), ``numpy-reload`` (read the blobs from SQLite on every query),
``usearch-hnsw`` (an approximate HNSW index, if ``usearch`` is installed) and
``sqlite-vec`` (if this Python's sqlite3 can load extensions).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.bench.metrics import percentile

Matrix = npt.NDArray[np.float32]


def _unit(rows: int, dim: int, seed: int) -> Matrix:
    data = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    out: Matrix = data / np.linalg.norm(data, axis=1, keepdims=True)
    return out


def _exact(matrix: Matrix, query: Matrix, k: int) -> list[int]:
    scores = matrix @ query
    top = np.argpartition(-scores, k - 1)[:k]
    return [int(i) for i in top[np.argsort(-scores[top])]]


def _time(fn: Any, queries: Matrix, k: int) -> tuple[list[float], list[list[int]]]:
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(fn(query, k))
        times.append((time.perf_counter() - started) * 1000)
    return times, results


def _sqlite_reload(matrix: Matrix, folder: Path) -> Any:
    conn = sqlite3.connect(folder / "vectors.db")
    conn.execute("CREATE TABLE v (id INTEGER PRIMARY KEY, embedding BLOB)")
    conn.executemany(
        "INSERT INTO v VALUES (?, ?)", ((i, r.tobytes()) for i, r in enumerate(matrix))
    )
    conn.commit()

    def search(query: Matrix, k: int) -> list[int]:
        rows = conn.execute("SELECT embedding FROM v ORDER BY id").fetchall()
        loaded: Matrix = np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in rows])
        return _exact(loaded, query, k)

    return search


def _usearch(matrix: Matrix) -> Any | None:
    try:
        from usearch.index import Index
    except ImportError:
        return None
    index = Index(ndim=matrix.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(len(matrix)), matrix)

    def search(query: Matrix, k: int) -> list[int]:
        return [int(i) for i in index.search(query, k).keys]

    return search


def run(rows: int = 2000, queries: int = 200, dim: int = 384, k: int = 10) -> dict[str, Any]:
    """Time each available option on random unit vectors; recall@k is against exact search."""
    matrix, probes = _unit(rows, dim, 1), _unit(queries, dim, 2)
    truth = [_exact(matrix, q, k) for q in probes]
    report: dict[str, Any] = {"rows": rows, "queries": queries, "dim": dim, "k": k, "options": {}}
    with tempfile.TemporaryDirectory() as tmp:
        options = {
            "numpy-cached": lambda q, kk: _exact(matrix, q, kk),
            "numpy-reload": _sqlite_reload(matrix, Path(tmp)),
            "usearch-hnsw": _usearch(matrix),
        }
        for name, fn in options.items():
            if fn is None:
                report["options"][name] = {"available": False}
                continue
            times, found = _time(fn, probes, k)
            recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)])
            report["options"][name] = {
                "available": True, "p50_ms": round(percentile(times, 50), 4),
                "p95_ms": round(percentile(times, 95), 4), "recall@k": round(float(recall), 4),
            }  # fmt: skip
    report["options"]["sqlite-vec"] = {
        "available": hasattr(sqlite3.Connection, "enable_load_extension"),
        "note": "needs a Python whose sqlite3 can load extensions",
    }
    return report
