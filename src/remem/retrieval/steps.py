"""Retrieval steps over plain data: each takes the current scores and returns additions.

Scores are numpy arrays over a pool of candidates (best first where it matters), with
their sessions as small integer codes; every function is pure and returns what it adds
per candidate, so a step costs a few array operations whatever the pool's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.evolution.retention import retentions
from remem.index.arrays import add_by_row
from remem.times import TimeSpan

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Days = npt.NDArray[Any]  # datetime64[D]
_NO_ROWS: Rows = np.zeros(0, dtype=np.int64)
_NO_FLOATS: Floats = np.zeros(0)


def _rank_in_group(ordered: Rows) -> Rows:
    """For a sorted column, each entry's position within its run of equal values."""
    first = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    index = np.arange(ordered.size)
    out: Rows = index - np.maximum.accumulate(np.where(first, index, 0))
    return out


def neighbour_support(
    scores: Floats, pairs: tuple[Rows, Rows], weight: float
) -> tuple[Rows, Floats]:
    """Each pool memory passes ``weight`` times its score to its adjacent turns, which
    join the candidates if they were missing (context expansion). ``pairs`` are
    (pool index, adjacent row); returns each adjacent row once with its summed share."""
    source, adjacent = pairs
    if weight <= 0 or adjacent.size == 0:
        return _NO_ROWS, _NO_FLOATS
    return add_by_row(adjacent, weight * scores[source])


def cite_support(scores: Floats, pairs: tuple[Rows, Rows], weight: float) -> tuple[Rows, Floats]:
    """Each pool memory passes ``weight`` times its score to the turns it cites: ``pairs``
    are (pool index, cited row); a turn cited by several gains the best share, not their
    sum (one strong fact outweighs many weak ones). Returns each cited row once."""
    source, cited = pairs
    if weight <= 0 or cited.size == 0:
        return _NO_ROWS, _NO_FLOATS
    rows, where = np.unique(cited, return_inverse=True)
    deltas = np.zeros(rows.size)
    np.maximum.at(deltas, where, weight * scores[source])
    return rows, deltas


def session_support(scores: Floats, sessions: Rows, weight: float, top: int = 3) -> Floats:
    """Each pool memory gains ``weight`` times its conversation's strength (the sum of its
    ``top`` best scores in the pool) relative to the strongest conversation's, times the
    best score. ``sessions`` are the pool's session codes (-1: unknown); returns the
    delta of each pool memory."""
    out = np.zeros(scores.size)
    known = sessions >= 0
    if weight <= 0 or not known.any():
        return out
    order = np.lexsort((-scores, sessions))
    ordered = sessions[order]
    keep = (_rank_in_group(ordered) < top) & (ordered >= 0)
    strength = np.bincount(ordered[keep], weights=scores[order][keep],
                           minlength=int(sessions.max()) + 1)  # fmt: skip
    best = float(strength.max())
    if best <= 0:
        return out
    out[known] = weight * float(scores.max()) * strength[sessions[known]] / best
    return out


def spread_to_sessions(scores: Floats, matched: Floats, best: float, weight: float) -> Floats:
    """Each pool memory gains ``weight`` times its session's score (``matched``, aligned
    with the pool; 0 when its session did not match) relative to ``best``, the best
    session's, times the best memory score: sessions found as a whole lift their turns."""
    if weight <= 0 or best <= 0 or scores.size == 0:
        return np.zeros(scores.size)
    out: Floats = weight * float(scores.max()) * matched / best
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


def diversify(scores: Floats, sessions: Rows, penalty: float) -> Floats:
    """Lower each memory by ``penalty`` per better-ranked memory of its session
    (multiplicatively), so answers spread over several sessions surface together.
    ``scores`` are best first; ``sessions`` their session codes (-1: unknown)."""
    if penalty <= 0 or scores.size == 0:
        return np.zeros(scores.size)
    order = np.argsort(sessions, kind="stable")  # by session, best first within each
    earlier = np.empty(scores.size, dtype=np.int64)
    earlier[order] = _rank_in_group(sessions[order])
    earlier[sessions < 0] = 0
    out: Floats = scores * ((1 - penalty) ** earlier - 1)
    return out


def retention_weights(
    days: Floats, strength: Floats, importance: Floats, pinned: npt.NDArray[np.bool_],
    weight: float,
) -> Floats:  # fmt: skip
    """Score multipliers ``1 + weight * (R * (0.5 + importance) - 1)`` per memory, with
    ``R = exp(-days / strength)`` its retention (1 when pinned) and ``importance`` in
    [0, 1]: exactly 1 for a just-recalled memory of the default importance 0.5, down to
    ``1 - weight`` for a forgotten one, up to ``1 + weight / 2`` for a fresh memory of
    importance 1. ``weight`` 0 changes nothing."""
    if weight <= 0 or days.size == 0:
        return np.ones(days.size)
    kept = retentions(days, strength)
    kept[pinned] = 1.0
    known = np.nan_to_num(importance, nan=0.5)
    out: Floats = 1.0 + weight * (kept * (0.5 + np.clip(known, 0.0, 1.0)) - 1.0)
    return out


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


def period_shares(window: TimeSpan, starts: Days, ends: Days) -> Floats:
    """For each period (first and last days, as columns), the share of it that lies in
    the window; a recurring window ("in May") counts in the period's year, the year
    before and its last year, whichever overlaps most."""
    length = (ends - starts).astype(np.int64) + 1
    spans: list[tuple[Any, Any, Any]]
    if not window.recurring:
        spans = [(np.datetime64(window.start, "D"), np.datetime64(window.end, "D"), True)]
    else:
        years = starts.astype("datetime64[Y]").astype(np.int64) + 1970
        last = ends.astype("datetime64[Y]").astype(np.int64) + 1970
        spans = [_moved(window, y) for y in (years - 1, years, last)]
    best = np.zeros(starts.shape)
    for first, final, valid in spans:
        overlap = (np.minimum(ends, final) - np.maximum(starts, first)).astype(np.int64) + 1
        best = np.maximum(best, np.where(valid, np.maximum(overlap, 0) / length, 0.0))
    return best


def _moved(window: TimeSpan, years: Rows) -> tuple[Days, Days, npt.NDArray[np.bool_]]:
    """A recurring window moved to each of ``years``: its first and last days, and
    whether that year has them (no 29 February)."""
    first, ok_first = _day_in(years, window.start)
    final, ok_final = _day_in(years + (window.end.year - window.start.year), window.end)
    return first, final, ok_first & ok_final


def _day_in(years: Rows, day: date) -> tuple[Days, npt.NDArray[np.bool_]]:
    months = ((years - 1970) * 12 + day.month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day.day - 1)
    valid = (days.astype("datetime64[M]") == months) & (years >= 1) & (years <= 9999)
    return days, valid


def time_fit(
    mentioned: Floats, said: npt.NDArray[np.bool_], dated: npt.NDArray[np.bool_]
) -> Floats:
    """How well memories fit the question's time windows, from 0 to 1: ``mentioned``
    (the best share of a period they mention inside a window: "yesterday" said on 8 May
    fits "7 May" fully), or, when said inside a window, ``SAID_FIT`` (0.2 if they mention
    periods, none of them inside: "last year")."""
    when_said = np.where(dated & (mentioned == 0), 0.2, SAID_FIT)
    out: Floats = np.where(said, np.maximum(mentioned, when_said), mentioned)
    return out
