"""One search in progress: its inputs, the scope index, and the ranking being built.

The ranking is kept over the scope index's rows as numpy arrays (a score and a
membership flag per row), so a step costs a few array operations, not a Python call
per candidate; what each step added is kept as (rows, deltas) for ``explain``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.index.arrays import Rows, best_of, top
from remem.index.live import LiveScope
from remem.retrieval.query import QueryAnalysis
from remem.retrieval.recipes import Recipe
from remem.stores.base import MemoryFilter, Store

Embed = Callable[[str], npt.NDArray[np.float32]]
Rerank = Callable[[str, Sequence[str]], list[float]]
Vector = npt.NDArray[np.float32]
Floats = npt.NDArray[np.float64]
HIT_KINDS = ("turn", "keyphrase", "fact", "event", "profile", "procedure")  # not summaries


class Ranking:
    """Scores being built up over the scope's rows, and what added to each."""

    def __init__(self, size: int) -> None:
        self.scores: Floats = np.zeros(size)
        self.member = np.zeros(size, dtype=bool)  # a candidate (found, or given a delta)
        self.raw: dict[str, tuple[Rows, Floats]] = {}  # each channel's own scores
        self.steps: list[tuple[str, Rows, Floats]] = []  # what each step added
        self.found: dict[str, Rows] = {}  # rows each channel (and the time step) found

    def join(self, rows: Rows, scores: Floats) -> None:
        """Candidates with their first scores (zero scores join too)."""
        self.scores[rows] = scores
        self.member[rows] = True

    def join_sum(self, rows: Rows, scores: Floats) -> None:
        """Candidates (rows unique) with scores added to what earlier parts gave them."""
        self.scores[rows] += scores
        self.member[rows] = True

    def add(self, step: str, rows: Rows, deltas: Floats) -> None:
        """Add each delta to its row's score (rows not yet ranked join); rows are unique."""
        keep = deltas != 0
        rows, deltas = rows[keep], deltas[keep]
        if rows.size:
            self.scores[rows] += deltas
            self.member[rows] = True
            self.steps.append((step, rows, deltas))

    def best(self, k: int, ordered: bool = True) -> tuple[Rows, Floats]:
        """The ``k`` best candidates and their scores, best first (in no particular order
        unless ``ordered``): later steps' pool."""
        rows = np.flatnonzero(self.member)
        return (top if ordered else best_of)(rows, self.scores[rows], k)

    def peak(self) -> float:
        """The best score (0 when empty)."""
        return float(self.scores[self.member].max()) if self.member.any() else 0.0

    def breakdown(self, rows: Rows) -> tuple[list[dict[str, float]], list[tuple[str, ...]]]:
        """For each of ``rows`` (distinct): each channel's own score and what each step
        added, and the channels (and ``time``) that found it; one pass over the rows every
        channel and step recorded."""
        named = [*((name, r, s, _RAW) for name, (r, s) in self.raw.items()),
                 *((name, r, d, _ADDED) for name, r, d in self.steps),
                 *((name, r, None, _FOUND) for name, r in self.found.items())]  # fmt: skip
        parts: list[dict[str, float]] = [{} for _ in range(rows.size)]
        found: list[list[str]] = [[] for _ in range(rows.size)]
        if not named or not rows.size:
            return parts, [tuple(f) for f in found]
        at = np.full(self.scores.size, -1, dtype=np.int64)
        at[rows] = np.arange(rows.size)
        hit = at[np.concatenate([r for _, r, _, _ in named])]
        picked = np.flatnonzero(hit >= 0)
        which = np.repeat(np.arange(len(named)), [r.size for _, r, _, _ in named])[picked]
        values = np.concatenate([np.zeros(r.size) if v is None else v for _, r, v, _ in named])
        for i, k, value in zip(hit[picked].tolist(), which.tolist(), values[picked].tolist(),
                               strict=True):  # fmt: skip
            name, _, _, kind = named[k]
            if kind == _FOUND:
                found[i].append(name)
            else:
                parts[i][name] = value if kind == _RAW else parts[i].get(name, 0.0) + value
        return parts, [tuple(f) for f in found]


_RAW, _ADDED, _FOUND = 0, 1, 2  # what a row's entry in ``Ranking.breakdown`` gives


@dataclass
class Run:
    """One search: its inputs, the query analysis, and the scope's live index (read under
    one store snapshot). ``vector`` may still be being computed (a ``Future``): the
    keyword work runs meanwhile, and ``query_vector`` waits for it."""

    store: Store
    index: LiveScope
    vector: Vector | Future[Vector] | None
    query: str
    flt: MemoryFilter
    recipe: Recipe
    now: datetime
    analysis: QueryAnalysis | None = None
    rerank: Rerank | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _mask: npt.NDArray[np.bool_] | None = None

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """Rows of the index the filter admits (computed once per search)."""
        if self._mask is None:
            self._mask = self.index.mask(self.flt, self.now)
        return self._mask

    def query_vector(self) -> Vector | None:
        """The query's embedding (waiting for it if it is still being computed)."""
        if isinstance(self.vector, Future):
            started = time.perf_counter()
            self.vector = self.vector.result()
            self.timings["embed_wait"] = (time.perf_counter() - started) * 1000
        return self.vector

    def allowed(self, rows: Rows) -> Rows:
        """Those rows the filter admits (kind, time bounds, metadata, not expired)."""
        return rows[self.mask[rows]]

    def timed(self, name: str, started: float) -> None:
        """Record a stage's milliseconds since ``started``."""
        self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - started) * 1000
