"""Latency benchmark: search p50/p95 per recipe beside the query embedding, in one run.

Two scopes, each on a fresh temporary store: a conversation (about 600 turns of synthetic
chat, or the dataset conversation closest to that size) and a user with many turns
(10,000 by default). In each, every timed round embeds the query alone and then runs one
search per recipe, so machine load drifting during the run hits every column alike; the
first recipe (``default``) meets each query first, the ones after it may find the query's
keyword matches kept. A last pass over other queries, with ``explain=True``, reports the
mean time of each step of the default recipe.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

import remem
from remem import Memory
from remem.bench.datasets import BenchConversation, BenchDataset
from remem.bench.live import (
    USER,
    SyntheticChat,
    default_embedder,
    elapsed_ms,
    latency,
    live_queries,
)
from remem.bench.live import prefill as prefill_chat
from remem.bench.metrics import mean_steps
from remem.bench.runner import ingest, last_time, ratio
from remem.bench.scratch import temporary_memory
from remem.embedders.base import Embedder
from remem.errors import DataFormatError
from remem.retrieval.recipes import get_recipe

CONVERSATION_TURNS = 600
USER_SIZE = 10_000
DEFAULT_RECIPES = ("default", "bm25", "hybrid")
ROUNDS = 100
WARMUP = 5
STEPS_RECIPE = "default"  # the recipe whose per-step breakdown is reported
TIMINGS_KEY = "timings_ms"  # where ``SearchResults.explain`` keeps the step timings


@dataclass(frozen=True)
class FilledScope:
    """A scope ready to be timed: whom to ask as, what, and at what time."""

    name: str  # "conversation" or "user"
    source: str  # "synthetic" or "<file name> <conversation id>"
    user: str
    turns: int
    queries: tuple[str, ...]  # timed
    explained: tuple[str, ...]  # asked with explain=True for the per-step breakdown
    reference: datetime | None


Filler = Callable[[Memory, bool], FilledScope]


def synthetic_scope(name: str, turns: int, rounds: int) -> Filler:
    """A filler adding ``turns`` turns of ``SyntheticChat``; ``rounds`` distinct live
    queries to time and ``rounds`` others to explain."""

    def fill(memory: Memory, progress: bool) -> FilledScope:
        chat = SyntheticChat()
        prefill_chat(memory, chat, turns, progress)
        queries = distinct_queries(2 * rounds)
        return FilledScope(name, "synthetic", USER, turns, queries[:rounds], queries[rounds:],
                           chat.clock)  # fmt: skip

    return fill


def distinct_queries(count: int) -> tuple[str, ...]:
    """``count`` different live queries: a repeated query would find its keyword matches
    and its hits' records kept from the last time, and flatter the search."""
    drawn = dict.fromkeys(live_queries(20 * count))
    return tuple(list(drawn)[:count])


def dataset_scope(dataset: BenchDataset, conversation: BenchConversation, rounds: int) -> Filler:
    """A filler ingesting one dataset conversation (one ``add`` per session, with its
    timestamps); its own questions are the queries (``rounds`` timed, ``rounds`` more
    explained, repeated in turn when it has fewer), asked at the conversation's last time."""

    def fill(memory: Memory, progress: bool) -> FilledScope:
        ingest(memory, replace(dataset, conversations=(conversation,)), progress)
        texts = tuple(itertools.islice(itertools.cycle(q.text for q in conversation.questions),
                                       2 * rounds))  # fmt: skip
        return FilledScope(
            "conversation",
            f"{Path(dataset.path).name} {conversation.id}",
            conversation.id,
            len(conversation.turns),
            texts[:rounds],
            texts[rounds:],
            last_time(conversation),
        )

    return fill


def pick_conversation(dataset: BenchDataset, turns: int = CONVERSATION_TURNS) -> BenchConversation:
    """The conversation with questions whose turn count is closest to ``turns`` (the first
    one on a tie). Raises ``DataFormatError`` when no conversation has a question."""
    asked = [c for c in dataset.conversations if c.questions]
    if not asked:
        raise DataFormatError(
            f"{dataset.path}: no conversation has a question left to ask (every question "
            "was dropped); give a file whose questions cite turns of their conversation"
        )
    return min(asked, key=lambda c: abs(len(c.turns) - turns))


def time_rounds(
    memory: Memory, scope: FilledScope, recipes: Sequence[str], warmup: int, bar: tqdm[Any]
) -> tuple[list[float], dict[str, list[float]]]:
    """Per round: the query embedding alone, then one search per recipe (milliseconds,
    wall clock), after ``warmup`` uncounted rounds. The embedding is timed on its second
    call: a search over a large scope pushes the model out of the CPU caches, and an
    embedding timed cold would be slower and flatter the search's ratio to it."""
    warm = itertools.islice(itertools.cycle(scope.queries), warmup)
    embeds: list[float] = []
    searches: dict[str, list[float]] = {recipe: [] for recipe in recipes}
    for n, query in enumerate([*warm, *scope.queries]):
        memory.embedder.embed_one(query)
        started = time.perf_counter()
        memory.embedder.embed_one(query)
        embed_ms = elapsed_ms(started)
        took = {recipe: search_ms(memory, scope, query, recipe) for recipe in recipes}
        if n >= warmup:
            embeds.append(embed_ms)
            for recipe, ms in took.items():
                searches[recipe].append(ms)
        bar.update()
    return embeds, searches


def search_ms(memory: Memory, scope: FilledScope, query: str, recipe: str) -> float:
    """One search with ``recipe``, timed by the wall clock around the call."""
    started = time.perf_counter()
    memory.search(query, user_id=scope.user, recipe=recipe, reference_time=scope.reference)
    return elapsed_ms(started)


def step_means(memory: Memory, scope: FilledScope, bar: tqdm[Any]) -> dict[str, float]:
    """Mean milliseconds per search step of the default recipe, from ``explain``."""
    breakdowns = []
    for query in scope.explained:
        results = memory.search(
            query, user_id=scope.user, recipe=STEPS_RECIPE, reference_time=scope.reference,
            explain=True,
        )  # fmt: skip
        breakdowns.append((results.explain or {}).get(TIMINGS_KEY))
        bar.update()
    return mean_steps(breakdowns)


def scope_report(
    scope: FilledScope,
    memories: int,
    embeds: Sequence[float],
    searches: Mapping[str, Sequence[float]],
    steps: Mapping[str, float],
) -> dict[str, Any]:
    """One scope's figures; ratios are computed from the rounded, reported values."""
    embed = latency(embeds)
    recipes = {}
    for recipe, timings in searches.items():
        search = latency(timings)
        recipes[recipe] = {
            **search,
            "over_embed_p50": ratio(search["p50_ms"], embed["p50_ms"]),
            "p95_over_p50": ratio(search["p95_ms"], search["p50_ms"]),
        }
    return {
        "scope": scope.name,
        "source": scope.source,
        "turns": scope.turns,
        "memories": memories,
        "queries": len(set(scope.queries)),
        "embed_query": {**embed, "p95_over_p50": ratio(embed["p95_ms"], embed["p50_ms"])},
        "recipes": recipes,
        "steps_ms": dict(steps),
    }


def measure_scope(
    fill: Filler,
    embedder: Embedder,
    recipes: Sequence[str],
    warmup: int,
    progress: bool,
) -> dict[str, Any]:
    """Fill a fresh temporary store, then time its queries; returns the scope's report."""
    with temporary_memory(embedder) as memory:
        scope = fill(memory, progress)
        memories = memory.stats().memories
        total = warmup + len(scope.queries) + len(scope.explained)
        with tqdm(total=total, desc=f"measure {scope.name}", disable=not progress) as bar:
            embeds, searches = time_rounds(memory, scope, recipes, warmup, bar)
            steps = step_means(memory, scope, bar)
    return scope_report(scope, memories, embeds, searches, steps)


def run_latency(
    data: BenchDataset | None = None,
    recipes: Sequence[str] = DEFAULT_RECIPES,
    user_size: int = USER_SIZE,
    rounds: int = ROUNDS,
    embedder: Embedder | None = None,
    conversation_turns: int = CONVERSATION_TURNS,
    warmup: int = WARMUP,
    progress: bool = True,
    on_scope: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Time search per recipe against the query embedding, at a conversation scope and
    (unless ``user_size`` is 0) a user scope; returns the whole report.

    ``data``: take the conversation from this dataset instead of synthetic chat.
    ``embedder`` defaults to the default embedder, loaded once for both scopes.
    """
    names = list(dict.fromkeys(recipes))
    for name in [*names, STEPS_RECIPE]:
        get_recipe(name)  # fail on a typo before the long prefill
    fillers = [
        dataset_scope(data, pick_conversation(data, conversation_turns), rounds)
        if data is not None
        else synthetic_scope("conversation", conversation_turns, rounds),
        *([synthetic_scope("user", user_size, rounds)] if user_size > 0 else []),
    ]
    own = embedder is None
    model = embedder if embedder is not None else default_embedder()
    try:
        scopes = []
        for fill in fillers:
            scopes.append(measure_scope(fill, model, names, warmup, progress))
            if on_scope:
                on_scope(scopes[-1])
        return {
            "benchmark": "latency",
            "version": remem.__version__,
            "embedder": model.model_id,
            "rounds": rounds,
            "warmup": warmup,
            "scopes": scopes,
        }
    finally:
        if own:
            model.close()
