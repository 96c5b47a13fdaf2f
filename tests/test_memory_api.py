"""The public API through ``Memory`` and ``AsyncMemory``, on real files and the real embedder."""

from __future__ import annotations

import asyncio
import inspect
from datetime import datetime

import pytest

import remem
from remem import (
    RECIPES,
    AddResult,
    AsyncMemory,
    InvalidInputError,
    Memory,
    MemoryEvent,
    MemoryRecord,
    NotFoundError,
    SearchHit,
    SearchResults,
    Stats,
)

LISBON = {"role": "user", "content": "I moved to Lisbon in May", "name": "Ana"}
QUERY = "where does Ana live?"


def add_ana(memory: Memory) -> AddResult:
    """The README example plus a little unrelated conversation around it."""
    result = memory.add(
        [
            {"role": "user", "content": "I adopted a kitten named Miso last week", "name": "Ana"},
            {"role": "assistant", "content": "A kitten! What colour is Miso?"},
            LISBON,
            {"role": "assistant", "content": "Congratulations on the move!"},
        ],
        user_id="ana",
        session_id="s1",
        timestamp="2023-05-08T13:56:00",
    )
    memory.add("I work night shifts as a nurse at the hospital", user_id="ana")
    memory.add("My brother lives in Berlin", user_id="bob")
    return result


def lisbon_id(result: AddResult) -> str:
    (message_id,) = [m.source_ids[0] for m in result.memories if "Lisbon" in m.text]
    return message_id


def test_readme_example(memory):
    result = add_ana(memory)
    assert isinstance(result, AddResult)
    assert len(result.message_ids) == 4
    assert len(result.memories) == 4
    assert result.duplicate_ids == ()
    assert all(isinstance(m, MemoryRecord) for m in result.memories)
    assert [m.source_ids for m in result.memories] == [(i,) for i in result.message_ids]

    results = memory.search(QUERY, user_id="ana")
    assert isinstance(results, SearchResults)
    assert results.query == QUERY
    assert results.recipe == "default"
    assert results.took_ms >= 0
    assert len(results) >= 1
    hit = results[0]
    assert isinstance(hit, SearchHit)
    assert hit.rank == 1
    assert hit.source_ids == (lisbon_id(result),)
    assert "Lisbon" in hit.text
    assert hit.memory.scope.user_id == "ana"
    assert hit.memory.scope.session_id == "s1"
    assert hit.memory.occurred_at == datetime(2023, 5, 8, 13, 56)
    assert hit.memory.kind == "turn"
    assert {"bm25", "dense"} <= set(hit.scores)
    assert all(isinstance(v, float) for v in hit.scores.values())
    assert [h.rank for h in results] == list(range(1, len(results) + 1))
    assert [h.score for h in results] == sorted((h.score for h in results), reverse=True)
    assert list(results) == list(results.hits)
    # user scope is enforced: Bob's memory never shows up for Ana
    assert all(h.memory.scope.user_id == "ana" for h in results)


def test_add_a_plain_string(memory):
    result = memory.add("I prefer green tea over coffee")
    (record,) = result.memories
    assert result.message_ids == record.source_ids
    assert record.text.endswith("I prefer green tea over coffee")
    assert record.attributes["role"] == "user"
    assert record.scope.user_id is None
    assert record.occurred_at is None
    assert memory.get(record.id) == record
    assert memory.search("green tea")[0].memory.id == record.id
    stats = memory.stats()
    assert (stats.messages, stats.memories, stats.events) == (1, 1, 1)


def test_add_with_client_ids_is_idempotent(memory):
    messages = [{"id": "c1", "role": "user", "content": "I run every Tuesday"}]
    first = memory.add(messages, user_id="u")
    again = memory.add(messages, user_id="u")
    assert first.message_ids == ("c1",)
    assert again.message_ids == ()
    assert again.memories == ()
    assert again.duplicate_ids == ("c1",)
    assert memory.stats().memories == 1


@pytest.mark.parametrize("recipe", ["default", "bm25", "dense", "rrf"])
def test_search_recipes(memory, recipe):
    result = add_ana(memory)
    results = memory.search(QUERY, user_id="ana", recipe=recipe)
    assert results.recipe == recipe
    assert results[0].source_ids == (lisbon_id(result),)
    channels = set(RECIPES[recipe].channels)
    # scores may carry extra stages (e.g. context boosts), but only the recipe's channels
    assert all(set(h.scores) & {"bm25", "dense"} <= channels for h in results)
    assert channels <= set(results[0].scores)
    by_object = memory.search(QUERY, user_id="ana", recipe=RECIPES[recipe])
    assert [h.memory.id for h in by_object] == [h.memory.id for h in results]


def test_search_explain_and_limit(memory):
    add_ana(memory)
    results = memory.search(QUERY, user_id="ana", limit=2, explain=True)
    assert len(results) == 2
    assert results.explain
    assert memory.search(QUERY, user_id="ana").explain is None


@pytest.mark.parametrize("recipe", ["default", "bm25", "entity-graph", "rrf"])
def test_explain_times_every_stage_the_recipe_runs(memory, recipe):
    add_ana(memory)
    results = memory.search(QUERY, user_id="ana", recipe=recipe, explain=True)
    timings = results.explain["timings_ms"]
    on = set(RECIPES[recipe].mechanisms()) - {"bm25", "dense", "diversify"}
    expected = {"embed", "open", "analyze", "fusion", "rank", "fetch", "total"} | on
    assert expected | set(RECIPES[recipe].channels) <= set(timings)
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    # the stages are disjoint parts of the call: together no longer than the whole
    assert sum(v for k, v in timings.items() if k != "total") <= timings["total"] + 0.01


def test_search_filters(memory):
    add_ana(memory)
    assert memory.search(QUERY, user_id="nobody").hits == ()
    assert {h.memory.scope.user_id for h in memory.search("brother Berlin")} >= {"bob"}
    session = memory.search(QUERY, user_id="ana", session_id="s1")
    assert session.hits
    assert all(h.memory.scope.session_id == "s1" for h in session)
    assert memory.search(QUERY, kinds="fact").hits == ()
    dated = memory.search(QUERY, user_id="ana", since="2023-05-01", until="2023-05-31")
    assert dated.hits
    assert all(h.memory.occurred_at is not None for h in dated)
    assert memory.search(QUERY, user_id="ana", since="2099-01-01").hits == ()
    # a memory added without a timestamp is found by when it was recorded, as list shows it
    undated = [m for m in memory.list(user_id="ana") if m.occurred_at is None]
    assert undated
    recent = memory.search(QUERY, user_id="ana", since=undated[0].created_at, limit=50)
    assert {h.memory.id for h in recent} >= {m.id for m in undated}
    assert all(h.memory.occurred_at is None for h in recent)


def test_unknown_recipe_lists_the_names(memory):
    with pytest.raises(InvalidInputError) as info:
        memory.search("anything", recipe="fancy")
    message = str(info.value)
    assert "fancy" in message
    for name in ("default", "bm25", "dense", "rrf", *RECIPES):
        assert name in message
    with pytest.raises(InvalidInputError, match="fancy"):
        Memory(memory.config, embedder=memory.embedder, recipe="fancy")


def test_get_list_update_delete_history(memory):
    added = memory.add(
        [
            {"role": "user", "content": "I have a red bicycle", "metadata": {"topic": "bike"}},
            {"role": "user", "content": "I play the violin on weekends"},
        ],
        user_id="u",
        session_id="s",
        metadata={"source": "chat"},
    )
    bike, violin = added.memories
    assert memory.get(bike.id) == bike
    assert dict(bike.metadata) == {"source": "chat", "topic": "bike"}

    listed = memory.list(user_id="u")
    assert {r.id for r in listed} == {bike.id, violin.id}
    assert [r.id for r in memory.list(metadata={"topic": "bike"})] == [bike.id]
    assert len(memory.list(limit=1)) == 1
    assert memory.list(offset=2) == []
    assert memory.list(kinds=["turn"]) == listed
    assert memory.list(user_id="someone else") == []

    updated = memory.update(bike.id, text="My favourite fruit is mango", reason="correction")
    assert updated.text == "My favourite fruit is mango"
    assert memory.get(bike.id) == updated
    dense = memory.search("which fruit do I like best?", recipe="dense")
    assert dense[0].memory.id == bike.id
    assert memory.search("mango", recipe="bm25")[0].memory.id == bike.id
    assert bike.id not in {h.memory.id for h in memory.search("bicycle", recipe="bm25")}

    pinned = memory.update(bike.id, pinned=True, importance=0.9, metadata={"topic": "fruit"})
    assert (pinned.pinned, pinned.importance, dict(pinned.metadata)) == (
        True,
        0.9,
        {"topic": "fruit"},
    )
    assert pinned.text == "My favourite fruit is mango"

    history = memory.history(bike.id)
    assert all(isinstance(e, MemoryEvent) for e in history)
    assert history[1].reason == "correction"
    assert history[1].before["text"].endswith("I have a red bicycle")
    assert history[1].after["text"] == "My favourite fruit is mango"

    memory.delete(bike.id)
    with pytest.raises(NotFoundError):
        memory.get(bike.id)
    assert [r.id for r in memory.list()] == [violin.id]
    history = memory.history(bike.id)  # what happened and when, no longer what it said
    assert [e.action for e in history] == ["ADD", "UPDATE", "UPDATE", "DELETE"]
    assert all(e.before is None and e.after is None for e in history)
    assert [e.reason for e in history] == ["", "", "", "delete"]
    assert [e.action for e in memory.history(violin.id)] == ["ADD"]

    stats = memory.stats()
    assert isinstance(stats, Stats)
    assert (stats.messages, stats.memories, stats.events) == (2, 1, 5)
    assert stats.embedder == f"{memory.embedder.model_id}:{memory.embedder.dimensions}"
    assert dict(stats.memories_by_kind) == {"turn": 1}


def test_delete_all_requires_a_scope_and_deletes_only_it(memory):
    memory.add("ana one", user_id="ana", session_id="a1")
    memory.add("ana two", user_id="ana", session_id="a2")
    memory.add("bob one", user_id="bob", session_id="b1")
    before = memory.stats()
    with pytest.raises(InvalidInputError, match="user_id"):
        memory.delete_all()
    assert memory.stats() == before

    assert memory.delete_all(user_id="ana", session_id="a1") == {"memories": 1, "messages": 1}
    assert sorted(r.text for r in memory.list()) == ["user: ana two", "user: bob one"]
    assert memory.delete_all(user_id="ana") == {"memories": 1, "messages": 1}
    assert [r.text for r in memory.list()] == ["user: bob one"]
    assert memory.stats().messages == 1
    assert memory.delete_all(user_id="nobody") == {"memories": 0, "messages": 0}


def test_context_manager_closes(tmp_path, embedder):
    with Memory(tmp_path / "ctx.db", embedder=embedder) as mem:
        mem.add("hello world")
    with Memory(tmp_path / "ctx.db", embedder=embedder) as again:
        assert again.stats().memories == 1


def test_namespaces_share_a_file_but_not_data(tmp_path, embedder):
    path = tmp_path / "shared.db"
    with (
        Memory(path, embedder=embedder, namespace="a") as a,
        Memory(path, embedder=embedder, namespace="b") as b,
    ):
        record = a.add("the vault code is 4711").memories[0]
        assert b.search("vault code").hits == ()
        assert b.list() == []
        with pytest.raises(NotFoundError):
            b.get(record.id)
        assert a.get(record.id) == record


def test_export_import_round_trip(memory, tmp_path, embedder):
    result = add_ana(memory)
    memory.update(result.memories[0].id, text="I adopted a cat", reason="edit")
    memory.delete(result.memories[1].id)
    path = tmp_path / "export.jsonl"
    rows = memory.export(path)
    stats = memory.stats()
    assert rows == stats.messages + stats.memories + stats.events

    with Memory(tmp_path / "copy.db", embedder=embedder) as copy:
        assert copy.import_(path) == rows
        assert copy.list(limit=1000) == memory.list(limit=1000)
        copied = copy.stats()
        assert (copied.messages, copied.memories, copied.events) == (
            stats.messages,
            stats.memories,
            stats.events,
        )
        assert copy.search(QUERY, user_id="ana")[0].source_ids == (lisbon_id(result),)
        assert [e.action for e in copy.history(result.memories[0].id)] == ["ADD", "UPDATE"]
        copy.export(tmp_path / "again.jsonl")
    first = path.read_text(encoding="utf-8").splitlines()
    second = (tmp_path / "again.jsonl").read_text(encoding="utf-8").splitlines()
    assert first[1:] == second[1:]  # everything but the header's exported_at


def test_stats_counts_only_real_users_and_sessions(memory):
    memory.add("no scope at all")
    memory.add("scoped", user_id="ana", session_id="s1")
    stats = memory.stats()
    assert (stats.users, stats.sessions) == (1, 1)


def test_async_memory_basic_flow(tmp_path, embedder):
    async def main() -> None:
        async with AsyncMemory(tmp_path / "async.db", embedder=embedder) as mem:
            added = await mem.add([LISBON], user_id="ana", timestamp="2023-05-08")
            assert isinstance(added, AddResult)
            (record,) = added.memories
            results = await mem.search(QUERY, user_id="ana")
            assert isinstance(results, SearchResults)
            assert results[0].memory.id == record.id
            assert await mem.get(record.id) == record
            assert [r.id for r in await mem.list(user_id="ana")] == [record.id]
            updated = await mem.update(record.id, text="I moved to Porto")
            assert updated.text == "I moved to Porto"
            both = await asyncio.gather(mem.search("Porto"), mem.stats())
            assert both[0][0].memory.id == record.id
            assert both[1].memories == 1
            await mem.export(tmp_path / "async.jsonl")
            await mem.delete(record.id)
            with pytest.raises(NotFoundError):
                await mem.get(record.id)
            assert [e.action for e in await mem.history(record.id)] == [
                "ADD",
                "UPDATE",
                "DELETE",
            ]
            await mem.add("another", user_id="bob")
            assert await mem.delete_all(user_id="bob") == {"memories": 1, "messages": 1}
        async with AsyncMemory(tmp_path / "async2.db", embedder=embedder) as copy:
            assert await copy.import_(tmp_path / "async.jsonl") > 0
            assert (await copy.stats()).memories == 1

    asyncio.run(main())


def test_async_memory_has_every_method_of_memory_with_its_signature():
    public = [n for n, v in vars(Memory).items() if callable(v) and not n.startswith("_")]
    assert "tenant" in public  # tenant() is plain: it only makes a view, no I/O
    assert (
        inspect.signature(AsyncMemory.tenant).parameters.keys()
        == inspect.signature(Memory.tenant).parameters.keys()
    )
    for name in (n for n in public if n != "tenant"):
        method = getattr(AsyncMemory, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(getattr(Memory, name)), name
        assert method.__doc__ == getattr(Memory, name).__doc__
    init = inspect.signature(AsyncMemory.__init__).parameters
    assert list(init) == list(inspect.signature(Memory.__init__).parameters)


EXPECTED_PUBLIC_API = {
    "RECIPES",
    "RerankerConfig",
    "AddResult",
    "AsyncMemory",
    "CompactReport",
    "ConfigError",
    "ConflictError",
    "Context",
    "ContextItem",
    "CorruptStoreError",
    "DataFormatError",
    "DeriveConfig",
    "EmbedderConfig",
    "EmbedderError",
    "LLMConfig",
    "LLMError",
    "EnrichConfig",
    "Entity",
    "ForgetReport",
    "InvalidInputError",
    "Memory",
    "MemoryConfig",
    "MemoryEvent",
    "MemoryRecord",
    "Message",
    "MessageTooLargeError",
    "NotFoundError",
    "Recipe",
    "RememError",
    "Scope",
    "SearchHit",
    "SearchResults",
    "Stats",
    "StoreConfig",
    "StoreError",
    "__version__",
}


def test_public_api_is_exactly_the_contract():
    assert set(remem.__all__) == EXPECTED_PUBLIC_API
    assert len(remem.__all__) == len(set(remem.__all__))
    for name in remem.__all__:
        assert getattr(remem, name) is not None
    assert isinstance(remem.__version__, str)
    for name in remem.__all__:
        value = getattr(remem, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, remem.RememError)


def test_remember_stores_a_cited_derived_memory_and_refuses_bad_input(memory):
    from remem.formation.derived import Candidate

    added = memory.add([{"role": "user", "content": "I moved to Lisbon", "name": "Ana"}],
                       user_id="ana", session_id="s1", timestamp="2023-05-08")  # fmt: skip
    fact = memory.remember("Ana lives in Lisbon", user_id="ana", source_ids=added.message_ids,
                           timestamp="2023-05-08", importance=0.8)  # fmt: skip
    assert (fact.kind, fact.source_ids, fact.importance) == ("fact", added.message_ids, 0.8)
    assert memory.get(fact.id) == fact
    assert {e["key"] for e in fact.attributes["entities"]} >= {"ana", "lisbon"}
    hits = memory.search("where does Ana live?", user_id="ana", kinds="fact")
    assert [h.memory.id for h in hits] == [fact.id]
    before = memory.stats()
    bad_calls = [
        lambda: memory.remember("x", kind="turn", user_id="ana"),
        lambda: memory.remember("", user_id="ana"),
        lambda: memory.remember("x", user_id="ana", source_ids="not-a-list"),
        lambda: memory.remember("x", user_id="ana", importance=2),
        lambda: memory.remember("x", user_id="bob", source_ids=added.message_ids),  # not bob's
        lambda: memory.remember("x", user_id="ana", source_ids=["no-such-message"]),
        lambda: memory.remember_many([Candidate("summary", "x", ())], user_id="ana"),
        lambda: memory.remember_many(["a fact"], user_id="ana"),
    ]
    for call in bad_calls:
        with pytest.raises(remem.RememError):
            call()
    assert memory.stats() == before  # nothing written by any of them
