"""Approximate nearest neighbours for big scopes: an HNSW graph (usearch) over a scope's
vectors, kept beside the exact matrix.

Below ``MIN_ROWS`` rows a scope is scanned exactly (numpy is faster there and exact).
From it on, and when the optional ``usearch`` package is installed (``pip install
'remem[ann]'``), the dense channel asks the graph for a few times more candidates than it
needs, keeps those the search's filter admits and rescores them exactly from the matrix:
only which rows are candidates is approximate, never their scores. When the filter admits
too small a share of the scope for that to find enough, the exact scan runs instead
(filtering before the vector search: a user's rows inside a tenant, say).

The graph is built on the first dense search that needs it and takes in rows appended
since on each later one; rows that died since (changed or deleted memories) stay in the
graph and are filtered out like any other row the mask refuses, until the index is
rebuilt (``index.cache``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
MIN_ROWS = 50_000  # scopes smaller than this are scanned exactly
CONNECTIVITY = 32  # HNSW edges per node (pgvector's m is 16; 32 measured better recall)
EXPANSION_ADD = 128  # candidate list while building
EXPANSION_SEARCH = 256  # candidate list while searching (at least the rows asked for)
OVERSAMPLE = 2.0  # rows asked for, per row wanted, divided by the admitted share
MIN_SHARE = 0.2  # below this admitted share of the scope the exact scan runs instead
BUILD_THREADS = 2

Matrix = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]


def _load_usearch() -> Any | None:
    """usearch's ``Index`` class, or ``None`` when it is not installed. onnxruntime is
    imported first: with usearch 2.26 (which the extras exclude), importing onnxruntime
    1.32 after usearch crashes the process (a segmentation fault); 2.25 does not."""
    import onnxruntime  # noqa: F401

    try:
        from usearch.index import Index
    except ImportError:
        return None
    return Index


class VectorGraph:
    """An HNSW graph over rows ``0..n-1`` of a scope's unit vectors (inner product)."""

    def __init__(self, index_class: Any, dimensions: int) -> None:
        self._index = index_class(ndim=dimensions, metric="ip", dtype="f32",
                                  connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                                  expansion_search=EXPANSION_SEARCH)  # fmt: skip
        self.rows = 0  # rows taken in: 0..rows-1

    def catch_up(self, matrix: Matrix, has_vector: npt.NDArray[np.bool_]) -> None:
        """Take in the rows appended since the last call (those with a vector)."""
        start = self.rows
        if start >= matrix.shape[0]:
            return
        fresh = np.flatnonzero(has_vector[start:]) + start
        if fresh.size:
            self._index.add(fresh.astype(np.uint64), matrix[fresh], threads=BUILD_THREADS)
        self.rows = matrix.shape[0]

    def nearest(self, vector: Matrix, count: int) -> Rows:
        """About the ``count`` rows most similar to ``vector`` (best first)."""
        self._index.expansion_search = max(EXPANSION_SEARCH, count)
        found = self._index.search(vector, count, threads=1)
        keys: Rows = np.asarray(found.keys, dtype=np.int64)
        return keys

    def nbytes(self) -> int:
        """About how much memory the graph takes (its vectors and links)."""
        return int(self._index.memory_usage)


class Approximate:
    """A scope's approximate vector search: the graph once the scope is big enough."""

    def __init__(self) -> None:
        self._graph: VectorGraph | None = None
        self._unavailable = False

    def top(
        self, matrix: Matrix, has_vector: npt.NDArray[np.bool_], vector: Matrix,
        admitted: npt.NDArray[np.bool_], count: int, limit: int,
    ) -> Rows | None:  # fmt: skip
        """Up to ``limit`` admitted rows near ``vector`` (unordered), or ``None`` when the
        exact scan should run: a small scope, no usearch, too small an admitted share
        (``count`` rows admitted), or fewer admitted rows found than wanted."""
        size = matrix.shape[0]
        if size < MIN_ROWS or count < MIN_SHARE * size or not self._ready(matrix.shape[1]):
            return None
        assert self._graph is not None
        self._graph.catch_up(matrix, has_vector)
        want = min(size, int(OVERSAMPLE * limit * size / max(count, 1)) + 1)
        found = self._graph.nearest(vector, want)
        found = found[(found >= 0) & (found < size)]
        rows: Rows = found[admitted[found]]
        return rows if rows.size >= min(limit, count) else None

    def _ready(self, dimensions: int) -> bool:
        if self._graph is not None:
            return True
        if self._unavailable:
            return False
        index_class = _load_usearch()
        if index_class is None:
            self._unavailable = True
            log.info("a scope of %d+ rows is scanned exactly: pip install 'remem[ann]' for "
                     "approximate vector search", MIN_ROWS)  # fmt: skip
            return False
        self._graph = VectorGraph(index_class, dimensions)
        return True

    def nbytes(self) -> int:
        """About how much memory the graph takes (0 before it is built)."""
        return self._graph.nbytes() if self._graph is not None else 0
