"""Deletion that is complete: a unique string written every way remem keeps text (a message,
its speaker, a key phrase, metadata, message ids, a remembered and updated fact, a session
summary, a pending job), then deleted by user, by session or one memory at a time, is
afterwards in no row of any remem table and, with SQLite, in no byte of the database
files, while everything else stays intact and searchable.

Every test runs on SQLite and on PostgreSQL (``postgres`` marker); the byte-level checks
are SQLite's (PostgreSQL's limits are in ``docs/deletion.md``).
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import database_url  # tests/conftest.py (tests/ is on sys.path)

from remem import DeriveConfig, Memory, MemoryConfig, StoreConfig
from remem.annotations import entity_links
from remem.cli.main import main
from remem.errors import NotFoundError
from remem.llms.scripted import ScriptedLLM
from remem.models import MemoryRecord, Scope
from remem.registry import store_config
from remem.settings import ENV_VARS
from remem.stores.base import MemoryFilter
from remem.stores.deletion import SOURCES_DELETED
from remem.stores.sqlite import SQLiteStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"  # files of earlier remems


@dataclass
class Place:
    """Where one test's store lives, and how to look for a string in all of it."""

    backend: str
    location: str

    def config(self) -> MemoryConfig:
        # derive jobs are enqueued (an LLM is set) and never run (no background worker)
        return MemoryConfig(store_config(self.location), derive=DeriveConfig(background=False))

    def tables_holding(self, text: str) -> set[str]:
        """Tables with a row holding ``text`` (any case); PostgreSQL adds ``pg_stats``
        when the planner statistics of remem's tables quote it."""
        wanted = text.lower()
        if self.backend == "sqlite":
            with closing(sqlite3.connect(f"file:{self.location}?mode=ro", uri=True)) as conn:
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")]  # fmt: skip
                return {t for t in tables if any(_holds(v, wanted) for row in
                        conn.execute(f'SELECT * FROM "{t}"') for v in row)}  # fmt: skip
        import psycopg  # the [postgres] extra: only the postgres tests need it

        found = set()
        with psycopg.connect(self.location, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]  # fmt: skip
            for table in tables:
                row = conn.execute(f'SELECT count(*) FROM "{table}" x WHERE lower(x::text) '
                                   "LIKE %s", (f"%{wanted}%",)).fetchone()  # fmt: skip
                if row and row[0]:
                    found.add(table)
            stats = conn.execute(
                "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND "
                "lower(concat(most_common_vals::text, histogram_bounds::text)) LIKE %s",
                (f"%{wanted}%",),
            ).fetchone()
            if stats and stats[0]:
                found.add("pg_stats")
        return found

    def files_holding(self, text: str) -> list[str]:
        """SQLite: the database files (file, WAL, shared memory) whose bytes hold
        ``text`` in any case; PostgreSQL: none looked at (see ``docs/deletion.md``)."""
        if self.backend != "sqlite":
            return []
        files = [Path(self.location + suffix) for suffix in ("", "-wal", "-shm")]
        return [f.name for f in files if f.exists() and text.lower().encode() in
                f.read_bytes().lower()]  # fmt: skip

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on the store directly (``?`` placeholders on both backends);
        its rows, if any."""
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.location)) as conn, conn:
                return [tuple(r) for r in conn.execute(statement, params)]
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as pg:
            cursor = pg.execute(statement.replace("?", "%s"), params)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []


def _holds(value: Any, wanted: str) -> bool:
    if isinstance(value, bytes):
        return wanted.encode() in value.lower()
    return isinstance(value, str) and wanted in value.lower()


@pytest.fixture(params=BACKENDS)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "sqlite":
        return Place("sqlite", str(tmp_path / "m.db"))
    server = request.getfixturevalue("postgres_url")
    return Place("postgres", database_url(server, f"t_{uuid.uuid4().hex[:16]}"))


@pytest.fixture
def mem(place: Place, embedder: Any) -> Iterator[Memory]:
    with Memory(place.config(), embedder=embedder, llm=ScriptedLLM()) as memory:
        yield memory


def token() -> str:
    """A string found nowhere else, of letters only: one word to the term counts."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def secret_session(mem: Memory, tok: str, session: str = "s1") -> list[str]:
    """Six messages of Ana's session carrying ``tok`` every way a message can: ids,
    content (a name, a key phrase), speaker, metadata; a summary and a pending derive
    job come with them. Returns the message ids."""
    name = tok.capitalize()
    doings = [f"bakes {tok}cake", "swims", "reads poems", "paints", "sings", "cooks rice"]
    messages = [
        {"id": f"{tok}-{i}", "name": name, "metadata": {"secret": tok},
         "content": f"On day {i} my friend {name} Smith {doing} in Lisbon."}
        for i, doing in enumerate(doings)
    ]  # fmt: skip
    added = mem.add(messages, user_id="ana", session_id=session, wait=False)
    assert added.derived and added.derived[0].kind == "summary"
    return list(added.message_ids)


def clean_session(mem: Memory, session: str = "s2") -> list[str]:
    """Ana's other session, which says nothing secret (and names Porto)."""
    added = mem.add(
        [{"role": "user", "content": f"We walked along the river in Porto, part {i}."}
         for i in range(4)],
        user_id="ana", session_id=session, wait=False,
    )  # fmt: skip
    return list(added.message_ids)


def remembered_fact(mem: Memory, tok: str, sources: list[str]) -> MemoryRecord:
    """A fact citing ``sources``, updated once (the audit log holds both texts)."""
    fact = mem.remember(f"Ana's friend {tok.capitalize()} bakes {tok}cake", user_id="ana",
                        source_ids=sources, metadata={"about": tok})  # fmt: skip
    return mem.update(fact.id, text=f"Ana's friend {tok} bakes on Sundays", reason=f"re {tok}")


def bob(mem: Memory) -> MemoryRecord:
    return mem.add("Bob keeps bees in his garden.", user_id="bob", wait=False).memories[0]


def assert_scope_empty(mem: Memory, tok: str, **scope: str) -> None:
    """Search, list, entities and the scope's counts show nothing of the deleted scope."""
    assert mem.search(f"{tok} Smith bakes cake", **scope).hits == ()
    assert mem.list(**scope) == []
    assert mem.entities(**scope) == []
    stats = mem.store.stats(mem.namespace, Scope(namespace=mem.namespace, **scope))
    assert (stats.messages, stats.memories, dict(stats.jobs)) == (0, 0, {})


def assert_content_free(mem: Memory, memory_id: str) -> None:
    """A deleted memory's history: what happened, by whom and when, no content."""
    history = mem.history(memory_id)
    assert history[-1].action == "DELETE"
    assert all(e.before is None and e.after is None for e in history)
    assert all(e.reason == "" for e in history[:-1])


# -- deleting a user --------------------------------------------------------------------


def test_a_deleted_user_leaves_no_trace(place: Place, mem: Memory) -> None:
    tok = token()
    ids = secret_session(mem, tok)
    fact = remembered_fact(mem, tok, ids[:2])
    kept = bob(mem)
    assert {"messages", "memories", "memory_events", "entities", "term_counts",
            "jobs"} <= place.tables_holding(tok)  # fmt: skip
    assert any(e.kind == "keyphrase" and tok in e.key for e in mem.entities(user_id="ana"))

    assert mem.delete_all(user_id="ana") == {"memories": 8, "messages": 6}
    assert place.tables_holding(tok) == set()  # no row, before any compaction
    assert place.files_holding(tok) == []  # no byte: secure_delete, then a checkpoint
    report = mem.compact()
    assert report.complete and report.swept == 0  # the deletion left nothing to sweep
    assert place.tables_holding(tok) == set()
    assert place.files_holding(tok) == []

    assert_scope_empty(mem, tok, user_id="ana")
    assert_content_free(mem, fact.id)
    with pytest.raises(NotFoundError):
        mem.get(fact.id)
    assert mem.search("who keeps bees?", user_id="bob").hits[0].memory.id == kept.id
    assert [r.id for r in mem.list(user_id="bob")] == [kept.id]
    assert mem.store.term_counts(Scope(user_id="ana"), [tok, "lisbon"]) == (
        0, {tok: 0, "lisbon": 0})  # fmt: skip
    assert mem.store.entity_kinds(Scope(user_id="ana")) == {}


def test_files_are_clean_after_close_and_reopen(tmp_path: Path, embedder: Any) -> None:
    place, tok = Place("sqlite", str(tmp_path / "m.db")), token()
    with Memory(place.config(), embedder=embedder, llm=ScriptedLLM()) as mem:
        secret_session(mem, tok)
        mem.delete_all(user_id="ana")
    assert place.files_holding(tok) == []  # the deletion alone: secure_delete + checkpoint
    with Memory(place.config(), embedder=embedder) as mem:
        assert mem.list(user_id="ana") == [] and mem.compact().complete
    assert place.files_holding(tok) == []


# -- deleting a session ------------------------------------------------------------------


def test_a_deleted_session_takes_what_came_only_from_it(place: Place, mem: Memory) -> None:
    tok = token()
    secret = secret_session(mem, tok)
    clean = clean_session(mem)
    only = remembered_fact(mem, tok, secret[:2])
    both = mem.remember("Ana likes long walks", user_id="ana", source_ids=[secret[0], clean[0]])
    unrelated = mem.remember("Ana reads at night", user_id="ana", source_ids=[clean[1]])

    assert mem.delete_all(user_id="ana", session_id="s1") == {"memories": 8, "messages": 6}
    mem.compact()
    assert place.tables_holding(tok) == set()
    assert place.files_holding(tok) == []

    assert_scope_empty(mem, tok, user_id="ana", session_id="s1")
    assert_content_free(mem, only.id)
    trimmed = mem.get(both.id)
    assert trimmed.source_ids == (clean[0],) and trimmed.text == both.text
    event = mem.history(both.id)[-1]
    assert (event.action, event.reason) == ("UPDATE", SOURCES_DELETED)
    added = mem.history(both.id)[0]  # the deleted id is gone from the history too
    assert added.after and added.after["source_ids"] == [clean[0]] == event.after["source_ids"]
    assert mem.get(unrelated.id) == unrelated
    left = mem.list(user_id="ana", kinds=["turn", "summary"])
    assert sorted(r.kind for r in left) == ["summary"] + ["turn"] * 4
    named = {e.key for e in mem.entities(user_id="ana")}
    assert "porto" in named and set(mem.store.entity_kinds(Scope(user_id="ana"))) == named
    assert mem.search("river walk in Porto", user_id="ana").hits
    docs, counts = mem.store.term_counts(Scope(user_id="ana"), ["porto", tok])
    assert (docs, counts) == (4, {"porto": 4, tok: 0})


# -- deleting one memory -----------------------------------------------------------------


def test_a_deleted_memory_leaves_its_messages_and_nothing_else(place: Place, mem: Memory) -> None:
    tok = token()
    source = clean_session(mem)[0]
    fact = remembered_fact(mem, tok, [source])
    assert "memory_events" in place.tables_holding(tok)
    mem.delete(fact.id)
    mem.compact()
    assert place.tables_holding(tok) == set()
    assert place.files_holding(tok) == []
    assert_content_free(mem, fact.id)
    assert [e.action for e in mem.history(fact.id)] == ["ADD", "UPDATE", "DELETE"]
    assert tok not in {e.key for e in mem.entities(user_id="ana")}

    turn = mem.add(f"I once met {tok.capitalize()} in Rome.", user_id="carl").memories[0]
    mem.delete(turn.id)
    assert place.tables_holding(tok) == {"messages"}  # the log is verbatim
    assert mem.store.entity_kinds(Scope(user_id="carl")) == {}
    assert mem.store.term_counts(Scope(user_id="carl"), ["rome"]) == (0, {"rome": 0})


# -- what must survive ---------------------------------------------------------------------


def test_another_tenants_identical_string_is_untouched(place: Place, mem: Memory) -> None:
    tok = token()
    other = mem.tenant("other")
    secret_session(mem, tok)
    secret_session(other, tok)
    fact = remembered_fact(other, tok, [])
    mem.delete_all(user_id="ana")
    mem.compact()
    assert_scope_empty(mem, tok, user_id="ana")
    assert len(other.list(user_id="ana", kinds=["turn"])) == 6
    assert other.search(f"{tok}cake", user_id="ana").hits
    assert tok in {e.key for e in other.entities(user_id="ana")}
    assert tok in (other.history(fact.id)[0].after or {}).get("text", "").lower()
    assert "messages" in place.tables_holding(tok)


def test_a_memory_superseded_by_a_deleted_one_stays_retired(mem: Memory) -> None:
    first = mem.add([{"role": "user", "content": f"first {i}"} for i in range(4)],
                    user_id="ana", session_id="s", wait=False).derived[0]  # fmt: skip
    mem.add([{"role": "user", "content": f"second {i}"} for i in range(4)],
            user_id="ana", session_id="s", wait=False)  # fmt: skip
    newer = mem.list(user_id="ana", kinds=["summary"])[0]
    assert mem.get(first.id).superseded_by == newer.id
    mem.delete(newer.id)
    assert mem.get(first.id).superseded_by == newer.id
    assert mem.list(user_id="ana", kinds=["summary"]) == []


# -- compaction ---------------------------------------------------------------------------


def test_compact_clears_what_earlier_deletions_left(place: Place, mem: Memory) -> None:
    """Files written before deletions were complete hold leftovers: an event keeping a
    deleted memory's text, an entity row nothing names, a term count at zero."""
    tok = token()
    kept = bob(mem)
    place.execute(
        "INSERT INTO memory_events (memory_id, namespace, action, before, after, reason, "
        "actor, at) VALUES (?, 'default', 'DELETE', ?, NULL, 'delete', 'user', ?)",
        ("gone", f'{{"text": "{tok}"}}', "2024-01-01T00:00:00+00:00"),
    )
    place.execute("INSERT INTO entities (namespace, user_id, agent_id, key, name, kind) "
                  "VALUES ('default', 'bob', '', ?, ?, 'name')", (tok, tok))  # fmt: skip
    place.execute("INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
                  "VALUES ('default', 'bob', '', ?, 0)", (tok,))  # fmt: skip
    assert place.tables_holding(tok) == {"memory_events", "entities", "term_counts"}

    report = mem.compact(full=True)
    assert report.swept == 3 and report.complete and report.size_after > 0
    assert place.tables_holding(tok) == set()
    assert place.files_holding(tok) == []
    assert [e.reason for e in mem.history("gone")] == ["delete"]
    named = {e.key for e in mem.entities(user_id="bob")}  # what bob's memories name
    assert named and set(mem.store.entity_kinds(Scope(user_id="bob"))) == named
    assert mem.search("bees", user_id="bob").hits[0].memory.id == kept.id
    assert mem.compact().swept == 0


# -- the command line ---------------------------------------------------------------------


def _cli(db: Path, *args: str) -> Any:
    result = CliRunner(env={n: None for n in ENV_VARS}).invoke(main, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result


def test_cli_delete_reports_counts_and_compact_clears_the_file(tmp_path: Path) -> None:
    db, tok = tmp_path / "c.db", token()
    _cli(db, "add", "-u", "ana", "-s", "s1", f"I bake {tok}cake")
    _cli(db, "add", "-u", "bob", "Bob keeps bees")
    done = _cli(db, "delete", "--all", "--user", "ana", "--yes")
    assert "deleted 1 memories and 1 messages" in done.output
    report = _cli(db, "--json", "compact").output
    assert '"complete": true' in report and '"swept": 0' in report
    assert "compacted:" in _cli(db, "compact").output
    place = Place("sqlite", str(db))
    assert place.files_holding(tok) == [] and place.tables_holding(tok) == set()
    assert "Bob keeps bees" in _cli(db, "list", "-u", "bob").output


def test_compact_on_a_store_config_built_by_hand(tmp_path: Path, embedder: Any) -> None:
    """``compact`` needs no file path: an in-memory SQLite store compacts too."""
    with Memory(MemoryConfig(StoreConfig("sqlite", ":memory:")), embedder=embedder) as mem:
        mem.add("something to delete", user_id="u")
        mem.delete_all(user_id="u")
        report = mem.compact()
    assert (report.size_before, report.size_after, report.complete) == (0, 0, True)


# -- the migration that counts entity references -------------------------------------------


def expected_refs(memories: list[MemoryRecord]) -> Counter[tuple[str, ...]]:
    """What each entity row must count: the memories of its user/agent naming its key."""
    return Counter((r.scope.namespace, r.scope.user_id or "", r.scope.agent_id or "", link.key)
                   for r in memories for link in entity_links(r.attributes))  # fmt: skip


def stored_refs(place: Place) -> dict[tuple[str, ...], int]:
    found = place.execute("SELECT namespace, user_id, agent_id, key, refs FROM entities")
    return {tuple(row[:4]): int(row[4]) for row in found}


def test_the_migration_counts_references_and_drops_leftovers(place: Place, embedder: Any) -> None:
    tok = token()
    with Memory(place.config(), embedder=embedder, llm=ScriptedLLM()) as mem:
        secret_session(mem, tok)
        clean_session(mem)
        bob(mem)
        memories = mem.store.list_memories(MemoryFilter(current_only=False), limit=1000)
        assert stored_refs(place) == expected_refs(memories)  # kept counted on every write
    # back to the layout before the migration, with what deletions used to leave behind
    place.execute("ALTER TABLE entities DROP COLUMN refs")
    place.execute("DELETE FROM schema_migrations WHERE id = ?", (MIGRATION[place.backend],))
    place.execute("INSERT INTO entities (namespace, user_id, agent_id, key, name, kind) "
                  "VALUES ('default', 'gone', '', ?, ?, 'name')", (tok, tok))  # fmt: skip
    place.execute("INSERT INTO term_counts (namespace, user_id, agent_id, term, docs) "
                  "VALUES ('default', 'ana', '', ?, 0)", (tok + "x",))  # fmt: skip
    with Memory(place.config(), embedder=embedder) as mem:
        assert stored_refs(place) == expected_refs(memories)
        assert place.tables_holding(tok + "x") == set()
        assert ("default", "gone", "", tok) not in stored_refs(place)
        mem.delete_all(user_id="ana", session_id="s1")
        left = mem.store.list_memories(MemoryFilter(current_only=False), limit=1000)
        assert stored_refs(place) == expected_refs(left) and mem.compact().swept == 0


MIGRATION = {"sqlite": 9, "postgres": 4}


@pytest.mark.parametrize("layout", sorted(p.name for p in LAYOUTS.glob("*.sqlite3")))
def test_files_of_earlier_layouts_get_exact_counts(layout: str, tmp_path: Path) -> None:
    path = tmp_path / layout
    shutil.copyfile(LAYOUTS / layout, path)
    store = SQLiteStore(path)
    try:
        memories = store.list_memories(MemoryFilter(current_only=False), limit=10_000)
        found = stored_refs(Place("sqlite", str(path)))
        assert found == expected_refs(memories) and all(n > 0 for n in found.values())
    finally:
        store.close()
