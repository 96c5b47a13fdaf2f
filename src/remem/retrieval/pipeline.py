"""The retrieval pipeline: first-stage channels and fusion, then each step in order.

Each step is a named function that reads the current ranking and adds to it, recording
what it added (``Ranking.steps``; ``Ranking.parts`` per hit) for ``explain``; a recipe
field at 0 switches a step off. ``PIPELINE`` gives the order: derived memories are weighed
first; the steps that gather evidence (multi-hop, graph, the turns derived memories cite,
neighbours, sessions) run before the question-type steps (time,
temporal intent, list diversity), which work relative to the gathered scores; retention
then scales each score by what the memory's forgetting curve, pin and importance say;
the optional reranker runs last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import numpy as np

from remem.annotations import words
from remem.index.arrays import Kept, Rows, best_of, top
from remem.index.live import LiveScope
from remem.retrieval import fusion, scope, steps
from remem.retrieval.graph import personalized_pagerank
from remem.retrieval.query import QueryAnalysis, terms
from remem.retrieval.run import Floats, Ranking, Run
from remem.times import TimeSpan

Channels = dict[str, tuple[Rows, Floats]]
ENTITY_SEED_SHARE = 0.7  # of the restart mass, when the question links to entities
ANCHOR_DAYS = timedelta(days=30)  # how far "after the trip" reaches past the trip
HOPS = 6  # entities the multi-hop round follows
HOP_ROWS_FLOOR = 65536  # rows of entities' matches kept per scope index beyond two per row
# Power-iteration steps of the graph walk: three steps reach memories two entity hops
# from an entity seed (and back from a memory seed) and leave 0.5^4 of the mass
# unspread; on the dev split 3 and 30 steps ranked every question identically.
WALK_STEPS = 3
DAY_MICROSECONDS = 86_400e6


def run_channels(run: Run) -> Channels:
    """Each first-stage channel's candidates, best first. The keyword channel runs first:
    the query's embedding may still be on its way (``Run.query_vector``)."""
    out: Channels = {}
    words = run.analysis.terms if run.analysis else tuple(terms(run.query))
    ordered = run.recipe.fusion == "rrf"  # rank fusion reads ranks; score fusion sums per row
    if "bm25" in run.recipe.channels:
        started = time.perf_counter()
        found = run.index.keyword_scores(words, run.mask)
        out["bm25"] = (top if ordered else best_of)(*found, run.recipe.candidates)
        run.timed("bm25", started)
    vector = run.query_vector() if "dense" in run.recipe.channels else None
    if vector is not None:
        started = time.perf_counter()
        out["dense"] = run.index.vector_top(vector, run.mask, run.recipe.candidates,
                                            ordered=ordered)  # fmt: skip
        run.notes["dense_search"] = run.index.last_vector_search  # "exact", or "graph" (big scopes)
        run.timed("dense", started)
    return out


def first_stage(run: Run, channels: Channels) -> Ranking:
    """Fuse the channels as the recipe says, remembering each channel's raw scores."""
    started = time.perf_counter()
    recipe = run.recipe
    ranking = Ranking(len(run.index))
    if recipe.fusion == "rrf":
        ranking.join(*fusion.rrf(channels, recipe.channels, recipe.rrf_k))
    else:
        # fewer BM25 hits than asked are all its matches: every other memory scores 0
        complete = "bm25" in channels and channels["bm25"][0].size < recipe.candidates
        bounds = {"bm25": (0.0 if complete else None, 0.0)}
        for rows, part in fusion.weighted_parts(channels, recipe.channels, recipe.normalizer,
                                                bounds):  # fmt: skip
            ranking.join_sum(rows, part)  # the channels' parts summed per row, in order
    for name, found in channels.items():
        ranking.raw[name] = found
        ranking.found[name] = found[0]
    run.timed("fusion", started)
    return ranking


def derived_step(run: Run, ranking: Ranking) -> None:
    """Derived memories (facts, events, profile entries, procedures) gain a share of
    their own score before the other steps use the ranking: one written to be found,
    matching the question, outweighs a chat line matching it as well."""
    if run.recipe.derived <= 0:
        return
    derived = scope.derived(run.index)  # kept until the index changes
    if not derived.any():
        return
    rows = np.flatnonzero(ranking.member & derived)
    ranking.add("derived", rows, run.recipe.derived * ranking.scores[rows])


def multihop_step(run: Run, ranking: Ranking) -> None:
    """A second keyword round with the entities the best hits name but the question does
    not: "what does Ana's sister do" -> the sister's name -> what she does. Each new
    entity is followed on its own (its memories, max-normalised) and weighs by how
    strongly the best hits name it, so one strong hop is not drowned by weak ones."""
    recipe = run.recipe
    if recipe.multihop <= 0 or not ranking.member.any() or run.analysis is None:
        return
    seeds, best = ranking.best(recipe.multihop_seeds)
    expansion = _hop_entities(run, run.analysis, ranking, seeds)[:HOPS]
    if not expansion:
        return
    scale = recipe.multihop * float(best[0]) / expansion[0][1]  # best[0]: the peak score
    hops = [(rows, shares, scale * w) for key, w in expansion
            for rows, shares in [_hop_rows(run, key)] if rows.size]  # fmt: skip
    run.notes["multihop_terms"] = [key for key, _ in expansion]
    if not hops:
        return
    rows = np.concatenate([r for r, _, _ in hops])
    factors = np.repeat([f for _, _, f in hops], [r.size for r, _, _ in hops])
    each = np.concatenate([s for _, s, _ in hops]) * factors
    deltas = np.zeros(len(run.index))
    np.maximum.at(deltas, rows, each)  # each row takes its largest delta from any entity
    deltas[seeds] = 0.0
    rows = np.flatnonzero(deltas)
    ranking.add("multihop", rows, deltas[rows])


def _hop_rows(run: Run, key: str) -> tuple[Rows, Floats]:
    """An entity's best ``candidates`` memories the filter admits and their BM25 scores
    over the best of them; kept until the index changes (the latest, about two rows per
    row of the scope in all), for searches with the same mask."""
    kept: Kept[tuple[str, int], tuple[object, Rows, Floats]] | None
    kept = run.index.memo.get("multihop")
    if kept is None:
        kept = run.index.memo["multihop"] = Kept()
    hit = kept.get((key, run.recipe.candidates))
    if hit is not None and hit[0] is run.mask:  # a kept mask is reused until a change
        return hit[1], hit[2]
    rows, scores = run.index.keyword_scores(terms(key), run.mask)
    rows, scores = best_of(rows, scores, run.recipe.candidates)  # a hop sets maxima: any order
    shares = scores / scores.max() if rows.size else scores
    kept.put((key, run.recipe.candidates), (run.mask, rows, shares), rows.size + 1,
             2 * len(run.index) + HOP_ROWS_FLOOR)  # fmt: skip
    return rows, shares


def _hop_entities(
    run: Run, analysis: QueryAnalysis, ranking: Ranking, seeds: Rows
) -> list[tuple[str, float]]:
    """Entities the seed hits name but the question does not, strongest first (ties: the
    first named first), by mention weight times specificity times the hit's score, summed
    over their mentions; only those weighing more than 0 (speakers name half the turns:
    never a hop). The question is checked once per entity key."""
    index = run.index
    rows, entities, weights = index.mentions_of(seeds.tolist())
    if not rows.size:
        return []
    key_of, speaker = index.entity_columns()
    gains = weights * scope.specificity(index)[entities] * ranking.scores[rows]
    asked = set(analysis.terms) | set(analysis.entities)
    spoken = words(analysis.text)
    question = f" {' '.join(spoken)} "
    said = (asked, question, set(spoken))
    keys, parts = index.entity_keys, index.entity_key_words
    hop, weight = dict[int, bool](), dict[int, float]()
    for code, speaks, gain in zip(key_of[entities].tolist(), speaker[entities].tolist(),
                                  gains.tolist(), strict=True):  # fmt: skip
        if speaks:
            continue
        if code not in hop:
            hop[code] = not _named(keys[code], parts[code], *said)
        if hop[code]:
            weight[code] = weight.get(code, 0.0) + gain
    ordered = sorted(weight.items(), key=lambda kv: -kv[1])  # stable: first named first
    return [(keys[code], w) for code, w in ordered if w > 0]


def _named(
    key: str, parts: frozenset[str], asked: set[str], question: str, spoken: set[str]
) -> bool:
    """Whether the question names the entity ``key`` (its words ``parts``): as one of its
    terms, with all of its words among them, or as a phrase of its words (``question``:
    its lower-cased words joined by single spaces, padded; ``spoken``: those words); the
    phrase stands in for the entity recogniser."""
    if key in asked or parts <= asked:
        return True
    if len(parts) == 1 and key in parts:  # one word: a phrase of the question is a word
        return key in spoken
    return f" {key} " in question


def graph_step(run: Run, ranking: Ranking) -> None:
    """Personalized PageRank from the question's entities and the best hits."""
    recipe, index = run.recipe, run.index
    if recipe.graph <= 0 or not ranking.member.any() or not index.has_mentions():
        return
    if run.analysis is None:
        return
    entities = _entity_seeds(index, run.analysis)
    seeded, scores = ranking.best(recipe.graph_seeds)
    memories = dict(zip(seeded.tolist(), scores.tolist(), strict=True))
    seeds = steps.mix_seeds(entities, memories, len(index), ENTITY_SEED_SHARE)
    walk = personalized_pagerank(scope.graph(index), seeds, recipe.graph_damping, WALK_STEPS)
    walk = walk[: len(index)]
    walk[seeded] = 0.0  # the hits that seeded the walk have their scores already
    best = float(walk.max()) if walk.size else 0.0
    if best <= 0:
        return
    rows = np.flatnonzero(walk > 0)
    rows, reached = top(rows, walk[rows], recipe.candidates)
    keep = run.mask[rows]
    ranking.add("graph", rows[keep], recipe.graph * ranking.peak() * reached[keep] / best)
    run.notes["graph_seeds"] = {
        "entities": sorted(index.entities[j].key for j in entities)[:10],
        "memories": len(seeded),
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


def cites_step(run: Run, ranking: Ranking) -> None:
    """Derived memories lift the turns they cite (which join the candidates): the fact
    "Ana moved to Porto" found, the turn where she said so ranks with it. Only turns the
    filter admits are lifted, so a search of facts alone stays facts."""
    if run.recipe.cites <= 0 or not run.index.cites:
        return
    pool, scores = ranking.best(run.recipe.candidates)
    source, cited = run.index.cited_rows(pool)
    keep = run.mask[cited]
    pairs = (source[keep], cited[keep])
    ranking.add("cites", *steps.cite_support(scores, pairs, run.recipe.cites))


def neighbour_step(run: Run, ranking: Ranking) -> None:
    """Adjacent turns support each other (and join the candidates)."""
    if run.recipe.neighbours <= 0:
        return
    pool, scores = ranking.best(run.recipe.candidates)
    pairs = run.index.neighbour_rows(pool)
    ranking.add("neighbours", *steps.neighbour_support(scores, pairs, run.recipe.neighbours))


def session_step(run: Run, ranking: Ranking) -> None:
    """Turns of conversations that match in several places gain."""
    recipe = run.recipe
    if recipe.session <= 0:
        return
    pool, scores = ranking.best(recipe.candidates)
    sessions = run.index.conversation_codes()[pool]
    ranking.add("session", pool, steps.session_support(scores, sessions, recipe.session,
                                                       recipe.session_top))  # fmt: skip


def sessions_step(run: Run, ranking: Ranking) -> None:
    """Sessions that match the question as a whole lift their turns (coarse to fine):
    BM25 over each session's turns taken as one document."""
    recipe, index = run.recipe, run.index
    if recipe.sessions <= 0 or not ranking.member.any() or run.analysis is None:
        return
    codes, found = best_of(*index.session_scores(run.analysis.terms), recipe.candidates)
    if not codes.size:
        return
    by_session = np.zeros(len(index.session_keys))
    by_session[codes] = found
    pool, scores = ranking.best(recipe.candidates, ordered=False)  # deltas per row alone
    codes = index.conversation_codes()[pool]
    matched = np.where(codes >= 0, by_session[codes], 0.0)
    deltas = steps.spread_to_sessions(scores, matched, float(by_session.max()), recipe.sessions)
    ranking.add("sessions", pool, deltas)


def anchor_step(run: Run, ranking: Ranking) -> None:
    """Turn "after the accident" into a time window: find the event (BM25 over its
    words), take the period it mentions (or the day it was said) and reach
    ``ANCHOR_DAYS`` past it in the question's direction. ``time_step`` then uses it."""
    analysis = run.analysis
    if run.recipe.time <= 0 or analysis is None or not analysis.anchors:
        return
    windows = []
    for anchor in analysis.anchors:
        rows, _ = top(*run.index.keyword_scores(terms(anchor.event), run.mask), 1)
        period = run.index.period_of(int(rows[0])) if rows.size else None
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
    """Memories inside the question's time window gain ``recipe.time`` of the top score:
    by the periods they mention, else by when they were said (column operations over
    the scope, see ``steps.time_fit``); they join the candidates if missing."""
    windows = run.analysis.windows if run.analysis else ()
    if run.recipe.time <= 0 or not windows:
        return
    index = run.index
    rows, starts, ends = index.periods()
    mentioned = np.zeros(len(index))
    for window in windows:
        np.maximum.at(mentioned, rows, steps.period_shares(window, starts, ends))
    fit = steps.time_fit(mentioned, steps.said_within(windows, index.said_days()), index.dated())
    fit[~run.mask] = 0.0
    rows = np.flatnonzero(fit > 0)
    if rows.size > run.recipe.candidates:  # the best fits, then the best scored among them
        order = fit[rows] + ranking.scores[rows]
        rows = rows[np.argsort(-order, kind="stable")[: run.recipe.candidates]]
    peak = ranking.peak() or 1.0
    ranking.add("time", rows, run.recipe.time * peak * fit[rows])
    ranking.found["time"] = rows


def temporal_step(run: Run, ranking: Ranking) -> None:
    """For "when" and "how long" questions, memories that mention a time gain a share."""
    if run.recipe.temporal <= 0 or not run.analysis:
        return
    if run.analysis.intent not in ("when", "duration"):
        return
    rows = np.flatnonzero(ranking.member & run.index.dated())
    ranking.add("temporal", rows, run.recipe.temporal * ranking.scores[rows])


def diversify_step(run: Run, ranking: Ranking) -> None:
    """For list and count questions, spread the top hits over sessions."""
    if run.analysis is None or run.analysis.intent not in ("list", "count"):
        return
    if run.recipe.diversify <= 0:
        return
    rows, scores = ranking.best(int(ranking.member.sum()))
    sessions = run.index.conversation_codes()[rows]
    ranking.add("diversify", rows, steps.diversify(scores, sessions, run.recipe.diversify))


def retention_step(run: Run, ranking: Ranking) -> None:
    """Weigh every candidate's score by its retention, pinning and importance
    (``steps.retention_weights``): stale memories sink, pinned and important ones rise.
    Runs after the evidence and question-type steps, so it scales what they gathered."""
    weight = run.recipe.retention
    if weight <= 0 or not ranking.member.any():
        return
    rows = np.flatnonzero(ranking.member)
    importance, pinned, strength, recalled = run.index.retention_columns()
    elapsed = np.datetime64(run.now, "us") - recalled[rows]
    days = elapsed.astype(np.int64) / DAY_MICROSECONDS
    factor = steps.retention_weights(days, strength[rows], importance[rows], pinned[rows],
                                     weight)  # fmt: skip
    ranking.add("retention", rows, ranking.scores[rows] * (factor - 1.0))
    run.notes["retention"] = {"weight": weight, "at": run.now.isoformat()}


def rerank_step(run: Run, ranking: Ranking) -> None:
    """A reranker reorders the best ``rerank_depth`` memories, which stay on top."""
    if not run.recipe.rerank or run.rerank is None or not ranking.member.any():
        return
    rows = run.allowed(ranking.best(run.recipe.rerank_depth)[0])
    records = run.store.get_memories(run.flt.namespace, [run.index.ids[r] for r in rows])
    rows = np.array([run.index.row_of[r.id] for r in records], dtype=np.int64)
    scores = np.array(run.rerank(run.query, [r.text for r in records]), dtype=np.float64)
    peak = ranking.peak() or 1.0
    # reranker order first; the pipeline's score only breaks the reranker's ties
    new = peak * (1.0 + fusion.minmax(scores)) + 1e-3 * ranking.scores[rows]
    ranking.add("rerank", rows, new - ranking.scores[rows])


PIPELINE: tuple[tuple[str, Callable[[Run, Ranking], None]], ...] = (
    ("derived", derived_step),
    ("multihop", multihop_step),
    ("graph", graph_step),
    ("cites", cites_step),
    ("neighbours", neighbour_step),
    ("session", session_step),
    ("sessions", sessions_step),
    ("anchors", anchor_step),
    ("time", time_step),
    ("temporal", temporal_step),
    ("diversify", diversify_step),
    ("retention", retention_step),
    ("rerank", rerank_step),
)
