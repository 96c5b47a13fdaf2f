"""The search pipeline over the store contract: candidates per channel, then fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from remem.retrieval import fusion
from remem.retrieval.query import terms
from remem.retrieval.recipes import Recipe
from remem.stores.base import MemoryFilter, Store

Embed = Callable[[str], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Candidate:
    """A fused candidate: its id, fused score and each channel's raw score."""

    id: str
    score: float
    scores: dict[str, float]


def run_channels(
    store: Store, embed: Embed, query: str, flt: MemoryFilter, recipe: Recipe
) -> dict[str, list[tuple[str, float]]]:
    """Each channel's candidates, best first."""
    out: dict[str, list[tuple[str, float]]] = {}
    if "bm25" in recipe.channels:
        found = store.keyword_search(terms(query), flt, recipe.candidates)
        out["bm25"] = [(h.id, h.score) for h in found]
    if "dense" in recipe.channels:
        found = store.vector_search(embed(query), flt, recipe.candidates)
        out["dense"] = [(h.id, h.score) for h in found]
    return out


def fuse(channels: dict[str, list[tuple[str, float]]], recipe: Recipe) -> list[Candidate]:
    """Fuse channel results as the recipe says; ties keep the first channel's order."""
    if recipe.fusion == "rrf":
        fused = fusion.rrf(channels, recipe.channels, recipe.rrf_k)
    else:
        fused = fusion.weighted(channels, recipe.channels, recipe.normalizer)
    raw: dict[str, dict[str, float]] = {}
    for name, ranked in channels.items():
        for item, score in ranked:
            raw.setdefault(item, {})[name] = score
    ordered = sorted(fused.items(), key=lambda kv: -kv[1])
    return [Candidate(item, score, raw[item]) for item, score in ordered]


def search_candidates(
    store: Store, embed: Embed, query: str, flt: MemoryFilter, recipe: Recipe, limit: int
) -> list[Candidate]:
    """The top ``limit`` fused candidates for a query."""
    return fuse(run_channels(store, embed, query, flt, recipe), recipe)[:limit]
