"""Enrichment through the public API: what ``add`` derives, keeps and exports."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from remem import InvalidInputError, Memory, MemoryConfig, Scope, StoreConfig
from remem.config import EnrichConfig
from remem.embedders.base import Embedder


def session(m: Memory, sid: str, day: str, lines: list[str], who: str = "Ana") -> None:
    m.add([{"content": t, "name": who} for t in lines], user_id="ana", session_id=sid,
          timestamp=f"{day}T10:00:00")  # fmt: skip


def test_add_keeps_entities_resolved_times_and_key_phrases(memory: Memory) -> None:
    result = memory.add(
        [{"content": "I went to Porto with Maria yesterday to buy a ukulele.", "name": "Ana"}],
        user_id="ana", session_id="s1", timestamp="2023-05-08T10:00:00",
    )  # fmt: skip
    for filler in ("The weather was grey.", "Work is busy.", "The tap is fixed."):
        memory.add(filler, user_id="ana", timestamp="2023-06-01T10:00:00")
    attrs = result.memories[0].attributes
    assert {e["key"] for e in attrs["entities"]} == {"ana", "porto", "maria"}
    assert attrs["times"][0]["start"] == "2023-05-07"
    assert "ukulele" in [k["key"] for k in attrs["keyphrases"]]
    hits = memory.search("7 May 2023", user_id="ana", recipe="bm25")  # the resolved day
    assert hits[0].memory.id == result.memories[0].id


def test_enrichment_can_be_switched_off(tmp_path: Path, embedder: Embedder) -> None:
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "bare.db")), enrich=EnrichConfig.none())
    with Memory(config, embedder=embedder) as m:
        session(m, "s1", "2023-05-08", ["Maria came yesterday.", "a", "b", "c"])
        (first, *_) = m.list(user_id="ana", kinds=["turn"], limit=10)[::-1]
        assert set(first.attributes) == {"role", "speaker"}
        assert m.list(user_id="ana", kinds=["summary"]) == []
        assert m.entities(user_id="ana") == []


def test_a_session_gets_a_summary_that_is_superseded_as_it_grows(memory: Memory) -> None:
    session(memory, "s1", "2023-05-08", ["We adopted a beagle called Oscar.", "Hi", "Ok"])
    assert memory.list(user_id="ana", kinds=["summary"]) == []  # three turns: too short
    result = memory.add([{"content": "Oscar loves the beach in Cascais.", "name": "Ana"}],
                        user_id="ana", session_id="s1")  # fmt: skip
    (summary,) = result.derived
    assert summary.kind == "summary" and summary.attributes["turns"] == 4
    assert "Oscar" in summary.text and summary.source_ids
    for n in range(4):
        memory.add(f"more chat {n}", user_id="ana", session_id="s1")
    (current,) = memory.list(user_id="ana", kinds=["summary"])
    assert current.id != summary.id and current.attributes["turns"] == 8
    assert [e.action for e in memory.history(summary.id)] == ["ADD", "SUPERSEDE"]
    assert memory.get(summary.id).superseded_by == current.id
    plain = memory.search("Oscar beagle", user_id="ana")
    assert all(h.memory.kind == "turn" for h in plain)  # summaries only when asked for
    assert memory.search("Oscar beagle", user_id="ana", kinds=["summary"])[0].memory.id == (
        current.id
    )


def test_entities_fade_over_sessions_unless_mentioned_again(memory: Memory) -> None:
    session(memory, "s1", "2023-01-01", ["I play the ukulele with Maria."])
    session(memory, "s2", "2023-02-01", ["Maria called."])
    session(memory, "s3", "2023-03-01", ["Maria again!"])
    table = {e.key: e for e in memory.entities(user_id="ana")}
    decay = memory.config.enrich.keyphrase_decay
    assert table["maria"].strength == pytest.approx(decay**2 + decay + 1, abs=1e-3)
    assert table["maria"].sessions == 3 and table["maria"].mentions == 3
    ukulele = table["ukulele"]
    assert ukulele.kind == "keyphrase" and ukulele.strength < table["maria"].strength
    names = memory.entities(user_id="ana", kind="name")
    assert [e.key for e in names] == ["maria"]
    assert memory.entities(user_id="nobody") == []


def test_export_import_keeps_the_entity_and_time_indexes(
    memory: Memory, tmp_path: Path, embedder: Embedder
) -> None:
    session(memory, "s1", "2023-05-08", ["I went to Porto with Maria yesterday.", "Nice", "x", "y"])
    memory.export(tmp_path / "out.jsonl")
    with Memory(tmp_path / "copy.db", embedder=embedder) as copy:
        copy.import_(tmp_path / "out.jsonl")
        assert [(e.key, e.mentions) for e in copy.entities(user_id="ana")] == [
            (e.key, e.mentions) for e in memory.entities(user_id="ana")
        ]
        query = "What did Ana do on May 7th?"
        original = memory.search(query, user_id="ana", reference_time="2023-06-01")
        copied = copy.search(query, user_id="ana", reference_time="2023-06-01")
        assert [h.source_ids for h in copied] == [h.source_ids for h in original]
        assert "time" in copied[0].channels


def test_reference_time_is_validated(memory: Memory) -> None:
    with pytest.raises(InvalidInputError):
        memory.search("what happened last week?", reference_time="last tuesday")


def test_relative_query_times_follow_the_reference_time(memory: Memory) -> None:
    session(memory, "s1", "2023-05-08", ["We baked bread.", "The weather was grey."])
    session(memory, "s2", "2023-05-20", ["We baked a cake.", "Traffic was awful."])
    session(memory, "s3", "2023-04-01", ["Work is busy.", "The tap is fixed."])
    hits = memory.search("What did we bake last week?", user_id="ana", explain=True,
                         reference_time="2023-05-24T12:00:00")  # fmt: skip
    assert hits.explain is not None
    assert hits.explain["query"]["time_windows"][0]["start"] == "2023-05-15"
    assert hits[0].text.endswith("a cake.")
    earlier = memory.search("What did we bake last week?", user_id="ana",
                            reference_time="2023-05-12T12:00:00")  # fmt: skip
    assert earlier[0].text.endswith("bread.")


def test_async_memory_lists_entities(tmp_path: Path, embedder: Embedder) -> None:
    import asyncio

    from remem import AsyncMemory

    async def go() -> list[str]:
        async with AsyncMemory(tmp_path / "a.db", embedder=embedder) as m:
            await m.add("I hear Maria moved to Porto.", user_id="ana")
            return [e.key for e in await m.entities(user_id="ana")]

    assert set(asyncio.run(go())) >= {"maria", "porto"}


def test_config_is_frozen() -> None:
    config = EnrichConfig()
    with pytest.raises(AttributeError):
        config.entities = False  # type: ignore[misc]
    assert replace(config, summaries=False).summaries is False


def test_editing_a_text_drops_what_ingest_found_in_the_old_one(memory: Memory) -> None:
    result = memory.add([{"content": "I met Maria in Porto yesterday.", "name": "Ana"}],
                        user_id="ana", timestamp="2023-05-08T10:00:00")  # fmt: skip
    (turn,) = result.memories
    assert "maria" in {e.key for e in memory.entities(user_id="ana")}
    edited = memory.update(turn.id, text="Ana: I stayed home.")
    assert {"entities", "times", "keyphrases"}.isdisjoint(edited.attributes)
    assert edited.attributes["speaker"] == "Ana"
    assert memory.entities(user_id="ana") == []


def test_a_database_from_before_enrichment_is_indexed_on_open(tmp_path: Path) -> None:
    import sqlite3

    from remem.index.cache import LiveIndex
    from remem.stores.base import MemoryFilter
    from remem.stores.sqlite.migrations import MIGRATIONS
    from remem.stores.sqlite.store import SQLiteStore

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)  # a remem 0.1 file: migrations 1-2
    conn.execute("CREATE TABLE remem_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO remem_meta VALUES ('app', 'remem')")
    conn.execute("CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")  # fmt: skip
    for number, name, migrate in MIGRATIONS[:2]:
        migrate(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2024-01-01')", (number, name))
    conn.execute(
        "INSERT INTO memories (id, namespace, user_id, session_id, kind, text, index_text, "
        "created_at, updated_at) VALUES ('m1', 'default', 'ana', 's1', 'turn', "
        "'Ana: turtles love lettuce', 'Ana: turtles love lettuce', '2024-01-01', '2024-01-01')"
    )
    conn.close()
    store = SQLiteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.term_counts(Scope(user_id="ana"), ["turtles"]) == (1, {"turtles": 1})
    with LiveIndex(store).open(MemoryFilter(user_id="ana")) as index:
        hits = index.session_search(["lettuce"], 5)
    assert [score > 0 for _, score in hits] == [True]
    store.close()
