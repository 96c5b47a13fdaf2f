"""What a scope index keeps between searches never outlives the state it was read from.

Each test searches first (so the per-index caches fill: keyword matches, filter masks,
hit records, term scores), then changes the store, from this process or another
``Memory`` on the same file, and checks the next search sees exactly the new state.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from remem import Memory
from remem.embedders.base import Embedder
from remem.index import live
from remem.util import utcnow


@pytest.fixture()
def pair(tmp_path: Path, embedder: Embedder) -> tuple[Memory, Memory]:
    """Two Memory objects on one file: a reader with warm caches and a separate writer."""
    reader = Memory(tmp_path / "m.db", embedder=embedder)
    writer = Memory(tmp_path / "m.db", embedder=embedder)
    reader.add([{"content": "I play jazz piano on Fridays", "id": "j1"},
                {"content": "We hiked to the lake", "id": "h1"}],
               user_id="ana", session_id="s1", metadata={"topic": "music"})  # fmt: skip
    yield reader, writer
    reader.close()
    writer.close()


def _texts(memory: Memory, query: str, **options: object) -> list[str]:
    return [h.text for h in memory.search(query, user_id="ana", **options)]  # type: ignore[arg-type]


def test_a_new_memory_is_found_after_its_query_was_cached(pair: tuple[Memory, Memory]) -> None:
    reader, writer = pair
    before = _texts(reader, "jazz", recipe="bm25")
    assert _texts(reader, "jazz", recipe="bm25") == before  # served from the kept matches
    writer.add("My jazz trio plays on Sunday", user_id="ana", session_id="s2")
    after = _texts(reader, "jazz", recipe="bm25")
    assert len(after) == len(before) + 1
    assert any("trio" in text for text in after)


def test_an_updated_memory_is_returned_as_it_is_now(pair: tuple[Memory, Memory]) -> None:
    reader, writer = pair
    (hit,) = reader.search("jazz piano", user_id="ana", recipe="bm25", limit=1)
    writer.update(hit.memory.id, text="user: I play jazz guitar on Fridays",
                  metadata={"topic": "guitar"})  # fmt: skip
    (again,) = reader.search("jazz", user_id="ana", recipe="bm25", limit=1)
    assert again.memory.id == hit.memory.id
    assert again.text == "user: I play jazz guitar on Fridays"
    assert again.memory.metadata == {"topic": "guitar"}


def test_a_metadata_filter_follows_the_changed_metadata(pair: tuple[Memory, Memory]) -> None:
    reader, writer = pair
    music = {"topic": "music"}
    hits = reader.search("jazz", user_id="ana", metadata=music, recipe="bm25")
    assert len(hits) == 1  # the filter's mask is now kept
    writer.update(hits[0].memory.id, metadata={"topic": "other"})
    assert reader.search("jazz", user_id="ana", metadata=music, recipe="bm25").hits == ()
    assert len(reader.search("jazz", user_id="ana", metadata={"topic": "other"})) == 1


def test_a_deleted_memory_is_gone_from_every_cached_path(pair: tuple[Memory, Memory]) -> None:
    reader, writer = pair
    (hit,) = reader.search("jazz", user_id="ana", recipe="default", limit=1)
    writer.delete(hit.memory.id)
    for recipe in ("bm25", "dense", "default"):
        found = reader.search("jazz", user_id="ana", recipe=recipe)
        assert hit.memory.id not in {h.memory.id for h in found}


def test_an_expired_memory_drops_out_although_nothing_was_written(
    pair: tuple[Memory, Memory],
) -> None:
    reader, writer = pair
    (hit,) = reader.search("jazz", user_id="ana", recipe="bm25", limit=1)
    writer.update(hit.memory.id, expires_at=utcnow() + timedelta(seconds=1))
    assert [h.memory.id for h in reader.search("jazz", user_id="ana", recipe="bm25")] == [
        hit.memory.id
    ]  # the mask for this filter is now kept, with the expiry still ahead
    time.sleep(1.2)
    assert reader.search("jazz", user_id="ana", recipe="bm25").hits == ()


def test_kept_records_are_per_scope_and_namespace(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "m.db"
    with Memory(path, embedder=embedder) as a, Memory(path, embedder=embedder,
                                                      namespace="other") as b:  # fmt: skip
        a.add("jazz on Friday", user_id="ana")
        b.add("jazz on Friday", user_id="ana")
        (hit_a,) = a.search("jazz", user_id="ana")
        (hit_b,) = b.search("jazz", user_id="ana")
        assert hit_a.memory.id != hit_b.memory.id
        namespaces = (hit_a.memory.scope.namespace, hit_b.memory.scope.namespace)
        assert namespaces == ("default", "other")


@pytest.mark.parametrize("kept", [None, 2], ids=["all-kept", "two-kept"])
def test_every_hit_is_the_record_the_store_holds(
    pair: tuple[Memory, Memory], monkeypatch: pytest.MonkeyPatch, kept: int | None
) -> None:
    """Hits come from the records the scope index keeps (all of them, or the last two with
    the rest read from the store): after recalls, pins and edits by either writer, each
    hit equals what ``get`` reads from the store."""
    if kept is not None:
        monkeypatch.setattr(live, "RECORDS_KEPT", kept)
    reader, writer = pair
    writer.add([{"content": f"jazz night number {n} by the lake"} for n in range(6)],
               user_id="ana", session_id="s2")  # fmt: skip
    for round_ in range(4):
        hits = reader.search("jazz lake", user_id="ana", recipe="hybrid")
        assert len(hits) >= 6
        for hit in hits:
            assert hit.memory == reader.get(hit.memory.id)
        reader.flush()  # the recalls just made change strength and access counts
        changed = hits.hits[round_].memory.id
        editor = writer if round_ % 2 else reader
        editor.update(changed, importance=0.1 * (round_ + 1), pinned=bool(round_ % 2))


def test_a_search_of_a_current_index_holds_no_snapshot(pair: tuple[Memory, Memory]) -> None:
    """When one read of the revision finds the index current, the search reads the index
    alone; a write by another connection makes the next search take a snapshot and see
    it."""
    reader, writer = pair
    reader.search("jazz", user_id="ana")  # the index is current after this
    opened = []
    snapshot = reader.store.snapshot

    def counted() -> object:
        opened.append(1)
        return snapshot()

    reader.store.snapshot = counted  # type: ignore[method-assign]
    reader.search("jazz", user_id="ana")
    assert opened == []
    writer.add("My jazz trio plays on Sunday", user_id="ana", session_id="s2")
    assert any("trio" in text for text in _texts(reader, "jazz trio"))
    assert opened


def test_store_reads_that_meet_a_write_are_read_again_in_one_snapshot(
    pair: tuple[Memory, Memory], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no records kept, a search reads its hits from the store. A write landing
    between the revision read and those reads (here: the best hit deleted) would leave the
    ranking and the records from two states; the search notices and reads again."""
    monkeypatch.setattr(live, "RECORDS_KEPT", 0)
    reader, writer = pair
    writer.add([{"content": f"jazz night number {n}"} for n in range(4)], user_id="ana",
               session_id="s2")  # fmt: skip
    before = reader.search("jazz night", user_id="ana", recipe="bm25", limit=3)
    assert len(before) == 3
    gone = before.hits[0].memory.id
    load = reader.store.get_memories
    calls = []

    def load_after_a_write(namespace: str, ids: list[str]) -> object:
        if not calls:
            writer.delete(gone)
        calls.append(ids)
        return load(namespace, ids)

    reader.store.get_memories = load_after_a_write  # type: ignore[method-assign]
    hits = reader.search("jazz night", user_id="ana", recipe="bm25", limit=3)
    assert len(calls) == 2  # the first reads met the deletion: read again
    assert gone not in [h.memory.id for h in hits]
    assert len(hits) == 3
    assert [h.memory.id for h in hits] == [
        h.memory.id for h in reader.search("jazz night", user_id="ana", recipe="bm25", limit=3)
    ]
