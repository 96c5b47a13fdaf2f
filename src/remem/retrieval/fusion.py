"""Rank fusion: reciprocal-rank fusion and normalised score fusion, over arrays.

Each channel gives ``(rows, scores)`` best first; normalisers map a channel's scores to
new scores, and the fusions return ``(rows, fused scores)`` with each row once (higher is
better).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from remem.index.arrays import sum_by_row

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Channel = tuple[Rows, Floats]


def rrf(channels: Mapping[str, Channel], weights: Mapping[str, float], k: int = 60) -> Channel:
    """Reciprocal-rank fusion (Cormack et al. 2009): sum of w / (k + rank), rank from 1."""
    parts = [
        (rows, weights.get(name, 1.0) / (k + np.arange(1, rows.size + 1, dtype=np.float64)))
        for name, (rows, _) in channels.items()
    ]
    return _combine(parts)


def minmax(scores: Floats, floor: float | None = None, min_span: float = 0.0) -> Floats:
    """Scores rescaled to [0, 1] over the candidates (all equal -> all 1).

    ``floor`` is a score every non-candidate is known to be below (0 for a keyword channel
    that returned all its matches): the weakest candidate then keeps some score instead of
    being stretched to 0. ``min_span``: score differences smaller than this are noise and
    are not stretched to the full range.
    """
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if floor is not None:
        low = min(low, floor)
    span = max(high - low, min_span)
    if span <= 0:
        return np.ones(scores.size)
    out: Floats = (scores - low) / span
    return out


def max_normalized(scores: Floats) -> Floats:
    """Scores divided by the best score (keeps the zero point, unlike min-max)."""
    best = float(scores.max()) if scores.size else 0.0
    out: Floats = scores / best if best > 0 else np.zeros(scores.size)
    return out


def dbsf(scores: Floats) -> Floats:
    """Distribution-based scaling: ``(s - (mean - 3 sd)) / (6 sd)``, clipped to [0, 1].

    Unlike min-max, one outlier does not squash everyone else, and a channel whose
    scores barely differ does not get stretched to the full range.
    """
    if scores.size == 0:
        return scores
    mean, sd = float(scores.mean()), float(scores.std())
    if sd == 0:
        return np.ones(scores.size)
    out: Floats = np.clip((scores - (mean - 3 * sd)) / (6 * sd), 0.0, 1.0)
    return out


NORMALIZERS = {"minmax": minmax, "max": max_normalized, "dbsf": dbsf}


def weighted(
    channels: Mapping[str, Channel],
    weights: Mapping[str, float],
    normalizer: str = "minmax",
    bounds: Mapping[str, tuple[float | None, float]] | None = None,
) -> Channel:
    """Convex combination of per-channel normalised scores; a missing score counts as 0.

    ``bounds`` gives min-max a (floor, min_span) per channel (see ``minmax``).
    """
    return _combine(weighted_parts(channels, weights, normalizer, bounds))


def weighted_parts(
    channels: Mapping[str, Channel],
    weights: Mapping[str, float],
    normalizer: str = "minmax",
    bounds: Mapping[str, tuple[float | None, float]] | None = None,
) -> list[Channel]:
    """Each channel's rows with its weighted, normalised scores (``weighted`` sums them
    per row, in channel order)."""
    norm = NORMALIZERS[normalizer]
    parts = []
    for name, (rows, scores) in channels.items():
        floor, min_span = (bounds or {}).get(name, (None, 0.0))
        scaled = minmax(scores, floor, min_span) if norm is minmax else norm(scores)
        parts.append((rows, weights.get(name, 1.0) * scaled))
    return parts


def _combine(parts: list[Channel]) -> Channel:
    parts = [(rows, scores) for rows, scores in parts if rows.size]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return sum_by_row([r for r, _ in parts], [s for _, s in parts])
