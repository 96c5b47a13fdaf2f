"""The retrieval pipeline: first-stage channels and fusion, then each step in order.

Each step is a named function that reads the current ranking and adds to it, recording
what it added per memory (``Ranking.parts``) for ``explain``; a recipe field at 0
switches a step off. ``PIPELINE`` gives the order: the steps that gather evidence
(multi-hop, graph, neighbours, sessions) run before the question-type steps (time,
temporal intent, list diversity), which work relative to the gathered scores; the
optional reranker runs last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import numpy as np

from remem.index.live import LiveScope
from remem.retrieval import fusion, scope, steps
from remem.retrieval.graph import personalized_pagerank
from remem.retrieval.query import QueryAnalysis, terms
from remem.retrieval.run import Ranking, Run
from remem.times import TimeSpan

Channels = dict[str, list[tuple[str, float]]]
ENTITY_SEED_SHARE = 0.7  # of the restart mass, when the question links to entities
ANCHOR_DAYS = timedelta(days=30)  # how far "after the trip" reaches past the trip


def run_channels(run: Run) -> Channels:
    """Each first-stage channel's candidates, best first."""
    out: Channels = {}
    words = run.analysis.terms if run.analysis else tuple(terms(run.query))
    if "bm25" in run.recipe.channels:
        out["bm25"] = run.index.keyword_search(words, run.mask, run.recipe.candidates)
    if "dense" in run.recipe.channels and run.vector is not None:
        out["dense"] = run.index.vector_search(run.vector, run.mask, run.recipe.candidates)
    return out


def first_stage(run: Run, channels: Channels) -> Ranking:
    """Fuse the channels as the recipe says, remembering each channel's raw scores."""
    recipe = run.recipe
    if recipe.fusion == "rrf":
        fused = fusion.rrf(channels, recipe.channels, recipe.rrf_k)
    else:
        # fewer BM25 hits than asked are all its matches: every other memory scores 0
        complete = len(channels.get("bm25", ())) < recipe.candidates
        bounds = {"bm25": (0.0 if complete else None, 0.0)}
        fused = fusion.weighted(channels, recipe.channels, recipe.normalizer, bounds)
    ranking = Ranking(scores=dict(fused))
    for name, ranked in channels.items():
        for item, score in ranked:
            ranking.parts.setdefault(item, {})[name] = score
            ranking.found.setdefault(item, []).append(name)
    return ranking


def multihop_step(run: Run, ranking: Ranking) -> None:
    """A second keyword round with the entities the best hits name but the question does
    not: "what does Ana's sister do" -> the sister's name -> what she does. Each new
    entity is followed on its own (its memories, max-normalised) and weighs by how
    strongly the best hits name it, so one strong hop is not drowned by weak ones."""
    recipe = run.recipe
    if recipe.multihop <= 0 or not ranking.scores or run.analysis is None:
        return
    seeds = ranking.top(recipe.multihop_seeds)
    weight = _hop_entities(run, run.analysis, ranking, seeds)
    expansion = sorted(weight.items(), key=lambda kv: -kv[1])[:6]
    if not expansion:
        return
    top = expansion[0][1]
    peak, skip = ranking.peak(), set(seeds)
    deltas: dict[str, float] = {}
    for key, w in expansion:
        found = run.index.keyword_search(terms(key), run.mask, recipe.candidates)
        for item, share in fusion.max_normalized(found).items():
            if item not in skip:
                deltas[item] = max(deltas.get(item, 0.0), recipe.multihop * peak * share * w / top)
    ranking.add("multihop", deltas)
    run.notes["multihop_terms"] = [key for key, _ in expansion]


def _hop_entities(
    run: Run, analysis: QueryAnalysis, ranking: Ranking, seeds: list[str]
) -> dict[str, float]:
    """Entities the seed hits name but the question does not, by mention weight times
    specificity times the hit's score (speakers name half the turns: never a hop)."""
    index, rows = run.index, run.index.row_of
    asked = set(analysis.terms) | set(analysis.entities)
    specificity = scope.specificity(index)
    weight: dict[str, float] = {}
    for item in seeds:
        for j, w in index.mentions_by_row.get(rows.get(item, -1), ()):
            entity = index.entities[j]
            if entity.kind == "speaker" or entity.key in asked or set(entity.key.split()) <= asked:
                continue
            gain = w * float(specificity[j]) * ranking.scores[item]
            weight[entity.key] = weight.get(entity.key, 0.0) + gain
    return weight


def graph_step(run: Run, ranking: Ranking) -> None:
    """Personalized PageRank from the question's entities and the best hits."""
    recipe = run.recipe
    if recipe.graph <= 0 or not ranking.scores or not run.index.mentions_by_row:
        return
    if run.analysis is None:
        return
    index, rows = run.index, run.index.row_of
    entities = _entity_seeds(index, run.analysis)
    top = ranking.top(recipe.graph_seeds)
    memories = {rows[i]: ranking.scores[i] for i in top if i in rows}
    seeds = steps.mix_seeds(entities, memories, len(index.ids), ENTITY_SEED_SHARE)
    g = scope.graph(index)
    walk = personalized_pagerank(g, seeds, damping=recipe.graph_damping)[: len(index.ids)]
    walk[list(memories)] = 0.0  # the hits that seeded the walk have their scores already
    best = float(walk.max()) if walk.size else 0.0
    if best <= 0:
        return
    peak = ranking.peak()
    order = np.argsort(-walk)[: recipe.candidates]
    reached = {index.ids[r]: float(walk[r]) / best for r in order if walk[r] > 0}
    kept = set(run.allowed(list(reached)))
    ranking.add("graph", {i: recipe.graph * peak * s for i, s in reached.items() if i in kept})
    run.notes["graph_seeds"] = {
        "entities": sorted(index.entities[j].key for j in entities)[:10],
        "memories": len(top),
    }


def _entity_seeds(index: LiveScope, analysis: QueryAnalysis) -> dict[int, float]:
    """Entity rows the question links to: the entities it names (weight 1), and the key
    phrases and names sharing its words (by the share of their words it has), each
    times the entity's specificity. Lexical linking stands in for HippoRAG's dense one."""
    specificity, by_key = scope.specificity(index), index.entity_rows
    found: dict[int, float] = {}
    for key in analysis.entities:
        for j in by_key.get(key, ()):
            found[j] = float(specificity[j])
    asked = set(analysis.terms)
    for word in asked:
        for j in index.entities_with_word.get(word, ()):
            parts = index.entities[j].key.split()
            share = sum(1 for p in parts if p in asked) / len(parts)
            found[j] = max(found.get(j, 0.0), share * float(specificity[j]))
    return found


def neighbour_step(run: Run, ranking: Ranking) -> None:
    """Adjacent turns support each other (and join the candidates)."""
    pool = ranking.best(run.recipe.candidates)
    deltas = steps.neighbour_support(pool, run.neighbours_of, run.recipe.neighbours)
    ranking.add("neighbours", deltas)


def session_step(run: Run, ranking: Ranking) -> None:
    """Turns of conversations that match in several places gain."""
    pool = ranking.best(run.recipe.candidates)
    deltas = steps.session_support(pool, run.session_of, run.recipe.session,
                                   run.recipe.session_top)  # fmt: skip
    ranking.add("session", deltas)


def sessions_step(run: Run, ranking: Ranking) -> None:
    """Sessions that match the question as a whole lift their turns (coarse to fine):
    BM25 over each session's turns taken as one document."""
    if run.recipe.sessions <= 0 or not ranking.scores or run.analysis is None:
        return
    sessions = dict(run.index.session_search(run.analysis.terms, run.recipe.candidates))
    pool = ranking.best(run.recipe.candidates)
    deltas = steps.spread_to_sessions(pool, sessions, run.session_of, run.recipe.sessions)
    ranking.add("sessions", deltas)


def anchor_step(run: Run, ranking: Ranking) -> None:
    """Turn "after the accident" into a time window: find the event (BM25 over its
    words), take the period it mentions (or the day it was said) and reach
    ``ANCHOR_DAYS`` past it in the question's direction. ``time_step`` then uses it."""
    analysis = run.analysis
    if run.recipe.time <= 0 or analysis is None or not analysis.anchors:
        return
    windows = []
    for anchor in analysis.anchors:
        found = run.index.keyword_search(terms(anchor.event), run.mask, 1)
        row = run.index.row_of.get(found[0][0]) if found else None
        period = run.index.period_of(row) if row is not None else None
        if period is None:
            continue
        start, end = period
        if anchor.relation == "after":
            start, end = start, end + ANCHOR_DAYS
        else:
            start, end = start - ANCHOR_DAYS, end
        text = f"{anchor.relation} the {anchor.event}"
        windows.append(TimeSpan(text, -1, start, end, "range", "date", True, False))
    run.analysis = replace(analysis, windows=(*analysis.windows, *windows))


def time_step(run: Run, ranking: Ranking) -> None:
    """Memories inside the question's time window gain ``recipe.time`` of the top score.
    A memory that mentions no time fits by when it was said (one numpy pass over the
    scope); the few that mention periods are matched one by one."""
    windows = run.analysis.windows if run.analysis else ()
    if run.recipe.time <= 0 or not windows:
        return
    index = run.index
    fit = np.where(steps.said_within(windows, index.said_days()), steps.SAID_FIT, 0.0)
    for row, links in index.times_by_row.items():
        fit[row] = steps.time_match(windows, index.occurred[row], links)
    fit[~run.mask] = 0.0
    rows = np.flatnonzero(fit > 0)
    if rows.size > run.recipe.candidates:  # the best fits, then the best scored among them
        order = fit[rows] + np.array([ranking.scores.get(index.ids[r], 0.0) for r in rows])
        rows = rows[np.argsort(-order, kind="stable")[: run.recipe.candidates]]
    peak = ranking.peak() or 1.0
    ranking.add("time", {index.ids[r]: run.recipe.time * peak * float(fit[r]) for r in rows})
    for r in rows:
        ranking.found.setdefault(index.ids[r], []).append("time")


def temporal_step(run: Run, ranking: Ranking) -> None:
    """For "when" and "how long" questions, memories that mention a time gain a share."""
    if run.recipe.temporal <= 0 or not run.analysis:
        return
    if run.analysis.intent not in ("when", "duration"):
        return
    rows, times = run.index.row_of, run.index.times_by_row
    dated = {
        item: score
        for item, score in ranking.scores.items()
        if (row := rows.get(item)) is not None
        and any(t.kind != "vague" for t in times.get(row, ()))
    }
    ranking.add("temporal", {i: run.recipe.temporal * s for i, s in dated.items()})


def diversify_step(run: Run, ranking: Ranking) -> None:
    """For list and count questions, spread the top hits over sessions."""
    if run.analysis is None or run.analysis.intent not in ("list", "count"):
        return
    ranking.add("diversify", steps.diversify(dict(ranking.scores), run.session_of,
                                             run.recipe.diversify))  # fmt: skip


def rerank_step(run: Run, ranking: Ranking) -> None:
    """A reranker reorders the best ``rerank_depth`` memories, which stay on top."""
    if not run.recipe.rerank or run.rerank is None or not ranking.scores:
        return
    top = run.allowed(ranking.top(run.recipe.rerank_depth))
    records = run.store.get_memories(run.flt.namespace, top)
    scores = run.rerank(run.query, [r.text for r in records])
    norm = fusion.minmax([(r.id, s) for r, s in zip(records, scores, strict=True)])
    peak = ranking.peak() or 1.0
    # reranker order first; the pipeline's score only breaks the reranker's ties
    new = {i: peak * (1.0 + norm[i]) + 1e-3 * ranking.scores[i] for i in norm}
    ranking.add("rerank", {i: s - ranking.scores[i] for i, s in new.items()})


PIPELINE: tuple[Callable[[Run, Ranking], None], ...] = (
    multihop_step,
    graph_step,
    neighbour_step,
    session_step,
    sessions_step,
    anchor_step,
    time_step,
    temporal_step,
    diversify_step,
    rerank_step,
)
