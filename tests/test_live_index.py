"""The backend-neutral live index: BM25 against reference values, incremental updates that
equal a rebuild, and writes that cost the next search only the rows they wrote."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remem import Memory
from remem.annotations import keyword_terms
from remem.embedders.base import Embedder
from remem.index import bm25
from remem.index.live import LiveScope
from remem.stores.base import Changes, IndexRow, MemoryFilter, ScopeKey

T0 = datetime(2024, 3, 1, 9, 0)


def row(memory_id: str, text: str, session: str = "s1", position: int = 0, **kw: Any) -> IndexRow:
    vector = kw.pop("vector", None)
    return IndexRow(
        id=memory_id, kind=kw.pop("kind", "turn"), user_id="u", agent_id="",
        session_id=session, position=position, occurred_at=kw.pop("occurred_at", T0),
        created_at=T0, expires_at=None, current=kw.pop("current", True),
        metadata=kw.pop("metadata", {}), attributes=kw.pop("attributes", {}), text=text,
        index_text=text, vector=vector,
    )  # fmt: skip


# -- BM25 reference values ------------------------------------------------------------------


def test_idf_is_lucenes_and_stays_positive() -> None:
    assert bm25.idf(10, 1) == pytest.approx(math.log(1 + 9.5 / 1.5))
    assert bm25.idf(10, 10) == pytest.approx(math.log(1 + 0.5 / 10.5))
    assert bm25.idf(10, 10) > 0
    assert bm25.idf(2, 1) > bm25.idf(2, 2) > 0


def test_term_scores_match_the_formula() -> None:
    tf, length = np.array([1.0, 3.0]), np.array([4.0, 12.0])
    got = bm25.term_scores(tf, length, 8.0, 2.0, k1=1.2, b=0.75)
    want = [
        2.0 * t * 2.2 / (t + 1.2 * (0.25 + 0.75 * n / 8.0)) for t, n in zip(tf, length, strict=True)
    ]
    np.testing.assert_allclose(got, want)


def reference_bm25(docs: dict[str, str], query: list[str]) -> dict[str, float]:
    """Textbook BM25 (Lucene idf, turn parameters), written out for comparison."""
    bags = {d: Counter(keyword_terms(t)) for d, t in docs.items()}
    mean = sum(sum(b.values()) for b in bags.values()) / len(bags)
    wanted = list(dict.fromkeys(t for q in query for t in keyword_terms(q)))
    out: dict[str, float] = {}
    for d, bag in bags.items():
        length = sum(bag.values())
        score = 0.0
        for term in wanted:
            if bag[term]:
                df = sum(1 for b in bags.values() if b[term])
                idf = math.log(1 + (len(bags) - df + 0.5) / (df + 0.5))
                k1, b = bm25.TURN_K1, bm25.TURN_B
                score += idf * bag[term] * (k1 + 1) / (bag[term] + k1 * (1 - b + b * length / mean))
        if score > 0:
            out[d] = score
    return out


DOCS = {
    "a": "Ana: I moved to Lisbon in May [8 May 2023]",
    "b": "Bo: Lisbon is lovely, the cafés are great",
    "c": "Ana: My sister Maria works at the hospital in Porto",
    "d": "Bo: I ran 10 km yesterday [7 May 2023]",
    "e": "Ana: running every morning, café au lait after",
}


@pytest.mark.parametrize(
    "query", [["lisbon"], ["cafe"], ["running", "2023"], ["maria", "porto", "lisbon"], ["10"]]
)
def test_keyword_search_equals_reference_bm25(query: list[str]) -> None:
    index = LiveScope()
    index.apply(Changes(1, tuple(row(k, v) for k, v in DOCS.items())))
    flt = MemoryFilter("default")
    got = dict(index.keyword_search(query, index.mask(flt, T0), 10))
    want = reference_bm25(DOCS, query)
    assert got.keys() == want.keys()
    for key, score in want.items():
        assert got[key] == pytest.approx(score)


def test_keyword_terms_fold_case_diacritics_and_stems() -> None:
    assert keyword_terms("Cafés RUNNING, Nate's 2023!") == ["cafe", "run", "nate", "s", "2023"]


# -- incremental equals rebuilt -----------------------------------------------------------------

WORDS = ["lisbon", "porto", "dog", "pottery", "jazz", "sister", "hospital", "run", "may", "beach"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
ops = st.lists(
    st.tuples(st.sampled_from(["write", "delete"]), st.integers(0, 7), texts,
              st.integers(0, 3)),
    min_size=1, max_size=25,
)  # fmt: skip


def _vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(8).astype(np.float32)


def _search_all(index: LiveScope) -> tuple[Any, ...]:
    mask = index.mask(MemoryFilter("default"), T0)
    keyword = [(i, round(s, 9)) for q in WORDS for i, s in index.keyword_search([q], mask, 50)]
    dense = [(i, round(s, 6)) for i, s in index.vector_search(_vector(99), mask, 50)]
    sessions = [(k, round(s, 9)) for k, s in index.session_search(WORDS, 10)]
    links = sorted((index.ids[m], e, w) for m, e, w in index.mentions)
    alive = np.flatnonzero(mask)
    source, adjacent = index.neighbour_rows(alive)
    pairs = sorted(
        (index.ids[alive[i]], index.ids[r]) for i, r in zip(source, adjacent, strict=True)
    )
    return sorted(keyword), dense, sessions, links, pairs


@settings(max_examples=60, deadline=None)
@given(ops=ops, split=st.integers(1, 5))
def test_taking_in_changes_equals_building_from_scratch(
    ops: list[tuple[str, int, str, int]], split: int
) -> None:
    """Writes and deletes applied in several batches give the same index (every search
    result and score) as one index built from the final state."""
    live = LiveScope()
    state: dict[str, IndexRow] = {}
    pending_rows: dict[str, IndexRow] = {}
    pending_gone: list[str] = []
    revision = 0
    for n, (op, key, text, session) in enumerate(ops):
        memory_id = f"m{key}"
        if op == "write":
            entities = [{"key": w, "name": w, "kind": "name"} for w in text.split()[:2]]
            new = row(memory_id, text, f"s{session}", position=key + 1, vector=_vector(key + n),
                      attributes={"entities": entities})  # fmt: skip
            state[memory_id] = pending_rows[memory_id] = new
        elif memory_id in state:
            del state[memory_id]
            pending_rows.pop(memory_id, None)
            pending_gone.append(memory_id)
        if (n + 1) % split == 0 or n == len(ops) - 1:
            revision += 1
            live.apply(Changes(revision, tuple(pending_rows.values()), tuple(pending_gone)))
            pending_rows, pending_gone = {}, []
    rebuilt = LiveScope()
    rebuilt.apply(Changes(revision, tuple(sorted(state.values(), key=lambda r: r.id))))
    got, want = _search_all(live), _search_all(rebuilt)
    assert sorted(got[0]) == sorted(want[0])
    assert sorted(got[1]) == sorted(want[1])
    assert got[2] == want[2]
    assert [(m, w) for m, _, w in got[3]] == [(m, w) for m, _, w in want[3]]
    assert got[4] == want[4]  # adjacent turns


# -- a write costs the next search only what it wrote --------------------------------------------


def test_a_write_hands_the_index_only_its_rows(tmp_path: Path, embedder: Embedder) -> None:
    memory = Memory(tmp_path / "m.db", embedder=embedder)
    for s in range(3):
        memory.add([{"content": f"session {s} line {i} about pottery"} for i in range(10)],
                   user_id="ana", session_id=f"s{s}", timestamp=T0 + timedelta(days=s))  # fmt: skip
    memory.search("pottery", user_id="ana")  # the index is now current
    key = ScopeKey("default", "ana")
    with memory.store.snapshot() as revision:
        assert memory.store.changes(key, revision).rows == ()
    memory.add("and now jazz", user_id="ana", session_id="s2")
    changes = memory.store.changes(key, revision)
    assert [r.text for r in changes.rows] == ["user: and now jazz"]
    assert memory.search("jazz", user_id="ana")[0].text == "user: and now jazz"
    memory.close()


def test_add_reads_the_session_only_when_its_summary_is_due(
    tmp_path: Path, embedder: Embedder
) -> None:
    memory = Memory(tmp_path / "m.db", embedder=embedder)
    reads: list[int] = []
    session_turns = memory.store.session_turns

    def counted(scope: Any) -> Any:
        found = session_turns(scope)
        reads.append(len(found))
        return found

    memory.store.session_turns = counted  # type: ignore[method-assign]
    for i in range(40):
        memory.add(f"message number {i}", user_id="ana", session_id="long")
    assert len(reads) == 8  # summaries at 4, 8, 12, 16, 20, 25, 31, 38 turns: not 40 reads
    summaries = memory.list(user_id="ana", kinds="summary")
    assert len(summaries) == 1 and summaries[0].attributes["turns"] >= 30
    memory.close()


def test_entities_known_to_another_writer_are_found(tmp_path: Path, embedder: Embedder) -> None:
    """Each Memory remembers the entities the store answered; one learnt elsewhere (another
    process) is still found, because unknown keys are asked of the store."""
    first = Memory(tmp_path / "m.db", embedder=embedder)
    second = Memory(tmp_path / "m.db", embedder=embedder)
    second.add("I like tea", user_id="ana")  # second's table of seen entities is warm
    first.add("I met Oscar at the Tate Modern yesterday", user_id="ana")
    added = second.add("oscar says tate modern is closed", user_id="ana")
    keys = {e["key"] for e in added.memories[0].attributes["entities"]}
    assert {"oscar", "tate modern"} <= keys
    first.close()
    second.close()


def test_kept_keyword_matches_stay_within_their_bound() -> None:
    """However many different queries arrive between writes, the matches kept for them
    stay within four rows per row of the scope (plus a small floor), newest kept."""
    index = LiveScope()
    words = [f"w{i}" for i in range(400)]
    rows = [row(f"m{i}", " ".join(words[i % 400 : i % 400 + 50]), position=i + 1)
            for i in range(2000)]  # fmt: skip
    index.apply(Changes(1, tuple(rows)))
    mask = index.mask(MemoryFilter("default"), T0)
    bound = 4 * len(index) + 65536
    for n in range(1, 400):
        index.keyword_scores(words[:n], mask)
        assert index._matches._used <= bound
    latest = tuple(keyword_terms(" ".join(words[:399])))
    assert index._matches.get(latest) is not None
    index.apply(Changes(2, (row("m-new", "w0 fresh"),)))
    assert index._matches._used == 0  # a change drops every kept match


def test_scope_indexes_beyond_the_memory_budget_are_dropped_oldest_first(
    tmp_path: Path, embedder: Embedder
) -> None:
    memory = Memory(tmp_path / "m.db", embedder=embedder)
    for user in ("ana", "bo", "cy"):
        memory.add([{"content": f"{user} line {i} about pottery"} for i in range(20)],
                   user_id=user)  # fmt: skip
    memory.search("pottery", user_id="ana")
    one = next(iter(memory.index._entries.values())).scope.nbytes()
    assert one > 0
    memory.index.budget = int(2.5 * one)  # room for two scopes of this size
    for user in ("ana", "bo", "cy"):
        assert memory.search("pottery", user_id=user)[0].memory.scope.user_id == user
    kept = [key.user_id for key in memory.index._entries]
    assert kept == ["bo", "cy"]  # ana's, the least recently searched, was dropped
    assert memory.search("pottery", user_id="ana")[0].memory.scope.user_id == "ana"  # rebuilt
    assert [key.user_id for key in memory.index._entries] == ["cy", "ana"]
    memory.close()


def test_index_memory_budget_is_checked(tmp_path: Path, embedder: Embedder) -> None:
    from remem import InvalidInputError, MemoryConfig, StoreConfig

    for bad in (0, -1, 1.5, True):
        config = MemoryConfig(StoreConfig(path=str(tmp_path / "m.db")), index_memory_mb=bad)
        with pytest.raises(InvalidInputError, match="index_memory_mb"):
            Memory(config, embedder=embedder)
    assert not (tmp_path / "m.db").exists()  # refused before anything was opened


def test_an_index_full_of_dead_rows_is_rebuilt_from_the_store(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remem.index import cache

    monkeypatch.setattr(cache, "COMPACT_AFTER", 4)
    memory = Memory(tmp_path / "m.db", embedder=embedder)
    ids = [r.id for r in memory.add([{"content": f"note {i} about jazz"} for i in range(3)],
                                    user_id="ana").memories]  # fmt: skip
    memory.search("jazz", user_id="ana")
    index = next(iter(memory.index._entries.values()))
    sizes = []
    for n in range(6):  # each update leaves the memory's old row dead
        memory.update(ids[n % 3], text=f"note {n} about jazz, edited")
        memory.search("jazz", user_id="ana")
        sizes.append((len(index.scope), index.scope.dead_rows()))
    assert max(dead for _, dead in sizes) <= 4  # rebuilt once dead rows reached the bound
    assert any(dead == 0 for _, dead in sizes[3:])
    hits = memory.search("edited", user_id="ana", recipe="bm25")
    assert sorted(h.memory.id for h in hits) == sorted(ids)
    assert {h.text for h in hits} == {"note 3 about jazz, edited", "note 4 about jazz, edited",
                                      "note 5 about jazz, edited"}  # fmt: skip
    memory.close()


def test_multihop_from_hits_that_all_score_zero_adds_nothing() -> None:
    """Dense min-max gives the weakest hit 0; when every seed scores 0, the entities
    they name weigh 0 and the round must step aside (it once divided by that 0)."""
    from remem.retrieval.pipeline import multihop_step
    from remem.retrieval.query import analyze
    from remem.retrieval.recipes import get_recipe
    from remem.retrieval.run import Ranking, Run

    maria = {"entities": [{"key": "maria", "name": "Maria", "kind": "name"}]}
    index = LiveScope()
    rows = (row("m1", "my sister Maria", attributes=maria),
            row("m2", "Maria works at the hospital", attributes=maria))  # fmt: skip
    index.apply(Changes(1, rows))
    run = Run(None, index, None, "where does my sister work", MemoryFilter("default"),  # type: ignore[arg-type]
              get_recipe("default"), T0)  # fmt: skip
    run.analysis = analyze(run.query, T0, index.entity_kinds)
    ranking = Ranking(len(index))
    ranking.join(np.array([0, 1]), np.array([0.0, 0.0]))
    multihop_step(run, ranking)
    assert ranking.steps == [] and ranking.scores.tolist() == [0.0, 0.0]
