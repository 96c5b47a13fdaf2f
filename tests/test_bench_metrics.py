"""Tests for remem.bench.metrics, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from remem.bench.metrics import (
    MetricAccumulator,
    dedupe,
    format_table,
    natural_key,
    ndcg_at_k,
    percentile,
    recall_all_at_k,
    recall_any_at_k,
    session_metrics,
    session_of,
    turn_metrics,
)

# 1 / log2(3), the discount of the second rank
D2 = 0.6309297535714575


@pytest.mark.parametrize(
    ("turn_id", "session"),
    [
        ("D7:3", "7"),
        ("D12:10", "12"),
        ("answer_a1:4", "answer_a1"),
        ("a:b:3", "a:b"),  # split on the last ':'
        ("Dx:3", "Dx"),  # not the LoCoMo pattern: the 'D' stays
        ("D:11:26", "D:11"),
    ],
)
def test_session_of(turn_id: str, session: str) -> None:
    assert session_of(turn_id) == session


def test_session_of_rejects_an_id_without_colon() -> None:
    with pytest.raises(ValueError, match="no ':'"):
        session_of("D7")


def test_dedupe_keeps_first_occurrence_order() -> None:
    assert dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert dedupe([]) == []


def test_recall_all_and_any() -> None:
    ranked = ["x", "a", "y", "b", "z"]
    assert recall_all_at_k(ranked, {"a", "b"}, 4) == 1.0
    assert recall_all_at_k(ranked, {"a", "b"}, 3) == 0.0
    assert recall_any_at_k(ranked, {"a", "b"}, 2) == 1.0
    assert recall_any_at_k(ranked, {"a", "b"}, 1) == 0.0
    assert recall_all_at_k(ranked, {"a", "q"}, 100) == 0.0  # 'q' never retrieved
    assert recall_any_at_k([], {"a"}, 5) == 0.0


def test_recall_rejects_empty_gold_and_bad_k() -> None:
    with pytest.raises(ValueError, match="gold set is empty"):
        recall_all_at_k(["a"], set(), 5)
    with pytest.raises(ValueError, match="k must be"):
        recall_any_at_k(["a"], {"a"}, 0)


def test_ndcg_known_ranking() -> None:
    # hits at ranks 0, 2, 4: DCG = 1/log2(2) + 1/log2(4) + 1/log2(6) = 1 + 0.5 + 0.386853
    #                             = 1.886853
    # ideal: 3 hits at ranks 0, 1, 2: 1 + 0.630930 + 0.5 = 2.130930
    # nDCG = 1.886853 / 2.130930 = 0.885460
    ranked = ["a", "x", "b", "y", "c"]
    assert ndcg_at_k(ranked, {"a", "b", "c"}, 5) == pytest.approx(0.885460, abs=1e-6)


def test_ndcg_edge_cases() -> None:
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0
    # one gold at rank 1: (1/log2(3)) / 1 = 0.630930
    assert ndcg_at_k(["x", "b"], {"b"}, 10) == pytest.approx(D2)
    # more gold than k: the ideal has only k = 2 hits, so two hits on top is perfect
    assert ndcg_at_k(["a", "b", "c"], {"a", "b", "c"}, 2) == pytest.approx(1.0)
    # a repeated hit counts once: DCG = 1, ideal = 1 + 1/log2(3) = 1.630930 -> 0.613147
    assert ndcg_at_k(["a", "a"], {"a", "b"}, 2) == pytest.approx(0.613147, abs=1e-6)
    # the hit at rank 2 is outside k = 2
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_turn_metrics() -> None:
    ranked = ["D2:1", "D1:3", "D2:2", "D3:1", "D2:3", "D5:1", "D5:2", "D5:3", "D6:1", "D6:2"]
    ranked += ["D7:1", "D7:2", "D8:1", "D8:2", "D4:2", "D9:1"]
    gold = {"D1:3", "D4:2"}  # at turn ranks 1 and 14
    # session ranking: 2, 1, 3, 5, 6, 7, 8, 4, 9 -> session 1 at rank 1, session 4 at rank 7
    # ndcg@10: DCG = 1/log2(3) = 0.630930; ideal = 1 + 0.630930 -> 0.386853
    assert turn_metrics(ranked, gold) == pytest.approx(
        {
            "turn_recall_all@5": 0.0,
            "turn_recall_any@5": 1.0,
            "turn_recall_all@10": 0.0,
            "turn_recall_any@10": 1.0,
            "turn_recall_all@20": 1.0,
            "turn_recall_any@20": 1.0,
            "session_recall_any@5": 1.0,
            "session_recall_all@5": 0.0,
            "ndcg@10": 0.386853,
        },
        abs=1e-6,
    )


def test_turn_metrics_longmemeval_ids() -> None:
    ranked = ["noise:0", "ans:1", "ans:0"]
    metrics = turn_metrics(ranked, {"ans:0", "ans:1"})
    assert metrics["turn_recall_all@5"] == 1.0
    assert metrics["session_recall_all@5"] == 1.0
    # DCG = 1/log2(3) + 1/log2(4) = 1.130930; ideal = 1 + 0.630930 = 1.630930 -> 0.693426
    assert metrics["ndcg@10"] == pytest.approx(0.693426, abs=1e-6)


def test_session_metrics() -> None:
    ranked = ["s3", "s1", "s3", "s2", "s4", "s5", "s6", "s7"]
    # deduped: s3 s1 s2 s4 s5 s6 s7 -> s1 at rank 1, s7 at rank 6
    # ndcg@10: (1/log2(3) + 1/log2(8)) / (1 + 1/log2(3)) = 0.964263 / 1.630930 = 0.591235
    assert session_metrics(ranked, {"s1", "s7"}) == pytest.approx(
        {
            "session_recall_any@5": 1.0,
            "session_recall_all@5": 0.0,
            "session_recall_any@10": 1.0,
            "session_recall_all@10": 1.0,
            "session_ndcg@10": 0.591235,
        },
        abs=1e-6,
    )


def test_accumulator_summary() -> None:
    acc = MetricAccumulator()
    acc.add("10", {"r": 1.0})
    acc.add("2", {"r": 0.0, "extra": 0.5})
    acc.add("2", {"r": 1.0})
    acc.add("1", {"r": 1.0})
    summary = acc.summary()
    assert len(acc) == 4
    # r: (1 + 0 + 1 + 1) / 4; extra is averaged over the one question that reported it
    assert summary["overall"] == {"r": 0.75, "extra": 0.5, "n": 4}
    assert list(summary["by_category"]) == ["1", "2", "10"]
    assert summary["by_category"]["2"] == {"r": 0.5, "extra": 0.5, "n": 2}
    assert summary["by_category"]["10"] == {"r": 1.0, "n": 1}


def test_accumulator_empty() -> None:
    summary = MetricAccumulator().summary()
    assert summary["overall"] == {"n": 0}
    assert summary["by_category"] == {}


def test_natural_key_orders_numbers_numerically() -> None:
    cats = ["10", "single-session-user", "2", "1", "multi-session"]
    assert sorted(cats, key=natural_key) == [
        "1",
        "2",
        "10",
        "multi-session",
        "single-session-user",
    ]


def test_percentile_by_hand() -> None:
    # [1, 2, 3, 4]: q=25 -> position 0.75 -> 1 + 0.75 * (2 - 1) = 1.75
    assert percentile([4.0, 1.0, 3.0, 2.0], 25) == pytest.approx(1.75)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    # [10..50]: q=90 -> position 3.6 -> 40 + 0.6 * 10 = 46
    assert percentile([50.0, 10.0, 40.0, 20.0, 30.0], 90) == pytest.approx(46.0)
    assert percentile([7.0], 30) == 7.0


@pytest.mark.parametrize("q", [0.0, 5.0, 33.3, 50.0, 95.0, 99.0, 100.0])
def test_percentile_matches_numpy(q: float) -> None:
    values = [0.3, 12.0, 5.5, 5.5, 1.25, 9.0, 100.0]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_format_table() -> None:
    rows = {
        "overall": {"n": 12, "recall@5": 0.5, "ndcg@10": 0.41666},
        "4": {"n": 3, "recall@5": 1.0},
    }
    table = format_table(rows, ["n", "recall@5", "ndcg@10"])
    assert table.splitlines() == [
        "          n  recall@5  ndcg@10",
        "-------  --  --------  -------",
        "overall  12     0.500    0.417",
        "4         3     1.000        -",
    ]
