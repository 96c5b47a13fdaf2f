"""Bad input raises the right ``RememError`` with a helpful message and changes nothing."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remem import (
    ConflictError,
    CorruptStoreError,
    DataFormatError,
    InvalidInputError,
    Memory,
    MemoryConfig,
    MessageTooLargeError,
    NotFoundError,
    RememError,
    StoreConfig,
    StoreError,
)


def snapshot(memory: Memory) -> tuple[Any, ...]:
    return memory.stats(), memory.list(limit=10_000)


@pytest.fixture
def seeded(memory: Memory) -> Memory:
    """A memory that already holds something, so 'unchanged' is not trivially empty."""
    memory.add(
        [
            {"id": "m1", "role": "user", "content": "I live in Lisbon"},
            {"id": "m2", "role": "assistant", "content": "Nice city!"},
        ],
        user_id="ana",
        session_id="s1",
        timestamp="2023-05-08T13:56:00",
    )
    return memory


OK = {"role": "user", "content": "a perfectly fine message"}

BAD_ADDS = [
    pytest.param("", {}, InvalidInputError, "empty", id="empty-string"),
    pytest.param("  \n\t ", {}, InvalidInputError, "empty", id="whitespace-string"),
    pytest.param([{"role": "user", "content": ""}], {}, InvalidInputError, "empty",
                 id="empty-content"),
    pytest.param([{"role": "user", "content": "   "}], {}, InvalidInputError, "empty",
                 id="whitespace-content"),
    pytest.param([{"role": "user", "content": 5}], {}, InvalidInputError, "must be a string",
                 id="int-content"),
    pytest.param([{"role": "user", "content": None}], {}, InvalidInputError, "must be a string",
                 id="none-content"),
    pytest.param([{"role": "user"}], {}, InvalidInputError, "must be a string",
                 id="missing-content"),
    pytest.param([{"role": "user", "content": b"bytes"}], {}, InvalidInputError,
                 "must be a string", id="bytes-content"),
    pytest.param(5, {}, InvalidInputError, "messages must be", id="int-messages"),
    pytest.param(None, {}, InvalidInputError, "messages must be", id="none-messages"),
    pytest.param([], {}, InvalidInputError, "non-empty", id="empty-list"),
    pytest.param(["just a string in a list"], {}, InvalidInputError, "messages[0]",
                 id="string-item"),
    pytest.param([{"role": "wizard", "content": "hi"}], {}, InvalidInputError, "assistant",
                 id="unknown-role"),
    pytest.param([{"role": "user", "content": "hi", "colour": "red"}], {}, InvalidInputError,
                 "colour", id="unknown-key"),
    pytest.param("hi", {"user_id": 5}, InvalidInputError, "user_id", id="int-user-id"),
    pytest.param("hi", {"user_id": ""}, InvalidInputError, "user_id", id="empty-user-id"),
    pytest.param("hi", {"session_id": "  "}, InvalidInputError, "session_id",
                 id="blank-session-id"),
    pytest.param("hi", {"agent_id": ["a"]}, InvalidInputError, "agent_id", id="list-agent-id"),
    pytest.param("hi", {"user_id": "x" * 300}, InvalidInputError, "user_id", id="long-user-id"),
    pytest.param("hi", {"timestamp": "next tuesday-ish"}, InvalidInputError, "ISO 8601",
                 id="bad-timestamp"),
    pytest.param("hi", {"timestamp": 10**20}, InvalidInputError, "out of range",
                 id="huge-timestamp"),
    pytest.param("hi", {"timestamp": True}, InvalidInputError, "timestamp", id="bool-timestamp"),
    pytest.param([{"role": "user", "content": "hi", "timestamp": "31/02/2023"}], {},
                 InvalidInputError, "messages[0].timestamp", id="bad-message-timestamp"),
    pytest.param("bad \udcff text", {}, InvalidInputError, "UTF-8", id="lone-surrogate"),
    pytest.param([{"role": "user", "content": "hi", "name": "\ud800"}], {}, InvalidInputError,
                 "UTF-8", id="surrogate-speaker"),
    pytest.param("hi", {"user_id": "u\udcff"}, InvalidInputError, "UTF-8",
                 id="surrogate-user-id"),
    pytest.param("hi", {"metadata": ["not", "a", "dict"]}, InvalidInputError, "dict",
                 id="list-metadata"),
    pytest.param("hi", {"metadata": {1: "int key"}}, InvalidInputError, "string keys",
                 id="int-metadata-key"),
    pytest.param("hi", {"metadata": {"when": datetime(2020, 1, 1)}}, InvalidInputError,
                 "JSON", id="unserialisable-metadata"),
    pytest.param([OK, OK, {"role": "robot", "content": "third is bad"}], {}, InvalidInputError,
                 "messages[2]", id="third-of-batch-bad-role"),
    pytest.param([OK, {"role": "user", "content": "second ok"}, {"role": "user", "content": ""}],
                 {}, InvalidInputError, "messages[2]", id="third-of-batch-empty"),
    pytest.param([{"id": "d", **OK}, {"id": "x", **OK}, {"id": "d", "content": "again"}], {},
                 InvalidInputError, "twice", id="duplicate-ids-in-batch"),
    pytest.param([{"id": "", "content": "blank id"}], {}, InvalidInputError, "id",
                 id="blank-message-id"),
]  # fmt: skip


@pytest.mark.parametrize(("messages", "kwargs", "error", "hint"), BAD_ADDS)
def test_bad_add_raises_and_changes_nothing(seeded, messages, kwargs, error, hint):
    before = snapshot(seeded)
    with pytest.raises(error) as info:
        seeded.add(messages, **kwargs)
    assert hint in str(info.value)
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    "metadata", [{"note": "bad \udcff"}, {"bad \ud800 key": 1}], ids=["value", "key"]
)
def test_lone_surrogate_in_metadata_is_invalid_input(seeded, metadata):
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match="UTF-8"):
        seeded.add("hi", metadata=metadata)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_metadata_is_rejected(seeded, value):
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError):
        seeded.add("hi", metadata={"score": value})
    assert snapshot(seeded) == before
    assert seeded.list(metadata={"missing": 1}) == []


def test_timestamp_before_year_1000_is_rejected_or_round_trips(seeded):
    before = snapshot(seeded)
    try:
        result = seeded.add("an ancient memory", timestamp="0999-06-01")
    except InvalidInputError:
        assert snapshot(seeded) == before
        return
    assert seeded.get(result.memories[0].id).occurred_at == datetime(999, 6, 1)
    assert len(seeded.list()) == 3


def test_message_over_the_size_limit(tmp_path, embedder):
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "small.db")), max_message_chars=100)
    with Memory(config, embedder=embedder) as mem:
        mem.add("x" * 100)  # exactly at the limit is fine
        before = snapshot(mem)
        with pytest.raises(MessageTooLargeError) as info:
            mem.add([OK, {"role": "user", "content": "y" * 101}])
        message = str(info.value)
        assert "101" in message
        assert "100" in message
        assert "max_message_chars" in message
        assert isinstance(info.value, InvalidInputError)
        assert snapshot(mem) == before
        with pytest.raises(MessageTooLargeError):
            mem.search("z" * 101)


def test_reused_id_with_other_content_conflicts(seeded):
    before = snapshot(seeded)
    with pytest.raises(ConflictError, match="m1"):
        seeded.add([OK, {"id": "m1", "role": "user", "content": "I live in Porto"}], user_id="ana")
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    ("changes", "hint"),
    [
        ({}, "update takes"),
        ({"colour": "red"}, "colour"),
        ({"text": ""}, "empty"),
        ({"text": 5}, "string"),
        ({"text": "bad \udcff"}, "UTF-8"),
        ({"importance": 2}, "0 to 1"),
        ({"importance": "high"}, "0 to 1"),
        ({"metadata": "x"}, "dict"),
        ({"expires_at": "someday"}, "ISO 8601"),
    ],
)
def test_bad_update_raises_and_changes_nothing(seeded, changes, hint):
    target = seeded.list()[0].id
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match=hint):
        seeded.update(target, **changes)
    assert snapshot(seeded) == before
    assert [e.action for e in seeded.history(target)] == ["ADD"]


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"query": ""}, "empty"),
        ({"query": None}, "string"),
        ({"query": "x", "limit": 0}, "limit"),
        ({"query": "x", "limit": True}, "limit"),
        ({"query": "x", "kinds": "opinion"}, "kind"),
        ({"query": "x", "since": "whenever"}, "since"),
        ({"query": "x", "metadata": {"bad-key": 1}}, "bad-key"),
        ({"query": "x", "user_id": 7}, "user_id"),
    ],
)
def test_bad_search_raises(seeded, kwargs, hint):
    with pytest.raises(InvalidInputError, match=hint):
        seeded.search(**kwargs)


def test_bad_list_offset(seeded):
    with pytest.raises(InvalidInputError, match="offset"):
        seeded.list(offset=-1)


@pytest.mark.parametrize("action", ["get", "update", "delete", "history"])
def test_unknown_memory_id_is_not_found(seeded, action):
    before = snapshot(seeded)
    with pytest.raises(NotFoundError) as info:
        call(seeded, action, "no-such-memory")
    assert "no-such-memory" in str(info.value)
    assert isinstance(info.value, KeyError)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("action", ["get", "update", "delete", "history"])
def test_another_namespaces_id_is_not_found(seeded, tmp_path, embedder, action):
    foreign_id = seeded.list()[0].id
    before = snapshot(seeded)
    with Memory(tmp_path / "m.db", embedder=embedder, namespace="intruder") as other:
        other_before = snapshot(other)
        with pytest.raises(NotFoundError):
            call(other, action, foreign_id)
        assert snapshot(other) == other_before
    assert snapshot(seeded) == before
    assert [e.action for e in seeded.history(foreign_id)] == ["ADD"]


def call(memory: Memory, action: str, memory_id: str) -> Any:
    if action == "update":
        return memory.update(memory_id, text="overwritten")
    return getattr(memory, action)(memory_id)


@pytest.mark.parametrize("memory_id", ["", "   ", None, 5])
def test_malformed_memory_id(seeded, memory_id):
    with pytest.raises(InvalidInputError, match="memory_id"):
        seeded.get(memory_id)


# -- files that are not remem databases ----------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [os.urandom(8192), b"SQLite format 3\x00" + os.urandom(8192), b"plain text\n" * 100],
    ids=["random-bytes", "sqlite-header-then-garbage", "text-file"],
)
def test_corrupt_database_file(tmp_path, embedder, content):
    path = tmp_path / "corrupt.db"
    path.write_bytes(content)
    with pytest.raises(CorruptStoreError) as info:
        Memory(path, embedder=embedder)
    assert str(path) in str(info.value)
    assert isinstance(info.value, StoreError)
    assert path.read_bytes() == content


def _foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE foo (x INTEGER)")
    conn.execute("INSERT INTO foo VALUES (42)")
    conn.commit()
    conn.close()


def test_foreign_sqlite_database(tmp_path, embedder):
    path = tmp_path / "foreign.db"
    _foreign_database(path)
    with pytest.raises(CorruptStoreError) as info:
        Memory(path, embedder=embedder)
    assert "foo" in str(info.value)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"foo"}
    assert conn.execute("SELECT x FROM foo").fetchall() == [(42,)]
    conn.close()


def test_foreign_sqlite_database_is_left_untouched(tmp_path, embedder):
    path = tmp_path / "foreign.db"
    _foreign_database(path)
    with pytest.raises(CorruptStoreError):
        Memory(path, embedder=embedder)
    conn = sqlite3.connect(path)
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert mode == "delete"


# -- import files in the wrong layout ------------------------------------------------------


@pytest.fixture
def export_lines(tmp_path, embedder) -> list[str]:
    """A valid export (header, 2 messages, 2 memories, 2 events) from another database."""
    with Memory(tmp_path / "source.db", embedder=embedder) as source:
        source.add(
            [
                {"role": "user", "content": "I like running"},
                {"role": "assistant", "content": "Me too"},
            ],
            user_id="bob",
        )
        source.export(tmp_path / "good.jsonl")
    return (tmp_path / "good.jsonl").read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_import_fails(memory: Memory, path: Path, hint: str) -> DataFormatError:
    before = snapshot(memory)
    with pytest.raises(DataFormatError) as info:
        memory.import_(path)
    assert hint in str(info.value)
    assert snapshot(memory) == before
    return info.value


def test_import_not_json(seeded, tmp_path):
    path = write_lines(tmp_path / "notes.jsonl", ["this is not json", "neither is this"])
    assert_import_fails(seeded, path, "line 1")


def test_import_wrong_layout(seeded, tmp_path):
    array = write_lines(tmp_path / "array.jsonl", ["[1, 2, 3]"])
    assert_import_fails(seeded, array, "line 1")
    no_header = write_lines(tmp_path / "noheader.jsonl", ['{"type": "message", "id": "x"}'])
    assert_import_fails(seeded, no_header, "header")
    other_format = write_lines(
        tmp_path / "other.jsonl", ['{"type": "header", "format": "mem0", "version": 1}']
    )
    assert_import_fails(seeded, other_format, "remem-export")
    empty = write_lines(tmp_path / "empty.jsonl", [])
    assert_import_fails(seeded, empty, "header")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert_import_fails(seeded, binary, "UTF-8")
    assert_import_fails(seeded, tmp_path / "missing.jsonl", "does not exist")


def test_import_wrong_version(seeded, tmp_path, export_lines):
    header = json.loads(export_lines[0])
    header["version"] = 99
    path = write_lines(tmp_path / "v99.jsonl", [json.dumps(header), *export_lines[1:]])
    assert_import_fails(seeded, path, "99")


def test_import_bad_json_line_names_the_line(seeded, tmp_path, export_lines):
    lines = list(export_lines)
    lines[2] = lines[2][:-5]  # truncate line 3
    path = write_lines(tmp_path / "truncated.jsonl", lines)
    assert_import_fails(seeded, path, "line 3")


def test_import_missing_field(seeded, tmp_path, export_lines):
    lines = list(export_lines)
    row = json.loads(lines[1])
    del row["content"]
    lines[1] = json.dumps(row)
    path = write_lines(tmp_path / "missing-field.jsonl", lines)
    assert_import_fails(seeded, path, "content")


def test_import_of_rows_already_present_changes_nothing(seeded, tmp_path, export_lines):
    path = write_lines(tmp_path / "good.jsonl", export_lines)
    seeded.import_(path)
    before = snapshot(seeded)
    with pytest.raises(ConflictError):
        seeded.import_(path)
    assert snapshot(seeded) == before


def test_import_unknown_row_type_names_the_line(seeded, tmp_path, export_lines):
    lines = [*export_lines[:2], '{"type": "bogus"}', *export_lines[2:]]
    path = write_lines(tmp_path / "bogus.jsonl", lines)
    assert_import_fails(seeded, path, "line 3")


def test_import_null_text_is_a_data_format_error(seeded, tmp_path, export_lines):
    lines = list(export_lines)
    index = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "memory")
    row = json.loads(lines[index])
    row["text"] = None
    lines[index] = json.dumps(row)
    path = write_lines(tmp_path / "null-text.jsonl", lines)
    assert_import_fails(seeded, path, f"line {index + 1}")


def test_import_wrong_embedding_size_is_rejected(seeded, tmp_path, export_lines):
    lines = list(export_lines)
    index = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "memory")
    row = json.loads(lines[index])
    row["embedding"] = base64.b64encode(np.ones(3, dtype=np.float32).tobytes()).decode()
    lines[index] = json.dumps(row)
    path = write_lines(tmp_path / "short-vector.jsonl", lines)
    try:
        assert_import_fails(seeded, path, f"line {index + 1}")
    finally:
        seeded.search("where do I live?")  # the namespace must stay searchable


def test_every_error_is_a_remem_error():
    for error in (InvalidInputError, MessageTooLargeError, NotFoundError, ConflictError,
                  StoreError, CorruptStoreError, DataFormatError):  # fmt: skip
        assert issubclass(error, RememError)
