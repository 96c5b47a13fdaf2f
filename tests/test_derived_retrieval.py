"""Retrieval over derived memories: LoCoMo observations loaded as facts, fact hits counted
through the turns they cite, the ``cites`` and ``derived`` recipe steps, and
``remem bench locomo --facts-from-observations`` end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import database_url  # tests/conftest.py (tests/ is on sys.path)

from remem import Memory, Recipe
from remem.bench.datasets import load_dataset, load_locomo
from remem.bench.runner import cited_turns, run
from remem.cli.main import main
from remem.embedders.base import Embedder
from remem.errors import DataFormatError, InvalidInputError
from remem.formation.derived import Candidate
from remem.index.live import LiveScope
from remem.models import MemoryRecord, Scope, SearchHit
from remem.settings import ENV_VARS
from remem.stores.base import Changes, IndexRow

FIXTURE = Path(__file__).parent / "fixtures" / "locomo_observations.json"
DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"
T0 = datetime(2023, 5, 8, 13, 56)
KEYS = ("turn_recall_all@10", "turn_recall_any@5", "session_recall_any@5")


# -------------------------------------------------------------------------------- loader


def test_observations_load_as_facts_citing_their_turns() -> None:
    dataset = load_locomo(FIXTURE, observations=True)
    facts = {f.text: f for f in dataset.conversations[0].facts}
    assert len(facts) == 7
    river = facts["Ana's new flat is five minutes from the river."]
    assert river.cites == ("D1:4", "D1:5") and river.session == "1"
    assert river.timestamp == T0  # its session's date
    assert facts["Ben plays the cello again."].cites == ("D2:5",)  # "D2:5; D9:9", split
    assert facts["Ana thinks the sea suits Clara."].timestamp == datetime(2023, 6, 2, 10, 37)
    # "D9:9" names no turn (dropped); "D7:1" was the only citation of its fact (skipped)
    assert (dataset.skipped_facts, dataset.dropped_citations) == (1, 2)
    assert "Ben mentioned a trip he never took." not in facts
    plain = load_dataset(FIXTURE)
    assert plain.conversations[0].facts == () and plain.dropped_citations == 0


def _broken(tmp_path: Path, change: Any) -> Path:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    change(data[0])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _entry(item: dict[str, Any], value: Any) -> None:
    item["observation"]["session_1_observation"]["Ana"][0] = value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda item: item.pop("observation"), "missing key 'observation'"),
        (lambda item: _entry(item, ["Ana moved.", "D1:3", "extra"]), "got 3 items"),
        (lambda item: _entry(item, [42, "D1:3"]), "text: should be a string"),
        (lambda item: _entry(item, ["  ", "D1:3"]), "text is empty"),
        (lambda item: _entry(item, ["Ana moved.", 13]), "dia_id: should be a string"),
        (lambda item: _entry(item, "Ana moved. D1:3"), "should be a list"),
    ],
)
def test_malformed_observations_are_refused_with_the_place(
    tmp_path: Path, change: Any, message: str
) -> None:
    path = _broken(tmp_path, change)
    load_dataset(path)  # without observations asked for, the rest of the file is fine
    with pytest.raises(DataFormatError) as err:
        load_dataset(path, observations=True)
    assert message in str(err.value) and "conv-obs" in str(err.value)
    assert "observation" in str(err.value)


# ---------------------------------------------------------------------------- scoring


def _hit(kind: str, sources: tuple[str, ...], rank: int) -> SearchHit:
    record = MemoryRecord(f"m{rank}", kind, "text", Scope("u"), sources, T0, T0, T0)
    return SearchHit(record, 1.0 / rank, {}, rank)


def test_fact_hits_count_through_the_turns_they_cite_in_order() -> None:
    hits = [
        _hit("turn", ("D1:2",), 1),
        _hit("fact", ("D1:5", "D1:4"), 2),  # a fact citing two turns, in its order
        _hit("turn", ("D1:4",), 3),  # already counted through the fact
        _hit("fact", ("D2:3",), 4),
        _hit("fact", ("D1:2", "D2:3"), 5),  # nothing new
        _hit("turn", ("D2:1",), 6),
    ]
    assert cited_turns(hits) == ["D1:2", "D1:5", "D1:4", "D2:3", "D2:1"]
    assert cited_turns([]) == []


# ------------------------------------------------------------------------------ index


def _row(memory_id: str, kind: str, session: str, sources: tuple[str, ...]) -> IndexRow:
    return IndexRow(
        id=memory_id, kind=kind, user_id="u", agent_id="", session_id=session, position=0,
        occurred_at=T0, created_at=T0, expires_at=None, current=True, metadata={},
        attributes={}, text=memory_id, index_text=memory_id, vector=None, source_ids=sources,
    )  # fmt: skip


def test_the_index_resolves_what_derived_memories_cite() -> None:
    index = LiveScope()
    index.apply(Changes(1, (
        _row("t1", "turn", "s1", ("m1",)), _row("t2", "turn", "s2", ("m2",)),
        _row("f1", "fact", "", ("m2", "m1", "m9")),  # no session; cites two turns, one unknown
        _row("f2", "fact", "", ()),  # neither a session nor a citation
        _row("f3", "event", "s1", ("m9",)),  # its own session; cites no known turn
    )))  # fmt: skip
    at = index.row_of
    source, cited = index.cited_rows(np.array([at["f1"], at["t1"], at["f3"]]))
    assert source.tolist() == [0, 0] and cited.tolist() == [at["t2"], at["t1"]]
    codes = index.conversation_codes()
    sessions = index.session_codes()
    assert codes[at["t1"]] == sessions[at["t1"]] and codes[at["t2"]] == sessions[at["t2"]]
    assert codes[at["f1"]] == sessions[at["t2"]]  # its first cited turn's conversation
    assert codes[at["f2"]] == -1  # written outside any session: no conversation
    assert codes[at["f3"]] == sessions[at["t1"]]  # its own session
    index.apply(Changes(2, (), ("t2",)))  # the turn goes: the citation finds nothing
    source, cited = index.cited_rows(np.array([index.row_of["f1"]]))
    assert cited.tolist() == [at["t1"]]


# ------------------------------------------------------------------------ recipe steps


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def moved(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """Ana's move, said in chat words the question does not use, and the fact drawn from
    it, on each backend (the index reads what a memory cites from the store)."""
    if request.param == "sqlite":
        where = str(tmp_path / "m.db")
    else:
        where = database_url(request.getfixturevalue("postgres_url"), f"t_{uuid4().hex[:16]}")
    with Memory(where, embedder=embedder) as memory:
        _tell(memory)
        yield memory


def _tell(memory: Memory) -> None:
    memory.add(
        [{"id": "d1", "role": "user", "name": "Ana", "timestamp": T0,
          "content": "I finally got the keys to the new flat in Lisbon."},
         {"id": "d2", "role": "assistant", "name": "Ben", "timestamp": T0,
          "content": "Congratulations! Is it close to the river?"},
         {"id": "d3", "role": "user", "name": "Ana", "timestamp": T0,
          "content": "Yes, five minutes on foot from the water."}],
        user_id="ana", session_id="1",
    )  # fmt: skip
    memory.remember_many(
        [Candidate("fact", "Ana relocated to Lisbon in May 2023.", ("d1",), T0)], user_id="ana"
    )


def _kinds(hits: Any) -> list[tuple[str, tuple[str, ...]]]:
    return [(h.memory.kind, h.source_ids) for h in hits]


def test_a_fact_hit_lifts_the_turn_it_cites(moved: Memory) -> None:
    keyword = Recipe("keyword", {"bm25": 1.0})
    lifting = Recipe("lifting", {"bm25": 1.0}, cites=0.5)
    question = "Who relocated?"
    assert _kinds(moved.search(question, user_id="ana", recipe=keyword)) == [("fact", ("d1",))]
    found = moved.search(question, user_id="ana", recipe=lifting)
    assert _kinds(found) == [("fact", ("d1",)), ("turn", ("d1",))]
    fact, turn = found.hits
    assert turn.scores["cites"] == pytest.approx(0.5 * fact.score)  # the recipe's share
    # a search of facts alone lifts no turn (the filter is respected)
    alone = moved.search(question, user_id="ana", kinds=["fact"], recipe=lifting)
    assert _kinds(alone) == [("fact", ("d1",))]


def test_derived_memories_weigh_more_when_the_recipe_says_so(moved: Memory) -> None:
    plain = Recipe("plain", {"bm25": 1.0})
    weighed = Recipe("weighed", {"bm25": 1.0}, derived=0.5)
    before = {h.memory.id: h for h in moved.search("Ana Lisbon", user_id="ana", recipe=plain)}
    after = {h.memory.id: h for h in moved.search("Ana Lisbon", user_id="ana", recipe=weighed)}
    assert before.keys() == after.keys() and len(before) >= 2
    for memory_id, hit in after.items():
        was = before[memory_id].score
        if hit.memory.kind == "fact":
            assert hit.score == pytest.approx(1.5 * was)
            assert hit.scores["derived"] == pytest.approx(0.5 * was)
        else:  # turns keep their scores
            assert hit.score == pytest.approx(was) and "derived" not in hit.scores
    assert {h.memory.kind for h in after.values()} == {"fact", "turn"}


# -------------------------------------------------------------------------- the bench


def _bench(*args: str) -> Any:
    runner = CliRunner(env={name: None for name in ENV_VARS})
    return runner.invoke(main, ["bench", "locomo", str(FIXTURE), "--no-progress", *args])


def test_bench_locomo_facts_from_observations_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    result = _bench("--facts-from-observations", "--out", str(out))
    assert result.exit_code == 0, result.output
    reports = {r["memories"]: r for r in json.loads(out.read_text(encoding="utf-8"))}
    assert list(reports) == ["turns", "facts", "both"]
    for report in reports.values():
        loaded = report["facts_ingest"]
        assert (loaded["facts"], loaded["skipped"], loaded["dropped_citations"]) == (7, 1, 2)
        assert report["ingest"]["turns"] == 12  # the facts' ingest is reported apart
        assert report["n_questions"] == 4
    turns, both = reports["turns"]["retrieval"], reports["both"]["retrieval"]
    for key in KEYS:
        assert both["overall"][key] >= turns["overall"][key], key
    assert "facts: 7 observations written as fact memories" in result.stdout
    assert "default [both]" in result.stdout and "default [facts]" in result.stdout


def test_bench_searches_only_what_it_is_asked_to(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    result = _bench("--facts-from-observations", "--memories", "facts", "--out", str(out))
    assert result.exit_code == 0, result.output
    (report,) = [json.loads(out.read_text(encoding="utf-8"))]
    assert report["memories"] == "facts" and report["facts_ingest"]["facts"] == 7
    plain = _bench("--out", str(out))
    assert plain.exit_code == 0, plain.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["memories"] == "turns" and "facts_ingest" not in report


def test_searching_facts_without_loading_them_is_refused(embedder: Embedder) -> None:
    result = _bench("--memories", "both")
    assert result.exit_code == 2
    assert "needs --facts-from-observations" in result.output
    with pytest.raises(InvalidInputError, match="--facts-from-observations"):
        run(FIXTURE, memories=("facts",), embedder=embedder, progress=False)
    with pytest.raises(InvalidInputError, match="choose among turns, facts, both"):
        run(FIXTURE, memories=("everything",), facts=True, embedder=embedder, progress=False)
    without = load_dataset(FIXTURE)  # loaded without its observations
    with pytest.raises(InvalidInputError, match="no facts to load"):
        run(without, facts=True, memories=("both",), embedder=embedder, progress=False)


# ------------------------------------------------------------------------ the dev split


def _dev() -> Path:
    if not DEV.is_file():
        pytest.skip(f"LoCoMo dev split not found at {DEV} (it lives in the team's shared/ folder)")
    return DEV


def test_the_dev_split_observations_all_cite_turns() -> None:
    dataset = load_dataset(_dev(), observations=True)
    facts = [f for c in dataset.conversations for f in c.facts]
    assert len(facts) == 1210
    assert (dataset.skipped_facts, dataset.dropped_citations) == (0, 0)
    assert sum(len(f.cites) > 1 for f in facts) == 3  # cited as lists of dia_ids
    assert all(f.timestamp is not None for f in facts)


@pytest.mark.slow
def test_both_beats_turns_alone_on_the_dev_split(embedder: Embedder) -> None:
    path = _dev()
    turns = run(path, ("default",), embedder, progress=False)[0]["retrieval"]["overall"]
    loaded = run(path, ("default",), embedder, progress=False, facts=True, memories=("both",))
    both = loaded[0]["retrieval"]["overall"]
    for key in KEYS:
        assert both[key] > turns[key], key
