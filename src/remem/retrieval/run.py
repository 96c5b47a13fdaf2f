"""One search in progress: its inputs, the scope index, and the ranking being built."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.index.live import LiveScope
from remem.retrieval import scope
from remem.retrieval.query import QueryAnalysis
from remem.retrieval.recipes import Recipe
from remem.stores.base import MemoryFilter, Store

Embed = Callable[[str], npt.NDArray[np.float32]]
Rerank = Callable[[str, Sequence[str]], list[float]]
HIT_KINDS = ("turn", "keyphrase", "fact", "event", "profile", "procedure")  # not summaries


@dataclass
class Ranking:
    """Scores being built up, and per memory what added to them."""

    scores: dict[str, float] = field(default_factory=dict)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)
    found: dict[str, list[str]] = field(default_factory=dict)

    def add(self, step: str, deltas: Mapping[str, float]) -> None:
        """Add each delta to its memory's score (memories not yet ranked join)."""
        for item, delta in deltas.items():
            if delta == 0:
                continue
            self.scores[item] = self.scores.get(item, 0.0) + delta
            part = self.parts.setdefault(item, {})
            part[step] = part.get(step, 0.0) + delta

    def top(self, k: int) -> list[str]:
        """The ``k`` best ids."""
        return list(self.best(k))

    def best(self, k: int) -> dict[str, float]:
        """The ``k`` best ids and their scores (later steps work on this pool)."""
        return dict(sorted(self.scores.items(), key=lambda kv: -kv[1])[:k])

    def peak(self) -> float:
        """The best score (0 when empty)."""
        return max(self.scores.values(), default=0.0)


@dataclass
class Run:
    """One search: its inputs, the query analysis, and the scope's live index (read under
    one store snapshot)."""

    store: Store
    index: LiveScope
    vector: npt.NDArray[np.float32] | None
    query: str
    flt: MemoryFilter
    recipe: Recipe
    now: datetime
    analysis: QueryAnalysis | None = None
    rerank: Rerank | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    _mask: npt.NDArray[np.bool_] | None = None

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """Rows of the index the filter admits (computed once per search)."""
        if self._mask is None:
            self._mask = self.index.mask(self.flt, self.now)
        return self._mask

    def allowed(self, ids: Sequence[str]) -> list[str]:
        """Those ids the filter admits (kind, time bounds, metadata, not expired)."""
        rows, mask = self.index.row_of, self.mask
        return [item for item in ids if (row := rows.get(item)) is not None and mask[row]]

    def session_of(self, item: str) -> str | None:
        """The conversation key of a memory of the scope (None when it is unknown)."""
        row = self.index.row_of.get(item)
        return self.index.sessions[row] if row is not None else None

    def neighbours_of(self, item: str) -> list[str]:
        """Ids of the turns adjacent to a turn."""
        row = self.index.row_of.get(item)
        if row is None:
            return []
        return [self.index.ids[r] for r in scope.neighbours(self.index, row)]
