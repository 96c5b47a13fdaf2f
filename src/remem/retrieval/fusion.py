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


def minmax(ranked: Ranked, floor: float | None = None, min_span: float = 0.0) -> dict[str, float]:
    """Scores rescaled to [0, 1] over the candidates (all equal -> all 1).

    ``floor`` is a score every non-candidate is known to be below (0 for a keyword channel
    that returned all its matches): the weakest candidate then keeps some score instead of
    being stretched to 0. ``min_span``: score differences smaller than this are noise and
    are not stretched to the full range.
    """
    if not ranked:
        return {}
    values = [s for _, s in ranked]
    low, high = min(values), max(values)
    if floor is not None:
        low = min(low, floor)
    span = max(high - low, min_span)
    return {item: (s - low) / span if span > 0 else 1.0 for item, s in ranked}


def max_normalized(ranked: Ranked) -> dict[str, float]:
    """Scores divided by the best score (keeps the zero point, unlike min-max)."""
    if not ranked:
        return {}
    best = max(s for _, s in ranked)
    return {item: (s / best if best > 0 else 0.0) for item, s in ranked}


def dbsf(ranked: Ranked) -> dict[str, float]:
    """Distribution-based scaling: ``(s - (mean - 3 sd)) / (6 sd)``, clipped to [0, 1].

    Unlike min-max, one outlier does not squash everyone else, and a channel whose
    scores barely differ does not get stretched to the full range.
    """
    if not ranked:
        return {}
    values = [s for _, s in ranked]
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if sd == 0:
        return {item: 1.0 for item, _ in ranked}
    low = mean - 3 * sd
    return {item: min(1.0, max(0.0, (s - low) / (6 * sd))) for item, s in ranked}


NORMALIZERS = {"minmax": minmax, "max": max_normalized, "dbsf": dbsf}


def weighted(
    channels: Mapping[str, Ranked],
    weights: Mapping[str, float],
    normalizer: str = "minmax",
    bounds: Mapping[str, tuple[float | None, float]] | None = None,
) -> dict[str, float]:
    """Convex combination of per-channel normalised scores; a missing score counts as 0.

    ``bounds`` gives min-max a (floor, min_span) per channel (see ``minmax``).
    """
    norm = NORMALIZERS[normalizer]
    fused: dict[str, float] = {}
    for name, ranked in channels.items():
        weight = weights.get(name, 1.0)
        floor, min_span = (bounds or {}).get(name, (None, 0.0))
        scaled = minmax(ranked, floor, min_span) if norm is minmax else norm(ranked)
        for item, score in scaled.items():
            fused[item] = fused.get(item, 0.0) + weight * score
    return fused
