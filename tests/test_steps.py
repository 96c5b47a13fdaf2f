"""Retrieval steps and fusion over plain data, against reference values."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remem.annotations import TimeLink
from remem.retrieval import fusion, steps
from remem.times import TimeSpan, find_times, month_day_match


def floats(*values: float) -> np.ndarray:  # type: ignore[type-arg]
    return np.array(values, dtype=np.float64)


def ints(*values: int) -> np.ndarray:  # type: ignore[type-arg]
    return np.array(values, dtype=np.int64)


def test_neighbour_support_passes_a_share_to_adjacent_turns_including_new_ones() -> None:
    # pool: row 2 (score 1.0) and row 7 (0.5); row 2's neighbours are rows 1 and 3, row
    # 7 has none; row 3 is also next to row 4 of the pool (score 0.2)
    scores = floats(1.0, 0.5, 0.2)
    pairs = (ints(0, 0, 2), ints(1, 3, 3))
    rows, deltas = steps.neighbour_support(scores, pairs, 0.3)
    assert rows.tolist() == [1, 3]
    assert deltas.tolist() == pytest.approx([0.3, 0.3 + 0.3 * 0.2])
    rows, deltas = steps.neighbour_support(scores, pairs, 0.0)
    assert rows.size == deltas.size == 0


def test_session_support_adds_the_relative_strength_of_each_conversation() -> None:
    scores = floats(1.0, 0.5, 0.9, 0.2, 0.1)
    sessions = ints(0, 0, 1, 2, 0)  # sessions A A B C A
    deltas = steps.session_support(scores, sessions, weight=0.5, top=2)
    # strengths (best two each): A 1.5, B 0.9, C 0.2 (best 1.5); times the peak score 1.0
    assert deltas.tolist() == pytest.approx([0.5, 0.5, 0.3, 0.5 * 0.2 / 1.5, 0.5])
    assert steps.session_support(scores, sessions, 0.0).tolist() == [0.0] * 5


def test_spread_to_sessions_lifts_turns_by_their_session_score() -> None:
    # turns of sessions A (0.5) and B (1.0); a third turn's session did not match
    deltas = steps.spread_to_sessions(floats(2.0, 1.0, 0.5), floats(0.5, 1.0, 0.0), 1.0, 0.5)
    assert deltas.tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert steps.spread_to_sessions(floats(2.0), floats(0.5), 0.0, 0.5).tolist() == [0.0]


def test_diversify_lowers_later_hits_of_a_session_already_ranked() -> None:
    scores, sessions = floats(1.0, 0.9, 0.8, 0.5), ints(0, 0, 0, 1)
    deltas = steps.diversify(scores, sessions, 0.5)
    assert deltas.tolist() == pytest.approx([0.0, -0.45, -0.6, 0.0])
    assert steps.diversify(scores[:2], sessions[:2], 0.0).tolist() == [0.0, 0.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 4)), max_size=30),
       st.integers(1, 4))  # fmt: skip
def test_session_steps_equal_their_definition_per_memory(pool, top) -> None:  # type: ignore[no-untyped-def]
    pool.sort(key=lambda p: -p[0])
    scores, sessions = floats(*(s for s, _ in pool)), ints(*(k for _, k in pool))
    by: dict[int, list[float]] = {}
    for score, key in pool:
        by.setdefault(key, []).append(score)
    strength = {k: sum(sorted(v, reverse=True)[:top]) for k, v in by.items()}
    best = max(strength.values(), default=0.0)
    want = [0.5 * max(scores) * strength[k] / best if best > 0 else 0.0 for _, k in pool]
    assert steps.session_support(scores, sessions, 0.5, top).tolist() == pytest.approx(want)
    earlier = [sum(1 for _, k in pool[:i] if k == key) for i, (_, key) in enumerate(pool)]
    want = [s * (0.8**n - 1) for (s, _), n in zip(pool, earlier, strict=True)]
    assert steps.diversify(scores, sessions, 0.2).tolist() == pytest.approx(want)


def test_mix_seeds_splits_the_restart_mass() -> None:
    seeds = steps.mix_seeds({0: 1.0, 1: 3.0}, {5: 2.0}, n_memories=10, entity_share=0.6)
    assert seeds == pytest.approx({10: 0.15, 11: 0.45, 5: 0.4})
    assert steps.mix_seeds({}, {5: 2.0}, 10, 0.6) == {5: 1.0}
    assert steps.mix_seeds({2: 1.0}, {}, 10, 0.6) == {12: 1.0}
    assert steps.mix_seeds({}, {}, 10, 0.6) == {}


def window(text: str) -> object:
    (span,) = find_times(text, datetime(2024, 1, 1))
    return span


def period_match(window: TimeSpan, start: date, end: date) -> float:
    """The definition ``steps.period_shares`` computes by column, one period at a time:
    the share of [start, end] inside the window; a recurring window is moved to the
    period's year, the year before and its last year (skipped where the day is missing)."""
    spans = [(window.start, window.end)]
    if window.recurring:
        spans = []
        for year in {start.year - 1, start.year, end.year}:
            shift = year - window.start.year
            try:
                spans.append((window.start.replace(year=year),
                              window.end.replace(year=window.end.year + shift)))  # fmt: skip
            except ValueError:  # 29 February in a common year, or beyond year 9999
                continue
    length = (end - start).days + 1
    overlaps = (max(0, (min(end, b) - max(start, a)).days + 1) for a, b in spans)
    return max((o / length for o in overlaps), default=0.0)


def share(span: object, start: date, end: date) -> float:
    out = steps.period_shares(span, np.array([start], dtype="datetime64[D]"),  # type: ignore[arg-type]
                              np.array([end], dtype="datetime64[D]"))  # fmt: skip
    return float(out[0])


def test_period_shares_are_the_share_of_each_period_inside_the_window() -> None:
    may = window("in May 2023")
    assert share(may, date(2023, 5, 7), date(2023, 5, 7)) == 1.0
    assert share(may, date(2023, 4, 27), date(2023, 5, 6)) == pytest.approx(0.6)
    assert share(may, date(2022, 5, 7), date(2022, 5, 7)) == 0.0
    any_may = window("in May")  # no year: any May
    assert share(any_may, date(2019, 5, 20), date(2019, 5, 20)) == 1.0


def fit(windows: list[object], said: datetime, mentions: list[TimeLink]) -> float:
    """One memory through the time step's column functions."""
    periods = [m for m in mentions if m.kind != "vague"]
    mentioned = max((share(w, p.start, p.end) for w in windows for p in periods), default=0.0)
    inside = steps.said_within(windows, np.array([said.date()], dtype="datetime64[D]"))  # type: ignore[arg-type]
    return float(steps.time_fit(floats(mentioned), inside, np.array([bool(periods)]))[0])


def test_time_fit_prefers_what_a_memory_mentions_over_when_it_was_said() -> None:
    day = [window("on 7 May 2023")]
    yesterday = [TimeLink(date(2023, 5, 7), date(2023, 5, 7), "date")]
    last_year = [TimeLink(date(2022, 1, 1), date(2022, 12, 31), "date")]
    said = datetime(2023, 5, 7, 10)
    assert fit(day, datetime(2023, 5, 8), yesterday) == 1.0
    assert fit(day, said, []) == 0.6
    assert fit(day, said, last_year) == 0.2  # said then, about another time
    assert fit(day, datetime(2023, 6, 1), []) == 0.0


def test_minmax_floor_keeps_the_weakest_match_above_zero() -> None:
    scores = floats(4.0, 1.0)
    assert fusion.minmax(scores).tolist() == [1.0, 0.0]
    assert fusion.minmax(scores, floor=0.0).tolist() == [1.0, 0.25]
    rows, fused = fusion.weighted({"bm25": (ints(7, 3), scores)}, {"bm25": 0.5},
                                  bounds={"bm25": (0.0, 0.0)})  # fmt: skip
    assert dict(zip(rows.tolist(), fused.tolist(), strict=True)) == pytest.approx(
        {7: 0.5, 3: 0.125}
    )
    noise = floats(2e-6, 1e-6)  # below min_span: not stretched to [0, 1]
    assert fusion.minmax(noise, floor=0.0, min_span=1e-3).tolist() == pytest.approx([2e-3, 1e-3])


def test_weighted_fusion_and_rrf_sum_each_row_once() -> None:
    channels = {"bm25": (ints(1, 2), floats(2.0, 1.0)), "dense": (ints(2, 5), floats(0.9, 0.5))}
    rows, fused = fusion.weighted(channels, {"bm25": 0.6, "dense": 0.4})
    assert dict(zip(rows.tolist(), fused.tolist(), strict=True)) == pytest.approx(
        {1: 0.6, 2: 0.4, 5: 0.0}
    )
    rows, fused = fusion.rrf(channels, {"bm25": 1.0, "dense": 1.0}, k=60)
    assert dict(zip(rows.tolist(), fused.tolist(), strict=True)) == pytest.approx(
        {1: 1 / 61, 2: 1 / 62 + 1 / 61, 5: 1 / 62}
    )


def test_dbsf_scales_by_mean_and_three_deviations() -> None:
    assert fusion.dbsf(floats(3.0, 1.0)).tolist() == pytest.approx([4 / 6, 2 / 6])  # [-1, 5]
    assert fusion.dbsf(floats(1.0, 1.0)).tolist() == [1.0, 1.0]
    assert fusion.dbsf(floats()).size == 0


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.dates(date(2019, 1, 1), date(2025, 12, 31)), st.integers(0, 800),
                  st.booleans()),
        min_size=1, max_size=3,
    ),
    days=st.lists(st.none() | st.dates(date(2018, 1, 1), date(2026, 12, 31)), max_size=30),
)  # fmt: skip
def test_said_within_equals_month_day_match_per_day(spans, days) -> None:  # type: ignore[no-untyped-def]
    windows = [
        TimeSpan("w", 0, start, start + timedelta(days=length), "range", "date", False, recurring)
        for start, length, recurring in spans
    ]
    said = np.array([np.datetime64(d, "D") if d else np.datetime64("NaT") for d in days],
                    dtype="datetime64[D]")  # fmt: skip
    want = [d is not None and any(month_day_match(w, d) for w in windows) for d in days]
    assert steps.said_within(windows, said).tolist() == want


@settings(max_examples=300, deadline=None)
@given(
    window=st.tuples(st.dates(date(2019, 1, 1), date(2025, 12, 31)), st.integers(0, 800),
                     st.booleans()),
    periods=st.lists(st.tuples(st.dates(date(2015, 1, 1), date(2026, 12, 31)),
                               st.integers(0, 900)), min_size=1, max_size=20),
)  # fmt: skip
def test_period_shares_equal_period_match_per_period(window, periods) -> None:  # type: ignore[no-untyped-def]
    start, length, recurring = window
    span = TimeSpan("w", 0, start, start + timedelta(days=length), "range", "date", False,
                    recurring)  # fmt: skip
    firsts = [s for s, _ in periods]
    lasts = [s + timedelta(days=n) for s, n in periods]
    shares = steps.period_shares(span, np.array(firsts, dtype="datetime64[D]"),
                                 np.array(lasts, dtype="datetime64[D]"))  # fmt: skip
    want = [period_match(span, a, b) for a, b in zip(firsts, lasts, strict=True)]
    assert shares.tolist() == pytest.approx(want)


def test_time_fit_prefers_what_was_mentioned_then_when_it_was_said() -> None:
    mentioned = floats(0.0, 0.0, 0.0, 0.4, 0.9)
    said = np.array([False, True, True, True, False])
    dated = np.array([False, False, True, True, True])
    assert steps.time_fit(mentioned, said, dated).tolist() == [0.0, 0.6, 0.2, 0.6, 0.9]


_WORDS = st.sampled_from(["ana", "sister", "maria", "the", "porto", "nate's", "a", "'s", "x"])


@settings(max_examples=300, deadline=None)
@given(key=st.lists(_WORDS, min_size=0, max_size=3).map(" ".join),
       question=st.lists(_WORDS, max_size=6).map(" ".join),
       terms=st.sets(_WORDS, max_size=4))  # fmt: skip
def test_naming_an_entity_is_a_term_its_words_or_a_phrase_of_the_question(
    key: str, question: str, terms: set[str]
) -> None:
    """``pipeline._named`` (per key word sets, a set lookup for one-word keys) says what
    the plain rule says: the key is a term, all its words are terms, or the question's
    words hold it as a phrase."""
    from remem.annotations import words
    from remem.retrieval.pipeline import _named

    spoken = words(question)
    padded = f" {' '.join(spoken)} "
    plain = key in terms or f" {key} " in padded or set(key.split()) <= terms
    assert _named(key, frozenset(key.split()), terms, padded, set(spoken)) == plain
