"""The live and concurrency benches, and the ingest split of the LoCoMo bench, at tiny sizes.

Speed is not asserted here (it is what the benches report); the structure of the reports
and the consistency of their counts are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from remem.bench.concurrency import run_concurrency
from remem.bench.datasets import load_dataset
from remem.bench.live import SyntheticChat, live_queries, run_live
from remem.bench.runner import IngestTiming, ingest, run
from remem.cli.main import main
from remem.config import EmbedderConfig, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder, Vectors
from remem.engine import Memory
from remem.settings import ENV_VARS

LOCOMO = Path(__file__).parent / "fixtures" / "locomo_tiny.json"
LATENCY = {"p50_ms", "p95_ms"}
SEARCH = LATENCY | {"took_p50_ms", "took_p95_ms"}


def _runner() -> CliRunner:
    return CliRunner(env={name: None for name in ENV_VARS})


# ----------------------------------------------------------------------------- live


def test_synthetic_chat_is_deterministic_varied_and_moves_forward() -> None:
    first = list(SyntheticChat().sessions(300))
    assert first == list(SyntheticChat().sessions(300))
    sizes = [len(messages) for _, messages in first]
    assert sum(sizes) == 300
    assert all(20 <= size <= 40 for size in sizes[:-1]) and 1 <= sizes[-1] <= 40
    assert [session for session, _ in first] == [f"s{n}" for n in range(1, len(first) + 1)]
    messages = [m for _, session in first for m in session]
    stamps = [m["timestamp"] for m in messages]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert {m["name"] for m in messages} == {"Maya", "Sam"}
    assert len({m["content"] for m in messages}) > 250  # hardly any repeated sentence
    queries = live_queries(30)
    assert queries == live_queries(30) and len(set(queries)) >= 28


def _check_size(result: dict[str, Any], size: int) -> None:
    assert result["size"] == size
    assert result["prefill"]["turns"] == size
    assert result["memories_by_kind"]["turn"] == size
    assert result["memories"] == sum(result["memories_by_kind"].values())
    assert set(result["embed_query"]) == LATENCY and set(result["add"]) == LATENCY
    for part in ("warm_search", "search_after_add"):
        timings = result[part]
        assert set(timings) == SEARCH
        assert 0 < timings["p50_ms"] <= timings["p95_ms"]
    ratio = result["search_after_add"]["p50_ms"] / result["warm_search"]["p50_ms"]
    assert result["after_add_over_warm"] == pytest.approx(ratio, rel=0.01)


def test_run_live_measures_each_size_on_a_fresh_store(embedder: Embedder) -> None:
    seen: list[int] = []
    report = run_live((30, 55), embedder, "bm25", rounds=3, warmup=1, progress=False,
                      on_size=lambda r: seen.append(r["size"]))  # fmt: skip
    assert (report["benchmark"], report["recipe"], report["rounds"]) == ("live", "bm25", 3)
    assert report["embedder"] == embedder.model_id
    assert seen == [30, 55]
    for result, size in zip(report["sizes"], (30, 55), strict=True):
        _check_size(result, size)


def test_cli_bench_live_table_json_and_out(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    args = ["--db", str(tmp_path / "user.db"), "bench", "live", "--sizes", "40", "--rounds", "2"]
    result = _runner().invoke(main, [*args, "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "after_add_p50" in result.stdout and "40 turns" in result.stdout
    _check_size(json.loads(out.read_text(encoding="utf-8"))["sizes"][0], 40)
    assert not (tmp_path / "user.db").exists()  # never the user's database
    as_json = _runner().invoke(main, ["--json", "bench", "live", "--sizes", "25", "--rounds",
                                      "1", "--recipe", "bm25", "--no-progress"])  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["recipe"] == "bm25"


@pytest.mark.parametrize("sizes", ["", "0", "ten", "10,-5"])
def test_cli_bench_live_rejects_bad_sizes(sizes: str) -> None:
    result = _runner().invoke(main, ["bench", "live", "--sizes", sizes])
    assert result.exit_code == 2 and "--sizes" in result.stderr


# ---------------------------------------------------------------------- concurrency


def test_run_concurrency_counts_are_consistent() -> None:
    report = run_concurrency(writers=2, searchers=1, adds_per_writer=4, progress=False)
    assert report["processes"] == {"reported": 3, "missing": 0, "crashed": []}
    adds, searches, found = report["adds"], report["searches"], report["check"]
    assert adds["calls"] == 8 and isinstance(adds["failed"], int)
    assert isinstance(searches["failed"], int) and searches["searches"] >= searches["failed"]
    assert searches["failed"] == sum(e["count"] for e in searches["errors"].values())
    # every acknowledged message is there exactly once; a failed add stored nothing
    assert (found["lost"], found["duplicated"], found["unacknowledged_stored"]) == (0, 0, 0)
    assert found["stored_messages"] == found["acknowledged_messages"] >= 8
    assert report["stats"]["messages"] == found["stored_messages"]
    assert report["stats"]["memories_by_kind"]["turn"] == found["stored_messages"]
    extra = found["sessions_with_duplicate_summaries"]
    assert found["duplicate_current_summaries"] == len(extra)
    assert found["extra_current_summaries"] == sum(n - 1 for n in extra.values())


def test_cli_bench_concurrency_prints_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "conc.json"
    args = ["bench", "concurrency", "--writers", "1", "--searchers", "1", "--adds-per-writer",
            "3", "--users", "1", "--sessions", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    result = _runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "0 lost, 0 duplicated" in result.stdout and "searches:" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["writers"], report["searchers"], report["adds_per_writer"]) == (1, 1, 3)
    assert report["seconds"] is None and report["adds"]["calls"] == 3


# ------------------------------------------------------------------------ ingest split


def test_ingest_timing_report_reference_values() -> None:
    assert IngestTiming(100, 2.0, 1.6, 1.8).report() == {
        "turns": 100, "seconds": 2.0, "turns_per_second": 50.0, "embedder_seconds": 1.6,
        "embedder_turns_per_second": 62.5, "speed_vs_embedder": 0.8, "other_seconds": 0.4,
        "overhead": 0.25, "embedding_in_add_seconds": 1.8, "rest_in_add_seconds": 0.2,
        "rest_share": 0.1,
    }  # fmt: skip


class Recording(Embedder):
    """The real embedder, noting what each ``embed`` call was given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id, self.dimensions = inner.model_id, inner.dimensions
        self.max_batch = inner.max_batch
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        return super().embed(texts)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_batch(texts)


def test_raw_embedder_timing_sends_what_ingest_embeds(tmp_path: Path, embedder: Embedder) -> None:
    dataset = load_dataset(LOCOMO)
    recording = Recording(embedder)
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "b.db")), EmbedderConfig())
    with Memory(config, embedder=recording) as memory:
        timing = ingest(memory, dataset, progress=False, paired=True)
    assert timing.embed_seconds > 0 and timing.embedding_in_add > 0
    sessions = sum(len({t.session for t in c.turns}) for c in dataset.conversations)
    assert len(recording.calls) == 2 * sessions  # per session: the raw pass, then the add
    raw, during = recording.calls[0::2], recording.calls[1::2]
    # the engine's batch per session is the turn texts, plus the summary when it has one
    for turns, sent in zip(raw, during, strict=True):
        assert sent[: len(turns)] == turns and len(sent) - len(turns) in (0, 1)


def test_locomo_report_has_the_ingest_split(embedder: Embedder) -> None:
    ingest_ = run(LOCOMO, ("bm25",), embedder, progress=False)[0]["ingest"]
    assert ingest_["turns"] == 30 and ingest_["embedder_seconds"] > 0
    assert ingest_["other_seconds"] == pytest.approx(
        ingest_["seconds"] - ingest_["embedder_seconds"], abs=0.002
    )
    assert ingest_["speed_vs_embedder"] == pytest.approx(
        ingest_["turns_per_second"] / ingest_["embedder_turns_per_second"], rel=0.02
    )
