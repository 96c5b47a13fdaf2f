"""Retrieval steps over plain data: each takes the current scores and returns additions.

Scores map memory ids to fused scores; ``session_of`` and ``neighbours_of`` describe the
conversation around each memory. Every function is pure and returns ``{id: delta}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.annotations import TimeLink
from remem.times import TimeSpan, month_day_match

Scores = Mapping[str, float]
Deltas = dict[str, float]


def neighbour_support(
    scores: Scores, neighbours_of: Callable[[str], Iterable[str]], weight: float
) -> Deltas:
    """Each memory passes ``weight`` times its score to its adjacent turns, which join
    the candidates if they were missing (context expansion)."""
    out: Deltas = {}
    if weight <= 0:
        return out
    for item, score in scores.items():
        for other in neighbours_of(item):
            out[other] = out.get(other, 0.0) + weight * score
    return out


def session_support(
    scores: Scores, session_of: Callable[[str], str | None], weight: float, top: int = 3
) -> Deltas:
    """Each memory gains ``weight`` times its conversation's strength (the sum of its
    ``top`` best scores) relative to the strongest conversation's, times the best score."""
    if weight <= 0 or not scores:
        return {}
    per: dict[str, list[float]] = {}
    for item, score in scores.items():
        key = session_of(item)
        if key is not None:
            per.setdefault(key, []).append(score)
    strength = {k: sum(sorted(v, reverse=True)[:top]) for k, v in per.items()}
    best, peak = max(strength.values(), default=0.0), max(scores.values())
    if best <= 0:
        return {}
    out: Deltas = {}
    for item in scores:
        key = session_of(item)
        if key is not None:
            out[item] = weight * peak * strength[key] / best
    return out


def spread_to_sessions(
    scores: Scores, session_scores: Mapping[str, float], session_of: Callable[[str], str | None],
    weight: float,
) -> Deltas:  # fmt: skip
    """Each memory gains ``weight`` times its session's score (relative to the best
    session's), times the best memory score: sessions found as a whole lift their turns."""
    if weight <= 0 or not scores or not session_scores:
        return {}
    best, peak = max(session_scores.values()), max(scores.values())
    if best <= 0:
        return {}
    out: Deltas = {}
    for item in scores:
        key = session_of(item)
        if key is not None and key in session_scores:
            out[item] = weight * peak * session_scores[key] / best
    return out


def mix_seeds(
    entities: Mapping[int, float], memories: Mapping[int, float], n_memories: int,
    entity_share: float,
) -> dict[int, float]:  # fmt: skip
    """Restart weights for a walk over memory nodes ``0..n_memories-1`` and entity nodes
    after them: ``entity_share`` of the mass to the entities (by weight), the rest to the
    memories (by score); all of it to whichever side is the only one present."""
    ent_total = sum(w for w in entities.values() if w > 0)
    mem_total = sum(w for w in memories.values() if w > 0)
    if ent_total <= 0 and mem_total <= 0:
        return {}
    share = entity_share if ent_total > 0 and mem_total > 0 else (1.0 if ent_total > 0 else 0.0)
    seeds = {n_memories + j: share * w / ent_total for j, w in entities.items() if w > 0}
    for row, w in memories.items():
        if w > 0:
            seeds[row] = seeds.get(row, 0.0) + (1 - share) * w / mem_total
    return seeds


def diversify(scores: Scores, session_of: Callable[[str], str | None], penalty: float) -> Deltas:
    """Lower each memory by ``penalty`` per better-ranked memory of its session
    (multiplicatively), so answers spread over several sessions surface together."""
    if penalty <= 0:
        return {}
    seen: dict[str, int] = {}
    out: Deltas = {}
    for item, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        key = session_of(item)
        if key is None:
            continue
        earlier = seen.get(key, 0)
        seen[key] = earlier + 1
        if earlier:
            out[item] = score * ((1 - penalty) ** earlier - 1)
    return out


def _overlap_days(a_start: date, a_end: date, b_start: date, b_end: date) -> int:
    return max(0, (min(a_end, b_end) - max(a_start, b_start)).days + 1)


def _in_year(window: TimeSpan, year: int) -> tuple[date, date] | None:
    """A recurring window moved to ``year`` (None when that year has no such day)."""
    try:
        shift = year - window.start.year
        return window.start.replace(year=year), window.end.replace(year=window.end.year + shift)
    except ValueError:
        return None


def period_match(window: TimeSpan, start: date, end: date) -> float:
    """Share of the period [start, end] that lies in the window (any year if recurring)."""
    spans = [(window.start, window.end)]
    if window.recurring:
        years = {start.year - 1, start.year, end.year}
        spans = [s for y in years if (s := _in_year(window, y)) is not None]
    length = (end - start).days + 1
    return max((_overlap_days(start, end, a, b) / length for a, b in spans), default=0.0)


SAID_FIT = 0.6  # a memory said inside the window, mentioning no other time


def said_within(windows: Sequence[TimeSpan], said: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Which days of ``said`` (``datetime64[D]``, NaT for unknown) fall in any window:
    ``month_day_match`` over a whole column at once (recurring windows by month and day)."""
    out = np.zeros(said.shape, dtype=bool)
    known = ~np.isnat(said)
    months = said.astype("datetime64[M]")
    md = (months.astype(np.int64) % 12 + 1) * 100 + (said - months).astype(np.int64) + 1
    for window in windows:
        if not window.recurring:
            start, end = np.datetime64(window.start, "D"), np.datetime64(window.end, "D")
            hit = (said >= start) & (said <= end)
        elif (window.end - window.start).days >= 365:
            hit = known.copy()
        else:
            lo = window.start.month * 100 + window.start.day
            hi = window.end.month * 100 + window.end.day
            hi = 229 if hi == 228 else hi  # a February-end pattern also covers leap days
            same_year = window.start.year == window.end.year
            hit = ((md >= lo) & (md <= hi)) if same_year else ((md >= lo) | (md <= hi))
        out |= hit & known
    return out


def time_match(
    windows: Sequence[TimeSpan], said: datetime | None, mentions: Sequence[TimeLink]
) -> float:
    """How well a memory fits the question's time windows, from 0 to 1.

    A period the memory mentions counts by the share of it inside a window ("yesterday"
    said on 8 May fits "7 May" fully); otherwise being said inside the window counts 0.6,
    or 0.2 when the memory points at some other time ("last year").
    """
    best = 0.0
    for window in windows:
        for link in mentions:
            if link.kind != "vague":
                best = max(best, period_match(window, link.start, link.end))
        if said is not None and month_day_match(window, said.date()):
            elsewhere = any(link.kind != "vague" for link in mentions)
            best = max(best, 0.2 if elsewhere and best == 0 else SAID_FIT)
    return best
