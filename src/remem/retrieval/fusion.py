"""Rank fusion: reciprocal-rank fusion and normalised score fusion, over plain data.

Each channel gives ``[(id, score), ...]`` best first; every function returns
``{id: fused score}`` (higher is better).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Ranked = Sequence[tuple[str, float]]


def rrf(
    channels: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60
) -> dict[str, float]:
    """Reciprocal-rank fusion (Cormack et al. 2009): sum of w / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for name, ranked in channels.items():
        weight = weights.get(name, 1.0)
        for rank, (item, _) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def minmax(ranked: Ranked) -> dict[str, float]:
    """Scores rescaled to [0, 1] over the candidates (all equal -> all 1)."""
    if not ranked:
        return {}
    values = [s for _, s in ranked]
    low, high = min(values), max(values)
    span = high - low
    return {item: (s - low) / span if span > 0 else 1.0 for item, s in ranked}


def max_normalized(ranked: Ranked) -> dict[str, float]:
    """Scores divided by the best score (keeps the zero point, unlike min-max)."""
    if not ranked:
        return {}
    best = max(s for _, s in ranked)
    return {item: (s / best if best > 0 else 0.0) for item, s in ranked}


def weighted(
    channels: Mapping[str, Ranked], weights: Mapping[str, float], normalizer: str = "minmax"
) -> dict[str, float]:
    """Convex combination of per-channel normalised scores; a missing score counts as 0."""
    norm = {"minmax": minmax, "max": max_normalized}[normalizer]
    fused: dict[str, float] = {}
    for name, ranked in channels.items():
        weight = weights.get(name, 1.0)
        for item, score in norm(ranked).items():
            fused[item] = fused.get(item, 0.0) + weight * score
    return fused


Slot = tuple[str, int]  # (conversation key, position of the turn in it)


def neighbour_support(
    scores: Mapping[str, float], slots: Mapping[str, Slot], weight: float
) -> dict[str, float]:
    """Add ``weight`` times the scores of the adjacent turns (position +-1, same conversation).

    Evidence often spans a question and its answer in consecutive turns; a turn whose
    neighbour matches the query is more likely to matter. Only candidates contribute.
    """
    if weight <= 0:
        return dict(scores)
    by_slot = {slots[i]: s for i, s in scores.items() if i in slots and slots[i][1] > 0}
    out = dict(scores)
    for item, score in scores.items():
        slot = slots.get(item)
        if slot is None or slot[1] <= 0:
            continue
        key, pos = slot
        support = by_slot.get((key, pos - 1), 0.0) + by_slot.get((key, pos + 1), 0.0)
        out[item] = score + weight * support
    return out


def session_boost(
    scores: Mapping[str, float], slots: Mapping[str, Slot], weight: float, top: int = 3
) -> dict[str, float]:
    """Add ``weight`` times the conversation's strength, relative to the strongest one.

    A conversation's strength is the sum of its ``top`` best candidate scores: a session
    that matches the query in several places is more likely to hold the evidence.
    """
    if weight <= 0 or not scores:
        return dict(scores)
    per_key: dict[str, list[float]] = {}
    for item, score in scores.items():
        key = slots[item][0] if item in slots else item
        per_key.setdefault(key, []).append(score)
    strength = {k: sum(sorted(v, reverse=True)[:top]) for k, v in per_key.items()}
    best = max(strength.values())
    if best <= 0:
        return dict(scores)
    return {
        item: score + weight * strength[slots[item][0] if item in slots else item] / best
        for item, score in scores.items()
    }
