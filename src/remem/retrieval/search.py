"""Search: analyse the question, then run the pipeline over the store contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.index.live import LiveScope
from remem.retrieval.pipeline import PIPELINE, first_stage, run_channels
from remem.retrieval.query import analyze, terms
from remem.retrieval.recipes import Recipe
from remem.retrieval.run import HIT_KINDS, Ranking, Rerank, Run
from remem.stores.base import MemoryFilter, Store


@dataclass(frozen=True)
class Candidate:
    """A ranked memory: its final score, what each channel and step gave it, and which
    channels found it."""

    id: str
    score: float
    scores: dict[str, float]
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchRun:
    """Ranked candidates plus what the pipeline decided (for ``explain``)."""

    candidates: list[Candidate]
    analysis: dict[str, Any] = field(default_factory=dict)


def search(
    store: Store,
    index: LiveScope,
    vector: npt.NDArray[np.float32] | None,
    query: str,
    flt: MemoryFilter,
    recipe: Recipe,
    limit: int,
    now: datetime,
    reference: datetime | None = None,
    rerank: Rerank | None = None,
) -> SearchRun:
    """The top ``limit`` memories for a query, and what the pipeline decided.

    ``index`` is the scope's live index, read under the caller's store snapshot;
    ``vector`` the query's embedding (needed when the recipe has the dense channel);
    ``now`` is the clock (for expiry); ``reference`` is what relative time expressions in
    the question are resolved against (default ``now``); ``rerank`` scores (question,
    text) pairs when the recipe names a reranker.
    """
    run = Run(store, index, vector, query, replace(flt, kinds=flt.kinds or HIT_KINDS), recipe,
              now, rerank=rerank)  # fmt: skip
    run.analysis = analyze(query, reference or now, _known(run))
    ranking = first_stage(run, run_channels(run))
    for step in PIPELINE:
        step(run, ranking)
    ranked = sorted(ranking.scores.items(), key=lambda kv: -kv[1])
    ids = run.allowed([i for i, _ in ranked[: max(limit * 3, 50)]])[:limit]
    candidates = [
        Candidate(i, ranking.scores[i], ranking.parts.get(i, {}), tuple(ranking.found.get(i, ())))
        for i in ids
    ]
    return SearchRun(candidates, _explain(run, ranking))


def _known(run: Run) -> Mapping[str, str]:
    """The scope's entity table, when a step needs the question's entities."""
    if run.recipe.graph > 0 or run.recipe.multihop > 0:
        return run.index.entity_kinds
    return {}


def _explain(run: Run, ranking: Ranking) -> dict[str, Any]:
    recipe = run.recipe
    return {
        "query": run.analysis.as_dict() if run.analysis else {"terms": terms(run.query)},
        "recipe": {"name": recipe.name, "mechanisms": recipe.mechanisms()},
        "candidates": {
            name: sum(1 for found in ranking.found.values() if name in found)
            for name in ("bm25", "dense", "time")
        },
        **run.notes,
    }
