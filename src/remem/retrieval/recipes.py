"""Retrieval strategies as data: named recipes a bench run can cite exactly.

Every mechanism is a field whose zero value switches it off, so an ablation is the same
recipe with one field zeroed: ``get_recipe("default-no-graph")`` is ``default`` without
the graph channel (see ``MECHANISMS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from remem.errors import InvalidInputError


@dataclass(frozen=True)
class Recipe:
    """Which channels and steps to run, and how much each weighs.

    First stage: ``channels`` (``bm25``, ``dense``) fused by ``fusion`` (``"weighted"``:
    a combination of per-channel scores normalised by ``normalizer``; or ``"rrf"``),
    ``candidates`` hits per channel. Then, each off at 0:

    - ``time``: memories inside the question's time window gain this share of the top
      score (said then, or referring to then); they join the candidates if missing.
    - ``temporal``: for "when" / "how long" questions, memories that mention a time gain
      this share of their own score.
    - ``multihop``: a second keyword round, seeded by the entities and key phrases of the
      ``multihop_seeds`` best hits that the question does not name, weighted this much.
    - ``graph``: personalized PageRank over the memory-entity graph, seeded by the
      question's entities and the ``graph_seeds`` best hits, weighted this much.
    - ``cites``: each derived memory (fact, event, profile entry, procedure) among the
      ``candidates`` best passes this share of its score to the turns it cites, which join
      the candidates if missing: a hit on a fact counts through the turns it came from.
    - ``neighbours``: each turn passes this share of its score to the adjacent turns
      (which join the candidates if missing): evidence is often a question and its answer.
    - ``session``: a turn gains this share of its conversation's strength (its
      ``session_top`` best scores, relative to the best conversation's).
    - ``sessions``: a turn gains this share of its session's match to the question, BM25
      over the session's turns as one document (relative to the best session's).
    - ``diversify``: for list and count questions, each further hit from a session already
      ranked loses this share, so the answer's parts from several sessions surface.
    - ``derived``: derived memories (facts, events, profile entries, procedures) gain this
      share of their first-stage score, before every other step: a distilled statement
      that matches says more than a chat line that does.
    - ``retention``: each candidate's score is weighed by its retention, pinning and
      importance (``steps.retention_weights``): times ``1 - w + w * R * (0.5 +
      importance)``, ``R`` the forgetting curve of ``remem.evolution.retention`` (1 when
      pinned); 1 for a just-recalled memory of default importance, ``1 - w`` for a
      forgotten one. From 0 (off) to 1.
    - ``rerank``: a registered reranker's name; it reorders the best ``rerank_depth``.
    """

    name: str
    channels: Mapping[str, float]
    fusion: str = "weighted"
    normalizer: str = "minmax"
    candidates: int = 100
    rrf_k: int = 60
    time: float = 0.0
    temporal: float = 0.0
    multihop: float = 0.0
    multihop_seeds: int = 5
    graph: float = 0.0
    graph_seeds: int = 10
    graph_damping: float = 0.5
    cites: float = 0.0
    neighbours: float = 0.0
    session: float = 0.0
    session_top: int = 3
    sessions: float = 0.0
    diversify: float = 0.0
    derived: float = 0.0
    retention: float = 0.0
    rerank: str | None = None
    rerank_depth: int = 30
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.channels:
            raise InvalidInputError(f"recipe {self.name!r} has no channels")
        if self.fusion not in ("weighted", "rrf"):
            raise InvalidInputError(f"recipe {self.name!r}: unknown fusion {self.fusion!r}")
        if self.normalizer not in ("minmax", "max", "dbsf"):
            raise InvalidInputError(f"recipe {self.name!r}: unknown normalizer {self.normalizer!r}")
        if not 0.0 <= self.retention <= 1.0:
            raise InvalidInputError(
                f"recipe {self.name!r}: retention weighs scores from 0 (off) to 1, "
                f"not {self.retention!r}"
            )

    def mechanisms(self) -> list[str]:
        """The mechanisms this recipe has switched on."""
        on = [c for c, w in self.channels.items() if w > 0]
        return on + [m for m in MECHANISMS if m not in CHANNELS and _value(self, m)]

    def without(self, mechanism: str) -> Recipe:
        """This recipe with one mechanism switched off, named ``<name>-no-<mechanism>``."""
        if mechanism not in MECHANISMS:
            raise InvalidInputError(
                f"unknown mechanism {mechanism!r}; choose one of {', '.join(MECHANISMS)}"
            )
        name = f"{self.name}-no-{mechanism}"
        if mechanism in CHANNELS:
            rest = {c: w for c, w in self.channels.items() if c != mechanism}
            if not rest:
                raise InvalidInputError(f"{name} would have no channels left")
            return replace(self, name=name, channels=rest)
        off: dict[str, Any] = {mechanism: None if mechanism == "rerank" else 0.0}
        return replace(self, name=name, **off)


CHANNELS = ("bm25", "dense")
MECHANISMS = (*CHANNELS, "time", "temporal", "multihop", "graph", "cites", "neighbours",
              "session", "sessions", "diversify", "derived", "retention", "rerank")  # fmt: skip


def _value(recipe: Recipe, mechanism: str) -> bool:
    return bool(getattr(recipe, mechanism))


DEFAULT = Recipe(
    "default",
    {"bm25": 0.6, "dense": 0.4},
    time=0.5,
    temporal=0.2,
    multihop=0.15,
    neighbours=0.3,
    session=0.5,
    sessions=0.5,
    diversify=0.15,
    derived=0.2,
    description="BM25 + dense, time window, temporal intent, multi-hop round, "
    "neighbour turns, session boost, whole-session BM25, session diversity for lists, "
    "derived memories (facts, events, profile entries) weighed above turns",
)
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        DEFAULT,
        replace(
            DEFAULT,
            name="entity-graph",
            graph=0.1,
            description="default plus personalized PageRank over the memory-entity graph "
            "(HippoRAG 2): for chains through entities the question does not name; costs "
            "a walk over the scope's whole graph per search",
        ),
        replace(
            DEFAULT,
            name="retention",
            retention=0.5,
            description="default, each score weighed by the memory's retention (forgetting "
            "curve, reinforced on recall; pinned never decay) and importance: for long-lived "
            "agents whose stale, never-recalled memories should give way to pinned, "
            "important and recently recalled ones",
        ),
        replace(
            DEFAULT,
            name="cited-turns",
            cites=0.3,
            description="default, and each derived memory found lifts the turns it cites "
            "into the hits: the verbatim lines behind a fact or event beside it (for a "
            "context an LLM should quote from)",
        ),
        replace(
            DEFAULT,
            name="rerank",
            rerank="cross-encoder",
            description="default, then a cross-encoder reorders the best 30 (the [rerank] "
            "extra and a local model)",
        ),
        Recipe(
            "conversation",
            {"bm25": 0.6, "dense": 0.4},
            neighbours=0.3,
            session=0.5,
            description="BM25 + dense (min-max, 0.6/0.4), neighbour-turn support, session "
            "boost (the default of remem 0.1)",
        ),
        Recipe(
            "hybrid",
            {"bm25": 0.6, "dense": 0.4},
            description="BM25 + dense (min-max, 0.6/0.4) without conversation context",
        ),
        Recipe(
            "bm25",
            {"bm25": 1.0},
            description="BM25 alone (Snowball-stemmed, the scope's own statistics)",
        ),
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
    """A recipe by name (or the recipe itself); ``<recipe>-no-<mechanism>`` is an
    ablation. Unknown names list the known ones."""
    if isinstance(name, Recipe):
        return name
    if not isinstance(name, str):
        raise InvalidInputError(
            f"recipe must be a recipe name or a Recipe, not {type(name).__name__}; "
            f"choose one of {', '.join(sorted(RECIPES))}"
        )
    if name in RECIPES:
        return RECIPES[name]
    base, sep, mechanism = name.partition("-no-")
    if sep and base in RECIPES:
        return RECIPES[base].without(mechanism)
    raise InvalidInputError(
        f"unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}, "
        f"or '<recipe>-no-<mechanism>' with a mechanism of {', '.join(MECHANISMS)}"
    )


def ablations(name: str = "default") -> list[str]:
    """``name`` and one ``name-no-<mechanism>`` per mechanism it uses."""
    recipe = get_recipe(name)
    return [recipe.name, *(f"{recipe.name}-no-{m}" for m in recipe.mechanisms())]
