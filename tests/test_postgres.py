"""The PostgreSQL backend beyond the store contract: the engine end to end, migrations
under concurrent opens, refusals, parity with SQLite, and connection failures.

Every test gets its own database on the session's server (``postgres_url``).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from conftest import database_url  # tests/conftest.py (tests/ is on sys.path)

from remem import Memory, StoreConfig
from remem.cli.main import main
from remem.errors import (
    ConfigError,
    ConflictError,
    CorruptStoreError,
    NotFoundError,
    StoreError,
)
from remem.index.cache import LiveIndex
from remem.keys import KeyRing
from remem.models import MemoryRecord, Message, Scope
from remem.registry import create_store, store_config
from remem.settings import ENV_VARS
from remem.stores.base import MemoryFilter, MemoryPatch, NewMemory, Store, WriteBatch
from remem.stores.postgres.migrations import MIGRATIONS
from remem.stores.postgres.store import PostgresStore
from remem.stores.sqlite import SQLiteStore
from remem.util import utcnow

pytestmark = pytest.mark.postgres

CONVERSATION = [
    {"id": "m1", "name": "Ana", "timestamp": "2023-05-08T13:56:00",
     "content": "I went to a pottery class yesterday and made a small blue bowl."},
    {"id": "m2", "role": "assistant", "timestamp": "2023-05-08T13:57:00",
     "content": "That sounds lovely. Will you keep going to the studio?"},
    {"id": "m3", "name": "Ana", "timestamp": "2023-06-27T10:37:00",
     "content": "We adopted a beagle called Oscar last week.", "metadata": {"topic": "pets"}},
    {"id": "m4", "name": "Ana", "timestamp": "2023-06-27T10:39:00",
     "content": "My sister Maria moved to Porto for her new job at the hospital."},
]  # fmt: skip


@pytest.fixture
def url(postgres_url: str) -> str:
    """A new empty database for this test."""
    return database_url(postgres_url, f"t_{uuid.uuid4().hex[:16]}")


def new_url(server: str) -> str:
    return database_url(server, f"t_{uuid.uuid4().hex[:16]}")


def sql(url: str, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the database directly (autocommit); its rows, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# -- the engine end to end -------------------------------------------------------------


def test_memory_end_to_end(url: str, postgres_url: str, embedder: Any, tmp_path: Path) -> None:
    with Memory(url, embedder=embedder) as mem:
        added = mem.add(CONVERSATION, user_id="ana", session_id="s1")
        assert added.message_ids == ("m1", "m2", "m3", "m4")
        assert mem.add(CONVERSATION[:1], user_id="ana", session_id="s1").duplicate_ids == ("m1",)
        with pytest.raises(ConflictError, match="m1"):
            mem.add([{**CONVERSATION[0], "content": "something else"}], user_id="ana")

        hits = mem.search("what dog did Ana adopt?", user_id="ana")
        assert hits[0].source_ids == ("m3",)
        assert mem.search("what dog did Ana adopt?", user_id="bob").hits == ()
        context = mem.context("where does Ana's sister live?", user_id="ana", budget_tokens=200)
        assert "m4" in context.source_ids and "Porto" in context.text

        turn = next(m for m in added.memories if m.source_ids == ("m3",))
        updated = mem.update(turn.id, text="We adopted a beagle called Rex.", pinned=True)
        assert mem.get(turn.id) == updated
        assert [e.action for e in mem.history(turn.id)] == ["ADD", "UPDATE"]
        assert mem.search("Rex the beagle", user_id="ana")[0].memory.id == turn.id

        pottery = next(m for m in added.memories if m.source_ids == ("m1",))
        mem.delete(pottery.id)
        with pytest.raises(NotFoundError):
            mem.get(pottery.id)
        assert pottery.id not in {h.memory.id for h in mem.search("pottery bowl", user_id="ana")}
        assert [e.action for e in mem.history(pottery.id)] == ["ADD", "DELETE"]

        stats = mem.stats()
        assert (stats.messages, stats.users, stats.sessions) == (4, 1, 1)
        assert stats.path is not None and stats.path.startswith("postgresql://")
        exported = mem.export(tmp_path / "ana.jsonl")
        before = mem.list(user_id="ana", limit=100)

    with Memory(new_url(postgres_url), embedder=embedder) as copy:
        assert copy.import_(tmp_path / "ana.jsonl") == exported
        assert copy.list(user_id="ana", limit=100) == before
        assert copy.search("what dog did Ana adopt?", user_id="ana")[0].memory.id == turn.id
        assert copy.delete_all(user_id="ana")["messages"] == 4
        assert copy.list(user_id="ana") == []


def test_an_export_moves_between_sqlite_and_postgres_unchanged(
    url: str, embedder: Any, tmp_path: Path
) -> None:
    with Memory(url, embedder=embedder) as pg:
        pg.add(CONVERSATION, user_id="ana", session_id="s1", metadata={"source": "chat"})
        pg.export(tmp_path / "pg.jsonl")
    with Memory(tmp_path / "copy.db", embedder=embedder) as lite:
        lite.import_(tmp_path / "pg.jsonl")
        lite.export(tmp_path / "lite.jsonl")

    def body(path: Path) -> list[dict[str, Any]]:
        rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
        return [{k: v for k, v in r.items() if k != "id" or r["type"] != "event"} for r in rows]

    assert body(tmp_path / "lite.jsonl") == body(tmp_path / "pg.jsonl")


def test_tenants_share_the_pool_not_the_data(url: str, embedder: Any) -> None:
    with Memory(url, embedder=embedder) as root:
        acme, globex = root.tenant("acme"), root.tenant("globex")
        assert acme.store is globex.store is root.store
        (mine,) = acme.add("Our launch is on Friday in Lisbon", user_id="ana").memories
        globex.add("Our launch is on Monday in Oslo", user_id="ana")
        assert [h.text for h in acme.search("launch", user_id="ana")] == [mine.text]
        assert "Oslo" in globex.search("launch", user_id="ana")[0].text
        with pytest.raises(NotFoundError):
            globex.get(mine.id)
        with pytest.raises(NotFoundError):
            globex.delete(mine.id)
        assert (acme.stats().memories, globex.stats().memories, root.stats().memories) == (1, 1, 0)


def test_api_keys_are_shared_by_every_store_on_the_database(url: str) -> None:
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        ring = KeyRing(first)
        key, secret = ring.create("acme", name="backend")
        assert KeyRing(second).authenticate(secret) == key
        revoked = KeyRing(second).revoke(key.id)
        assert ring.list() == [revoked] and revoked.revoked_at is not None
        with pytest.raises(Exception, match="revoked"):
            ring.authenticate(secret)
    finally:
        first.close()
        second.close()


def test_cli_reads_and_writes_a_postgres_url(url: str) -> None:
    runner = CliRunner(env={name: None for name in ENV_VARS})
    added = runner.invoke(main, ["--db", url, "add", "-u", "ana", "I moved to Lisbon in May"])
    assert added.exit_code == 0, added.output
    found = runner.invoke(main, ["--db", url, "--json", "search", "-u", "ana", "where do I live"])
    assert found.exit_code == 0, found.output
    assert "Lisbon" in found.output


def test_threads_and_a_second_store_see_every_write(
    url: str, embedder: Any, postgres_url: str
) -> None:
    """Four threads add and search on one Memory while another Memory (its own pool and
    indexes, like another process) searches: nothing is lost, duplicated or half seen."""
    errors: list[str] = []
    barrier = threading.Barrier(4)
    with Memory(url, embedder=embedder) as mem, Memory(url, embedder=embedder) as other:

        def work(t: int) -> None:
            barrier.wait(timeout=60)
            for n in range(6):
                try:
                    word = f"zq{t}x{n}"
                    mem.add([{"id": f"t{t}-{n}", "content": f"note {word} about the lake"}],
                            user_id=f"u{t % 2}", session_id="s")  # fmt: skip
                    for reader in (mem, other):
                        hits = reader.search(f"codeword {word}", user_id=f"u{t % 2}")
                        if not hits or hits[0].source_ids != (f"t{t}-{n}",):
                            errors.append(f"{word}: not the top hit")
                except Exception as exc:
                    errors.append(f"thread {t}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        turns = other.list(kinds="turn", limit=100)
        assert Counter(s for m in turns for s in m.source_ids) == {
            f"t{t}-{n}": 1 for t in range(4) for n in range(6)
        }
        for user in ("u0", "u1"):
            summaries = other.list(user_id=user, session_id="s", kinds="summary")
            assert len(summaries) == 1


# -- migrations and refusals -------------------------------------------------------------


def test_migrations_run_once_when_many_stores_open_a_new_database(url: str) -> None:
    barrier = threading.Barrier(4)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait(timeout=60)
        try:
            opened.append(create_store(StoreConfig("postgres", url)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert sorted(sql(url, "SELECT id, name FROM schema_migrations")) == [
            (number, name) for number, name, _ in MIGRATIONS
        ]
        assert sql(url, "SELECT value FROM remem_meta") == [("remem",)]
        assert sql(url, "SELECT revision FROM store_revision") == [(1,)]
    finally:
        for store in opened:
            store.close()


def test_a_database_of_another_application_is_refused_untouched(url: str) -> None:
    sql(url, "CREATE TABLE accounts (id int PRIMARY KEY, owner text)")
    with pytest.raises(CorruptStoreError, match=r"another application.*accounts"):
        PostgresStore(url)
    tables = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [("accounts",)]


def test_a_database_of_a_newer_remem_is_refused(url: str) -> None:
    PostgresStore(url).close()
    sql(url, "INSERT INTO schema_migrations (id, name) VALUES (99, 'from_the_future')")
    with pytest.raises(StoreError, match=r"newer remem.*schema 99.*pip install -U remem"):
        PostgresStore(url)


def test_reopening_keeps_the_data_and_the_embedder(url: str) -> None:
    store = PostgresStore(url)
    store.bind_embedder("model-a", 4)
    record = _record(Scope(user_id="u", namespace="ns"), "kept across opens")
    store.write(WriteBatch(memories=(NewMemory(record, record.text, _vector(4)),)))
    store.close()
    again = PostgresStore(url)
    try:
        assert again.get_memories("ns", [record.id]) == [record]
        with pytest.raises(ConfigError, match="model-a"):
            again.bind_embedder("model-b", 4)
    finally:
        again.close()


# -- parity with SQLite ------------------------------------------------------------------


def _record(scope: Scope, text: str, **more: Any) -> MemoryRecord:
    when = datetime(2024, 1, 1, 12, 0, 0, 123456)
    return MemoryRecord(id=more.pop("id", uuid.uuid4().hex), kind=more.pop("kind", "fact"),
                        text=text, scope=scope, source_ids=more.pop("source_ids", ()),
                        occurred_at=more.pop("occurred_at", when), created_at=when,
                        updated_at=when, **more)  # fmt: skip


def _vector(dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


AWKWARD = [
    _record(Scope("u\x00ser", None, "s\uffff0", "n\x00s"), "NUL \x00 and U+FFFF \uffff0 kept",
            id="id-\x00-\uffff", metadata={"k\x00": "v\uffff", "big": 1.5e300, "tiny": 5e-324,
                                           "int": 2**62, "flag": True, "none": None},
            attributes={"nested": [{"x": [1.0, -2.5e-8, "\x00"]}]},
            source_ids=("a\x00", "b"), occurred_at=datetime(1, 1, 1)),
    _record(Scope("user", "agent", "s", "n\x00s"), "late", occurred_at=datetime(9999, 12, 31,
            23, 59, 59, 999999), expires_at=datetime(9999, 1, 1), importance=0.0,
            strength=1e-300, access_count=2**62, pinned=True),
    _record(Scope(namespace="n\x00s"), "undated", occurred_at=None, valid_from=datetime(999, 1, 1)),
    _record(Scope(namespace="n\x00s"), "same time", id="tie-1"),
    _record(Scope(namespace="n\x00s"), "same time", id="tie-2"),
]  # fmt: skip


def _fill(store: Store) -> None:
    scope = Scope("u\x00ser", None, "s\uffff0", "n\x00s")
    message = Message("m\x00", scope, "user", "hi \x00", "sp\x00", datetime(1, 1, 1),
                      datetime(9999, 12, 31), {"x\x00": [None]})  # fmt: skip
    store.write(WriteBatch(messages=(message,), memories=tuple(
        NewMemory(r, f"index {r.text}", _vector(8, n) if n % 2 else None)
        for n, r in enumerate(AWKWARD))))  # fmt: skip
    store.update_memory("n\x00s", "tie-1", MemoryPatch(metadata={"edited": 1.0}), "t", "edit")
    store.delete_memory("n\x00s", "tie-2", "t", "gone")


def _listing(store: Store) -> list[Any]:
    flt = MemoryFilter("n\x00s", current_only=False)
    return [(r.id, r.text, r.occurred_at, r.metadata, r.attributes, r.source_ids)
            for r in store.list_memories(flt, limit=100)]  # fmt: skip


def _comparable(store: Store) -> dict[str, Any]:
    dumped = [{k: v for k, v in row.items() if k not in ("at", "updated_at", "before", "after")}
              for row in store.dump("n\x00s")]  # fmt: skip
    index = LiveIndex(store)
    with index.open(MemoryFilter("n\x00s", current_only=False)) as scope:
        vectors = scope.vector_search(_vector(8, 1), scope.mask(MemoryFilter("n\x00s"), utcnow()),
                                      10)  # fmt: skip
    return {"list": _listing(store), "dump": dumped, "vectors": vectors,
            "ids": [r.id for r in store.get_memories("n\x00s", ["tie-1", AWKWARD[0].id])],
            "stats": store.stats("n\x00s").memories_by_kind}  # fmt: skip


def test_every_value_round_trips_as_in_sqlite(url: str, tmp_path: Path) -> None:
    lite, pg = SQLiteStore(tmp_path / "same.db"), PostgresStore(url)
    try:
        for store in (lite, pg):
            _fill(store)
        assert pg.get_memories("n\x00s", [r.id for r in AWKWARD[:3]]) == AWKWARD[:3]
        assert _comparable(pg) == _comparable(lite)
        flt = MemoryFilter("n\x00s", metadata={"flag": 1})  # true equals 1, as in SQLite
        assert _listing_ids(pg, flt) == _listing_ids(lite, flt) == [AWKWARD[0].id]
        flt = MemoryFilter("n\x00s", metadata={"k_": "x"})
        assert _listing_ids(pg, flt) == _listing_ids(lite, flt) == []
    finally:
        lite.close()
        pg.close()


def _listing_ids(store: Store, flt: MemoryFilter) -> list[str]:
    return [r.id for r in store.list_memories(flt)]


# -- connections and errors --------------------------------------------------------------


def test_the_registry_maps_postgres_urls() -> None:
    assert store_config("postgresql://u@h/db").name == "postgres"
    assert store_config("postgres://u@h/db") == StoreConfig("postgres", "postgres://u@h/db")


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "remem.stores.postgres.store", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'remem\[postgres\]'"):
        create_store(store_config("postgresql://u@h/db"))


def test_unreachable_server_and_missing_database_say_what_to_do(postgres_url: str) -> None:
    nowhere = "postgresql://ana:secret@/remem?host=/nonexistent-remem-socket"
    with pytest.raises(StoreError, match="server is running") as caught:
        PostgresStore(nowhere, connect_timeout=2)
    assert "secret" not in str(caught.value) and "ana@" in str(caught.value)
    missing = postgres_url.replace("/postgres?", "/no_such_database?")
    with pytest.raises(StoreError, match=r"no_such_database.*create the database first"):
        PostgresStore(missing)


def test_bad_options_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="pool_size"):
        create_store(StoreConfig("postgres", url, {"pool_size": 0}))
    with pytest.raises(ConfigError, match="bad options"):
        create_store(StoreConfig("postgres", url, {"no_such_option": 1}))


def _terminate_others(url: str) -> None:
    """Cut every other connection to the database, as a server restart would."""
    sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip


def test_reads_and_new_writes_survive_dropped_connections(url: str) -> None:
    store = PostgresStore(url, pool_size=1)
    try:
        record = _record(Scope(namespace="ns"), "still here")
        store.write(WriteBatch(memories=(NewMemory(record, record.text, None),)))
        _terminate_others(url)
        assert store.get_memories("ns", [record.id]) == [record]  # a read, retried
        _terminate_others(url)
        with store.snapshot() as revision:  # a snapshot's BEGIN, retried
            assert revision == 2
        _terminate_others(url)
        store.update_memory("ns", record.id, MemoryPatch(pinned=True), "t", "r")  # BEGIN retried
        assert store.get_memories("ns", [record.id])[0].pinned
    finally:
        store.close()


def test_a_write_that_loses_its_connection_is_not_retried(url: str) -> None:
    store = PostgresStore(url, pool_size=1)
    record = _record(Scope(namespace="ns"), "never stored")
    try:
        lost = pytest.raises(StoreError, match="lost during a write, nothing was stored")
        with lost, store._db.write() as (conn, _):
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert store.get_memories("ns", [record.id]) == []
        assert store.stats("ns").events == 0
        assert sql(url, "SELECT revision FROM store_revision") == [(1,)]
    finally:
        store.close()


def test_a_closed_store_says_so(url: str) -> None:
    store = PostgresStore(url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.stats("default")


def test_expiry_and_time_filters_use_utc_instants(url: str) -> None:
    store = PostgresStore(url)
    try:
        now = utcnow()
        soon = _record(Scope(namespace="ns"), "gone", expires_at=now - timedelta(seconds=1))
        later = _record(Scope(namespace="ns"), "kept", expires_at=now + timedelta(hours=1))
        store.write(WriteBatch(memories=tuple(NewMemory(r, r.text, None) for r in (soon, later))))
        assert [r.id for r in store.list_memories(MemoryFilter("ns"))] == [later.id]
        ((name,),) = sql(url, "SELECT current_database()")
        sql(url, f"ALTER DATABASE {name} SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
        again = PostgresStore(url)
        try:
            assert again.get_memories("ns", [later.id]) == [later]
            assert [r.id for r in again.list_memories(MemoryFilter("ns"))] == [later.id]
        finally:
            again.close()
    finally:
        store.close()
