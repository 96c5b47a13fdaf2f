"""Hostile input, through the library and the command line: every bad argument, file or
option ends in a ``RememError`` (on the command line: ``error: ...`` and an exit code, never
a traceback), and the store is exactly as it was.

``test_bad_input.py`` covers the everyday mistakes (empty text, unknown role, a missing
field); this corpus goes after the edges: wrong types, overflowing times, NUL and control
characters, lone surrogates, deep and huge JSON, and import files whose rows are wrong in
every field the store keeps.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem import DataFormatError, InvalidInputError, Memory, RememError, StoreError
from remem.cli.main import main
from remem.export_format import CHECKS, FIELDS, check_row
from remem.settings import ENV_VARS
from remem.util import parse_timestamp
from remem.validation import MAX_ATTRIBUTES_BYTES, MAX_METADATA_BYTES, MAX_METADATA_DEPTH

Call = Callable[[Memory], Any]


# --------------------------------------------------------------------------- helpers


def nested(levels: int, leaf: Any = 1) -> Any:
    """``levels`` dicts inside each other: {"a": {"a": ... leaf}}."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_list(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


class Fingerprint:
    """Everything a namespace holds: its stats and every exported row but the header."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "fingerprint.jsonl"

    def __call__(self, memory: Memory) -> tuple[Any, ...]:
        memory.export(self.path)
        lines = self.path.read_text(encoding="utf-8").split("\n")
        assert json.loads(lines[0])["type"] == "header"
        return memory.stats(), tuple(lines[1:])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def fingerprint(folder: Path) -> Fingerprint:
    return Fingerprint(folder)


SEED = [
    {"id": "h1", "role": "user", "name": "Ana", "content": "I moved to Lisbon in May",
     "metadata": {"topic": "home", "note": None}},
    {"id": "h2", "role": "assistant", "content": "How do you like it there?"},
    {"id": "h3", "role": "user", "name": "Ana", "content": "We adopted a beagle called Oscar"},
    {"id": "h4", "role": "assistant", "content": "Oscar is a lovely name for a beagle."},
    {"id": "h5", "role": "user", "name": "Ana", "content": "My sister Maria works in Porto"},
]  # fmt: skip


@pytest.fixture(scope="module")
def mem(folder: Path, embedder: Any) -> Iterator[Memory]:
    """One store for the whole module, holding turns, a summary and ADD, UPDATE and
    DELETE events, so that 'unchanged' is not trivially empty."""
    memory = Memory(folder / "hostile.db", embedder=embedder)
    memory.add(SEED, user_id="seed", session_id="s1", timestamp="2023-05-08T13:56:00")
    turns = memory.list(user_id="seed", kinds="turn")
    memory.update(turns[0].id, importance=0.9, pinned=True)
    memory.delete(turns[1].id)
    yield memory
    memory.close()


@pytest.fixture(scope="module")
def seeded_id(mem: Memory) -> str:
    return mem.list(user_id="seed", kinds="turn")[-1].id


def assert_refused(
    memory: Memory,
    fingerprint: Fingerprint,
    call: Call,
    error: type[RememError] = InvalidInputError,
    hint: str | None = None,
) -> RememError:
    """``call`` raises ``error`` (a ``RememError``), says ``hint``, and changes nothing."""
    before = fingerprint(memory)
    with pytest.raises(RememError) as info:
        call(memory)
    assert isinstance(info.value, error), repr(info.value)
    if hint is not None:
        assert hint in str(info.value)
    assert fingerprint(memory) == before
    return info.value


# ---------------------------------------------------------------- library: arguments

EDGE_PLUS5 = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
BAD_CALLS = [
    # what add takes
    pytest.param(lambda m: m.add(b"bytes", user_id="t"), "bytes", id="add-bytes"),
    pytest.param(lambda m: m.add(bytearray(b"hi"), user_id="t"), "bytes", id="add-bytearray"),
    pytest.param(lambda m: m.add((x for x in ["hi"]), user_id="t"), "messages",
                 id="add-generator"),
    pytest.param(lambda m: m.add({"hi"}, user_id="t"), "messages", id="add-set"),
    pytest.param(lambda m: m.add([{"role": ["user"], "content": "hi"}], user_id="t"), "role",
                 id="add-unhashable-role"),
    pytest.param(lambda m: m.add([{"content": "hi", 1: "x"}], user_id="t"), "unknown keys",
                 id="add-int-key-in-message"),
    pytest.param(lambda m: m.add([{"content": "hi", "metadata": [1]}], user_id="t"),
                 "messages[0].metadata", id="add-message-metadata-list"),
    # ids: NUL and control characters are refused everywhere an id goes
    pytest.param(lambda m: m.add("hi", user_id="a\x00b"), "NUL",
                 id="user-id-nul"),
    pytest.param(lambda m: m.add("hi", user_id="ana\n"), "control character",
                 id="user-id-newline"),
    pytest.param(lambda m: m.add("hi", session_id="s\t1"), "control character",
                 id="session-id-tab"),
    pytest.param(lambda m: m.add("hi", agent_id="\ud800"), "UTF-8", id="agent-id-surrogate"),
    pytest.param(lambda m: m.add([{"id": "m\x00", "content": "hi"}], user_id="t"),
                 "messages[0].id", id="message-id-nul"),
    pytest.param(lambda m: m.add([{"name": "Ana\x1b[31m", "content": "hi"}], user_id="t"),
                 "control character", id="speaker-escape-sequence"),
    pytest.param(lambda m: m.add([{"id": "x" * 257, "content": "hi"}], user_id="t"), "256",
                 id="message-id-too-long"),
    pytest.param(lambda m: m.add("a\x00b", user_id="t"), "NUL", id="content-nul"),
    pytest.param(lambda m: m.add("\ud800", user_id="t"), "UTF-8", id="content-high-surrogate"),
    # times: overflow at the year edges, huge offsets, non-finite and huge seconds
    pytest.param(lambda m: m.add("hi", timestamp="0001-01-01T00:00:00+05:00"), "0001 to 9999",
                 id="timestamp-year-1-east"),
    pytest.param(lambda m: m.add("hi", timestamp="9999-12-31T23:59:59-05:00"), "0001 to 9999",
                 id="timestamp-year-9999-west"),
    pytest.param(lambda m: m.add("hi", timestamp=EDGE_PLUS5), "0001 to 9999",
                 id="timestamp-aware-datetime-edge"),
    pytest.param(lambda m: m.add("hi", timestamp="2023-01-01T00:00:00+25:00"), "ISO 8601",
                 id="timestamp-offset-25h"),
    pytest.param(lambda m: m.add("hi", timestamp=float("nan")), "ISO 8601",
                 id="timestamp-nan"),
    pytest.param(lambda m: m.add("hi", timestamp=float("-inf")), "ISO 8601",
                 id="timestamp-minus-inf"),
    pytest.param(lambda m: m.add("hi", timestamp=10**400), "out of range",
                 id="timestamp-10e400"),
    pytest.param(lambda m: m.add("hi", timestamp=10**5000), "out of range",
                 id="timestamp-5000-digits"),
    pytest.param(lambda m: m.add("hi", timestamp=-1e300), "out of range",
                 id="timestamp-minus-1e300"),
    pytest.param(lambda m: m.add("hi", timestamp=object()), "ISO 8601",
                 id="timestamp-object"),
    pytest.param(lambda m: m.add([{"content": "hi", "timestamp": "9999-12-31T23:00:00-02:00"}]),
                 "messages[0].timestamp", id="message-timestamp-overflow"),
    # metadata: depth, size, keys and values JSON cannot hold
    pytest.param(lambda m: m.add("hi", metadata=nested(5000)), "20 levels",
                 id="metadata-5000-deep"),
    pytest.param(lambda m: m.add("hi", metadata={"a": deep_list(MAX_METADATA_DEPTH)}),
                 "20 levels", id="metadata-list-one-too-deep"),
    pytest.param(lambda m: m.add("hi", metadata={"a": "x" * MAX_METADATA_BYTES}), "64 KiB",
                 id="metadata-over-64k"),
    pytest.param(lambda m: m.add([{"content": "hi", "metadata": {"b": "y" * 40_000}}],
                                 metadata={"a": "x" * 40_000}), "64 KiB",
                 id="metadata-merged-over-64k"),
    pytest.param(lambda m: m.add("hi", metadata={"a": {1: "nested int key"}}), "string keys",
                 id="metadata-nested-int-key"),
    pytest.param(lambda m: m.add("hi", metadata={"a": [float("nan")]}), "NaN",
                 id="metadata-nested-nan"),
    pytest.param(lambda m: m.add("hi", metadata={"a": Decimal("1.5")}), "Decimal",
                 id="metadata-decimal"),
    pytest.param(lambda m: m.add("hi", metadata={"a": b"raw"}), "bytes", id="metadata-bytes"),
    pytest.param(lambda m: m.add("hi", metadata={"a": 10**5000}), "metadata",
                 id="metadata-5000-digit-int"),
    # search, context, list, entities
    pytest.param(lambda m: m.search("hi", kinds=5), "kinds", id="search-kinds-int"),
    pytest.param(lambda m: m.search("hi", kinds={"turn": 1}), "kinds", id="search-kinds-dict"),
    pytest.param(lambda m: m.search("hi", kinds=[["turn"]]), "kind", id="search-kinds-nested"),
    pytest.param(lambda m: m.search("hi", kinds=b"turn"), "kinds", id="search-kinds-bytes"),
    pytest.param(lambda m: m.search("hi", limit="3"), "limit", id="search-limit-str"),
    pytest.param(lambda m: m.search("hi", limit=3.0), "limit", id="search-limit-float"),
    pytest.param(lambda m: m.search("hi", reference_time=[]), "reference_time",
                 id="search-reference-time-list"),
    pytest.param(lambda m: m.search("hi", reference_time=float("nan")), "reference_time",
                 id="search-reference-time-nan"),
    pytest.param(lambda m: m.search("hi", since={}), "since", id="search-since-dict"),
    pytest.param(lambda m: m.search("hi", until="0001-01-01T00:00:00+00:01"), "until",
                 id="search-until-overflow"),
    pytest.param(lambda m: m.search(b"hi"), "query", id="search-query-bytes"),
    pytest.param(lambda m: m.search("a\x00b"), "NUL", id="search-query-nul"),
    pytest.param(lambda m: m.search("hi", metadata=nested(3000)), "metadata filter",
                 id="search-metadata-filter-deep"),
    pytest.param(lambda m: m.search("hi", user_id="seed\x00"), "user_id",
                 id="search-user-id-nul"),
    pytest.param(lambda m: m.context("hi", budget_tokens="5"), "budget_tokens",
                 id="context-budget-str"),
    pytest.param(lambda m: m.context("hi", budget_tokens=10**9), "budget_tokens",
                 id="context-budget-huge"),
    pytest.param(lambda m: m.list(offset="1"), "offset", id="list-offset-str"),
    pytest.param(lambda m: m.list(offset=True), "offset", id="list-offset-bool"),
    pytest.param(lambda m: m.list(kinds=["turn", "opinion"]), "opinion", id="list-kind-unknown"),
    pytest.param(lambda m: m.list(since="yesterday-ish"), "since", id="list-since-garbage"),
    pytest.param(lambda m: m.entities(limit="x"), "limit", id="entities-limit-str"),
    pytest.param(lambda m: m.entities(kind=["name"]), "kind", id="entities-kind-list"),
    # ids of get/update/delete/history
    pytest.param(lambda m: m.get("id\x00"), "memory_id", id="get-id-nul"),
    pytest.param(lambda m: m.get("x" * 1000), "memory_id", id="get-id-too-long"),
    pytest.param(lambda m: m.get(b"id"), "memory_id", id="get-id-bytes"),
    pytest.param(lambda m: m.delete(["id"]), "memory_id", id="delete-id-list"),
    pytest.param(lambda m: m.history("\udcff"), "memory_id", id="history-id-surrogate"),
    pytest.param(lambda m: m.delete_all(user_id="seed\n"), "user_id",
                 id="delete-all-user-newline"),
    # files
    pytest.param(lambda m: m.export("bad\x00name.jsonl"), "file name", id="export-nul-path"),
    pytest.param(lambda m: m.import_("bad\x00name.jsonl"), "file name", id="import-nul-path"),
    pytest.param(lambda m: m.export("\ud800.jsonl"), "file name", id="export-surrogate-path"),
    pytest.param(lambda m: m.import_("\ud800.jsonl"), "file name", id="import-surrogate-path"),
    pytest.param(lambda m: m.export("."), "folder", id="export-to-a-folder"),
]  # fmt: skip


def target(memory: Memory) -> str:
    """A memory of the seeded store to update or delete."""
    return memory.list(user_id="seed", kinds="turn")[-1].id


BAD_UPDATES = [
    pytest.param(lambda m: m.update(target(m), importance=float("nan")), "importance",
                 id="update-importance-nan"),
    pytest.param(lambda m: m.update(target(m), importance=float("inf")), "importance",
                 id="update-importance-inf"),
    pytest.param(lambda m: m.update(target(m), importance="0.5"), "importance",
                 id="update-importance-str"),
    pytest.param(lambda m: m.update(target(m), expires_at="0001-01-01T00:00:00+05:00"),
                 "expires_at", id="update-expires-overflow"),
    pytest.param(lambda m: m.update(target(m), expires_at=float("inf")), "expires_at",
                 id="update-expires-inf"),
    pytest.param(lambda m: m.update(target(m), metadata=nested(100)), "20 levels",
                 id="update-metadata-deep"),
    pytest.param(lambda m: m.update(target(m), metadata={"k": "v" * 70_000}), "64 KiB",
                 id="update-metadata-huge"),
    pytest.param(lambda m: m.update(target(m), text="a\x00b"), "NUL", id="update-text-nul"),
    pytest.param(lambda m: m.update(target(m), text=b"bytes"), "text", id="update-text-bytes"),
    pytest.param(lambda m: m.update("id\x00", importance=0.5), "memory_id",
                 id="update-id-nul"),
    pytest.param(lambda m: m.update(target(m), pinned="yes"), "pinned", id="update-pinned-str"),
    pytest.param(lambda m: m.update(target(m), pinned=2), "pinned", id="update-pinned-two"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "hint"), BAD_CALLS + BAD_UPDATES)
def test_bad_argument_is_refused_and_changes_nothing(
    mem: Memory, fingerprint: Fingerprint, call: Call, hint: str
) -> None:
    assert_refused(mem, fingerprint, call, InvalidInputError, hint)


def test_metadata_at_the_limits_is_stored_and_reads_back(mem: Memory) -> None:
    """The limits are exact: 20 levels and 64 KiB of JSON are fine, one more is refused
    (the cases above), and what is stored reads back unchanged."""
    deepest = nested(MAX_METADATA_DEPTH)
    biggest = {"a": "x" * (MAX_METADATA_BYTES - len('{"a":""}'))}
    for metadata in (deepest, biggest):
        result = mem.add("metadata at the limit", user_id="limits", metadata=metadata)
        assert mem.get(result.memories[0].id).metadata == metadata
    with pytest.raises(InvalidInputError, match="20 levels"):
        mem.add("one level more", user_id="limits", metadata={"b": deepest})
    with pytest.raises(InvalidInputError, match="65,537 bytes"):
        mem.add("one byte more", user_id="limits", metadata={"a": biggest["a"] + "x"})


# ------------------------------------------------------------------- library: import

RAW_NAN = "@@raw:NaN@@"  # replaced by a bare NaN token in the written line


@pytest.fixture(scope="module")
def export_lines(folder: Path, embedder: Any) -> list[str]:
    """A valid export of another store: header, messages, memories (turns and a summary),
    ADD/UPDATE/SUPERSEDE events."""
    with Memory(folder / "source.db", embedder=embedder) as source:
        source.add(SEED, user_id="bob", session_id="b1", timestamp="2023-06-01T09:00:00")
        first = source.list(user_id="bob", kinds="turn")[-1]
        source.update(first.id, text="I moved to Porto in June", metadata={"edited": True})
        source.export(folder / "source.jsonl")
    return (folder / "source.jsonl").read_text(encoding="utf-8").split("\n")[:-1]


def index_of(lines: list[str], kind: str, last: bool = False) -> int:
    found = [i for i, line in enumerate(lines) if json.loads(line).get("type") == kind]
    return found[-1] if last else found[0]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mutated(lines: list[str], kind: str, change: Callable[[dict[str, Any]], Any],
            last: bool = False) -> tuple[list[str], int]:  # fmt: skip
    """The lines with the first (or last) row of ``kind`` changed; and its line number."""
    out = list(lines)
    index = index_of(lines, kind, last)
    row = json.loads(out[index])
    changed = change(row)
    row = row if changed is None else changed
    text = row if isinstance(row, str) else json.dumps(row)  # escapes lone surrogates
    out[index] = text.replace(f'"{RAW_NAN}"', "NaN")
    return out, index + 1


def setter(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda row: row.update(fields)


def nan_embedding(row: dict[str, Any]) -> None:
    row["embedding"] = base64.b64encode(np.full(384, np.nan, dtype=np.float32).tobytes()).decode()


def with_attributes(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda row: row["attributes"].update(fields)


BAD_ROWS = [
    # the defects of issue 11: after any of these, list/search/delete used to fail
    pytest.param("memory", setter(created_at="yesterday"), "created_at", id="created-at-word"),
    pytest.param("memory", setter(kind="opinion"), "kind", id="kind-unknown"),
    pytest.param("message", setter(role="root"), "role", id="role-root"),
    pytest.param("memory", setter(source_ids="h1"), "source_ids", id="source-ids-string"),
    pytest.param("memory", setter(source_ids=[1, 2]), "source_ids", id="source-ids-ints"),
    pytest.param("message", setter(metadata=[1, 2]), "metadata", id="message-metadata-list"),
    pytest.param("memory", setter(metadata="note"), "metadata", id="memory-metadata-string"),
    pytest.param("memory", setter(attributes=["entities"]), "attributes",
                 id="attributes-list"),
    pytest.param("memory", with_attributes(entities="Ana"), "attributes.entities",
                 id="attributes-entities-string"),
    pytest.param("memory", with_attributes(turns="many"), "attributes.turns",
                 id="attributes-turns-string"),
    pytest.param("memory", setter(pinned="yes"), "pinned", id="pinned-string"),
    pytest.param("memory", setter(pinned=2), "pinned", id="pinned-two"),
    pytest.param("memory", setter(occurred_at="2023-13-45T00:00:00"), "occurred_at",
                 id="occurred-at-impossible"),
    pytest.param("message", setter(recorded_at=1683554160), "recorded_at",
                 id="recorded-at-number"),
    pytest.param("message", setter(recorded_at=None), "recorded_at", id="recorded-at-null"),
    pytest.param("event", setter(at="0001-01-01T00:00:00+05:00"), "0001 to 9999",
                 id="event-at-overflow"),
    pytest.param("memory", setter(expires_at="9999-12-31T23:59:59-01:00"), "expires_at",
                 id="expires-at-overflow"),
    pytest.param("memory", setter(id=""), "id", id="memory-id-empty"),
    pytest.param("memory", setter(id="m" * 300), "256", id="memory-id-too-long"),
    pytest.param("message", setter(id="a\x00b"), "NUL", id="message-id-nul"),
    pytest.param("message", setter(user_id=5), "user_id", id="message-user-id-int"),
    pytest.param("memory", setter(session_id="s\n1"), "control character",
                 id="memory-session-newline"),
    pytest.param("memory", setter(superseded_by=7), "superseded_by", id="superseded-by-int"),
    pytest.param("memory", setter(importance=1.5), "importance", id="importance-over-1"),
    pytest.param("memory", setter(importance=RAW_NAN), "NaN", id="importance-nan-token"),
    pytest.param("memory", setter(strength=-1), "strength", id="strength-negative"),
    pytest.param("memory", setter(access_count=-1), "access_count", id="access-count-negative"),
    pytest.param("memory", setter(access_count=2**70), "access_count",
                 id="access-count-over-int64"),
    pytest.param("memory", setter(position=1.5), "position", id="position-float"),
    pytest.param("message", setter(seq="1"), "seq", id="seq-string"),
    pytest.param("message", setter(seq=True), "seq", id="seq-bool"),
    pytest.param("event", setter(action="HACK"), "action", id="event-action-unknown"),
    pytest.param("event", setter(before="was"), "before", id="event-before-string"),
    pytest.param("event", setter(reason=None), "reason", id="event-reason-null"),
    pytest.param("memory", setter(text=""), "text", id="memory-text-empty"),
    pytest.param("memory", setter(index_text=None), "index_text", id="index-text-null"),
    pytest.param("message", setter(content="\ud800"), "UTF-8", id="content-lone-surrogate"),
    pytest.param("message", setter(content="a\x00b"), "NUL", id="content-nul"),
    pytest.param("memory", setter(metadata=nested(MAX_METADATA_DEPTH + 1)), "20 levels",
                 id="metadata-too-deep"),
    pytest.param("memory", setter(metadata={"a": "x" * MAX_METADATA_BYTES}), "64 KiB",
                 id="metadata-too-big"),
    pytest.param("memory", setter(attributes={"a": "x" * MAX_ATTRIBUTES_BYTES}), "1024 KiB",
                 id="attributes-too-big"),
    pytest.param("message", setter(colour="red"), "colour", id="unknown-field"),
    pytest.param("memory", nan_embedding, "NaN", id="embedding-nan"),
    pytest.param("memory", setter(embedding=5), "embedding", id="embedding-number"),
    pytest.param("message", setter(type=["message"]), "row type", id="type-unhashable"),
    pytest.param("event", lambda row: "[" * 100_000 + "]" * 100_000, "nested too deeply",
                 id="line-nested-100k"),
    pytest.param("event", lambda row: '{"type": "event", "n": ' + "9" * 5000 + "}",
                 "cannot be read", id="line-5000-digit-int"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "change", "hint"), BAD_ROWS)
def test_import_refuses_a_bad_row_and_names_its_line(
    mem: Memory, fingerprint: Fingerprint, folder: Path, export_lines: list[str],
    kind: str, change: Callable[[dict[str, Any]], Any], hint: str,
) -> None:  # fmt: skip
    lines, number = mutated(export_lines, kind, change)
    path = write_lines(folder / "bad-row.jsonl", lines)
    error = assert_refused(mem, fingerprint, lambda m: m.import_(path), DataFormatError, hint)
    assert f"line {number}" in str(error)


def test_every_export_field_is_checked() -> None:
    """A field added to the export format without a check would be dropped on import."""
    assert {kind: set(checks) for kind, checks in CHECKS.items()} == {
        kind: set(fields) for kind, fields in FIELDS.items()
    }


def test_import_refuses_a_bad_last_row_after_good_ones(
    mem: Memory, fingerprint: Fingerprint, folder: Path, export_lines: list[str]
) -> None:
    lines, number = mutated(export_lines, "event", setter(at="not a time"), last=True)
    assert number == len(export_lines) > 10
    path = write_lines(folder / "bad-last.jsonl", lines)
    error = assert_refused(mem, fingerprint, lambda m: m.import_(path), DataFormatError, "at")
    assert f"line {number}" in str(error)


def test_import_refuses_a_row_given_twice(
    mem: Memory, fingerprint: Fingerprint, folder: Path, export_lines: list[str]
) -> None:
    index = index_of(export_lines, "memory")
    path = write_lines(folder / "twice.jsonl", [*export_lines, export_lines[index]])
    error = assert_refused(mem, fingerprint, lambda m: m.import_(path), DataFormatError)
    assert f"line {len(export_lines) + 1}" in str(error)
    assert f"already appears on line {index + 1}" in str(error)


@pytest.mark.parametrize(
    ("header", "hint"),
    [({"version": True}, "version"), ({"version": "1"}, "version"), ({"version": 1.5}, "1.5")],
    ids=["version-true", "version-string", "version-float"],
)
def test_import_refuses_a_bad_header(
    mem: Memory, fingerprint: Fingerprint, folder: Path, export_lines: list[str],
    header: dict[str, Any], hint: str,
) -> None:  # fmt: skip
    first = {**json.loads(export_lines[0]), **header}
    path = write_lines(folder / "bad-header.jsonl", [json.dumps(first), *export_lines[1:]])
    assert_refused(mem, fingerprint, lambda m: m.import_(path), DataFormatError, hint)


def test_import_of_a_folder_is_refused(mem: Memory, fingerprint: Fingerprint, folder: Path) -> None:
    assert_refused(mem, fingerprint, lambda m: m.import_(folder), DataFormatError, "not a file")


def test_import_normalises_times_and_the_store_stays_usable(
    folder: Path, embedder: Any, export_lines: list[str]
) -> None:
    """Aware times and a trailing Z are accepted and stored as naive UTC, like remem's own;
    the imported namespace then lists, searches, updates and deletes."""
    lines, _ = mutated(export_lines, "memory", setter(created_at="2023-05-08T13:56:00+02:00"))
    lines, _ = mutated(lines, "message", setter(occurred_at="2023-05-08T13:56:00Z"))
    path = write_lines(folder / "aware.jsonl", lines)
    with Memory(folder / "aware.db", embedder=embedder) as target:
        assert target.import_(path) == len(lines) - 1
        first = json.loads(lines[index_of(lines, "memory")])
        assert target.get(first["id"]).created_at == datetime(2023, 5, 8, 11, 56)
        assert target.list(user_id="bob")
        assert target.search("where did Ana move?", user_id="bob").hits
        target.update(first["id"], importance=0.2)
        target.export(folder / "aware-again.jsonl")  # before the delete erases its content
        target.delete(first["id"])
    again = (folder / "aware-again.jsonl").read_text(encoding="utf-8")
    assert "2023-05-08T11:56:00.000000" in again and "+02:00" not in again


def test_line_separators_inside_text_survive_export_and_import(folder: Path, embedder: Any) -> None:
    """U+2028, U+2029 and U+0085 are not newlines in JSONL; reading must not split there."""
    text = "first\u2028second\u2029third\x85fourth"
    with Memory(folder / "separators.db", embedder=embedder) as source:
        source.add(text, user_id="sep", metadata={"note": "a\u2028b"})
        source.export(folder / "separators.jsonl")
    with Memory(folder / "separators-copy.db", embedder=embedder) as copy:
        copy.import_(folder / "separators.jsonl")
        [record] = copy.list(user_id="sep")
        assert text in record.text and record.metadata == {"note": "a\u2028b"}


# ---------------------------------------------------------------------- command line


def _invoke(*args: str, input: bytes | None = None) -> Result:
    runner = CliRunner(env={name: None for name in ENV_VARS})
    return runner.invoke(main, list(args), input=input)


def assert_cli_error(result: Result, code: int, hint: str) -> None:
    """Exit ``code``, ``error: ...`` on stderr naming ``hint``, no traceback anywhere."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert "error:" in result.stderr or "Error:" in result.stderr  # remem's or click's usage
    assert hint in result.stderr, result.stderr


@pytest.fixture(scope="module")
def cli_files(folder: Path, export_lines: list[str]) -> dict[str, str]:
    """Files for the command-line cases, by name."""
    files = folder / "cli"
    files.mkdir()
    bad_row, _ = mutated(export_lines, "memory", setter(kind="opinion"))
    raw = {
        "bad_json": b'{"role": "user", "content": "fine"}\n{"role": "user", "content": \n',
        "deep": b'{"content": "hi"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "nan": b'{"content": "hi", "metadata": {"score": NaN}}\n',
        "latin1": '{"content": "caf\u00e9"}\n'.encode("latin-1"),
        "empty": b"",
        "blank": b"\n\n   \n",
        "array": b'["user", "hi"]\n',
        "nul_content": b'{"content": "a\\u0000b"}\n',
        "bad_time": b'{"content": "hi", "timestamp": "0001-01-01T00:00:00+05:00"}\n',
        "bad_row": "\n".join(bad_row).encode("utf-8"),
    }
    out = {"dir": str(files)}
    for name, data in raw.items():
        (files / f"{name}.jsonl").write_bytes(data)
        out[name] = str(files / f"{name}.jsonl")
    return out


CLI_CASES = [
    # add --file: every broken file is an input error naming the file (and line)
    pytest.param(["add", "-u", "c", "--file", "@bad_json"], None, 2, "line 2",
                 id="file-bad-json"),
    pytest.param(["add", "-u", "c", "--file", "@deep"], None, 2, "nested too deeply",
                 id="file-nested-100k"),
    pytest.param(["add", "-u", "c", "--file", "@nan"], None, 2, "NaN", id="file-nan"),
    pytest.param(["add", "-u", "c", "--file", "@latin1"], None, 2, "UTF-8",
                 id="file-latin1"),
    pytest.param(["add", "-u", "c", "--file", "@empty"], None, 2, "no messages",
                 id="file-empty"),
    pytest.param(["add", "-u", "c", "--file", "@blank"], None, 2, "no messages",
                 id="file-blank-lines"),
    pytest.param(["add", "-u", "c", "--file", "@array"], None, 2, "JSON object",
                 id="file-array-line"),
    pytest.param(["add", "-u", "c", "--file", "@nul_content"], None, 2, "NUL",
                 id="file-nul-content"),
    pytest.param(["add", "-u", "c", "--file", "@bad_time"], None, 2, "line 1",
                 id="file-time-overflow"),
    pytest.param(["add", "-u", "c", "--file", "@dir/missing.jsonl"], None, 2, "does not exist",
                 id="file-missing"),
    pytest.param(["add", "-u", "c", "--file", "@dir"], None, 2, "directory",
                 id="file-is-a-directory"),
    # add TEXT / stdin / options
    pytest.param(["add", "-u", "c", "-"], b"a\x00b", 2, "NUL", id="stdin-nul"),
    pytest.param(["add", "-u", "c", "-"], b"\xed\xa0\x80 surrogate", 2, "UTF-8",
                 id="stdin-encoded-surrogate"),
    pytest.param(["add", "-u", "c", "-"], b"", 2, "empty", id="stdin-empty"),
    pytest.param(["add", "-u", "c", "--metadata", '{"a":' * 5000 + "1" + "}" * 5000, "hi"],
                 None, 2, "--metadata", id="metadata-option-nested-5000"),
    pytest.param(["add", "-u", "c", "--metadata", '{"score": NaN}', "hi"], None, 2, "NaN",
                 id="metadata-option-nan"),
    pytest.param(["add", "-u", "c", "--metadata", '{"n": ' + "9" * 5000 + "}", "hi"], None, 2,
                 "--metadata", id="metadata-option-5000-digits"),
    pytest.param(["add", "-u", "c", "--timestamp", "0001-01-01T00:00:00+05:00", "hi"], None, 2,
                 "--timestamp", id="timestamp-year-1-east"),
    pytest.param(["add", "-u", "c", "--timestamp", "9999-12-31T23:59:59-05:00", "hi"], None, 2,
                 "0001 to 9999", id="timestamp-year-9999-west"),
    pytest.param(["add", "-u", "c\nd", "hi"], None, 2, "control character",
                 id="user-newline"),
    pytest.param(["add", "-u", "c", "--id", "x" * 300, "hi"], None, 2, "256",
                 id="id-too-long"),
    # reading commands
    pytest.param(["search", "--since", "0001-01-01T00:00:00+05:00", "q"], None, 2, "since",
                 id="search-since-overflow"),
    pytest.param(["search", "--reference-time", "soon", "q"], None, 2, "reference_time",
                 id="search-reference-time-garbage"),
    pytest.param(["search", "--limit", "many", "q"], None, 2, "--limit", id="search-limit-word"),
    pytest.param(["search", "--limit", "100000", "q"], None, 2, "limit",
                 id="search-limit-huge"),
    pytest.param(["list", "--offset", "-1"], None, 2, "offset", id="list-offset-negative"),
    pytest.param(["get", "x" * 1000], None, 2, "256", id="get-id-too-long"),
    pytest.param(["--namespace", "", "stats"], None, 2, "namespace", id="namespace-empty"),
    pytest.param(["--namespace", "a\tb", "stats"], None, 2, "control character",
                 id="namespace-tab"),
    # files and databases
    pytest.param(["import", "@bad_row"], None, 2, "line", id="import-bad-row"),
    pytest.param(["import", "@empty"], None, 2, "header", id="import-empty"),
    pytest.param(["import", "@dir"], None, 2, "directory", id="import-directory"),
    pytest.param(["export", "@dir"], None, 2, "directory", id="export-to-directory"),
    pytest.param(["--db", "@dir", "stats"], None, 4, "error:", id="db-is-a-directory"),
    pytest.param(["--db", "@dir/no/such/folder/m.db", "stats"], None, 4, "does not exist",
                 id="db-in-missing-folder"),
]  # fmt: skip


def _fill(arg: str, files: dict[str, str]) -> str:
    """``@name`` or ``@name/rest`` -> the path of that prepared file (plus ``/rest``)."""
    if not arg.startswith("@"):
        return arg
    name, _, rest = arg[1:].partition("/")
    return files[name] + (f"/{rest}" if rest else "")


@pytest.mark.parametrize(("args", "stdin", "code", "hint"), CLI_CASES)
def test_command_line_reports_bad_input_without_a_traceback(
    folder: Path, embedder: Any, fingerprint: Fingerprint, cli_files: dict[str, str],
    args: list[str], stdin: bytes | None, code: int, hint: str,
) -> None:  # fmt: skip
    db = folder / "cli.db"
    with Memory(db, embedder=embedder) as memory:
        if not memory.list(user_id="c"):
            memory.add("an earlier message", user_id="c")
        before = fingerprint(memory)
    filled = [_fill(a, cli_files) for a in args]
    result = _invoke("--db", str(db), *filled, input=stdin)
    assert_cli_error(result, code, hint)
    with Memory(db, embedder=embedder) as memory:
        assert fingerprint(memory) == before


def test_a_byte_order_mark_is_not_data(
    folder: Path, embedder: Any, export_lines: list[str]
) -> None:
    """Files saved by Windows tools start with U+FEFF; add --file and import skip it."""
    messages = folder / "bom-messages.jsonl"
    messages.write_bytes(b"\xef\xbb\xbf" + b'{"content": "written on Windows"}\n')
    db = folder / "bom.db"
    added = _invoke("--db", str(db), "--json", "add", "-u", "bom", "--file", str(messages))
    assert added.exit_code == 0, added.stderr
    export = folder / "bom-export.jsonl"
    export.write_bytes(b"\xef\xbb\xbf" + "\n".join(export_lines).encode("utf-8") + b"\n")
    imported = _invoke("--db", str(folder / "bom-import.db"), "import", str(export))
    assert imported.exit_code == 0, imported.stderr
    with Memory(db, embedder=embedder) as memory:
        assert [r.text for r in memory.list(user_id="bom")] == ["user: written on Windows"]


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make a ``Memory`` method fail with an unexpected (non-remem) exception."""

    def patch(method: str) -> None:
        original = getattr(Memory, method)

        def failing(self: Memory, *args: Any, **kwargs: Any) -> Any:
            if method == "close":
                original(self)
            raise RuntimeError(f"{method} went wrong")

        monkeypatch.setattr(Memory, method, failing)

    return patch


@pytest.mark.parametrize(
    ("method", "args"),
    [("stats", ["stats"]), ("search", ["search", "q"]), ("close", ["stats"])],
    ids=["in-a-command", "in-search", "while-closing"],
)
def test_unexpected_exception_is_an_internal_error_line(
    tmp_path: Path, boom: Callable[[str], None], method: str, args: list[str]
) -> None:
    boom(method)
    result = _invoke("--db", str(tmp_path / "boom.db"), *args)
    assert_cli_error(result, 1, f"error: internal error: RuntimeError: {method} went wrong")
    assert result.stderr.rstrip().endswith("please report it")


def _run(cwd: Path, *args: str | bytes, code: str = "") -> subprocess.CompletedProcess[bytes]:
    """The command line in a real process (``code`` runs first, e.g. to break something)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEM_")}
    script = f"{code}\nfrom remem.cli.main import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env=env, capture_output=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "exit_code", "hint"),
    [
        ([b"--db", b"p.db", b"add", b"-u", b"\xff\xfe", b"hi"], "", 2, "UTF-8"),
        ([b"--db", b"p.db", b"search", b"caf\xe9"], "", 2, "UTF-8"),
        (["--db", ".", "stats"], "", 4, "error: "),
        (["--db", "p.db", "stats"],
         "import remem.engine\nremem.engine.Memory.stats = lambda self: 1 / 0", 1,
         "error: internal error: ZeroDivisionError: division by zero; please report it"),
    ],
    ids=["argv-not-utf8-user", "argv-not-utf8-query", "db-is-cwd", "internal-error"],
)  # fmt: skip
def test_real_process_never_prints_a_traceback(
    tmp_path: Path, args: list[str | bytes], code: str, exit_code: int, hint: str
) -> None:
    done = _run(tmp_path, *args, code=code)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == exit_code, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert hint in err


# ------------------------------------------------------------------------ properties

JSON_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.binary(max_size=3) | st.decimals(allow_nan=False, places=2)
)  # fmt: skip
ANY_JSONISH = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata=ANY_JSONISH)
def test_any_metadata_is_stored_or_refused_cleanly(mem: Memory, metadata: Any) -> None:
    before = mem.stats()
    try:
        result = mem.add("a message with metadata", user_id="prop", metadata=metadata)
    except RememError:
        assert mem.stats() == before
        return
    stored = mem.get(result.memories[0].id).metadata
    assert json.dumps(stored, sort_keys=True) == json.dumps(metadata or {}, sort_keys=True)


OFFSETS = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                        max_value=timedelta(hours=23, minutes=59))  # fmt: skip
TIMES = (
    st.datetimes(timezones=st.none() | OFFSETS.map(timezone))
    | st.dates()
    | st.floats()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.text(max_size=40)
    | st.tuples(st.datetimes(), st.sampled_from(["", "Z", "+05:00", "-14:00", "+99:00"])).map(
        lambda pair: pair[0].isoformat() + pair[1]
    )
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(value=TIMES)
def test_parse_timestamp_returns_naive_utc_or_refuses(value: Any) -> None:
    try:
        parsed = parse_timestamp(value)
    except InvalidInputError as exc:
        assert "use an ISO 8601 time" in str(exc)
        return
    assert isinstance(parsed, datetime) and parsed.tzinfo is None
    if isinstance(value, datetime) and value.tzinfo is not None:
        assert parsed == value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, date) and not isinstance(value, datetime):
        assert parsed == datetime(value.year, value.month, value.day)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_check_row_cleans_or_refuses_any_field_value(
    data: st.DataObject, export_lines: list[str]
) -> None:
    line = data.draw(st.sampled_from(export_lines[1:]))
    row = json.loads(line)
    field = data.draw(st.sampled_from(sorted(k for k in row if k != "type")))
    row[field] = data.draw(ANY_JSONISH)
    try:
        clean = check_row(row, "test line 2", 384)
    except DataFormatError as exc:
        assert str(exc).startswith("test line 2")
        return
    assert set(clean) <= set(row)


# ----------------------------------------------------- the engine's and store's part
# Arguments the engine and the recipes check (they were open defects once).

NEEDS_ENGINE = [
    pytest.param(lambda m: m.search("hi", recipe=5), "recipe", id="search-recipe-int"),
    pytest.param(lambda m: m.search("hi", recipe=["bm25"]), "recipe", id="search-recipe-list"),
    pytest.param(lambda m: m.update(target(m), importance=0.5, reason=5), "reason",
                 id="update-reason-int"),
    pytest.param(lambda m: m.update(target(m), importance=0.5, reason="\ud800"), "UTF-8",
                 id="update-reason-surrogate"),
    pytest.param(lambda m: m.export(None), "path", id="export-path-none"),
    pytest.param(lambda m: m.import_(5), "path", id="import-path-int"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "hint"), NEEDS_ENGINE)
def test_bad_argument_needing_an_engine_fix(
    mem: Memory, fingerprint: Fingerprint, call: Call, hint: str
) -> None:
    assert_refused(mem, fingerprint, call, InvalidInputError, hint)


@pytest.mark.parametrize("namespace", ["", " ", "a\x00b", 5])
def test_bad_namespace_is_refused(folder: Path, embedder: Any, namespace: Any) -> None:
    with pytest.raises(InvalidInputError, match="namespace"):
        Memory(folder / "hostile.db", embedder=embedder, namespace=namespace)


def test_none_path_is_refused(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="path"):
        Memory(None, embedder=embedder)  # type: ignore[arg-type]
    assert not (tmp_path / "None").exists()


def test_metadata_filter_none_matches_a_stored_null(mem: Memory) -> None:
    """A filter on None finds the memories that stored null there (SQL's NULL = NULL
    would find none)."""
    found = mem.list(user_id="seed", metadata={"note": None})
    assert [r.metadata for r in found] == [{"topic": "home", "note": None}]


@pytest.mark.parametrize("action", ["delete", "update", "delete_all"])
def test_a_failing_write_is_a_store_error(tmp_path: Path, embedder: Any, action: str) -> None:
    """A write the database refuses is a ``StoreError``, not a raw ``sqlite3`` error, and
    leaves the memory in place."""
    db = tmp_path / "trigger.db"
    with Memory(db, embedder=embedder) as memory:
        memory.add("I like tea", user_id="u")
        memory_id = memory.list(user_id="u")[0].id
        conn = sqlite3.connect(db)
        for event in ("INSERT", "UPDATE", "DELETE"):  # any write to memories fails
            conn.execute(f"CREATE TRIGGER no_{event.lower()} BEFORE {event} ON memories "
                         "BEGIN SELECT RAISE(ABORT, 'writes are off'); END")  # fmt: skip
        conn.commit()
        conn.close()
        with pytest.raises(StoreError):
            if action == "delete":
                memory.delete(memory_id)
            elif action == "update":
                memory.update(memory_id, text="I like coffee")
            else:
                memory.delete_all(user_id="u")
        assert [r.id for r in memory.list(user_id="u")] == [memory_id]
