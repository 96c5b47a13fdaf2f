"""The latency bench at tiny sizes: the report's structure and the consistency of its figures.

Speed itself is not asserted here (it is what the bench reports).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from remem.bench.datasets import load_dataset
from remem.bench.latency import WARMUP, distinct_queries, pick_conversation, run_latency
from remem.bench.metrics import mean_steps
from remem.cli.main import main
from remem.embedders.base import Embedder
from remem.errors import DataFormatError, InvalidInputError
from remem.settings import ENV_VARS

FIXTURES = Path(__file__).parent / "fixtures"
LOCOMO = FIXTURES / "locomo_tiny.json"
LONGMEMEVAL = FIXTURES / "longmemeval_tiny.json"
LATENCY = {"p50_ms", "p95_ms"}
RECIPE = LATENCY | {"over_embed_p50", "p95_over_p50"}


def _runner() -> CliRunner:
    return CliRunner(env={name: None for name in ENV_VARS})


def _check_scope(scope: dict[str, Any], name: str, turns: int, recipes: Sequence[str]) -> None:
    """Keys, sizes, and figures that are positive and agree with each other."""
    assert (scope["scope"], scope["turns"]) == (name, turns)
    assert scope["memories"] >= turns  # one memory per turn, plus session summaries
    embed = scope["embed_query"]
    assert set(embed) == LATENCY | {"p95_over_p50"}
    assert 0 < embed["p50_ms"] <= embed["p95_ms"]
    assert embed["p95_over_p50"] == pytest.approx(embed["p95_ms"] / embed["p50_ms"], abs=1e-3)
    assert list(scope["recipes"]) == list(recipes)
    for timing in scope["recipes"].values():
        assert set(timing) == RECIPE
        assert 0 < timing["p50_ms"] <= timing["p95_ms"]
        over = timing["p50_ms"] / embed["p50_ms"]
        assert timing["over_embed_p50"] == pytest.approx(over, abs=1e-3)
        spread = timing["p95_ms"] / timing["p50_ms"]
        assert timing["p95_over_p50"] == pytest.approx(spread, abs=1e-3)
    steps = scope["steps_ms"]
    assert isinstance(steps, dict)
    assert all(isinstance(k, str) and isinstance(v, float) and v >= 0 for k, v in steps.items())


def test_run_latency_times_both_synthetic_scopes(embedder: Embedder) -> None:
    seen: list[str] = []
    report = run_latency(
        None, ("bm25", "default", "bm25"), user_size=60, rounds=3, embedder=embedder,
        conversation_turns=40, progress=False, on_scope=lambda s: seen.append(s["scope"]),
    )  # fmt: skip
    assert (report["benchmark"], report["rounds"], report["warmup"]) == ("latency", 3, WARMUP)
    assert report["embedder"] == embedder.model_id
    assert seen == ["conversation", "user"]
    conversation, user = report["scopes"]
    _check_scope(conversation, "conversation", 40, ["bm25", "default"])  # repeats asked once
    _check_scope(user, "user", 60, ["bm25", "default"])
    assert conversation["source"] == user["source"] == "synthetic"
    assert conversation["queries"] == user["queries"] == 3


def test_run_latency_asks_a_dataset_conversation_its_own_questions(embedder: Embedder) -> None:
    dataset = load_dataset(LOCOMO)
    report = run_latency(dataset, ("bm25",), user_size=0, rounds=7, embedder=embedder,
                         progress=False)  # fmt: skip
    (scope,) = report["scopes"]  # user size 0: no user scope
    # conv-a (18 turns, 4 questions) is closer to 600 turns than conv-b (12 turns)
    _check_scope(scope, "conversation", 18, ["bm25"])
    assert scope["source"] == "locomo_tiny.json conv-a"
    assert scope["queries"] == 4  # its 4 questions, asked in turn over the 7 rounds


def test_synthetic_queries_never_repeat_and_are_the_same_every_run() -> None:
    # a repeated query would find its keyword matches and records kept, and look faster
    queries = distinct_queries(150)
    assert len(set(queries)) == 150
    assert distinct_queries(150) == queries


def test_pick_conversation_takes_the_closest_size_with_questions() -> None:
    dataset = load_dataset(LOCOMO)
    assert pick_conversation(dataset).id == "conv-a"
    assert pick_conversation(dataset, 13).id == "conv-b"
    assert pick_conversation(dataset, 15).id == "conv-a"  # 3 turns from each: the first one
    first, second = dataset.conversations
    mute = replace(dataset, conversations=(replace(first, questions=()), second))
    assert pick_conversation(mute, 600).id == "conv-b"  # nothing to ask conv-a
    with pytest.raises(DataFormatError, match="no conversation has a question"):
        pick_conversation(replace(mute, conversations=mute.conversations[:1]))


def test_mean_steps_reference_values() -> None:
    breakdowns = [
        {"embed": 3.0, "bm25": 1.0, "total": 5.0},
        None,  # a search that reported no breakdown is left out
        {"embed": 5.0, "multihop": 2.0, "bm25": 2.0, "total": 10.0},
    ]
    means = mean_steps(breakdowns)
    # first-seen order; a step missing from one breakdown counts as 0 ms there
    assert list(means) == ["embed", "bm25", "total", "multihop"]
    assert means == {"embed": 4.0, "bm25": 1.5, "total": 7.5, "multihop": 1.0}
    assert mean_steps([{"fetch": 1}, {"fetch": 2}, {"fetch": 2}]) == {"fetch": 1.667}
    assert mean_steps([None, None]) == mean_steps([]) == {}


def test_run_latency_rejects_an_unknown_recipe_before_any_work(embedder: Embedder) -> None:
    with pytest.raises(InvalidInputError, match="unknown recipe 'bm52'"):
        run_latency(None, ("default", "bm52"), user_size=10**6, embedder=embedder,
                    progress=False)  # fmt: skip


# ------------------------------------------------------------------------------ CLI


def test_cli_bench_latency_table_and_out(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    args = ["--db", str(tmp_path / "user.db"), "bench", "latency", "--data", str(LONGMEMEVAL),
            "--user-size", "0", "--rounds", "2", "--recipe", "bm25", "--recipe", "hybrid",
            "--no-progress", "--out", str(out)]  # fmt: skip
    result = _runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    header, run, *table = result.stdout.strip().splitlines()
    assert header.startswith("latency  conversation scope: 7 turns")
    assert "longmemeval_tiny.json q-user-1" in header and "2 rounds after 5 warm-up" in run
    assert table[0].split() == ["search", "p50", "p95", "x", "embed", "p95/p50"]
    assert [line.split()[0] for line in table[2:-1]] == ["embed", "bm25", "hybrid"]
    assert table[-1].startswith("default steps, mean ms: ")
    report = json.loads(out.read_text(encoding="utf-8"))
    (scope,) = report["scopes"]
    _check_scope(scope, "conversation", 7, ["bm25", "hybrid"])
    assert not (tmp_path / "user.db").exists()  # never the user's database


def test_cli_bench_latency_json() -> None:
    args = ["--json", "bench", "latency", "--data", str(LOCOMO), "--user-size", "25",
            "--rounds", "1", "--recipe", "default", "--no-progress"]  # fmt: skip
    result = _runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["scope"] for s in report["scopes"]] == ["conversation", "user"]
    _check_scope(report["scopes"][1], "user", 25, ["default"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "default", "--recipe", "bm52"], "unknown recipe 'bm52'"),
        (["--user-size", "-1"], "--user-size"),
        (["--rounds", "0"], "--rounds"),
        (["--data", "no-such-file.json"], "does not exist"),
    ],
)
def test_cli_bench_latency_rejects_bad_options_at_once(args: list[str], message: str) -> None:
    result = _runner().invoke(main, ["bench", "latency", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.output and not result.stdout


def test_cli_bench_latency_reports_a_bad_data_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"what": 1}]', encoding="utf-8")
    result = _runner().invoke(main, ["bench", "latency", "--data", str(bad), "--no-progress"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and "matches neither layout" in result.stderr
