"""The contract every store backend must pass, driven through the ``Store`` interface.

Each test builds ``Message`` / ``MemoryRecord`` / ``NewMemory`` objects by hand (vectors
are random unit vectors), so nothing here depends on the embedder or the engine. Keyword
and vector search run on the backend-neutral live index over the store's ``changes``,
one index per store kept across calls, so every test also checks that it takes in writes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem.errors import ConfigError, ConflictError, InvalidInputError, NotFoundError, RememError
from remem.index.cache import LiveIndex
from remem.models import ROLES, MemoryRecord, Message, Scope
from remem.stores.base import (
    JobClaim,
    MemoryFilter,
    MemoryPatch,
    NewJob,
    NewMemory,
    Note,
    Retire,
    ScopeKey,
    Store,
    WriteBatch,
    session_key,
)
from remem.stores.consolidation import TEXT_HASH
from remem.util import utcnow

DIM = 16
_indexes: dict[int, tuple[Store, LiveIndex]] = {}


class Hit(NamedTuple):
    id: str
    score: float


def live(store: Store) -> LiveIndex:
    """The live index of a store, kept across calls (so it is refreshed, not rebuilt)."""
    if id(store) not in _indexes or _indexes[id(store)][0] is not store:
        _indexes[id(store)] = (store, LiveIndex(store))
    return _indexes[id(store)][1]


def ksearch(store: Store, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[Hit]:
    with live(store).open(flt) as index:
        return [Hit(*h) for h in index.keyword_search(terms, index.mask(flt, utcnow()), limit)]


def vsearch(store: Store, query: np.ndarray, flt: MemoryFilter, limit: int) -> list[Hit]:
    with live(store).open(flt) as index:
        return [Hit(*h) for h in index.vector_search(query, index.mask(flt, utcnow()), limit)]


def ssearch(store: Store, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[Hit]:
    with live(store).open(flt) as index:
        return [Hit(*h) for h in index.session_search(terms, limit)]


T0 = datetime(2024, 1, 1, 12, 0, 0)
_ids = itertools.count()
_rng = np.random.default_rng(20240101)


def uid(prefix: str = "id") -> str:
    return f"{prefix}-{next(_ids)}"


def unit(dim: int = DIM, rng: np.random.Generator = _rng) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def make_message(
    scope: Scope, content: str = "hello", *, mid: str | None = None, role: str = "user"
) -> Message:
    return Message(
        id=mid or uid("msg"),
        scope=scope,
        role=role,
        content=content,
        speaker=None,
        occurred_at=T0,
        recorded_at=T0,
        metadata={},
    )


def make_record(
    scope: Scope,
    text: str = "hello",
    *,
    mid: str | None = None,
    kind: str = "fact",
    sources: Sequence[str] = (),
    occurred_at: datetime | None = T0,
    metadata: dict[str, Any] | None = None,
    **extra: Any,
) -> MemoryRecord:
    return MemoryRecord(
        id=mid or uid("mem"),
        kind=kind,
        text=text,
        scope=scope,
        source_ids=tuple(sources),
        occurred_at=occurred_at,
        created_at=T0,
        updated_at=T0,
        metadata=metadata or {},
        **extra,
    )


def new(record: MemoryRecord, vector: np.ndarray | None = None, index: str | None = None):
    return NewMemory(record, record.text if index is None else index, vector)


def write_memories(store: Store, *memories: NewMemory) -> None:
    store.write(WriteBatch(memories=tuple(memories)))


def counts(store: Store, namespace: str) -> tuple[int, int, int]:
    s = store.stats(namespace)
    return s.messages, s.memories, s.events


def listed(store: Store, flt: MemoryFilter) -> set[str]:
    return {r.id for r in store.list_memories(flt, limit=1000)}


# -- round trips -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
metadata_dicts = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
# Years before 1000 are a known bug (see test_timestamps_before_year_1000_round_trip).
timestamps = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))
ids = st.text(min_size=1, max_size=40)
scopes = st.builds(
    Scope,
    user_id=st.none() | ids,
    agent_id=st.none() | ids,
    session_id=st.none() | ids,
    namespace=ids,
)
contents = st.text(min_size=1, max_size=300)
unit_floats = st.floats(min_value=0, max_value=1)
store_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@store_settings
@given(
    scope=scopes,
    content=contents,
    role=st.sampled_from(ROLES),
    speaker=st.none() | ids,
    occurred_at=st.none() | timestamps,
    recorded_at=timestamps,
    metadata=metadata_dicts,
    message_id=ids,
)
def test_message_round_trip_preserves_every_field(
    store_factory, scope, content, role, speaker, occurred_at, recorded_at, metadata, message_id
):
    store = store_factory(uid("rt"))
    message = Message(message_id, scope, role, content, speaker, occurred_at, recorded_at, metadata)
    assert store.write(WriteBatch(messages=(message,))) == ()
    assert store.get_messages(scope.namespace, scope, [message_id]) == [message]
    assert store.existing_messages(scope, [message_id, "nope"]) == {message_id: message}


@store_settings
@given(
    scope=scopes,
    text=contents,
    kind=st.sampled_from(["turn", "fact", "event", "summary"]),
    sources=st.lists(ids, max_size=3),
    occurred_at=st.none() | timestamps,
    created_at=timestamps,
    updated_at=timestamps,
    metadata=metadata_dicts,
    attributes=metadata_dicts,
    importance=unit_floats,
    strength=st.floats(min_value=0, max_value=100),
    access_count=st.integers(min_value=0, max_value=2**62),
    pinned=st.booleans(),
    optional_times=st.lists(st.none() | timestamps, min_size=5, max_size=5),
    superseded_by=st.none() | ids,
    memory_id=ids,
)
def test_memory_round_trip_preserves_every_field(
    store_factory,
    scope,
    text,
    kind,
    sources,
    occurred_at,
    created_at,
    updated_at,
    metadata,
    attributes,
    importance,
    strength,
    access_count,
    pinned,
    optional_times,
    superseded_by,
    memory_id,
):
    store = store_factory(uid("rt"))
    last_accessed_at, expires_at, valid_from, valid_to, expired_at = optional_times
    record = MemoryRecord(
        id=memory_id,
        kind=kind,
        text=text,
        scope=scope,
        source_ids=tuple(sources),
        occurred_at=occurred_at,
        created_at=created_at,
        updated_at=updated_at,
        metadata=metadata,
        attributes=attributes,
        importance=importance,
        strength=strength,
        access_count=access_count,
        last_accessed_at=last_accessed_at,
        pinned=pinned,
        expires_at=expires_at,
        valid_from=valid_from,
        valid_to=valid_to,
        expired_at=expired_at,
        superseded_by=superseded_by,
    )
    store.write(WriteBatch(memories=(NewMemory(record, text, unit()),)))
    assert store.get_memories(scope.namespace, [memory_id]) == [record]
    events = store.events(scope.namespace, memory_id)
    assert [e.action for e in events] == ["ADD"]
    assert events[0].before is None
    assert events[0].after["text"] == text


def test_get_memories_keeps_requested_order_and_skips_unknown(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    a, b, c = (make_record(scope, f"text {i}") for i in range(3))
    write_memories(store, new(a, unit()), new(b, unit()), new(c, unit()))
    got = store.get_memories("ns", [c.id, "unknown", a.id, b.id])
    assert [r.id for r in got] == [c.id, a.id, b.id]
    assert store.get_memories("ns", []) == []


def test_timestamps_before_year_1000_round_trip(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    record = make_record(scope, occurred_at=datetime(999, 12, 31, 23, 59, 59))
    write_memories(store, new(record, unit()))
    assert store.get_memories("ns", [record.id]) == [record]


# -- atomicity and idempotency -------------------------------------------------------------


def test_batch_with_a_constraint_violation_writes_nothing(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    write_memories(store, new(make_record(scope, "already here"), unit()))
    before = counts(store, "ns")
    listed_before = listed(store, MemoryFilter("ns", current_only=False))

    message = make_message(scope, "a new message")
    first = make_record(scope, "first", sources=[message.id])
    clash = make_record(scope, "second", mid=first.id)  # duplicate memory id
    with pytest.raises(RememError):
        store.write(
            WriteBatch(messages=(message,), memories=(new(first, unit()), new(clash, unit())))
        )
    assert counts(store, "ns") == before
    assert listed(store, MemoryFilter("ns", current_only=False)) == listed_before
    assert store.get_messages("ns", scope, [message.id]) == []
    assert store.events("ns", first.id) == []
    assert ksearch(store, ["first"], MemoryFilter("ns"), 10) == []


def test_same_message_id_and_content_is_skipped_and_reported(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", session_id="s", namespace="ns")
    message = make_message(scope, "I like tea")
    batch = WriteBatch(
        messages=(message,),
        memories=(new(make_record(scope, "I like tea", sources=[message.id]), unit()),),
    )
    assert store.write(batch) == ()
    after_first = counts(store, "ns")
    assert after_first == (1, 1, 1)

    again = WriteBatch(
        messages=(message,),
        memories=(new(make_record(scope, "I like tea", sources=[message.id]), unit()),),
    )
    assert store.write(again) == (message.id,)
    assert counts(store, "ns") == after_first


def test_mixed_batch_skips_only_the_duplicate(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    old = make_message(scope, "old")
    store.write(WriteBatch(messages=(old,)))
    fresh = make_message(scope, "fresh")
    batch = WriteBatch(
        messages=(old, fresh),
        memories=(
            new(make_record(scope, "old", sources=[old.id]), unit()),
            new(make_record(scope, "fresh", sources=[fresh.id]), unit()),
        ),
    )
    assert store.write(batch) == (old.id,)
    assert counts(store, "ns")[:2] == (2, 1)
    assert [r.text for r in store.list_memories(MemoryFilter("ns"))] == ["fresh"]


def test_reused_message_id_with_other_content_conflicts_and_writes_nothing(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    original = make_message(scope, "original", mid="m1")
    store.write(WriteBatch(messages=(original,)))
    before = counts(store, "ns")

    changed = make_message(scope, "changed", mid="m1")
    bystander = make_message(scope, "bystander")
    with pytest.raises(ConflictError, match="m1"):
        store.write(
            WriteBatch(
                messages=(bystander, changed),
                memories=(new(make_record(scope, "x", sources=[bystander.id]), unit()),),
            )
        )
    assert counts(store, "ns") == before
    assert store.get_messages("ns", scope, ["m1"]) == [original]
    assert store.get_messages("ns", scope, [bystander.id]) == []


def test_message_ids_are_scoped_by_user(store_factory):
    store = store_factory()
    ana = make_message(Scope(user_id="ana", namespace="ns"), "from ana", mid="m1")
    bob = make_message(Scope(user_id="bob", namespace="ns"), "from bob", mid="m1")
    assert store.write(WriteBatch(messages=(ana,))) == ()
    assert store.write(WriteBatch(messages=(bob,))) == ()
    assert store.stats("ns").messages == 2


# -- namespace isolation -------------------------------------------------------------------


def test_namespace_isolation(store_factory):
    store = store_factory()
    scope_a = Scope(user_id="u", agent_id="g", session_id="s", namespace="a")
    message = make_message(scope_a, "secret plans about zanzibar", mid="m1")
    record = make_record(scope_a, "secret plans about zanzibar", sources=["m1"])
    vector = unit()
    store.write(WriteBatch(messages=(message,), memories=(new(record, vector),)))
    scope_b = replace(scope_a, namespace="b")

    assert store.get_memories("b", [record.id]) == []
    assert store.list_memories(MemoryFilter("b", current_only=False)) == []
    assert store.list_memories(MemoryFilter("b", user_id="u")) == []
    assert ksearch(store, ["zanzibar"], MemoryFilter("b"), 10) == []
    assert vsearch(store, vector, MemoryFilter("b"), 10) == []
    assert store.events("b", record.id) == []
    assert store.get_messages("b", scope_b, ["m1"]) == []
    assert store.existing_messages(scope_b, ["m1"]) == {}
    assert list(store.dump("b")) == []
    stats_b = store.stats("b")
    assert (stats_b.messages, stats_b.memories, stats_b.events) == (0, 0, 0)
    with pytest.raises(NotFoundError):
        store.delete_memory("b", record.id, "test", "cross-namespace delete")
    with pytest.raises(NotFoundError):
        store.update_memory("b", record.id, MemoryPatch(text="hacked"), "test", "x")
    assert store.delete_scope(MemoryFilter("b", user_id="u", current_only=False), "test") == (
        0,
        0,
    )

    # namespace "a" saw none of that
    assert store.get_memories("a", [record.id]) == [record]
    assert [s.id for s in ksearch(store, ["zanzibar"], MemoryFilter("a"), 10)] == [record.id]
    assert [s.id for s in vsearch(store, vector, MemoryFilter("a"), 10)] == [record.id]
    assert [e.action for e in store.events("a", record.id)] == ["ADD"]
    assert counts(store, "a") == (1, 1, 1)
    assert store.get_messages("a", scope_a, ["m1"]) == [message]


def test_same_message_id_in_two_namespaces_is_independent(store_factory):
    store = store_factory()
    a = make_message(Scope(user_id="u", namespace="a"), "content a", mid="m1")
    b = make_message(Scope(user_id="u", namespace="b"), "content b", mid="m1")
    assert store.write(WriteBatch(messages=(a,))) == ()
    assert store.write(WriteBatch(messages=(b,))) == ()
    assert store.get_messages("a", a.scope, ["m1"]) == [a]
    assert store.get_messages("b", b.scope, ["m1"]) == [b]


# -- filters -------------------------------------------------------------------------------


@pytest.fixture
def populated(store_factory):
    """Eight memories across users, agents, sessions, kinds, metadata and times."""
    store = store_factory()
    made: dict[str, MemoryRecord] = {}
    specs = [
        ("u1-g1-s1", "u1", "g1", "s1", "turn", {"topic": "food", "n": 1, "ok": True}, 0),
        ("u1-g1-s2", "u1", "g1", "s2", "fact", {"topic": "food", "n": 2, "ok": False}, 1),
        ("u1-g2-s1", "u1", "g2", "s1", "turn", {"topic": "travel", "n": 1, "ok": True}, 2),
        ("u2-g1-s1", "u2", "g1", "s1", "event", {"topic": "travel", "n": 3}, 3),
        ("u2-g2-s3", "u2", "g2", "s3", "fact", {"topic": "1", "n": "1"}, 4),
        ("u3-none", "u3", None, None, "summary", {}, 5),
        ("none-g1", None, "g1", None, "turn", {"ok": "yes"}, 6),
        ("undated", "u1", "g1", "s1", "turn", {"topic": "food"}, None),
    ]
    for name, user, agent, session, kind, metadata, day in specs:
        record = make_record(
            Scope(user, agent, session, "ns"),
            f"memory {name}",
            kind=kind,
            metadata=metadata,
            occurred_at=None if day is None else T0 + timedelta(days=day),
        )
        made[name] = record
        write_memories(store, new(record, unit()))
    return store, {name: r.id for name, r in made.items()}


def names(ids_by_name: dict[str, str], found: set[str]) -> set[str]:
    return {name for name, i in ids_by_name.items() if i in found}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({}, {"u1-g1-s1", "u1-g1-s2", "u1-g2-s1", "u2-g1-s1", "u2-g2-s3", "u3-none",
              "none-g1", "undated"}),
        ({"user_id": "u1"}, {"u1-g1-s1", "u1-g1-s2", "u1-g2-s1", "undated"}),
        ({"agent_id": "g1"}, {"u1-g1-s1", "u1-g1-s2", "u2-g1-s1", "none-g1", "undated"}),
        ({"session_id": "s1"}, {"u1-g1-s1", "u1-g2-s1", "u2-g1-s1", "undated"}),
        ({"user_id": "u1", "agent_id": "g1", "session_id": "s1"}, {"u1-g1-s1", "undated"}),
        ({"user_id": "nobody"}, set()),
        ({"kinds": ("fact",)}, {"u1-g1-s2", "u2-g2-s3"}),
        ({"kinds": ("event", "summary")}, {"u2-g1-s1", "u3-none"}),
        ({"user_id": "u1", "kinds": ("turn",)}, {"u1-g1-s1", "u1-g2-s1", "undated"}),
        ({"metadata": {"topic": "food"}}, {"u1-g1-s1", "u1-g1-s2", "undated"}),
        ({"metadata": {"n": 1}}, {"u1-g1-s1", "u1-g2-s1"}),
        ({"metadata": {"n": "1"}}, {"u2-g2-s3"}),
        ({"metadata": {"topic": "1"}}, {"u2-g2-s3"}),
        ({"metadata": {"ok": True}}, {"u1-g1-s1", "u1-g2-s1"}),
        ({"metadata": {"ok": "yes"}}, {"none-g1"}),
        ({"metadata": {"ok": False}}, {"u1-g1-s2"}),
        ({"metadata": {"topic": "travel", "n": 3}}, {"u2-g1-s1"}),
        ({"metadata": {"missing": "x"}}, set()),
        ({"since": T0 + timedelta(days=4)}, {"u2-g2-s3", "u3-none", "none-g1"}),
        # an undated memory counts by when it was recorded (T0 here)
        ({"until": T0 + timedelta(days=1)}, {"u1-g1-s1", "u1-g1-s2", "undated"}),
        (
            {"since": T0 + timedelta(days=2), "until": T0 + timedelta(days=3)},
            {"u1-g2-s1", "u2-g1-s1"},
        ),
        ({"since": T0 + timedelta(days=2, seconds=1), "until": T0 + timedelta(days=3)},
         {"u2-g1-s1"}),
    ],
)  # fmt: skip
def test_filters(populated, flt, expected):
    store, by_name = populated
    f = MemoryFilter("ns", **flt)
    assert names(by_name, listed(store, f)) == expected
    query = unit()
    assert names(by_name, {s.id for s in vsearch(store, query, f, 100)}) == expected
    assert names(by_name, {s.id for s in ksearch(store, ["memory"], f, 100)}) == expected


def test_filter_by_ids(populated):
    store, by_name = populated
    wanted = (by_name["u1-g1-s1"], by_name["u3-none"])
    assert listed(store, MemoryFilter("ns", ids=wanted)) == set(wanted)


def test_list_is_newest_first_with_limit_and_offset(populated):
    store, _ = populated
    everything = store.list_memories(MemoryFilter("ns", current_only=False), limit=100)
    dated = [r for r in everything if r.occurred_at is not None]
    assert [r.occurred_at for r in dated] == sorted((r.occurred_at for r in dated), reverse=True)
    page = store.list_memories(MemoryFilter("ns"), limit=3, offset=2)
    assert [r.id for r in page] == [r.id for r in everything[2:5]]


def test_current_only_hides_superseded_invalidated_and_expired(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    now = utcnow()
    live = make_record(scope, "live")
    superseded = make_record(scope, "superseded", superseded_by=live.id)
    invalidated = make_record(scope, "invalidated", expired_at=now)
    expired = make_record(scope, "expired", expires_at=now - timedelta(days=1))
    later = make_record(scope, "expires later", expires_at=now + timedelta(days=365))
    records = [live, superseded, invalidated, expired, later]
    write_memories(store, *(new(r, unit()) for r in records))
    visible = {live.id, later.id}
    assert listed(store, MemoryFilter("ns")) == visible
    assert listed(store, MemoryFilter("ns", current_only=False)) == {r.id for r in records}
    assert {s.id for s in vsearch(store, unit(), MemoryFilter("ns"), 10)} == visible
    assert {s.id for s in ksearch(store, ["live", "superseded", "invalidated",
                                                  "expired", "expires"],
                                                 MemoryFilter("ns"), 10)} == visible  # fmt: skip


def test_memory_that_expires_leaves_vector_search(store_factory):
    store = store_factory()
    vector = unit()
    soon = make_record(
        Scope(namespace="ns"), "soon gone", expires_at=utcnow() + timedelta(seconds=2)
    )
    write_memories(store, new(soon, vector))
    if [s.id for s in vsearch(store, vector, MemoryFilter("ns"), 5)] != [soon.id]:
        pytest.skip("the first search ran after the memory had already expired")
    while utcnow() <= soon.expires_at:
        time.sleep(0.1)
    assert store.list_memories(MemoryFilter("ns")) == []
    assert vsearch(store, vector, MemoryFilter("ns"), 5) == []


# -- keyword search ------------------------------------------------------------------------


def test_keyword_search_ranks_the_matching_doc_first_and_stems(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    docs = {
        "cat": "the cat runs quickly across the garden",
        "dog": "dogs bark loudly at the mailman every morning",
        "weather": "the weather in Lisbon is sunny and warm",
        "cook": "I cook pasta with tomatoes on sundays",
    }
    recs = {k: make_record(scope, v) for k, v in docs.items()}
    write_memories(store, *(new(r, unit()) for r in recs.values()))
    flt = MemoryFilter("ns")

    def top(terms: list[str]) -> list[str]:
        return [s.id for s in ksearch(store, terms, flt, 10)]

    assert top(["running"]) == [recs["cat"].id]  # porter: running -> run <- runs
    assert top(["barking", "dog"]) == [recs["dog"].id]
    assert top(["lisbon"]) == [recs["weather"].id]  # case-insensitive
    assert top(["cooking"])[0] == recs["cook"].id
    assert set(top(["dogs", "weather"])) == {recs["dog"].id, recs["weather"].id}
    assert top(["zebra"]) == []
    assert top([]) == []
    assert top(['"', " "]) == []
    results = ksearch(store, ["garden", "warm", "cat"], flt, 10)
    assert results[0].id == recs["cat"].id
    assert [s.score for s in results] == sorted((s.score for s in results), reverse=True)
    assert ksearch(store, ["the"], flt, 2).__len__() == 2  # limit


def test_keyword_search_uses_index_text_not_display_text(store_factory):
    store = store_factory()
    record = make_record(Scope(namespace="ns"), "display only")
    write_memories(store, new(record, unit(), index="indexed words [8 May 2023]"))
    flt = MemoryFilter("ns")
    assert [s.id for s in ksearch(store, ["may"], flt, 5)] == [record.id]
    assert ksearch(store, ["display"], flt, 5) == []


def test_keyword_search_treats_operators_as_words(store_factory):
    store = store_factory()
    record = make_record(Scope(namespace="ns"), "cats AND dogs NOT birds")
    write_memories(store, new(record, unit()))
    flt = MemoryFilter("ns")
    for terms in (["AND"], ["NOT"], ["NEAR"], ["dogs*"], ["(dogs"], ["col:dogs"], ["-dogs"]):
        ksearch(store, terms, flt, 5)  # must not raise
    assert [s.id for s in ksearch(store, ["NOT"], flt, 5)] == [record.id]


# -- vector search -------------------------------------------------------------------------


def test_vector_search_returns_exact_cosine_order(store_factory):
    store = store_factory()
    rng = np.random.default_rng(7)
    scope = Scope(namespace="ns")
    vectors = [unit(rng=rng) for _ in range(40)]
    records = [make_record(scope, f"v{i}") for i in range(40)]
    write_memories(store, *(new(r, v) for r, v in zip(records, vectors, strict=True)))
    write_memories(store, new(make_record(scope, "no vector"), None))
    matrix = np.vstack(vectors)
    for _ in range(5):
        query = unit(rng=rng)
        cosine = matrix @ query
        expected = [records[i].id for i in np.argsort(-cosine)]
        found = vsearch(store, query, MemoryFilter("ns"), 40)
        assert [s.id for s in found] == expected
        np.testing.assert_allclose(
            [s.score for s in found], np.sort(cosine)[::-1], rtol=1e-5, atol=1e-6
        )
        top5 = vsearch(store, query, MemoryFilter("ns"), 5)
        assert [s.id for s in top5] == expected[:5]
    # a stored vector finds itself first, with cosine 1
    best = vsearch(store, vectors[3], MemoryFilter("ns"), 1)[0]
    assert best.id == records[3].id
    assert best.score == pytest.approx(1.0, abs=1e-5)


def test_vector_search_is_cosine_for_vectors_that_are_not_unit_length(store_factory):
    store = store_factory()
    rng = np.random.default_rng(11)
    scope = Scope(namespace="ns")
    vectors = [unit(rng=rng) * float(scale) for scale in (0.1, 1, 5, 20, 2, 0.5, 9, 3)]
    records = [make_record(scope, f"v{i}") for i in range(len(vectors))]
    write_memories(store, *(new(r, v) for r, v in zip(records, vectors, strict=True)))
    query = unit(rng=rng)
    matrix = np.vstack([v / np.linalg.norm(v) for v in vectors])
    expected = [records[i].id for i in np.argsort(-(matrix @ query))]
    assert [s.id for s in vsearch(store, query, MemoryFilter("ns"), 10)] == expected


def test_vector_search_sees_new_writes(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    first = make_record(scope, "first")
    write_memories(store, new(first, unit()))
    query = unit()
    assert [s.id for s in vsearch(store, query, MemoryFilter("ns"), 5)] == [first.id]
    second = make_record(scope, "second")
    write_memories(store, new(second, query))
    assert vsearch(store, query, MemoryFilter("ns"), 5)[0].id == second.id
    other_connection = store_factory()  # same data, another connection
    third = make_record(scope, "third")
    write_memories(other_connection, new(third, -query))
    assert {s.id for s in vsearch(store, query, MemoryFilter("ns"), 5)} == {
        first.id,
        second.id,
        third.id,
    }


# -- update, delete, history ---------------------------------------------------------------


def test_update_logs_before_after_and_keeps_the_embedding(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    vector = unit()
    record = make_record(scope, "old text about apples", metadata={"v": 1})
    write_memories(store, new(record, vector))

    after = store.update_memory(
        "ns", record.id, MemoryPatch(text="new text", metadata={"v": 2}, pinned=True),
        "tester", "fix typo",
    )  # fmt: skip
    assert (after.text, dict(after.metadata), after.pinned) == ("new text", {"v": 2}, True)
    assert after.updated_at >= record.updated_at
    assert after.created_at == record.created_at
    assert after.source_ids == record.source_ids
    assert store.get_memories("ns", [record.id]) == [after]

    events = store.events("ns", record.id)
    assert [e.action for e in events] == ["ADD", "UPDATE"]
    update = events[1]
    assert (update.actor, update.reason, update.memory_id) == ("tester", "fix typo", record.id)
    assert update.before["text"] == "old text about apples"
    assert update.before["metadata"] == {"v": 1}
    assert update.after["text"] == "new text"
    assert update.after["pinned"] is True
    assert events[0].id < events[1].id

    # no new vector: the old embedding is kept; no new index text: the old one is kept
    best = vsearch(store, vector, MemoryFilter("ns"), 1)
    assert [s.id for s in best] == [record.id]
    assert best[0].score == pytest.approx(1.0, abs=1e-5)
    assert [s.id for s in ksearch(store, ["apples"], MemoryFilter("ns"), 5)] == [record.id]
    assert counts(store, "ns") == (0, 1, 2)


def test_update_with_new_vector_and_index_text(store_factory):
    store = store_factory()
    scope = Scope(namespace="ns")
    old_vector, new_vector = unit(), unit()
    record = make_record(scope, "old text about apples")
    write_memories(store, new(record, old_vector))
    store.update_memory("ns", record.id, MemoryPatch(text="pears now", index_text="pears now",
                                                     vector=new_vector), "t", "r")  # fmt: skip
    flt = MemoryFilter("ns")
    assert ksearch(store, ["apples"], flt, 5) == []
    assert [s.id for s in ksearch(store, ["pears"], flt, 5)] == [record.id]
    assert vsearch(store, new_vector, flt, 1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_update_unknown_memory_raises_not_found_and_logs_nothing(store_factory):
    store = store_factory()
    before = counts(store, "ns")
    with pytest.raises(NotFoundError):
        store.update_memory("ns", "nope", MemoryPatch(text="x"), "t", "r")
    assert counts(store, "ns") == before
    assert store.events("ns", "nope") == []


def test_delete_logs_delete_and_history_survives_without_content(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    vector = unit()
    record = make_record(scope, "forget me please")
    keep = make_record(scope, "keep me")
    write_memories(store, new(record, vector), new(keep, unit()))
    store.delete_memory("ns", record.id, "tester", "user asked")

    assert store.get_memories("ns", [record.id]) == []
    assert record.id not in listed(store, MemoryFilter("ns", current_only=False))
    assert ksearch(store, ["forget"], MemoryFilter("ns"), 5) == []
    assert record.id not in {s.id for s in vsearch(store, vector, MemoryFilter("ns"), 5)}
    events = store.events("ns", record.id)
    assert [e.action for e in events] == ["ADD", "DELETE"]
    assert all(e.before is None and e.after is None for e in events)  # no copy of the text
    assert [(e.actor, e.reason) for e in events] == [("remem", ""), ("tester", "user asked")]
    assert store.get_memories("ns", [keep.id]) == [keep]
    with pytest.raises(NotFoundError):
        store.delete_memory("ns", record.id, "tester", "again")
    assert len(store.events("ns", record.id)) == 2


# -- recalls and archiving ------------------------------------------------------------------


def _add_one(strength: float, previous: datetime, at: datetime) -> float:
    """A reinforcement rule easy to check: +1 per recall, plus the days since the last."""
    return strength + 1 + (at - previous).total_seconds() / 86400


def test_record_access_counts_reinforces_and_keeps_the_revision_of_the_content(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    a, b = make_record(scope, "walk the dog"), make_record(scope, "feed the cat")
    write_memories(store, new(a, unit()), new(b, unit()))
    with store.snapshot() as before:
        pass
    day = timedelta(days=1)
    # out of order on purpose: recalls apply in time order; unknown ids are skipped
    changed = store.record_access("ns", [(a.id, T0 + 2 * day), (a.id, T0 + day),
                                         ("nope", T0), (b.id, T0)], _add_one)  # fmt: skip
    assert changed == 2
    got = {r.id: r for r in store.get_memories("ns", [a.id, b.id])}
    assert got[a.id].access_count == 2 and got[a.id].last_accessed_at == T0 + 2 * day
    assert got[a.id].strength == pytest.approx(1.0 + 2 + 1 + 1)  # +1+1 day, then +1+1 day
    assert (got[b.id].access_count, got[b.id].strength) == (1, 2.0)
    assert got[a.id].updated_at == a.updated_at  # a recall is not an update...
    assert [e.action for e in store.events("ns", a.id)] == ["ADD"]  # ...and logs nothing
    assert store.record_access("other", [(a.id, T0)], _add_one) == 0  # namespaces hold
    assert store.record_access("ns", [], _add_one) == 0

    changes = store.changes(ScopeKey("ns", "u"), before)
    assert changes.rows == () and changes.deleted == ()  # nothing to re-index
    accessed = {x.id: x for x in changes.accessed}
    assert accessed.keys() == {a.id, b.id}
    assert (accessed[a.id].access_count, accessed[a.id].last_accessed_at) == (2, T0 + 2 * day)
    assert accessed[a.id].strength == pytest.approx(got[a.id].strength)
    assert store.changes(ScopeKey("ns", "other-user"), before).accessed == ()

    store.record_access("ns", [(a.id, T0)], _add_one)  # an old recall written late
    assert store.get_memories("ns", [a.id])[0].last_accessed_at == T0 + 2 * day
    # a row written after the recall carries its statistics in ``rows``, not ``accessed``
    store.update_memory("ns", a.id, MemoryPatch(importance=0.9), "t", "r")
    later = store.changes(ScopeKey("ns", "u"), before)
    row = next(r for r in later.rows if r.id == a.id)
    assert (row.importance, row.last_accessed_at) == (0.9, T0 + 2 * day)
    assert a.id not in {x.id for x in later.accessed}


def test_archive_hides_from_current_reads_logs_the_reason_and_keeps_the_memory(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", namespace="ns")
    stale, pinned = make_record(scope, "old news"), make_record(scope, "keep", pinned=True)
    recalled = make_record(scope, "used")
    superseded = make_record(scope, "replaced", superseded_by=stale.id)
    write_memories(store, *(new(r, unit()) for r in (stale, pinned, recalled, superseded)))
    store.record_access("ns", [(recalled.id, T0)], _add_one)  # after we read ``recalled``
    unknown = make_record(scope, "never stored")
    items = [(stale, "retention 0.01 below 0.05"), (pinned, "pinned"), (recalled, "old read"),
             (superseded, "not current"), (unknown, "unknown")]  # fmt: skip
    done = store.archive_memories("ns", items, "forget")
    assert [r.id for r in done] == [stale.id]
    assert done[0].expired_at is not None and store.get_memories("ns", [stale.id]) == done
    assert stale.id not in listed(store, MemoryFilter("ns"))
    assert stale.id in listed(store, MemoryFilter("ns", current_only=False))
    assert ksearch(store, ["news"], MemoryFilter("ns"), 5) == []
    events = store.events("ns", stale.id)
    assert [e.action for e in events] == ["ADD", "ARCHIVE"]
    assert (events[1].reason, events[1].actor) == ("retention 0.01 below 0.05", "forget")
    assert events[1].before["expired_at"] is None and events[1].after["expired_at"]
    assert store.archive_memories("ns", [(done[0], "again")], "forget") == []  # already
    assert store.archive_memories("other", [(pinned, "x")], "forget") == []
    assert len(store.events("ns", stale.id)) == 2
    for record in (pinned, recalled, superseded):
        assert store.get_memories("ns", [record.id])[0].expired_at is None


def test_delete_scope_deletes_only_that_scope(store_factory):
    store = store_factory()
    u1s1 = Scope(user_id="u1", session_id="s1", namespace="ns")
    u1s2 = Scope(user_id="u1", session_id="s2", namespace="ns")
    u2s1 = Scope(user_id="u2", session_id="s1", namespace="ns")
    other_ns = Scope(user_id="u1", session_id="s1", namespace="other")
    written: dict[Scope, list[str]] = {}
    for scope in (u1s1, u1s2, u2s1, other_ns):
        for i in range(2):
            message = make_message(scope, f"message {i}")
            record = make_record(scope, f"memory {i}", sources=[message.id])
            store.write(WriteBatch(messages=(message,), memories=(new(record, unit()),)))
            written.setdefault(scope, []).append(record.id)

    assert store.delete_scope(
        MemoryFilter("ns", user_id="u1", session_id="s1", current_only=False), "t"
    ) == (2, 2)
    remaining = listed(store, MemoryFilter("ns", current_only=False))
    assert remaining == set(written[u1s2] + written[u2s1])
    assert counts(store, "other")[:2] == (2, 2)
    for memory_id in written[u1s1]:
        assert [e.action for e in store.events("ns", memory_id)] == ["ADD", "DELETE"]

    assert store.delete_scope(MemoryFilter("ns", user_id="u1", current_only=False), "t") == (
        2,
        2,
    )
    assert listed(store, MemoryFilter("ns", current_only=False)) == set(written[u2s1])
    assert store.stats("ns").messages == 2
    assert counts(store, "other")[:2] == (2, 2)


def test_stats_counts_and_scope(store_factory):
    store = store_factory()
    for user, session, kind in (("u1", "s1", "turn"), ("u1", "s2", "fact"), ("u2", "s1", "turn")):
        scope = Scope(user_id=user, session_id=session, namespace="ns")
        message = make_message(scope)
        record = make_record(scope, kind=kind, sources=[message.id])
        store.write(WriteBatch(messages=(message,), memories=(new(record, unit()),)))
    stats = store.stats("ns")
    assert (stats.messages, stats.memories, stats.events) == (3, 3, 3)
    assert dict(stats.memories_by_kind) == {"turn": 2, "fact": 1}
    assert (stats.users, stats.sessions) == (2, 3)
    scoped = store.stats("ns", Scope(user_id="u1", namespace="ns"))
    assert (scoped.messages, scoped.memories, scoped.users, scoped.sessions) == (2, 2, 1, 2)


# -- dump and load -------------------------------------------------------------------------


def _without_event_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not (r["type"] == "event" and k == "id")} for r in rows]


def test_dump_load_round_trip(store_factory):
    source = store_factory("source")
    scope = Scope(user_id="u", agent_id="g", session_id="s", namespace="ns")
    for i in range(3):
        message = make_message(scope, f"message number {i} ünïcödé 🌍", role=ROLES[i % 4])
        record = make_record(
            scope, f"memory {i}", sources=[message.id], metadata={"i": i, "tag": "x"}
        )
        source.write(WriteBatch(messages=(message,), memories=(new(record, unit()),)))
    loose = make_record(scope, "no vector here")
    write_memories(source, new(loose, None, index="custom index text"))
    first = source.list_memories(MemoryFilter("ns"))[0]
    source.update_memory("ns", first.id, MemoryPatch(text="edited"), "t", "edit")
    source.delete_memory("ns", source.list_memories(MemoryFilter("ns"))[-1].id, "t", "gone")
    source.write(WriteBatch(memories=(new(make_record(Scope(namespace="elsewhere")), unit()),)))

    dumped = list(source.dump("ns"))
    assert {r["type"] for r in dumped} == {"message", "memory", "event"}
    target = store_factory("target")
    assert target.load("ns", dumped) == len(dumped)
    assert _without_event_ids(list(target.dump("ns"))) == _without_event_ids(dumped)
    assert counts(target, "ns") == counts(source, "ns")
    assert target.list_memories(MemoryFilter("ns")) == source.list_memories(MemoryFilter("ns"))
    assert target.stats("elsewhere").memories == 0
    query = unit()
    assert vsearch(target, query, MemoryFilter("ns"), 10) == vsearch(
        source, query, MemoryFilter("ns"), 10
    )
    assert [s.id for s in ksearch(target, ["custom"], MemoryFilter("ns"), 5)] == [loose.id]


def test_load_into_another_namespace_rewrites_the_namespace(store_factory):
    source = store_factory("source")
    scope = Scope(user_id="u", namespace="ns")
    message = make_message(scope, "hello")
    source.write(
        WriteBatch(
            messages=(message,),
            memories=(new(make_record(scope, "hello", sources=[message.id]), unit()),),
        )
    )
    target = store_factory("target")
    target.load("copy", list(source.dump("ns")))
    assert counts(target, "copy") == counts(source, "ns")
    assert counts(target, "ns") == (0, 0, 0)
    assert all(r.scope.namespace == "copy" for r in target.list_memories(MemoryFilter("copy")))


def test_failed_load_writes_nothing(store_factory):
    source = store_factory("source")
    scope = Scope(namespace="ns")
    write_memories(source, new(make_record(scope, "one"), unit()), new(make_record(scope), unit()))
    rows = list(source.dump("ns"))
    target = store_factory("target")
    with pytest.raises(RememError):
        target.load("ns", [*rows, {"type": "mystery"}])
    assert counts(target, "ns") == (0, 0, 0)
    with pytest.raises(RememError):
        target.load("ns", [*rows, rows[0]])  # duplicate memory id
    assert counts(target, "ns") == (0, 0, 0)


# -- embedder binding ----------------------------------------------------------------------


def test_bind_embedder_refuses_a_different_model(store_factory):
    store = store_factory()
    store.bind_embedder("model-a", 384)
    store.bind_embedder("model-a", 384)  # the same one again is fine
    with pytest.raises(ConfigError, match="model-a"):
        store.bind_embedder("model-b", 384)
    with pytest.raises(ConfigError):
        store.bind_embedder("model-a", 768)
    assert store.stats("default").embedder == "model-a:384"
    reopened = store_factory()
    with pytest.raises(ConfigError):
        reopened.bind_embedder("model-b", 384)
    reopened.bind_embedder("model-a", 384)


# -- enrichment indexes: entity and time links, term counts, supersession ---------------


def enriched(scope: Scope, text: str, entities: Sequence[str] = (), **kw: Any) -> MemoryRecord:
    attributes = {
        "entities": [{"key": e.lower(), "name": e, "kind": "name"} for e in entities],
        "keyphrases": kw.pop("keyphrases", []),
        "times": kw.pop("times", []),
    }
    return make_record(scope, text, kind=kw.pop("kind", "turn"), attributes=attributes, **kw)


def test_scope_index_links_entities_and_times_of_the_filtered_memories(store_factory):
    store = store_factory()
    ana, bo = Scope(user_id="ana", session_id="s1"), Scope(user_id="bo", session_id="s1")
    times = [{"text": "yesterday", "start": "2024-01-01", "end": "2024-01-01", "kind": "date"}]
    a1 = enriched(ana, "Ana met Maria", ["Ana", "Maria"], times=times)
    a2 = enriched(
        ana,
        "Maria moved to Porto",
        ["Maria", "Porto"],
        keyphrases=[{"key": "porto", "score": 7.5}, {"key": "moved", "score": 3.0}],
    )
    b1 = enriched(bo, "Bo met Maria too", ["Bo", "Maria"])
    write_memories(store, *(new(r, unit()) for r in (a1, a2, b1)))

    with live(store).open(MemoryFilter(user_id="ana")) as index:
        assert index.ids == [a1.id, a2.id]
        assert index.kinds == ["turn", "turn"]
        assert len(set(index.sessions)) == 1
        keys = {e.key for e in index.entities}
        assert keys == {"ana", "maria", "porto", "moved"}  # Bo's entities stay in Bo's scope
        mentions = {(index.ids[m], index.entities[e].key, w) for m, e, w in index.mentions}
        assert (a2.id, "porto", 1.0) in mentions  # an entity link outranks a key phrase
        assert (a2.id, "moved", 3.0 / 8) in mentions  # a key phrase links by its surprisal
        times_of = [(index.ids[r], t.start.isoformat(), t.kind)
                    for r, links in index.times_by_row.items() for t in links]  # fmt: skip
        assert times_of == [(a1.id, "2024-01-01", "date")]
    assert store.entity_kinds(Scope(user_id="ana"))["maria"] == "name"
    assert "bo" not in store.entity_kinds(Scope(user_id="ana"))


def test_links_follow_updates_deletes_and_loads(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", session_id="s")
    record = enriched(scope, "Ana met Maria", ["Ana", "Maria"])
    write_memories(store, new(record, unit()))
    flt = MemoryFilter(user_id="u")
    store.update_memory("default", record.id, MemoryPatch(pinned=True), "t", "pin")
    with live(store).open(flt) as index:
        assert len(index.mentions) == 2  # an update keeps the links
    target = store_factory("copy")
    target.load("default", list(store.dump("default")))
    with live(target).open(flt) as index:
        assert {e.key for e in index.entities} == {"ana", "maria"}
    store.delete_memory("default", record.id, "t", "gone")
    with live(store).open(flt) as index:
        assert index.mentions == []


def test_term_counts_count_turns_per_user_and_follow_deletes(store_factory):
    store = store_factory()
    ana = Scope(user_id="ana", session_id="s")
    first = enriched(ana, "Ana's turtles love lettuce")
    write_memories(store, new(first, unit()), new(enriched(ana, "turtles again")),
                   new(enriched(ana, "a summary about turtles", kind="summary")),
                   new(enriched(Scope(user_id="bo"), "turtles for Bo")))  # fmt: skip
    docs, df = store.term_counts(Scope(user_id="ana"), ["turtles", "ana", "lettuce", "zebra"])
    assert (docs, df) == (2, {"turtles": 2, "ana": 1, "lettuce": 1, "zebra": 0})
    store.delete_memory("default", first.id, "t", "gone")
    assert store.term_counts(Scope(user_id="ana"), ["turtles", "lettuce"]) == (
        1, {"turtles": 1, "lettuce": 0}
    )  # fmt: skip


def test_a_singleton_kind_supersedes_the_current_one_of_its_exact_scope(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", session_id="s")
    old = make_record(scope, "summary v1", kind="summary")
    elsewhere = make_record(Scope(user_id="v", session_id="s"), "summary of v", kind="summary")
    unowned = make_record(Scope(session_id="s"), "summary without user", kind="summary")
    write_memories(store, new(old, unit()), new(elsewhere, unit()), new(unowned, unit()))
    newer = make_record(scope, "summary v2", kind="summary")
    store.write(WriteBatch(memories=(new(newer, unit()),), singleton_kinds=("summary",)))
    current = store.list_memories(MemoryFilter(user_id="u"))
    assert [r.id for r in current] == [newer.id]
    (kept,) = store.get_memories("default", [old.id])
    assert kept.superseded_by == newer.id
    assert [e.action for e in store.events("default", old.id)] == ["ADD", "SUPERSEDE"]
    others = store.get_memories("default", [elsewhere.id, unowned.id])
    assert [r.superseded_by for r in others] == [None, None]  # other scopes keep theirs
    info = store.session_info(scope)
    assert info.summary is not None and info.summary.id == newer.id


def test_session_search_ranks_whole_sessions_and_follows_writes(store_factory):
    store = store_factory()
    s1, s2 = Scope(user_id="u", session_id="s1"), Scope(user_id="u", session_id="s2")
    other = Scope(user_id="v", session_id="s1")
    kyoto = enriched(s1, "trip to kyoto")
    write_memories(store, new(kyoto, unit()), new(enriched(s1, "street food")),
                   new(enriched(s2, "food food food")), new(enriched(other, "kyoto food")),
                   new(enriched(s1, "kyoto summary", kind="summary")))  # fmt: skip
    flt = MemoryFilter(user_id="u")
    hits = ssearch(store, ["kyoto", "food"], flt, 10)
    assert [h.id for h in hits] == [session_key("u", None, "s1"), session_key("u", None, "s2")]
    assert [h.id for h in ssearch(store, ["summary"], flt, 10)] == []  # turns only
    store.delete_memory("default", kyoto.id, "t", "gone")
    assert ssearch(store, ["kyoto"], flt, 10) == []
    only_s2 = ssearch(store, ["food"], replace(flt, session_id="s2"), 10)
    assert [h.id for h in only_s2] == [session_key("u", None, "s2")]
    assert ssearch(store, [], flt, 10) == []


def test_api_keys_are_kept_hashed_listed_and_revoked(store_factory):
    from remem.models import ApiKey

    store = store_factory()
    now = utcnow()
    first = ApiKey("k1", "acme", "backend", False, now)
    second = ApiKey("k2", "globex", "", True, now + timedelta(seconds=1))
    store.add_api_key(first, "hash-1")
    store.add_api_key(second, "hash-2")
    with pytest.raises(RememError):
        store.add_api_key(ApiKey("k3", "acme", "", False, now), "hash-1")  # hashes are unique
    assert store.api_keys() == [first, second]
    assert store.api_key_by_hash("hash-2") == second
    assert store.api_key_by_hash("nope") is None
    revoked = store.revoke_api_key("k1", now + timedelta(minutes=1))
    assert revoked.revoked_at == now + timedelta(minutes=1)
    again = store.revoke_api_key("k1", now + timedelta(hours=1))
    assert again.revoked_at == revoked.revoked_at  # the first revocation time stays
    assert store_factory().api_key_by_hash("hash-1") == revoked  # seen by another connection
    with pytest.raises(NotFoundError):
        store.revoke_api_key("k9", now)


# -- the job queue -------------------------------------------------------------------------


def enqueue(
    store: Store, scope: Scope, n: int = 1, *, batch_size: int = 0, kind: str = "derive",
    payload: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:  # fmt: skip
    """Log ``n`` messages with a job naming them; the job's id and the message ids."""
    messages = tuple(make_message(scope, f"message {i}") for i in range(n))
    job = NewJob(uid("job"), kind, scope, tuple(m.id for m in messages), payload or {},
                 batch_size)  # fmt: skip
    store.write(WriteBatch(messages=messages, jobs=(job,)))
    return job.id, [m.id for m in messages]


def test_a_job_is_enqueued_with_its_messages_or_not_at_all(store_factory):
    store = store_factory()
    scope = Scope(user_id="u1", session_id="s1", namespace="ns")
    job_id, ids = enqueue(store, scope, 2, payload={"why": "test"})
    job = store.get_job("ns", job_id)
    assert job is not None and job.status == "pending" and job.attempts == 0
    assert (job.kind, job.scope, job.message_ids) == ("derive", scope, tuple(ids))
    assert dict(job.payload) == {"why": "test"} and job.token is None and job.error is None
    assert store.get_job("other", job_id) is None  # namespaces stay apart
    reused = replace(make_message(scope, "other content"), id=ids[0])
    doomed = NewJob(uid("job"), "derive", scope, (reused.id,))
    with pytest.raises(ConflictError):
        store.write(WriteBatch(messages=(reused,), jobs=(doomed,)))
    assert store.get_job("ns", doomed.id) is None
    again = store.get_messages("ns", scope, ids)  # stored already: no second job for them
    store.write(WriteBatch(messages=tuple(again), jobs=(NewJob(uid("job"), "derive", scope,
                                                               tuple(ids)),)))  # fmt: skip
    assert [j.id for j in store.jobs("ns")] == [job_id]


def test_jobs_coalesce_into_a_pending_job_with_room(store_factory):
    store = store_factory()
    scope = Scope(user_id="u1", session_id="s1", namespace="ns")
    first, ids = enqueue(store, scope, 1, batch_size=3)
    _, more = enqueue(store, scope, 1, batch_size=3)  # joins the first
    found = store.job_of("ns", "derive", scope, more[0])
    assert found is not None and found.id == first and found.message_ids == (*ids, *more)
    second, late = enqueue(store, scope, 2, batch_size=3)  # 2 + 2 > 3: a job of its own
    assert store.get_job("ns", second) is not None
    assert store.job_of("ns", "derive", scope, late[1]).id == second  # type: ignore[union-attr]
    other, _ = enqueue(store, replace(scope, session_id="s2"), 1, batch_size=3)
    apart, _ = enqueue(store, scope, 1, batch_size=3, payload={"mode": "x"})
    assert store.get_job("ns", other) is not None and store.get_job("ns", apart) is not None
    claimed = store.claim_job("ns", "w", 60)  # the first, now running: nothing joins it
    assert claimed is not None and claimed.id == first
    _, after = enqueue(store, scope, 1, batch_size=4)
    assert store.job_of("ns", "derive", scope, after[0]).id == second  # type: ignore[union-attr]
    assert store.get_job("ns", first).message_ids == (*ids, *more)  # type: ignore[union-attr]
    assert store.job_of("ns", "derive", scope, "unknown") is None


def test_claims_take_the_oldest_runnable_job_of_a_namespace_and_kind(store_factory):
    store = store_factory()
    scope = Scope(user_id="u1", namespace="ns")
    first, _ = enqueue(store, scope)
    second, _ = enqueue(store, scope, kind="other")
    elsewhere, _ = enqueue(store, replace(scope, namespace="ns2"))
    job = store.claim_job("ns", "worker-1", 60)
    assert job is not None and job.id == first
    assert (job.status, job.attempts, job.worker) == ("running", 1, "worker-1")
    assert job.token and job.lease_until is not None and job.lease_until > utcnow()
    assert store.claim_job("ns", "worker-2", 60, kinds=("derive",)) is None
    assert store.claim_job("ns", "worker-2", 60).id == second  # type: ignore[union-attr]
    assert store.claim_job(None, "worker-2", 60).id == elsewhere  # type: ignore[union-attr]
    assert store.claim_job(None, "worker-2", 60) is None


def test_a_completed_job_is_done_with_its_results_written_once(store_factory):
    store = store_factory()
    scope = Scope(user_id="u1", namespace="ns")
    job_id, ids = enqueue(store, scope)
    job = store.claim_job("ns", "w", 60)
    assert job is not None and job.token is not None
    claim = JobClaim(job.id, job.token, {"memories": 1, "llm_calls": 1})
    fact = make_record(scope, "derived fact", sources=ids)
    store.write(WriteBatch(memories=(new(fact, unit()),), complete=claim))
    done = store.get_job("ns", job_id)
    assert done is not None and done.status == "done" and dict(done.result) == {
        "memories": 1, "llm_calls": 1}  # fmt: skip
    twice = make_record(scope, "written twice", sources=ids)
    with pytest.raises(ConflictError):
        store.write(WriteBatch(memories=(new(twice, unit()),), complete=claim))
    assert store.get_memories("ns", [twice.id]) == []
    assert store.fail_job(claim, "late", 0) is None  # a done job stays done
    assert store.get_job("ns", job_id).status == "done"  # type: ignore[union-attr]


def test_a_lease_that_ran_out_hands_the_job_over_and_the_old_claim_writes_nothing(
    store_factory,
):
    store, other = store_factory(), store_factory()
    scope = Scope(user_id="u1", namespace="ns")
    job_id, ids = enqueue(store, scope)
    stale = store.claim_job("ns", "dead", 0.0)  # a lease of no time: out at once
    assert stale is not None and stale.token is not None
    fresh = other.claim_job("ns", "alive", 60)
    assert fresh is not None and fresh.id == job_id and fresh.token != stale.token
    assert fresh.attempts == 2 and fresh.worker == "alive"
    late = make_record(scope, "from the dead worker", sources=ids)
    with pytest.raises(ConflictError):
        store.write(WriteBatch(memories=(new(late, unit()),),
                               complete=JobClaim(job_id, stale.token)))  # fmt: skip
    assert store.get_memories("ns", [late.id]) == []
    assert store.fail_job(JobClaim(job_id, stale.token), "too late", 0) is None
    assert store.get_job("ns", job_id).status == "running"  # type: ignore[union-attr]
    assert other.claim_job("ns", "third", 60) is None  # the new lease holds
    assert store.claim_job_by_id("ns", job_id, "third", 60) is None
    kept = make_record(scope, "from the live worker", sources=ids)
    other.write(WriteBatch(memories=(new(kept, unit()),),
                           complete=JobClaim(job_id, fresh.token or "")))  # fmt: skip
    assert [r.id for r in store.get_memories("ns", [kept.id])] == [kept.id]


def test_a_failed_run_backs_off_then_fails_and_a_retry_starts_over(store_factory):
    store = store_factory()
    job_id, _ = enqueue(store, Scope(user_id="u1", namespace="ns"))
    job = store.claim_job("ns", "w", 60)
    assert job is not None and job.token is not None
    before = utcnow()
    waiting = store.fail_job(JobClaim(job_id, job.token), "LLM: timed out", 60)
    assert waiting is not None and waiting.status == "pending" and waiting.token is None
    assert waiting.error == "LLM: timed out" and waiting.attempts == 1
    assert waiting.run_after is not None and waiting.run_after >= before + timedelta(seconds=59)
    assert store.claim_job("ns", "w", 60) is None  # backing off
    job = store.claim_job_by_id("ns", job_id, "w", 60)  # asked for by id: runs now
    assert job is not None and job.attempts == 2 and job.token is not None
    failed = store.fail_job(JobClaim(job_id, job.token), "x" * 5000, None)
    assert failed is not None and failed.status == "failed" and failed.attempts == 2
    assert failed.error is not None and 100 < len(failed.error) <= 2000  # kept, cut short
    assert store.claim_job(None, "w", 60) is None
    assert store.claim_job_by_id("ns", job_id, "w", 60) is None
    again = store.retry_job("ns", job_id)
    assert (again.status, again.attempts, again.error) == ("pending", 0, failed.error)
    with pytest.raises(InvalidInputError, match="not failed"):
        store.retry_job("ns", job_id)
    with pytest.raises(NotFoundError):
        store.retry_job("other", job_id)
    assert store.claim_job("ns", "w", 60).id == job_id  # type: ignore[union-attr]


def test_jobs_are_listed_counted_and_deleted_with_their_scope(store_factory):
    store = store_factory()
    ana, ben = Scope(user_id="ana", namespace="ns"), Scope(user_id="ben", namespace="ns")
    a1, _ = enqueue(store, ana)
    a2, _ = enqueue(store, ana)
    b1, _ = enqueue(store, ben)
    enqueue(store, replace(ana, namespace="other"))
    running = store.claim_job("ns", "w", 60)
    assert running is not None and running.id == a1 and running.token is not None
    assert [j.id for j in store.jobs("ns")] == [b1, a2, a1]
    assert [j.id for j in store.jobs("ns", "pending", limit=1)] == [b1]
    with pytest.raises(InvalidInputError):
        store.jobs("ns", "stuck")
    assert dict(store.stats("ns").jobs) == {"pending": 2, "running": 1}
    assert dict(store.stats("ns", ana).jobs) == {"pending": 1, "running": 1}
    store.delete_scope(MemoryFilter("ns", user_id="ana", current_only=False), "t")
    assert [j.id for j in store.jobs("ns")] == [b1]
    with pytest.raises(ConflictError):  # the running job's results have nothing to cite
        store.write(WriteBatch(complete=JobClaim(a1, running.token)))
    assert dict(store.stats("other").jobs) == {"pending": 1}


def test_concurrent_workers_never_claim_the_same_job(store_factory):
    first = store_factory()
    scope = Scope(user_id="u1", namespace="ns")
    made = {enqueue(first, scope)[0] for _ in range(24)}
    stores = [first, *(store_factory() for _ in range(3))]
    claimed: list[list[str]] = [[] for _ in stores]

    def work(index: int) -> None:
        while (job := stores[index].claim_job("ns", f"w{index}", 60)) is not None:
            claimed[index].append(job.id)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for ids in claimed for job_id in ids]
    assert sorted(every) == sorted(made)  # each once


# -- consolidation: retire, notes, the text-hash check, as_of reads -------------------------


def _consolidated(store: Store, scope: Scope, *texts: str) -> list[MemoryRecord]:
    """Derived memories written with their text hashes, as consolidation writes them."""
    records = [make_record(scope, t, attributes={TEXT_HASH: f"h-{t}"}) for t in texts]
    write_memories(store, *(new(r, unit()) for r in records))
    return records


def test_retire_supersedes_keeps_the_memory_and_logs_why(store_factory):
    store = store_factory()
    scope = Scope(user_id="ana", namespace="ns")
    (old,) = _consolidated(store, scope, "Ana lives in Paris")
    vector = unit()
    assert [h.id for h in vsearch(store, vector, MemoryFilter("ns"), 5)] == [old.id]
    newer = make_record(scope, "Ana lives in Berlin", attributes={TEXT_HASH: "h-berlin"})
    at = T0 + timedelta(days=30)
    store.write(WriteBatch(
        memories=(new(newer, vector),), actor="consolidator",
        retire=(Retire(old.id, newer.id, at, "SUPERSEDE", "she moved", "ns"),),
    ))  # fmt: skip
    (kept,) = store.get_memories("ns", [old.id])
    assert (kept.superseded_by, kept.valid_to, kept.expired_at, kept.text) == (
        newer.id, at, None, "Ana lives in Paris")  # fmt: skip
    assert listed(store, MemoryFilter("ns")) == {newer.id}
    assert listed(store, MemoryFilter("ns", current_only=False)) == {old.id, newer.id}
    assert [h.id for h in vsearch(store, vector, MemoryFilter("ns"), 5)] == [newer.id]
    events = store.events("ns", old.id)
    assert [(e.action, e.reason, e.actor) for e in events] == [
        ("ADD", "add", "remem"), ("SUPERSEDE", "she moved", "consolidator")]  # fmt: skip
    assert events[1].before is not None and events[1].before["superseded_by"] is None
    assert events[1].after is not None and events[1].after["superseded_by"] == newer.id


def test_retire_without_successor_invalidates(store_factory):
    store = store_factory()
    scope = Scope(user_id="ana", namespace="ns")
    car, other = _consolidated(store, scope, "Ana has a car", "Ana has a dog")
    at = T0 + timedelta(days=3)
    store.write(WriteBatch(retire=(Retire(car.id, None, at, "INVALIDATE", "sold it", "ns"),)))
    (ended,) = store.get_memories("ns", [car.id])
    assert ended.valid_to == at and ended.expired_at is not None and ended.superseded_by is None
    assert listed(store, MemoryFilter("ns")) == {other.id}
    assert {h.id for h in vsearch(store, unit(), MemoryFilter("ns"), 5)} == {other.id}
    assert [e.action for e in store.events("ns", car.id)] == ["ADD", "INVALIDATE"]


def test_retiring_a_memory_no_longer_current_fails_the_whole_batch(store_factory):
    store = store_factory()
    scope = Scope(user_id="ana", namespace="ns")
    (old,) = _consolidated(store, scope, "Ana lives in Paris")
    first = make_record(scope, "Ana lives in Berlin")
    store.write(WriteBatch(memories=(new(first, unit()),),
                           retire=(Retire(old.id, first.id, T0, namespace="ns"),)))  # fmt: skip
    before = counts(store, "ns")
    late = make_record(scope, "Ana lives in Rome")
    message = make_message(scope, "I live in Rome")
    for retire in (
        (Retire(old.id, late.id, T0, namespace="ns"),),  # superseded already
        (Retire(first.id, late.id, T0, namespace="ns"),) * 2,  # twice in one batch
        (Retire("no-such-memory", late.id, T0, namespace="ns"),),
        (Retire(first.id, late.id, T0, namespace="other"),),  # another namespace's
    ):
        with pytest.raises(ConflictError):
            store.write(WriteBatch(messages=(message,), memories=(new(late, unit()),),
                                   retire=retire))  # fmt: skip
        assert counts(store, "ns") == before
        assert store.get_memories("ns", [late.id]) == []
    with pytest.raises(InvalidInputError):  # a successor nobody stores
        store.write(WriteBatch(retire=(Retire(first.id, "ghost", T0, namespace="ns"),)))
    assert counts(store, "ns") == before
    (still,) = store.get_memories("ns", [first.id])
    assert still.superseded_by is None and still.valid_to is None


def test_notes_are_logged_and_need_a_current_memory(store_factory):
    store = store_factory()
    scope = Scope(user_id="ana", namespace="ns")
    (fact,) = _consolidated(store, scope, "Ana likes tea")
    fresh = make_record(scope, "Ana likes green tea")
    notes = (Note(fact.id, "NOOP", "restated", "ns"), Note(fresh.id, "NOOP", "again", "ns"))
    store.write(WriteBatch(memories=(new(fresh, unit()),), notes=notes))
    assert [(e.action, e.reason) for e in store.events("ns", fact.id)] == [
        ("ADD", "add"), ("NOOP", "restated")]  # fmt: skip
    assert [e.action for e in store.events("ns", fresh.id)] == ["ADD", "NOOP"]
    (unchanged,) = store.get_memories("ns", [fact.id])
    assert unchanged == fact
    store.write(WriteBatch(retire=(Retire(fact.id, None, T0, namespace="ns"),)))
    before = counts(store, "ns")
    for note in (Note(fact.id, "NOOP", "late", "ns"), Note("missing", "NOOP", "?", "ns")):
        with pytest.raises(ConflictError):
            store.write(WriteBatch(memories=(new(make_record(scope, "x"), unit()),),
                                   notes=(note,)))  # fmt: skip
        assert counts(store, "ns") == before


def test_a_second_current_copy_of_a_hashed_fact_conflicts(store_factory):
    store = store_factory()
    ana, bob = Scope(user_id="ana", namespace="ns"), Scope(user_id="bob", namespace="ns")
    (fact,) = _consolidated(store, ana, "Ana likes tea")
    copy = make_record(Scope(user_id="ana", session_id="s2", namespace="ns"), "ana likes tea",
                       attributes={TEXT_HASH: "h-Ana likes tea"})  # fmt: skip
    before = counts(store, "ns")
    with pytest.raises(ConflictError):
        write_memories(store, new(copy, unit()))
    assert counts(store, "ns") == before
    # another user's copy, or one replacing the old copy in the same batch, is fine
    write_memories(store, new(replace(copy, id=uid("mem"), scope=bob), unit()))
    store.write(WriteBatch(memories=(new(copy, unit()),),
                           retire=(Retire(fact.id, copy.id, T0, namespace="ns"),)))  # fmt: skip
    assert {r.text for r in store.list_memories(MemoryFilter("ns", user_id="ana"))} == {
        "ana likes tea"}  # fmt: skip
    third = make_record(ana, "again", attributes={TEXT_HASH: "h-Ana likes tea"})
    with pytest.raises(ConflictError):  # the replacement is current
        write_memories(store, new(third, unit()))
    store.write(WriteBatch(retire=(Retire(copy.id, None, T0, namespace="ns"),)))
    write_memories(store, new(third, unit()))  # memories no longer current do not count


def test_as_of_reads_what_was_current_then(store_factory):
    store = store_factory()
    scope = Scope(user_id="ana", namespace="ns")
    t1, t2, t3 = T0, T0 + timedelta(days=10), T0 + timedelta(days=20)
    paris = make_record(scope, "Ana lives in Paris", valid_from=t1)
    berlin = make_record(scope, "Ana lives in Berlin", valid_from=t2)
    tea = make_record(scope, "Ana likes tea", valid_from=t1)
    # a summary superseded before valid_to was kept: it ended when it was superseded
    summary = replace(make_record(scope, "old summary", kind="summary", superseded_by=tea.id),
                      updated_at=t2)  # fmt: skip
    archived = make_record(scope, "Ana plays chess", valid_from=t1, expired_at=t3)
    write_memories(store, *(new(r, unit()) for r in (paris, tea, summary, archived)))
    write_memories(store, new(berlin, unit()))
    store.write(WriteBatch(retire=(Retire(paris.id, berlin.id, t2, namespace="ns"),)))
    expected = {
        t1 - timedelta(days=1): set(),
        t1: {paris.id, tea.id, summary.id, archived.id},
        t2 - timedelta(seconds=1): {paris.id, tea.id, summary.id, archived.id},
        t2: {berlin.id, tea.id, archived.id},
        t3: {berlin.id, tea.id},
    }  # fmt: skip
    for when, wanted in expected.items():
        flt = MemoryFilter("ns", as_of=when)
        assert listed(store, flt) == wanted, when
        with live(store).open(flt) as index:
            rows = np.flatnonzero(index.mask(flt, utcnow()))
            assert {index.ids[r] for r in rows} == wanted, when


# -- complete deletion (``remem.stores.deletion``) ------------------------------------------


def test_deleting_a_session_takes_what_cites_only_its_messages(store_factory):
    store = store_factory()
    s1, s2, user = (Scope(user_id="u", session_id="s1"), Scope(user_id="u", session_id="s2"),
                    Scope(user_id="u"))  # fmt: skip
    m1, m2 = make_message(s1, "first"), make_message(s2, "second")
    turns = [make_record(s1, "first", kind="turn", sources=[m1.id]),
             make_record(s2, "second", kind="turn", sources=[m2.id])]  # fmt: skip
    only = make_record(user, "from s1 only", sources=[m1.id])
    both = make_record(user, "from both", sources=[m1.id, m2.id])
    free = make_record(user, "cites nothing")
    other = make_record(Scope(user_id="v"), "another user's", sources=[m1.id])
    store.write(WriteBatch(messages=(m1, m2), memories=tuple(
        new(r, unit()) for r in (*turns, only, both, free, other))))  # fmt: skip

    assert store.delete_scope(MemoryFilter(user_id="u", session_id="s1",
                                           current_only=False), "t") == (2, 1)  # fmt: skip
    left = {r.id: r for r in store.list_memories(MemoryFilter(current_only=False))}
    assert set(left) == {turns[1].id, both.id, free.id, other.id}
    assert left[both.id].source_ids == (m2.id,) and left[both.id].text == "from both"
    assert left[other.id].source_ids == (m1.id,)  # ids are per user: not the deleted one
    events = store.events("default", both.id)
    assert [e.action for e in events] == ["ADD", "UPDATE"]
    assert all(e.after and e.after["source_ids"] == [m2.id] for e in events)
    assert [e.action for e in store.events("default", only.id)] == ["ADD", "DELETE"]
    assert store.get_messages("default", user, [m1.id, m2.id])[0].id == m2.id
    with live(store).open(MemoryFilter(user_id="u")) as index:
        assert set(index.row_of) == {turns[1].id, both.id, free.id}


def test_an_entity_row_goes_with_the_last_memory_naming_it(store_factory):
    store = store_factory()
    ana, elsewhere = Scope(user_id="ana", session_id="s1"), Scope(user_id="bo", session_id="s1")
    met = enriched(ana, "Ana met Maria", ["Ana", "Maria"])
    moved = enriched(ana, "Maria moved", ["Maria"],
                     keyphrases=[{"key": "moved", "score": 4.0}])  # fmt: skip
    bo = enriched(elsewhere, "Bo met Maria", ["Maria"])
    write_memories(store, *(new(r, unit()) for r in (met, moved, bo)))
    assert set(store.entity_kinds(Scope(user_id="ana"))) == {"ana", "maria", "moved"}

    store.delete_memory("default", met.id, "t", "gone")
    assert set(store.entity_kinds(Scope(user_id="ana"))) == {"maria", "moved"}
    store.update_memory("default", moved.id, MemoryPatch(text="Maria left", attributes={}),
                        "t", "rewritten")  # fmt: skip
    assert store.entity_kinds(Scope(user_id="ana")) == {}  # nothing names them any more
    words = store.term_counts(Scope(user_id="ana"), ["moved", "left"])
    assert words == (1, {"moved": 0, "left": 1})
    assert set(store.entity_kinds(Scope(user_id="bo"))) == {"maria"}  # another scope's
    assert store.compact().swept == 0  # deleting left nothing behind


def test_compact_keeps_every_row_and_the_store_live(store_factory):
    store = store_factory()
    scope = Scope(user_id="u", session_id="s")
    kept, gone = enriched(scope, "apples and pears", ["Pears"]), enriched(scope, "bananas")
    write_memories(store, new(kept, unit()), new(gone, unit()))
    assert ksearch(store, ["apples"], MemoryFilter(user_id="u"), 5)[0].id == kept.id
    store.delete_memory("default", gone.id, "t", "gone")
    before = counts(store, "default")

    report = store.compact()
    assert report.complete and report.swept == 0 and report.size_after >= 0
    assert counts(store, "default") == before
    assert store.get_memories("default", [kept.id]) == [kept]
    later = enriched(scope, "cherries")
    write_memories(store, new(later, unit()))  # the scope index takes in writes after it
    found = ksearch(store, ["cherries"], MemoryFilter(user_id="u"), 5)
    assert [h.id for h in found] == [later.id]
    assert ksearch(store, ["bananas"], MemoryFilter(user_id="u"), 5) == []


def test_the_latest_revision_is_read_without_a_snapshot_and_reads_are_counted(store_factory):
    """``latest_revision`` sees every committed write (another store object's too) and,
    inside a snapshot, that snapshot's revision; ``reads`` counts this thread's queries."""
    store, other = store_factory(), store_factory()
    scope = Scope(user_id="u", namespace="ns")
    with store.snapshot() as first:
        assert store.latest_revision() == first
    write_memories(other, new(make_record(scope, "walk the dog"), unit()))
    latest = store.latest_revision()
    assert latest > first
    with store.snapshot() as seen:
        write_memories(other, new(make_record(scope, "feed the cat"), unit()))
        assert store.latest_revision() == seen == latest
    assert store.latest_revision() > latest
    reads = store.reads()
    store.get_memories("ns", ["nope"])
    assert store.reads() == reads + 1
    counted: list[int] = []
    thread = threading.Thread(target=lambda: counted.append(store.reads()))
    thread.start()
    thread.join()
    assert counted == [0]  # per thread
    # the contract's defaults, for backends that cannot do better: a snapshot's revision,
    # and a count that moves on every call (a reader then always checks the revision)
    assert Store.latest_revision(store) == store.latest_revision()
    assert Store.reads(store) != Store.reads(store)
