"""Forgetting and reinforcement: the retention arithmetic against written-out values and
properties, recalls recorded in batches and visible through ``get``, scope indexes that
take recalls in place (no re-indexing), the ``retention`` ranking step, and ``forget``
(dry run and real, ARCHIVE events, pinned never archived) on every store backend."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import STORE_BACKENDS, StoreFactory, _location
from hypothesis import given
from hypothesis import strategies as st

from remem import InvalidInputError, Memory, MemoryConfig, StoreConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.evolution import forgetting
from remem.evolution.recall import RecallLog
from remem.evolution.retention import (
    MIN_STRENGTH_DAYS,
    RECALL_GAIN_DAYS,
    days_between,
    expired,
    memory_retention,
    reinforce,
    reinforced,
    retention,
    retentions,
)
from remem.index.cache import LiveIndex
from remem.models import MemoryRecord, Scope
from remem.retrieval.steps import retention_weights
from remem.stores.base import MemoryFilter, NewMemory, Store, WriteBatch
from remem.util import utcnow

DAY = timedelta(days=1)
E = math.e

# -- the arithmetic ------------------------------------------------------------------------

days = st.floats(min_value=-10, max_value=1e4, allow_nan=False)
strengths = st.floats(min_value=0, max_value=1e4, allow_nan=False)


def test_retention_reference_values() -> None:
    assert retention(0, 1) == 1.0
    assert retention(1, 1) == pytest.approx(1 / E)
    assert retention(2, 4) == pytest.approx(E**-0.5)
    assert retention(7, 1) == pytest.approx(E**-7)  # a week unrecalled at the first strength
    assert retention(-3, 1) == 1.0  # a clock that stepped back counts as no time
    assert retention(math.inf, 1) == 0.0
    assert retention(5, math.inf) == 1.0
    assert retention(1, 0) == pytest.approx(math.exp(-1 / MIN_STRENGTH_DAYS))
    with pytest.raises(ValueError):
        retention(math.nan, 1)


@given(t=days, s=strengths)
def test_retention_stays_between_0_and_1(t: float, s: float) -> None:
    assert 0.0 <= retention(t, s) <= 1.0


@given(t=days, later=st.floats(min_value=0, max_value=1e3), s=strengths)
def test_retention_never_rises_with_time(t: float, later: float, s: float) -> None:
    assert retention(t + later, s) <= retention(t, s)


@given(t=days, s=strengths, more=st.floats(min_value=0, max_value=1e3))
def test_retention_never_falls_with_strength(t: float, s: float, more: float) -> None:
    assert retention(t, s + more) >= retention(t, s)


@given(st.lists(st.tuples(days, strengths), min_size=1, max_size=20))
def test_the_array_form_equals_the_scalar_one(pairs: list[tuple[float, float]]) -> None:
    t, s = (np.array(column) for column in zip(*pairs, strict=True))
    expected = [retention(a, b) for a, b in pairs]
    assert retentions(t, s) == pytest.approx(expected)


def test_the_array_form_is_neutral_for_nan() -> None:
    assert retentions(np.array([np.nan, 1.0]), np.array([1.0, np.nan])).tolist() == [1.0, 1.0]


def test_reinforcement_reference_values() -> None:
    # S' = S + 1 * (1 - exp(-t / S)): a recall a day after the last adds 1 - 1/e
    assert reinforce(1, 1) == pytest.approx(2 - 1 / E)
    assert reinforce(1, 0) == 1.0  # a recall right after another adds nothing
    assert reinforce(2, 1e6) == pytest.approx(2 + RECALL_GAIN_DAYS)  # nearly forgotten: +1
    assert reinforce(3, 3) == pytest.approx(3 + 1 - 1 / E)
    assert reinforced(1, datetime(2024, 1, 1), datetime(2024, 1, 2)) == pytest.approx(2 - 1 / E)
    assert days_between(datetime(2024, 1, 1), datetime(2024, 1, 1, 12)) == 0.5


@given(s=st.floats(min_value=MIN_STRENGTH_DAYS, max_value=1e4), t=days)
def test_a_recall_adds_between_nothing_and_one_day(s: float, t: float) -> None:
    assert s <= reinforce(s, t) <= s + RECALL_GAIN_DAYS


@given(s=st.floats(min_value=MIN_STRENGTH_DAYS, max_value=1e4), t=days,
       later=st.floats(min_value=0, max_value=1e3))  # fmt: skip
def test_a_later_recall_strengthens_more(s: float, t: float, later: float) -> None:
    assert reinforce(s, t + later) >= reinforce(s, t)


def test_spaced_recalls_strengthen_more_than_massed_ones() -> None:
    massed = spaced = 1.0
    for _ in range(10):
        massed = reinforce(massed, 1 / 1440)  # ten recalls a minute apart
        spaced = reinforce(spaced, 2.0)  # ten recalls two days apart
    assert massed < 1.01 < 5 < spaced


def _record(**more: Any) -> MemoryRecord:
    at = more.pop("at", datetime(2024, 1, 1))
    return MemoryRecord(id=more.pop("id", "m"), kind="fact", text=more.pop("text", "x"),
                        scope=more.pop("scope", Scope("u")), source_ids=(), occurred_at=None,
                        created_at=at, updated_at=at, **more)  # fmt: skip


def test_a_memory_decays_from_its_last_recall_and_pinned_ones_never() -> None:
    now = datetime(2024, 1, 3)
    assert memory_retention(_record(), now) == pytest.approx(E**-2)  # stored two days ago
    recalled = _record(last_accessed_at=datetime(2024, 1, 2), strength=2.0)
    assert memory_retention(recalled, now) == pytest.approx(E**-0.5)
    assert memory_retention(_record(pinned=True), now) == 1.0
    assert memory_retention(_record(pinned=True), now, ignore_pin=True) == pytest.approx(E**-2)
    assert expired(_record(expires_at=now), now) and not expired(_record(), now)


def test_ranking_weights_are_neutral_at_the_defaults() -> None:
    days_ = np.array([0.0, 1e6, 1e6, 0.0, 0.0, 0.0])
    strength = np.ones(6)
    importance = np.array([0.5, 0.5, 0.5, 1.0, 0.0, np.nan])
    pinned = np.array([False, False, True, False, False, False])
    weights = retention_weights(days_, strength, importance, pinned, 0.5)
    # fresh default, forgotten, forgotten but pinned, important, unimportant, unknown
    assert weights == pytest.approx([1.0, 0.5, 1.0, 1.25, 0.75, 1.0])
    assert retention_weights(days_, strength, importance, pinned, 0.0).tolist() == [1.0] * 6
    one_day = retention_weights(np.array([1.0]), np.ones(1), np.array([0.5]), np.zeros(1, bool), 1)
    assert one_day == pytest.approx([1 / E])


# -- the recall log ------------------------------------------------------------------------


class Writes:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[tuple[str, datetime]]]] = []
        self.done = threading.Event()
        self.fail = fail

    def __call__(self, namespace: str, accesses: list[tuple[str, datetime]]) -> None:
        self.done.set()
        if self.fail:
            raise OSError("disk full")
        self.calls.append((namespace, accesses))


def test_recalls_wait_and_are_written_per_namespace_in_order() -> None:
    writes, at = Writes(), datetime(2024, 1, 1)
    log = RecallLog(writes, max_pending=1000, max_age_s=3600)
    log.record("a", ["m1", "m2"], at)
    log.record("b", ["m3"], at)
    log.record("a", ["m1"], at + DAY)
    log.record("a", [], at)
    assert writes.calls == [] and log.pending() == 4  # nothing written by the recording
    assert log.flush() == 4
    assert writes.calls == [("a", [("m1", at), ("m2", at), ("m1", at + DAY)]),
                            ("b", [("m3", at)])]  # fmt: skip
    log.record("a", ["m4"], at)
    log.close()  # writes the rest
    assert writes.calls[-1] == ("a", [("m4", at)])
    log.record("a", ["m5"], at)  # after close: ignored
    assert log.pending() == 0


def test_a_full_batch_is_written_by_the_background_thread() -> None:
    writes = Writes()
    log = RecallLog(writes, max_pending=3, max_age_s=3600)
    log.record("a", ["m1", "m2", "m3"], datetime(2024, 1, 1))
    assert writes.done.wait(60)  # the thread wrote it, without any flush from here
    log.close()
    assert [ids for _, accesses in writes.calls for ids, _ in accesses] == ["m1", "m2", "m3"]


def test_a_failed_background_write_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    writes = Writes(fail=True)
    log = RecallLog(writes, max_pending=2, max_age_s=3600)
    with caplog.at_level(logging.WARNING, logger="remem.evolution.recall"):
        log.record("a", ["m1", "m2"], datetime(2024, 1, 1))
        assert writes.done.wait(60)
        log.close()
    assert log.dropped == 2
    assert "could not record 2 recalls" in caplog.text


# -- stores and scope indexes (every backend) ---------------------------------------------

T0 = datetime(2024, 1, 1, 12)


def _stored(store: Store, *records: MemoryRecord) -> None:
    rng = np.random.default_rng(7)
    store.write(WriteBatch(memories=tuple(
        NewMemory(r, r.text, rng.normal(size=8).astype(np.float32)) for r in records)))  # fmt: skip


def test_recalls_update_the_scope_index_in_place(store_factory: StoreFactory) -> None:
    store = store_factory()
    scope = Scope("u", namespace="ns")
    _stored(store, *(_record(id=f"m{i}", scope=scope, text=f"walk the dog {i}", at=T0)
                     for i in range(3)))  # fmt: skip
    live, flt = LiveIndex(store), MemoryFilter("ns", "u")
    with live.open(flt) as index:
        built, revision, size = index, index.revision, len(index)
        index.memo["sentinel"] = True  # dropped whenever the index re-indexes anything
        index.keyword_scores(["dog"], index.mask(flt, utcnow()))
    store.record_access("ns", [("m1", T0 + DAY), ("m1", T0 + 2 * DAY)], reinforced)
    with live.open(flt) as index:
        assert index is built and index.revision > revision  # same index, taken in
        assert len(index) == size and index.dead_rows() == 0  # no row re-indexed
        assert index.memo.get("sentinel") is True  # no cache dropped
        importance, pinned, strength, recalled = index.retention_columns()
        row = index.row_of["m1"]
        first = 1 + (1 - math.exp(-1))  # a day after storing, then a day later:
        assert strength[row] == pytest.approx(first + (1 - math.exp(-1 / first)))
        assert recalled[row] == np.datetime64(T0 + 2 * DAY, "us")
        assert strength[index.row_of["m0"]] == 1.0
        assert importance[row] == 0.5 and not pinned[row]
    # a fresh index built from the store agrees with the one that took the recall in
    with LiveIndex(store).open(flt) as fresh:
        assert fresh.retention_columns()[2][fresh.row_of["m1"]] == pytest.approx(strength[row])


# -- Memory: recording, ranking, forgetting (every backend) -------------------------------


@pytest.fixture(params=STORE_BACKENDS)
def backend_memory(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> Iterator[Memory]:
    """A ``Memory`` on an empty store of each backend."""
    where = _location(request.param, tmp_path, "m", request, {})
    memory = Memory(MemoryConfig(StoreConfig(request.param, where)), embedder=embedder)
    yield memory
    memory.close()


def test_search_hits_are_recorded_and_flushed_to_get(backend_memory: Memory) -> None:
    m = backend_memory
    added = m.add("I walk my dog Rex every morning", user_id="u")
    first = added.memories[0]
    hits = m.search("dog", user_id="u")
    assert [h.memory.id for h in hits] == [first.id]
    assert m.get(first.id).access_count == 0  # recorded in memory, not written yet
    assert m.flush() == 1
    again = m.get(first.id)
    assert again.access_count == 1 and again.last_accessed_at is not None
    assert again.last_accessed_at >= first.created_at and again.strength >= 1.0
    assert again.updated_at == first.updated_at  # a recall is not an update
    assert [e.action for e in m.history(first.id)] == ["ADD"]  # and logs no event
    m.search("dog", user_id="u")
    m.flush()
    assert m.get(first.id).access_count == 2
    assert m.search("dog", user_id="u")[0].memory.access_count == 2  # hits show it too


def test_close_writes_the_recalls_still_waiting(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    with Memory(tmp_path / "m.db", embedder=embedder) as m:
        memory_id = m.add("I walk my dog Rex", user_id="u").memories[0].id
        m.search("dog", user_id="u")
    with Memory(tmp_path / "m.db", embedder=embedder) as m:
        assert m.get(memory_id).access_count == 1


def test_recording_can_be_switched_off(tmp_path: Path, embedder: OnnxMiniLMEmbedder) -> None:
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "m.db")), record_access=False)
    with Memory(config, embedder=embedder) as m:
        memory_id = m.add("I walk my dog Rex", user_id="u").memories[0].id
        m.search("dog", user_id="u")
        assert m.flush() == 0
        assert m.get(memory_id).access_count == 0


def test_context_records_only_what_it_packed(memory: Memory) -> None:
    for i in range(6):
        memory.add(f"My dog Rex learned trick number {i} at the park today", user_id="u")
    packed = memory.context("dog trick", user_id="u", budget_tokens=150)
    shown = {item.memory.id for item in packed.items}
    assert 0 < len(shown) < 6
    memory.flush()
    counts = {r.id: r.access_count for r in memory.list(user_id="u")}
    assert {i for i, n in counts.items() if n} == shown


def _scripted(m: Memory, now: datetime) -> dict[str, str]:
    """Five memories with the same text: a stale one first (so ties put it on top), then
    a stale pinned one, a fresh one, an important one, and a stale one recalled today."""
    text, old = "Rex the dog likes the beach", now - 30 * DAY
    specs = {
        "stale": {"at": old},
        "pinned": {"at": old, "pinned": True},
        "fresh": {"at": now},
        "important": {"at": now, "importance": 1.0},
        "recalled": {"at": old, "last_accessed_at": now, "access_count": 1},
    }
    vector = m.embedder.embed_one(text)
    records = [_record(id=name, text=text, scope=Scope("u", namespace=m.namespace), **spec)
               for name, spec in specs.items()]  # fmt: skip
    m.store.write(WriteBatch(memories=tuple(NewMemory(r, text, vector) for r in records)))
    return {name: name for name in specs}


def test_pinned_and_important_memories_rise_and_stale_ones_sink(backend_memory: Memory) -> None:
    m = backend_memory
    _scripted(m, utcnow())
    plain = [h.memory.id for h in m.search("dog beach", user_id="u", recipe="default")]
    assert plain[0] == "stale"  # a tie: the default recipe keeps the order they came in
    hits = m.search("dog beach", user_id="u", recipe="retention", explain=True)
    ranked = [h.memory.id for h in hits]
    assert ranked[0] == "important" and ranked[-1] == "stale"
    assert ranked.index("pinned") < ranked.index("stale")
    assert ranked.index("recalled") < ranked.index("stale")
    parts = {h.memory.id: h.scores for h in hits}
    assert parts["stale"]["retention"] < 0 < parts["important"]["retention"]
    assert "retention" not in parts["pinned"]  # pinned at default importance: unchanged
    assert hits.explain is not None and hits.explain["retention"]["weight"] == 0.5
    assert "retention" in hits.explain["timings_ms"]


def test_forget_dry_run_lists_and_writes_nothing(backend_memory: Memory) -> None:
    m = backend_memory
    _scripted(m, utcnow())
    report = m.forget(policy="retention", threshold=0.05, dry_run=True, user_id="u")
    assert report.dry_run and report.examined == 5 and report.pinned_kept == 1
    assert [item.memory.id for item in report.archived] == ["stale"]
    assert report.archived[0].retention == pytest.approx(math.exp(-30), rel=1e-3)
    assert m.get("stale").expired_at is None
    assert [e.action for e in m.history("stale")] == ["ADD"]


def test_forget_archives_with_a_reason_and_never_deletes(backend_memory: Memory) -> None:
    m = backend_memory
    _scripted(m, utcnow())
    report = m.forget(user_id="u")  # retention below the default 0.05
    assert [item.memory.id for item in report.archived] == ["stale"]
    assert report.archived[0].memory.expired_at is not None and report.changed == 0
    archived = m.get("stale")  # get still shows it
    assert archived.expired_at is not None
    assert "stale" not in {r.id for r in m.list(user_id="u")}
    assert "stale" not in [h.memory.id for h in m.search("dog beach", user_id="u")]
    event = m.history("stale")[-1]
    assert event.action == "ARCHIVE" and event.actor == "forget"
    assert event.before is not None and event.before["expired_at"] is None
    assert event.after is not None and event.after["expired_at"] is not None
    assert "below 0.05" in event.reason and "never recalled" in event.reason
    assert "strength 1.00 days" in event.reason and "30.0 days ago" in event.reason
    assert m.get("pinned").expired_at is None  # pinned: never archived
    assert m.forget(user_id="u").archived == ()  # nothing left below the threshold
    assert m.stats().memories == 5  # nothing deleted


def test_forget_by_ttl_archives_expired_memories_but_not_pinned_ones(
    backend_memory: Memory,
) -> None:
    m = backend_memory
    now = utcnow()
    text = "Rex the dog likes the beach"
    vector = m.embedder.embed_one(text)
    scope = Scope("u", namespace=m.namespace)
    records = [
        _record(id="gone", text=text, scope=scope, at=now, expires_at=now - DAY),
        _record(id="kept", text=text, scope=scope, at=now, expires_at=now - DAY, pinned=True),
        _record(id="later", text=text, scope=scope, at=now, expires_at=now + DAY),
    ]
    m.store.write(WriteBatch(memories=tuple(NewMemory(r, text, vector) for r in records)))
    assert m.forget(user_id="u").archived == ()  # expired ones are ttl's, not retention's
    report = m.forget(policy="ttl", user_id="u")
    assert [item.memory.id for item in report.archived] == ["gone"]
    assert report.archived[0].retention is None and report.pinned_kept == 1
    assert "time to live ran out" in m.history("gone")[-1].reason
    assert m.get("kept").expired_at is None and m.get("later").expired_at is None


@pytest.mark.parametrize(
    ("policy", "threshold", "message"),
    [("nope", None, "unknown forgetting policy"), ("retention", 0, "above 0"),
     ("retention", 1.5, "above 0"), ("retention", True, "above 0"),
     ("retention", "0.1", "above 0"), ("retention", math.nan, "above 0"),
     ("ttl", 0.1, "takes no threshold")],
)  # fmt: skip
def test_bad_policies_and_thresholds_say_what_to_do(
    memory: Memory, policy: Any, threshold: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        memory.forget(policy=policy, threshold=threshold)


def test_policies_parse() -> None:
    assert forgetting.policy("retention") == forgetting.Policy("retention", 0.05)
    assert forgetting.policy("retention", 1) == forgetting.Policy("retention", 1.0)
    assert forgetting.policy("ttl") == forgetting.Policy("ttl", None)


def test_a_memory_recalled_after_the_decision_is_not_archived(backend_memory: Memory) -> None:
    m = backend_memory
    _scripted(m, utcnow())
    stale = m.get("stale")
    m.store.record_access(m.namespace, [("stale", utcnow())], reinforced)
    assert m.store.archive_memories(m.namespace, [(stale, "decided earlier")], "forget") == []
    assert m.get("stale").expired_at is None


def test_an_update_keeps_the_recall_statistics(backend_memory: Memory) -> None:
    m = backend_memory
    memory_id = m.add("I walk my dog Rex", user_id="u").memories[0].id
    m.search("dog", user_id="u")
    m.flush()
    updated = m.update(memory_id, importance=0.9, pinned=True)
    assert updated.access_count == 1 and updated.importance == 0.9
    hit = m.search("dog", user_id="u", recipe="retention")[0]  # the index took the update in
    assert hit.memory.pinned and hit.memory.access_count == 1
    assert hit.scores["retention"] == pytest.approx(0.2 * hit.score / 1.2)  # 1 + 0.5 * 0.4
