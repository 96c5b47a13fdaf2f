"""Approximate vector search in big scopes (``index.ann``): the dense channel of a scope
past ``MIN_ROWS`` takes its candidates from an HNSW graph and rescores them exactly.

The threshold is lowered so a scope of a few hundred real memories (the real embedder,
a real SQLite file) crosses it; each test compares against the same search with the
graph switched off.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from remem import Memory
from remem.bench.live import SyntheticChat, live_queries
from remem.embedders.base import Embedder
from remem.index import ann
from remem.retrieval.run import HIT_KINDS
from remem.stores.base import MemoryFilter

pytest.importorskip("usearch", reason="approximate search needs the [ann] extra (usearch)")

TURNS = 600
QUERIES = list(dict.fromkeys(live_queries(200)))[:40]


@pytest.fixture(scope="module")
def chat_db(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("ann") / "m.db"
    with Memory(path, embedder=embedder) as memory:
        for session, messages in SyntheticChat().sessions(TURNS):
            memory.add(messages, user_id="maya", session_id=session)
    return path


@pytest.fixture()
def memory(chat_db: Path, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """A copy of the chat for each test (some of them write)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{chat_db}{suffix}").exists():
            shutil.copy(f"{chat_db}{suffix}", tmp_path / f"m.db{suffix}")
    with Memory(tmp_path / "m.db", embedder=embedder) as opened:
        yield opened


def _dense(
    memory: Memory, query: str, *, graph: bool, **options: object
) -> list[tuple[str, float]]:
    """The dense recipe's hits (id, cosine), with the graph on (threshold 100 rows) or off."""
    ann.MIN_ROWS = 100 if graph else 10**9
    memory.index.clear()  # rebuilt with (or without) the graph
    hits = memory.search(query, user_id="maya", recipe="dense", limit=10, explain=True,
                         **options)  # type: ignore[arg-type]  # fmt: skip
    searched = (hits.explain or {})["dense_search"]
    assert searched == ("graph" if graph and not options and ann._load_usearch() else "exact")
    return [(h.memory.id, h.scores["dense"]) for h in hits]


@pytest.fixture(autouse=True)
def _restore_threshold() -> Iterator[None]:
    before = ann.MIN_ROWS
    yield
    ann.MIN_ROWS = before


def test_the_graph_finds_what_the_exact_scan_finds_with_exact_scores(memory: Memory) -> None:
    recalled, asked = 0, 0
    for query in QUERIES:
        exact = dict(_dense(memory, query, graph=False))
        approximate = _dense(memory, query, graph=True)
        assert len(approximate) == len(exact) == 10
        for memory_id, score in approximate:
            if memory_id in exact:
                assert score == pytest.approx(exact[memory_id], abs=1e-6)  # rescored exactly
        recalled += len(exact.keys() & {m for m, _ in approximate})
        asked += len(exact)
    assert recalled / asked >= 0.95


def test_a_narrow_filter_falls_back_to_the_exact_scan(memory: Memory) -> None:
    """A filter admitting under ``MIN_SHARE`` of the scope: the graph would find too few
    of its rows, so the exact scan runs and the results are identical."""
    session = {"session_id": "s1"}
    for query in QUERIES[:5]:
        assert _dense(memory, query, graph=True, **session) == _dense(
            memory, query, graph=False, **session
        )


def test_rows_written_after_the_graph_was_built_are_found(memory: Memory) -> None:
    _dense(memory, QUERIES[0], graph=True)  # builds the graph
    memory.add("I adopted a three-legged tortoise named Bartholomew", user_id="maya",
               session_id="late")  # fmt: skip
    (best, *_) = memory.search("my tortoise Bartholomew", user_id="maya", recipe="dense")
    assert "Bartholomew" in best.text


def test_a_changed_memory_is_found_only_as_it_is_now(memory: Memory) -> None:
    (hit, *_) = _dense(memory, QUERIES[1], graph=True)
    memory.update(hit[0], text="user: a sentence about quantum chromodynamics")
    found = memory.search(QUERIES[1], user_id="maya", recipe="dense", limit=50)
    assert hit[0] not in {h.memory.id for h in found}
    (again, *_) = memory.search("quantum chromodynamics", user_id="maya", recipe="dense")
    assert again.memory.id == hit[0] and "quantum" in again.text


def test_without_usearch_the_scan_is_exact(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "_load_usearch", lambda: None)
    for query in QUERIES[:5]:
        assert _dense(memory, query, graph=True) == _dense(memory, query, graph=False)


def test_identical_vectors_share_one_node_and_every_copy_is_found(memory: Memory) -> None:
    """The same text said again has the same vector: the graph holds it once, and every
    memory carrying it is a candidate, the one whose node it is deleted or not."""
    said = "sounds good, talk to you tomorrow at the pottery studio"
    copies = [memory.add(said, user_id="maya", session_id=f"again-{n}").memories[0].id
              for n in range(30)]  # fmt: skip
    _dense(memory, QUERIES[0], graph=True)  # builds the graph
    with memory.index.open(_maya(memory)) as scope:
        nodes, rows = scope.graph_nodes(), len(scope)
    assert 0 < nodes <= rows - len(copies) + 1
    late = memory.add(said, user_id="maya", session_id="again-late").memories[0].id
    memory.delete(copies[0])  # the copy the graph holds as a node
    found = memory.search(said, user_id="maya", recipe="dense", limit=40, explain=True)
    assert (found.explain or {})["dense_search"] == "graph"
    assert {*copies[1:], late} <= {h.memory.id for h in found}
    assert copies[0] not in {h.memory.id for h in found}


def _maya(memory: Memory) -> MemoryFilter:
    return MemoryFilter(namespace=memory.namespace, user_id="maya", kinds=HIT_KINDS)


def test_a_filter_refusing_the_nearest_rows_asks_the_graph_for_more(memory: Memory) -> None:
    """The rows nearest the question are old ones the time filter refuses: the graph is
    asked again for more candidates instead of the whole scope being scanned."""
    said = [{"role": "user", "content": f"my tortoise Bartholomew ate {n} strawberries today"}
            for n in range(500)]  # more than the graph is first asked for  # fmt: skip
    memory.add(said, user_id="maya", session_id="old", timestamp="2001-01-01T00:00:00")
    question, since = "what did the tortoise Bartholomew eat?", "2010-01-01"
    exact = _dense(memory, question, graph=False, since=since)
    ann.MIN_ROWS = 100
    memory.index.clear()
    found = memory.search(question, user_id="maya", recipe="dense", limit=10, explain=True,
                          since=since)  # fmt: skip
    assert (found.explain or {})["dense_search"] == "graph"
    assert [h.memory.id for h in found] == [memory_id for memory_id, _ in exact]
    assert [h.scores["dense"] for h in found] == pytest.approx([score for _, score in exact])
    assert all("Bartholomew" not in h.text for h in found)


def test_summaries_are_left_out_of_the_graph_and_searched_exactly(memory: Memory) -> None:
    """Session summaries are not graph nodes (searches return them only when asked): a
    search asking for them scans the scope exactly and finds them as before."""
    summaries = memory.stats().memories_by_kind.get("summary", 0)
    assert summaries > 0
    _dense(memory, QUERIES[0], graph=True)  # builds the graph
    with memory.index.open(_maya(memory)) as scope:
        assert 0 < scope.graph_nodes() <= len(scope) - summaries
    kinds = {"kinds": ["turn", "summary"]}
    for query in QUERIES[:5]:
        found = _dense(memory, query, graph=True, **kinds)  # asserts the scan was exact
        assert found == _dense(memory, query, graph=False, **kinds)
