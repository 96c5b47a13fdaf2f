"""Retrieval strategies as data: named recipes a bench run can cite exactly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from remem.errors import InvalidInputError


@dataclass(frozen=True)
class Recipe:
    """Which channels to run, how much each weighs, and how to fuse them.

    ``fusion`` is ``"weighted"`` (normalised-score combination), or ``"rrf"``.
    ``candidates`` is how many hits each channel contributes before fusion.
    ``neighbours`` adds that share of the adjacent turns' fused scores to each turn;
    ``session`` adds that share of the turn's conversation strength (the sum of its
    ``session_top`` best scores, relative to the best conversation's).
    """

    name: str
    channels: Mapping[str, float]
    fusion: str = "weighted"
    normalizer: str = "minmax"
    candidates: int = 100
    rrf_k: int = 60
    neighbours: float = 0.0
    session: float = 0.0
    session_top: int = 3
    description: str = ""

    def __post_init__(self) -> None:
        if not self.channels:
            raise InvalidInputError(f"recipe {self.name!r} has no channels")
        if self.fusion not in ("weighted", "rrf"):
            raise InvalidInputError(f"recipe {self.name!r}: unknown fusion {self.fusion!r}")


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "default",
            {"bm25": 0.6, "dense": 0.4},
            neighbours=0.3,
            session=0.5,
            description="BM25 + dense (min-max, 0.6/0.4), neighbour-turn support, session boost",
        ),
        Recipe(
            "hybrid",
            {"bm25": 0.6, "dense": 0.4},
            description="BM25 + dense (min-max, 0.6/0.4) without conversation context",
        ),
        Recipe("bm25", {"bm25": 1.0}, description="FTS5 BM25 alone (porter-stemmed)"),
        Recipe("dense", {"dense": 1.0}, description="embedding cosine similarity alone"),
        Recipe(
            "rrf",
            {"bm25": 1.0, "dense": 1.0},
            fusion="rrf",
            description="reciprocal-rank fusion of BM25 and dense (k=60), for comparison",
        ),
    )
}


def get_recipe(name: str | Recipe) -> Recipe:
    """A recipe by name (or the recipe itself); unknown names list the known ones."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}"
        ) from None
