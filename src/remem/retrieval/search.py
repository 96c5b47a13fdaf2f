"""Search: analyse the question, then run the pipeline over the store contract."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remem.index.live import LiveScope
from remem.retrieval.pipeline import PIPELINE, first_stage, run_channels
from remem.retrieval.query import analyze, known_entities, terms
from remem.retrieval.recipes import Recipe
from remem.retrieval.run import HIT_KINDS, Ranking, Rerank, Run, Vector
from remem.stores.base import MemoryFilter, Store
from remem.util import replaced


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
    vector: Vector | Future[Vector] | None,
    query: str,
    flt: MemoryFilter,
    recipe: Recipe,
    limit: int,
    now: datetime,
    reference: datetime | None = None,
    rerank: Rerank | None = None,
    explain: bool = False,
) -> SearchRun:
    """The top ``limit`` memories for a query, and what the pipeline decided.

    ``index`` is the scope's live index, read under the caller's store snapshot;
    ``vector`` the query's embedding (needed when the recipe has the dense channel; a
    ``Future`` lets the keyword work run while it is computed); ``now`` is the clock (for
    expiry); ``reference`` is what relative time expressions in the question are resolved
    against (default ``now``); ``rerank`` scores (question, text) pairs when the recipe
    names a reranker. ``explain`` fills ``SearchRun.analysis`` (with ``timings_ms``, each
    stage's milliseconds).
    """
    hits_only = flt if flt.kinds else replaced(flt, kinds=HIT_KINDS)
    run = Run(store, index, vector, query, hits_only, recipe, now, rerank=rerank)
    started = time.perf_counter()
    run.analysis = analyze(query, reference or now, _known(run))
    run.timed("analyze", started)
    ranking = first_stage(run, run_channels(run))
    for name, step in PIPELINE:
        started = time.perf_counter()
        step(run, ranking)
        run.timed(name, started)
    started = time.perf_counter()
    rows, scores = ranking.best(max(limit * 3, 50))
    keep = run.mask[rows]
    rows, scores = rows[keep][:limit], scores[keep][:limit]
    parts, channels = ranking.breakdown(rows)
    candidates = [
        Candidate(index.ids[r], float(s), parts[i], channels[i])
        for i, (r, s) in enumerate(zip(rows.tolist(), scores.tolist(), strict=True))
    ]
    run.timed("rank", started)
    return SearchRun(candidates, _explain(run, ranking) if explain else {})


def _known(run: Run) -> Mapping[str, str]:
    """The scope's entity table, when a step needs the question's entities: the graph
    walk starts from them (the multi-hop round needs only to know whether the question
    names an entity, which its words tell: ``pipeline._named``)."""
    return run.index.entity_kinds if run.recipe.graph > 0 else {}


def _explain(run: Run, ranking: Ranking) -> dict[str, Any]:
    recipe = run.recipe
    on = set(recipe.mechanisms()) | ({"anchors"} if recipe.time > 0 else set())
    stages = {"embed_wait", "analyze", "bm25", "dense", "fusion", "rank"}
    query = run.analysis.as_dict() if run.analysis else {"terms": terms(run.query)}
    if run.analysis and not run.analysis.entities:  # not needed by the search: for show
        query["entities"] = list(known_entities(run.query, run.index.entity_kinds))
    return {
        "query": query,
        "recipe": {"name": recipe.name, "mechanisms": recipe.mechanisms()},
        "candidates": {
            name: int(ranking.found[name].size) if name in ranking.found else 0
            for name in ("bm25", "dense", "time")
        },
        **run.notes,
        "timings_ms": {k: round(v, 3) for k, v in run.timings.items() if k in on | stages},
    }
