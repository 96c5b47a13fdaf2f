"""The search pipeline over the store contract: candidates per channel, then fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.retrieval import fusion
from remem.retrieval.query import terms
from remem.retrieval.recipes import Recipe
from remem.stores.base import MemoryFilter, Store

Embed = Callable[[str], npt.NDArray[np.float32]]
Channels = dict[str, list[tuple[str, float]]]


@dataclass(frozen=True)
class Candidate:
    """A fused candidate: its id, final score, each channel's raw score and each boost."""

    id: str
    score: float
    scores: dict[str, float]


@dataclass(frozen=True)
class SearchRun:
    """Ranked candidates plus what the pipeline decided (for ``explain``)."""

    candidates: list[Candidate]
    analysis: dict[str, Any] = field(default_factory=dict)


def run_channels(
    store: Store, embed: Embed, query: str, flt: MemoryFilter, recipe: Recipe
) -> tuple[Channels, list[str]]:
    """Each channel's candidates, best first, and the keyword terms used."""
    out: Channels = {}
    words = terms(query)
    if "bm25" in recipe.channels:
        found = store.keyword_search(words, flt, recipe.candidates)
        out["bm25"] = [(h.id, h.score) for h in found]
    if "dense" in recipe.channels:
        found = store.vector_search(embed(query), flt, recipe.candidates)
        out["dense"] = [(h.id, h.score) for h in found]
    return out, words


def fuse(
    channels: Channels,
    recipe: Recipe,
    slots: Callable[[list[str]], dict[str, fusion.Slot]],
) -> list[Candidate]:
    """Fuse channel results as the recipe says, then apply conversation-context boosts."""
    if recipe.fusion == "rrf":
        fused = fusion.rrf(channels, recipe.channels, recipe.rrf_k)
    else:
        fused = fusion.weighted(channels, recipe.channels, recipe.normalizer)
    parts: dict[str, dict[str, float]] = {}
    for name, ranked in channels.items():
        for item, score in ranked:
            parts.setdefault(item, {})[name] = score
    if recipe.neighbours > 0 or recipe.session > 0:
        where = slots(list(fused))
        for name in ("neighbours", "session"):
            if name == "neighbours":
                boosted = fusion.neighbour_support(fused, where, recipe.neighbours)
            else:
                boosted = fusion.session_boost(fused, where, recipe.session, recipe.session_top)
            for item, score in boosted.items():
                if score != fused[item]:
                    parts[item][name] = score - fused[item]
            fused = boosted
    ordered = sorted(fused.items(), key=lambda kv: -kv[1])
    return [Candidate(item, score, parts[item]) for item, score in ordered]


def search(
    store: Store, embed: Embed, query: str, flt: MemoryFilter, recipe: Recipe, limit: int
) -> SearchRun:
    """The top ``limit`` fused candidates for a query, and the query analysis."""
    channels, words = run_channels(store, embed, query, flt, recipe)
    ranked = fuse(channels, recipe, lambda ids: store.positions(flt.namespace, ids))[:limit]
    analysis = {
        "terms": words,
        "recipe": {
            "name": recipe.name, "channels": dict(recipe.channels), "fusion": recipe.fusion,
            "neighbours": recipe.neighbours, "session": recipe.session,
        },
        "candidates": {name: len(found) for name, found in channels.items()},
    }  # fmt: skip
    return SearchRun(ranked, analysis)
