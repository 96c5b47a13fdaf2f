"""Retrieval metrics for the benchmarks: recall@k, nDCG@k, percentiles and a text table."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

_LOCOMO_TURN_ID = re.compile(r"^D(\d+):\d+$")
_DIGITS = re.compile(r"(\d+)")

TURN_KS = (5, 10, 20)
SESSION_KS = (5, 10)


class MetricSummary(TypedDict):
    """Means of every metric, overall and per category (each with its count ``n``)."""

    overall: dict[str, float]
    by_category: dict[str, dict[str, float]]


def session_of(turn_id: str) -> str:
    """Return the session a turn id belongs to.

    LoCoMo ids ``"D7:3"`` give ``"7"``; any other ``"<session>:<index>"`` id (LongMemEval)
    gives everything before the last ``":"``. Raises ``ValueError`` if the id has no ``":"``.
    """
    match = _LOCOMO_TURN_ID.match(turn_id)
    if match:
        return match.group(1)
    session, sep, _ = turn_id.rpartition(":")
    if not sep:
        raise ValueError(f"turn id {turn_id!r} has no ':'; expected 'D<session>:<n>' or 's:<n>'")
    return session


def dedupe(ids: Iterable[str]) -> list[str]:
    """Drop repeated ids, keeping the order of first occurrence."""
    return list(dict.fromkeys(ids))


def _check(gold: Collection[str], k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not gold:
        raise ValueError("the gold set is empty; a metric over no relevant items is undefined")


def recall_all_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Return 1.0 if every gold id is among the first ``k`` ranked ids, else 0.0.

    Raises ``ValueError`` if ``gold`` is empty or ``k < 1``.
    """
    _check(gold, k)
    top = set(ranked[:k])
    return 1.0 if all(g in top for g in gold) else 0.0


def recall_any_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Return 1.0 if at least one gold id is among the first ``k`` ranked ids, else 0.0.

    Raises ``ValueError`` if ``gold`` is empty or ``k < 1``.
    """
    _check(gold, k)
    gold_set = set(gold)
    return 1.0 if any(r in gold_set for r in ranked[:k]) else 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Return binary-relevance nDCG@k with a log2 discount.

    The hit at 0-based rank ``i`` is worth ``1 / log2(i + 2)``; a gold id repeated in
    ``ranked`` counts only at its first position. The ideal ranking has
    ``min(len(gold), k)`` hits at the top. Raises ``ValueError`` if ``gold`` is empty or
    ``k < 1``.
    """
    _check(gold, k)
    gold_set = set(gold)
    seen: set[str] = set()
    dcg = 0.0
    for i, item in enumerate(ranked[:k]):
        if item in gold_set and item not in seen:
            seen.add(item)
            dcg += 1.0 / math.log2(i + 2)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold_set), k)))
    return dcg / ideal


def turn_metrics(ranked_turns: Sequence[str], gold_turns: Collection[str]) -> dict[str, float]:
    """Return turn-level recall@5/10/20, session recall@5 and turn nDCG@10 for one question.

    Sessions are ranked by the first appearance of any of their turns in ``ranked_turns``;
    the gold sessions are those of the gold turns (see ``session_of``).
    """
    out: dict[str, float] = {}
    for k in TURN_KS:
        out[f"turn_recall_all@{k}"] = recall_all_at_k(ranked_turns, gold_turns, k)
        out[f"turn_recall_any@{k}"] = recall_any_at_k(ranked_turns, gold_turns, k)
    ranked_sessions = dedupe(session_of(t) for t in ranked_turns)
    gold_sessions = {session_of(g) for g in gold_turns}
    out["session_recall_any@5"] = recall_any_at_k(ranked_sessions, gold_sessions, 5)
    out["session_recall_all@5"] = recall_all_at_k(ranked_sessions, gold_sessions, 5)
    out["ndcg@10"] = ndcg_at_k(ranked_turns, gold_turns, 10)
    return out


def session_metrics(
    ranked_sessions: Sequence[str], gold_sessions: Collection[str]
) -> dict[str, float]:
    """Return session recall_any/recall_all@5/10 and ``session_ndcg@10`` for one question.

    Repeated sessions in ``ranked_sessions`` are dropped (first occurrence kept) first.
    """
    ranked = dedupe(ranked_sessions)
    out: dict[str, float] = {}
    for k in SESSION_KS:
        out[f"session_recall_any@{k}"] = recall_any_at_k(ranked, gold_sessions, k)
        out[f"session_recall_all@{k}"] = recall_all_at_k(ranked, gold_sessions, k)
    out["session_ndcg@10"] = ndcg_at_k(ranked, gold_sessions, 10)
    return out


def natural_key(text: str) -> tuple[str | int, ...]:
    """Sort key that orders embedded numbers numerically ("2" before "10")."""
    return tuple(int(p) if i % 2 else p for i, p in enumerate(_DIGITS.split(text)))


@dataclass
class MetricAccumulator:
    """Collects per-question metric dicts and reports their means, overall and per category."""

    _rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)

    def add(self, category: str, metrics: Mapping[str, float]) -> None:
        """Record the metrics of one question in ``category``."""
        self._rows.append((category, dict(metrics)))

    def __len__(self) -> int:
        return len(self._rows)

    def summary(self) -> MetricSummary:
        """Return ``{"overall": {metric: mean, "n": count}, "by_category": {cat: {...}}}``.

        Each metric's mean is over the questions that reported it; categories are sorted
        naturally ("1", "2", ..., "10").
        """
        groups: dict[str, list[dict[str, float]]] = {}
        for category, metrics in self._rows:
            groups.setdefault(category, []).append(metrics)
        by_category = {c: _means(groups[c]) for c in sorted(groups, key=natural_key)}
        return {"overall": _means([m for _, m in self._rows]), "by_category": by_category}


def _means(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            totals.setdefault(name, []).append(value)
    out: dict[str, float] = {name: math.fsum(v) / len(v) for name, v in totals.items()}
    out["n"] = len(rows)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) with linear interpolation, like numpy's default.

    Raises ``ValueError`` if ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence is undefined")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.3f}"


def format_table(
    rows: Mapping[str, Mapping[str, float]], columns: Sequence[str], name_header: str = ""
) -> str:
    """Render ``rows`` as a plain-text table, one line per row, aligned in columns.

    The first column holds the row names (left-aligned); the others the values of
    ``columns`` (right-aligned): ints as ints, floats to 3 decimals, ``-`` when missing.
    """
    header = [name_header, *columns]
    body = [[name, *(_cell(values.get(c)) for c in columns)] for name, values in rows.items()]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in body)])


def mean_steps(breakdowns: Iterable[Any]) -> dict[str, float]:
    """The mean of each step over the breakdowns (``{step: ms}``), rounded to 3 decimals.

    Steps keep the order they first appear in; a step missing from one breakdown counts as
    0 ms there. Anything that is not a mapping (no breakdown reported) is left out, so
    the result is empty when no search reported one.
    """
    totals: dict[str, float] = {}
    reported = 0
    for timings in breakdowns:
        if not isinstance(timings, Mapping):
            continue
        reported += 1
        for step, ms in timings.items():
            totals[str(step)] = totals.get(str(step), 0.0) + float(ms)
    return {step: round(total / reported, 3) for step, total in totals.items()}
