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

from remem.index.arrays import Rows, top
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

    def add(self, step: str, rows: Rows, deltas: Floats) -> None:
        """Add each delta to its row's score (rows not yet ranked join); rows are unique."""
        keep = deltas != 0
        rows, deltas = rows[keep], deltas[keep]
        if rows.size:
            self.scores[rows] += deltas
            self.member[rows] = True
            self.steps.append((step, rows, deltas))

    def best(self, k: int) -> tuple[Rows, Floats]:
        """The ``k`` best candidates and their scores, best first (later steps' pool)."""
        rows = np.flatnonzero(self.member)
        return top(rows, self.scores[rows], k)

    def peak(self) -> float:
        """The best score (0 when empty)."""
        return float(self.scores[self.member].max()) if self.member.any() else 0.0

    def parts(self, rows: Sequence[int]) -> list[dict[str, float]]:
        """For each row: each channel's own score and what each step added."""
        at = {r: i for i, r in enumerate(rows)}
        out: list[dict[str, float]] = [{} for _ in rows]
        wanted = self._marked(rows)
        named = [(name, r, s, False) for name, (r, s) in self.raw.items()]
        for name, found, values, add in [*named, *((n, r, d, True) for n, r, d in self.steps)]:
            keep = wanted[found]
            for r, value in zip(found[keep].tolist(), values[keep].tolist(), strict=True):
                part = out[at[r]]
                part[name] = part.get(name, 0.0) + value if add else value
        return out

    def channels(self, rows: Sequence[int]) -> list[tuple[str, ...]]:
        """For each row, the channels (and ``time``) that found it."""
        wanted = self._marked(rows)
        found = {name: set(r[wanted[r]].tolist()) for name, r in self.found.items()}
        return [tuple(name for name, hit in found.items() if r in hit) for r in rows]

    def _marked(self, rows: Sequence[int]) -> npt.NDArray[np.bool_]:
        """A flag per row of the scope, set for ``rows``."""
        wanted = np.zeros(self.scores.size, dtype=bool)
        wanted[list(rows)] = True
        return wanted


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
