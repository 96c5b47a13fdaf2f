"""Migrations you can trust: files from every earlier layout open and migrate, a file from
a newer remem is refused and left alone, and released migrations stay as released.

The files in ``tests/fixtures/layouts`` were written by old commits through the public
API; their README says how, and holds the counts checked here.
"""

from __future__ import annotations

import ast
import gc
import hashlib
import inspect
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from remem import Memory
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.errors import StoreError
from remem.stores.sqlite import migrations
from remem.stores.sqlite.migrations import MIGRATIONS

LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"

# file -> (messages, memories, events) as written by the commit that made it
FIXTURES: dict[str, tuple[int, int, int]] = {
    "7609d02-core-no-seq.sqlite3": (18, 17, 20),
    "e80cac6-core.sqlite3": (18, 17, 20),
    "459d536-links.sqlite3": (18, 20, 23),
    "7eb6ce2-term-counts.sqlite3": (18, 20, 23),
    "0243a5a-sessions.sqlite3": (18, 20, 23),
    "7ff4347-linked.sqlite3": (18, 20, 23),
    "7ff4347-reopened-7609d02.sqlite3": (18, 17, 20),
}

# Files whose migration 3 ran before migration 4 existed: ingest wrote their derived rows,
# and migration 4 must derive the same ones, not count them a second time. (Before 0243a5a
# a key phrase's link weight was its raw score, so there only the links are compared.)
INGEST_DERIVED: dict[str, tuple[str, ...]] = {
    "459d536-links.sqlite3": ("memory_links", "memory_times"),
    "7eb6ce2-term-counts.sqlite3": ("memory_links", "memory_times", "term_counts"),
    "0243a5a-sessions.sqlite3": (
        "memory_entities", "memory_times", "term_counts", "sessions", "session_terms",
    ),
}  # fmt: skip

# Released migrations: number, name, and a checksum of the code that runs them. Never edit
# these lines to make the test pass; add a new migration instead.
RELEASED: tuple[tuple[int, str, str], ...] = (
    (1, "create_core_tables", "77ab72ddd029"),
    (2, "create_fts5_index", "6e3c2de7e201"),
    (3, "create_entity_time_term_and_session_tables", "71952d5f10f5"),
    (4, "link_existing_memories", "6989c2662330"),
    (5, "live_store_revisions_tombstones_and_ids_per_namespace", "2605577dc0dd"),
    (6, "api_keys", "8bdb74f1f157"),
    (7, "memory_access_revisions", "149fc9f8792a"),
    (8, "job_queue", "a42df110fd07"),
    (9, "entity_reference_counts", "3094a6139d01"),
)
# Code the released migrations run besides their own functions, and its checksum.
HELPERS = (
    "_run_script",
    "_v4_link_memory",
    "_v4_entity_links",
    "_v4_time_links",
    "_v4_items",
    "_v4_words",
)
HELPERS_SUM = "659b488ab6ed"


def _sum(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _copy(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    shutil.copyfile(LAYOUTS / name, path)
    return path


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def _derived(path: Path, table: str) -> set[tuple[Any, ...]]:
    """A derived table's rows, by key rather than row id; zero counts left out (unlinking
    leaves them behind, deriving afresh does not make them)."""
    sql = {
        "memory_entities": "SELECT me.memory_id, e.namespace, e.user_id, e.agent_id, e.key, "
        "e.name, e.kind, me.weight FROM memory_entities me JOIN entities e "
        "ON e.pk = me.entity_pk",
        "memory_links": "SELECT me.memory_id, e.namespace, e.user_id, e.agent_id, e.key, "
        "e.name, e.kind FROM memory_entities me JOIN entities e ON e.pk = me.entity_pk",
        "memory_times": "SELECT memory_id, start, end, kind FROM memory_times",
        "term_counts": "SELECT * FROM term_counts WHERE docs > 0",
        "sessions": "SELECT namespace, user_id, agent_id, session_id, length FROM sessions",
        "session_terms": "SELECT s.namespace, s.user_id, s.agent_id, s.session_id, t.term, "
        "t.tf FROM session_terms t JOIN sessions s ON s.pk = t.session_pk WHERE t.tf > 0",
    }[table]
    return set(_rows(path, sql))


def _layout(path: Path) -> dict[str, Any]:
    """Tables with their columns (in any order), indexes and triggers."""
    out: dict[str, Any] = {}
    for kind, name in _rows(path, "SELECT type, name FROM sqlite_master"):
        if kind == "table":
            out[name] = sorted(
                (r[1], r[2], r[3], r[4], r[5]) for r in _rows(path, f"PRAGMA table_info({name})")
            )
        else:
            out[name] = kind
    return out


def _dump(path: Path) -> dict[str, list[str]]:
    tables = [r[0] for r in _rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(repr(r) for r in _rows(path, f"SELECT * FROM {t}")) for t in tables}


@pytest.fixture(params=sorted(FIXTURES))
def old_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of one fixture file, written by an earlier remem."""
    return _copy(request.param, tmp_path)


def test_every_fixture_is_listed() -> None:
    assert sorted(p.name for p in LAYOUTS.glob("*.sqlite3")) == sorted(FIXTURES)


def test_old_file_opens_and_keeps_its_data(old_file: Path, embedder: OnnxMiniLMEmbedder) -> None:
    messages, memories, events = FIXTURES[old_file.name]
    with Memory(old_file, embedder=embedder) as mem:
        stats = mem.stats()
        assert (stats.messages, stats.memories, stats.events) == (messages, memories, events)
        assert stats.users == 2 and stats.sessions == 3
        hits = mem.search("the greyhound Pixel", user_id="ana", limit=5).hits
        assert any("Pixel" in h.memory.text for h in hits[:3])
        assert not any(h.memory.scope.user_id != "ana" for h in hits)
    applied = _rows(old_file, "SELECT id FROM schema_migrations ORDER BY id")
    assert [r[0] for r in applied] == [number for number, _, _ in MIGRATIONS]


def test_old_file_takes_new_writes(old_file: Path, embedder: OnnxMiniLMEmbedder) -> None:
    messages, memories, _ = FIXTURES[old_file.name]
    turns = [
        {"role": "user", "speaker": "Ben", "content": "Theo and I booked a ferry to the Azores."},
        {"role": "assistant", "speaker": "Remy", "content": "The Azores ferry sounds fun."},
        {"role": "user", "speaker": "Ben", "content": "We will watch whales near Pico island."},
        {"role": "assistant", "speaker": "Remy", "content": "Whale watching at Pico, lovely."},
    ]
    with Memory(old_file, embedder=embedder) as mem:
        added = mem.add(turns, user_id="ben", session_id="ben-s1", timestamp="2023-05-21")
        assert len(added.memories) == 4
        assert mem.stats().messages == messages + 4
        assert mem.stats().memories >= memories + 4
        hits = mem.search("whale watching near Pico", user_id="ben", limit=3).hits
        assert "Pico" in hits[0].memory.text
        record = mem.update(added.memories[0].id, text="Theo and I booked a ferry to Madeira.")
        assert mem.get(record.id).text.endswith("Madeira.")
    # new messages continue their session's numbering
    seqs = _rows(old_file, "SELECT seq FROM messages WHERE session_id = 'ben-s1' ORDER BY pk")
    assert [r[0] for r in seqs] == list(range(1, 11))


def test_old_file_gets_todays_layout(
    old_file: Path, tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    Memory(fresh, embedder=embedder).close()
    Memory(old_file, embedder=embedder).close()
    assert _layout(old_file) == _layout(fresh)


def test_old_file_positions_are_filled(old_file: Path, embedder: OnnxMiniLMEmbedder) -> None:
    """Messages are numbered 1, 2, ... in each session and a turn's position is its
    message's number, also in files written before those columns existed."""
    Memory(old_file, embedder=embedder).close()
    seqs = _rows(
        old_file,
        "SELECT session_id, group_concat(seq) FROM (SELECT session_id, seq FROM messages "
        "ORDER BY pk) GROUP BY session_id",
    )
    assert {s: q for s, q in seqs} == {s: "1,2,3,4,5,6" for s in ("ana-s1", "ana-s2", "ben-s1")}
    wrong = _rows(
        old_file,
        "SELECT t.id FROM memories t JOIN messages m ON m.id = json_extract(t.source_ids, "
        "'$[0]') AND m.user_id = t.user_id WHERE t.kind = 'turn' AND t.position != m.seq",
    )
    assert wrong == []


def _migrate_to_4(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repair and migrate a file as far as migration 4 (later ones may drop its tables)."""
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:4])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        assert migrations.apply_migrations(conn, "2024-01-01T00:00:00.000000") == 4
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_migration_4_counts_each_turn_once(old_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {t: _derived(old_file, t) for t in INGEST_DERIVED.get(old_file.name, ())}
    _migrate_to_4(old_file, monkeypatch)
    for table, rows in before.items():
        assert _derived(old_file, table) == rows, table
    turns = dict(_rows(old_file, "SELECT user_id, count(*) FROM memories WHERE kind = 'turn' "
                                 "GROUP BY user_id"))  # fmt: skip
    docs = dict(_rows(old_file, "SELECT user_id, docs FROM term_counts WHERE term = ''"))
    assert docs == turns
    assert _rows(old_file, "SELECT count(*) - count(DISTINCT memory_id || start || end || kind) "
                           "FROM memory_times") == [(0,)]  # fmt: skip
    lengths = _rows(old_file, "SELECT s.length, (SELECT sum(tf) FROM session_terms t WHERE "
                              "t.session_pk = s.pk) FROM sessions s")  # fmt: skip
    assert len(lengths) == 3 and all(a == b for a, b in lengths)


def test_reopening_a_migrated_file_changes_nothing(
    old_file: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    Memory(old_file, embedder=embedder).close()
    once = _dump(old_file)
    Memory(old_file, embedder=embedder).close()
    again = _dump(old_file)
    assert again == once  # opening writes nothing, not even the store revision


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_file_from_newer_remem_is_refused_and_left_alone(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, journal: str
) -> None:
    path = _copy("7ff4347-linked.sqlite3", tmp_path)
    latest = max(number for number, _, _ in MIGRATIONS)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from_the_future', '2030-01-01T00:00:00')",
        (latest + 7,),
    )
    conn.commit()
    conn.close()
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(StoreError) as info:
        Memory(path, embedder=embedder)
    message = str(info.value)
    assert "newer remem" in message and "upgrade" in message
    assert f"schema {latest + 7}" in message and f"up to {latest}" in message
    assert str(path) in message
    del info
    gc.collect()  # the refused store's connection, if the store left it open
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_released_migrations_are_frozen() -> None:
    assert [(n, name) for n, name, _ in MIGRATIONS[: len(RELEASED)]] == [
        (n, name) for n, name, _ in RELEASED
    ]
    assert [n for n, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    for (number, _, expected), (_, _, migrate) in zip(RELEASED, MIGRATIONS, strict=False):
        assert _sum(inspect.getsource(migrate)) == expected, (
            f"released migration {number} was edited; restore it and add a new migration"
        )
    helpers = [inspect.getsource(getattr(migrations, name)) for name in HELPERS]
    helpers.append(migrations._V4_WORD.pattern)
    assert _sum(*helpers) == HELPERS_SUM, "code a released migration runs was edited"


def test_migrations_call_no_live_code() -> None:
    """Migrations import nothing of remem that may change (only the error classes)."""
    tree = ast.parse(Path(migrations.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("remem")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("remem")
    }
    assert imported <= {"remem.errors"}


def test_migrations_are_logged_and_the_library_stays_silent(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    path = _copy(sorted(FIXTURES)[-1], tmp_path)
    with caplog.at_level(logging.INFO, logger="remem"):
        Memory(path, embedder=embedder).close()
    applied = [r.getMessage() for r in caplog.records if "applying migration" in r.getMessage()]
    assert applied and all(str(path) in line for line in applied)
    assert logging.getLogger("remem").handlers == []  # no handler unless the app adds one
