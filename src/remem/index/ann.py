"""Approximate nearest neighbours for big scopes: an HNSW graph (usearch) over a scope's
vectors, kept beside the exact matrix.

Below ``MIN_ROWS`` rows a scope is scanned exactly (numpy is faster there and exact).
From it on, and when the optional ``usearch`` package is installed (``pip install
'remem[ann]'``), the dense channel asks the graph for a few times more candidates than it
needs, keeps those the search's filter admits and rescores them exactly from the matrix:
only which rows are candidates is approximate, never their scores. When the filter admits
too small a share of the scope for that to find enough, the exact scan runs instead
(filtering before the vector search: a user's rows inside a tenant, say), and so it does
for a filter admitting rows the graph does not hold: the graph leaves out session
summaries (``index.live.UNGRAPHED_KINDS``), which searches return only when asked and
which crowd the space near questions (at 200k memories, 6 of 100 questions found only
summaries among their graph neighbours and fell back to the exact scan).

The graph is built on the first dense search that needs it and takes in rows appended
since on each later one; rows that died since (changed or deleted memories) stay in the
graph and are filtered out like any other row the mask refuses, until the index is
rebuilt (``index.cache``).

Rows whose vector is identical to one the graph already holds (the same text said again:
"ok", "thanks!", a pasted message) are not added as nodes of their own: the graph keeps
one node per distinct vector and the rows sharing it beside it, handed out together.
Many identical copies of a point fill each other's edge lists in HNSW and cut it off
from the rest of the graph; at a million memories drawn from 20,000 texts, recall@10
fell to 0.82 with them (docs/scale.md).
"""

from __future__ import annotations

import itertools
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
WIDEN, WIDENINGS = 4, 2  # too few admitted rows found: ask for 4x, then 16x, then scan
BUILD_THREADS = 2
CHUNK = 65_536  # rows taken into the graph at a time
NODE_BYTES = 100  # about what the table of distinct vectors takes per node

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
    """An HNSW graph over rows ``0..n-1`` of a scope's unit vectors (inner product), one
    node per distinct vector."""

    def __init__(self, index_class: Any, dimensions: int) -> None:
        self._index = index_class(ndim=dimensions, metric="ip", dtype="f32",
                                  connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                                  expansion_search=EXPANSION_SEARCH)  # fmt: skip
        self.rows = 0  # rows taken in: 0..rows-1
        self._node_of: dict[int, int] = {}  # a vector's hash -> the row that is its node
        self._copies: dict[int, list[int]] = {}  # node row -> later rows with its vector
        self.copied = 0  # rows kept as copies

    def catch_up(self, matrix: Matrix, held: npt.NDArray[np.bool_]) -> None:
        """Take in the rows appended since the last call (those ``held`` marks): a vector
        already in the graph becomes a copy of its node, any other a node of its own."""
        start = self.rows
        if start >= matrix.shape[0]:
            return
        fresh = np.flatnonzero(held[start:]) + start
        for at in range(0, fresh.size, CHUNK):  # a chunk's vectors are copied at a time
            nodes = self._distinct(matrix, fresh[at : at + CHUNK])
            if nodes.size:
                self._index.add(nodes.astype(np.uint64), matrix[nodes], threads=BUILD_THREADS)
        self.rows = matrix.shape[0]

    def _distinct(self, matrix: Matrix, rows: Rows) -> Rows:
        """Those of ``rows`` whose vector the graph does not hold yet (each new vector
        once); the others are kept as copies of the node holding theirs."""
        nodes: list[int] = []
        for row, key in zip(rows.tolist(), self._fingerprints(matrix[rows]), strict=True):
            node = self._node_of.setdefault(key, row)
            if node == row:
                nodes.append(row)
            elif np.array_equal(matrix[node], matrix[row]):
                self._copies.setdefault(node, []).append(row)
                self.copied += 1
            else:  # two vectors with one fingerprint (rare): a node of its own
                nodes.append(row)
        return np.asarray(nodes, dtype=np.int64)

    @staticmethod
    def _fingerprints(vectors: Matrix) -> list[int]:
        """A hash of each vector's bytes (equal vectors have equal hashes; ``_distinct``
        checks the converse)."""
        data, width = np.ascontiguousarray(vectors).tobytes(), vectors.shape[1] * 4
        return [hash(data[at : at + width]) for at in range(0, len(data), width)]

    def nearest(self, vector: Matrix, count: int) -> Rows:
        """About the ``count`` distinct vectors most similar to ``vector``: their rows,
        best first, each followed by the rows sharing its vector."""
        self._index.expansion_search = max(EXPANSION_SEARCH, count)
        found = self._index.search(vector, count, threads=1)
        keys: Rows = np.asarray(found.keys, dtype=np.int64)
        if not self._copies:
            return keys
        rows = [[key, *self._copies.get(key, ())] for key in keys.tolist()]
        return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64)

    def __len__(self) -> int:
        """The graph's nodes (distinct vectors)."""
        return len(self._index)

    def nbytes(self) -> int:
        """About how much memory the graph takes (its vectors, links and copies)."""
        return int(self._index.memory_usage) + NODE_BYTES * len(self._node_of) + 8 * self.copied


class Approximate:
    """A scope's approximate vector search: the graph once the scope is big enough."""

    def __init__(self) -> None:
        self._graph: VectorGraph | None = None
        self._unavailable = False

    def top(
        self, matrix: Matrix, held: npt.NDArray[np.bool_], vector: Matrix,
        admitted: npt.NDArray[np.bool_], count: int, limit: int,
    ) -> Rows | None:  # fmt: skip
        """Up to ``limit`` admitted rows near ``vector`` (unordered), or ``None`` when the
        exact scan should run: a small scope, no usearch, too small an admitted share
        (``count`` rows admitted), a filter admitting rows the graph does not hold
        (``held``: the rows it may hold), or fewer admitted rows found than wanted even after
        asking the graph for ``WIDEN`` times more, ``WIDENINGS`` times (the rows nearest
        the question can be ones the filter refuses: session summaries, say, or an old
        period outside ``since``)."""
        size = matrix.shape[0]
        if size < MIN_ROWS or count < MIN_SHARE * size or not self._ready(matrix.shape[1]):
            return None
        if np.count_nonzero(admitted & held) < count:
            return None
        assert self._graph is not None
        self._graph.catch_up(matrix, held)
        want = min(size, int(OVERSAMPLE * limit * size / max(count, 1)) + 1)
        for _ in range(WIDENINGS + 1):
            found = self._graph.nearest(vector, want)
            found = found[(found >= 0) & (found < size)]
            rows: Rows = found[admitted[found]]
            if rows.size >= min(limit, count):
                return rows
            if want >= min(size, len(self._graph)):
                break
            want = min(size, want * WIDEN)  # the nearest rows were mostly refused
        return None

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

    def nodes(self) -> int:
        """The graph's nodes, one per distinct vector (0 before it is built)."""
        return len(self._graph) if self._graph is not None else 0
