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

SESSION = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c1": "C"}
NEIGHBOURS = {"a1": ["a2"], "a2": ["a1", "a3"], "a3": ["a2"], "b1": [], "c1": []}


def test_neighbour_support_passes_a_share_to_adjacent_turns_including_new_ones() -> None:
    deltas = steps.neighbour_support({"a2": 1.0, "b1": 0.5}, NEIGHBOURS.__getitem__, 0.3)
    assert deltas == pytest.approx({"a1": 0.3, "a3": 0.3})
    assert steps.neighbour_support({"a2": 1.0}, NEIGHBOURS.__getitem__, 0.0) == {}


def test_session_support_adds_the_relative_strength_of_each_conversation() -> None:
    scores = {"a1": 1.0, "a2": 0.5, "b1": 0.9, "c1": 0.2}
    deltas = steps.session_support(scores, SESSION.get, weight=0.5, top=2)
    # strengths: A 1.5, B 0.9, C 0.2 (best 1.5); times the peak score 1.0
    assert deltas == pytest.approx({"a1": 0.5, "a2": 0.5, "b1": 0.3, "c1": 0.5 * 0.2 / 1.5})


def test_spread_to_sessions_lifts_turns_by_their_session_score() -> None:
    deltas = steps.spread_to_sessions({"a1": 2.0, "b1": 1.0}, {"A": 0.5, "B": 1.0},
                                      SESSION.get, 0.5)  # fmt: skip
    assert deltas == pytest.approx({"a1": 0.5, "b1": 1.0})


def test_diversify_lowers_later_hits_of_a_session_already_ranked() -> None:
    deltas = steps.diversify({"a1": 1.0, "a2": 0.9, "a3": 0.8, "b1": 0.5}, SESSION.get, 0.5)
    assert deltas == pytest.approx({"a2": -0.45, "a3": -0.6})
    assert steps.diversify({"a1": 1.0, "a2": 0.9}, SESSION.get, 0.0) == {}


def test_mix_seeds_splits_the_restart_mass() -> None:
    seeds = steps.mix_seeds({0: 1.0, 1: 3.0}, {5: 2.0}, n_memories=10, entity_share=0.6)
    assert seeds == pytest.approx({10: 0.15, 11: 0.45, 5: 0.4})
    assert steps.mix_seeds({}, {5: 2.0}, 10, 0.6) == {5: 1.0}
    assert steps.mix_seeds({2: 1.0}, {}, 10, 0.6) == {12: 1.0}
    assert steps.mix_seeds({}, {}, 10, 0.6) == {}


def window(text: str) -> object:
    (span,) = find_times(text, datetime(2024, 1, 1))
    return span


def test_period_match_is_the_share_of_the_period_inside_the_window() -> None:
    may = window("in May 2023")
    assert steps.period_match(may, date(2023, 5, 7), date(2023, 5, 7)) == 1.0
    assert steps.period_match(may, date(2023, 4, 27), date(2023, 5, 6)) == pytest.approx(0.6)
    assert steps.period_match(may, date(2022, 5, 7), date(2022, 5, 7)) == 0.0
    any_may = window("in May")  # no year: any May
    assert steps.period_match(any_may, date(2019, 5, 20), date(2019, 5, 20)) == 1.0


def test_time_match_prefers_what_a_memory_mentions_over_when_it_was_said() -> None:
    day = [window("on 7 May 2023")]
    yesterday = [TimeLink(date(2023, 5, 7), date(2023, 5, 7), "date")]
    last_year = [TimeLink(date(2022, 1, 1), date(2022, 12, 31), "date")]
    said = datetime(2023, 5, 7, 10)
    assert steps.time_match(day, datetime(2023, 5, 8), yesterday) == 1.0
    assert steps.time_match(day, said, []) == 0.6
    assert steps.time_match(day, said, last_year) == 0.2  # said then, about another time
    assert steps.time_match(day, datetime(2023, 6, 1), []) == 0.0


def test_minmax_floor_keeps_the_weakest_match_above_zero() -> None:
    ranked = [("a", 4.0), ("b", 1.0)]
    assert fusion.minmax(ranked) == {"a": 1.0, "b": 0.0}
    assert fusion.minmax(ranked, floor=0.0) == {"a": 1.0, "b": 0.25}
    fused = fusion.weighted({"bm25": ranked}, {"bm25": 0.5}, bounds={"bm25": (0.0, 0.0)})
    assert fused == pytest.approx({"a": 0.5, "b": 0.125})
    noise = [("a", 2e-6), ("b", 1e-6)]  # below min_span: not stretched to [0, 1]
    assert fusion.minmax(noise, floor=0.0, min_span=1e-3) == pytest.approx({"a": 2e-3, "b": 1e-3})


def test_dbsf_scales_by_mean_and_three_deviations() -> None:
    ranked = [("a", 3.0), ("b", 1.0)]  # mean 2, sd 1: [-1, 5] -> [0, 1]
    assert fusion.dbsf(ranked) == pytest.approx({"a": 4 / 6, "b": 2 / 6})
    assert fusion.dbsf([("a", 1.0), ("b", 1.0)]) == {"a": 1.0, "b": 1.0}
    assert fusion.dbsf([]) == {}


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
