"""Tests for the ``remem`` command line: in-process with CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from remem.cli.bench import bench
from remem.cli.main import exit_code, main
from remem.errors import (
    ConfigError,
    ConflictError,
    CorruptStoreError,
    DataFormatError,
    EmbedderError,
    InvalidInputError,
    MessageTooLargeError,
    NotFoundError,
    RememError,
    StoreError,
)
from remem.settings import ENV_VARS

FIXTURES = Path(__file__).parent / "fixtures"
LOCOMO = FIXTURES / "locomo_tiny.json"
LONGMEMEVAL = FIXTURES / "longmemeval_tiny.json"
REPORT_KEYS = {
    "benchmark", "data", "recipe", "embedder", "version", "n_conversations", "n_questions",
    "skipped_questions", "retrieval", "ingest", "search",
}  # fmt: skip
MESSAGES = [
    {"id": "p1", "role": "user", "timestamp": "2023-05-08T13:56:00",
     "content": "I went to a pottery class yesterday and made a small blue bowl."},
    {"id": "p2", "role": "assistant", "timestamp": "2023-05-08T13:57:00",
     "content": "That sounds lovely. Will you keep going to the studio?"},
    {"id": "d1", "role": "user", "name": "Ana", "timestamp": "2023-06-27T10:37:00",
     "content": "We adopted a beagle called Oscar last week.", "metadata": {"topic": "pets"}},
]  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _runner() -> CliRunner:
    return CliRunner(env={name: None for name in ENV_VARS})


def _invoke(db: Path | None, *args: str, input: str | bytes | None = None) -> Result:
    prefix = ["--db", str(db)] if db is not None else []
    return _runner().invoke(main, [*prefix, *args], input=input)


def _json(db: Path, *args: str, input: str | bytes | None = None) -> Any:
    result = _invoke(db, "--json", *args, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _script() -> Path:
    beside = Path(sys.executable).parent / "remem"
    found = beside if beside.exists() else shutil.which("remem")
    if found is None:
        pytest.skip("the remem console script is not installed")
    return Path(found)


def _remem(cwd: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``remem`` script for real, with no REMEM_* variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEM_")}
    return subprocess.run(
        [str(_script()), *args], cwd=cwd, env=env, input=input, capture_output=True,
        timeout=300, check=False,
    )  # fmt: skip


def _text(done: subprocess.CompletedProcess[Any]) -> tuple[str, str]:
    return done.stdout.decode(), done.stderr.decode()


@dataclass(frozen=True)
class Populated:
    """A database shared by the read-only tests: three messages of ana, one of bob."""

    db: Path
    memory_of: dict[str, str]  # message id -> memory id


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "shared.db"
    messages = _write_jsonl(folder / "messages.jsonl", MESSAGES)
    added = _json(db, "add", "-u", "ana", "--session", "s1", "--file", str(messages))
    assert len(added["memory_ids"]) == 3
    assert added["message_ids"] == ["p1", "p2", "d1"]
    bob = _invoke(db, "add", "-u", "bob", "--id", "b1", "Bob goes hiking in the Alps.")
    assert bob.exit_code == 0, bob.output
    records = _json(db, "list", "--limit", "100")
    return Populated(db, {r["source_ids"][0]: r["id"] for r in records})


# ---------------------------------------------------------------------- real process


def test_real_process_full_round_trip(tmp_path: Path) -> None:
    added = _remem(tmp_path, "--db", "a.db", "--json", "add", "-u", "ana", "--id", "m1",
                   "--timestamp", "2024-05-02T10:00:00", "I moved to Lisbon in May")  # fmt: skip
    assert added.returncode == 0, _text(added)
    memory_id = json.loads(added.stdout)["memory_ids"][0]
    other = _remem(tmp_path, "--db", "a.db", "add", "-u", "ana", "-", input=b"I adopted a cat\n")
    assert other.returncode == 0 and _text(other)[0].startswith("added ")

    found = json.loads(_remem(tmp_path, "--db", "a.db", "--json", "search", "-u", "ana",
                              "Where did I move to?").stdout)  # fmt: skip
    assert found["hits"][0]["memory"]["text"] == "user: I moved to Lisbon in May"
    assert found["hits"][0]["memory"]["source_ids"] == ["m1"]
    assert found["hits"][0]["memory"]["occurred_at"] == "2024-05-02T10:00:00"

    listed = json.loads(_remem(tmp_path, "--db", "a.db", "--json", "list").stdout)
    assert {r["id"] for r in listed} >= {memory_id}
    got = json.loads(_remem(tmp_path, "--db", "a.db", "--json", "get", memory_id).stdout)
    assert got["scope"]["user_id"] == "ana"
    events = json.loads(_remem(tmp_path, "--db", "a.db", "--json", "history", memory_id).stdout)
    assert [e["action"] for e in events] == ["ADD"]

    assert _remem(tmp_path, "--db", "a.db", "export", "dump.jsonl").returncode == 0
    imported = _remem(tmp_path, "--db", "b.db", "--json", "import", "dump.jsonl")
    assert imported.returncode == 0, _text(imported)
    stats = json.loads(_remem(tmp_path, "--db", "b.db", "--json", "stats").stdout)
    assert (stats["messages"], stats["memories"], stats["users"]) == (2, 2, 1)


def test_real_process_errors_have_codes_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(os.urandom(4096))
    corrupt = _remem(tmp_path, "--db", "junk.db", "stats")
    bad_utf8 = _remem(tmp_path, "--db", "c.db", "add", "-u", "x", "-", input=b"caf\xe9 \xff")
    unknown = _remem(tmp_path, "--db", "c.db", "get", "nope")
    for done, code in ((corrupt, 4), (bad_utf8, 2), (unknown, 3)):
        out, err = _text(done)
        assert done.returncode == code, (out, err)
        assert err.startswith("error: ") and "Traceback" not in err
    assert "junk.db" in _text(corrupt)[1]
    assert "UTF-8" in _text(bad_utf8)[1]


def test_real_process_bench_locomo_writes_report(tmp_path: Path) -> None:
    done = _remem(tmp_path, "bench", "locomo", str(LOCOMO), "--out", "r.json", "--no-progress")
    out, err = _text(done)
    assert done.returncode == 0, err
    assert "turn_recall_all@5" in out and "overall" in out and "turns/s" in out
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert set(report) >= REPORT_KEYS
    assert (report["benchmark"], report["recipe"]) == ("locomo", "default")
    assert report["n_conversations"] == 2 and report["n_questions"] > 0
    assert set(report["retrieval"]) == {"overall", "by_category"}
    assert {"turn_recall_all@5", "ndcg@10", "n"} <= set(report["retrieval"]["overall"])
    assert set(report["ingest"]) >= {"turns", "seconds", "turns_per_second",
                                     "embedder_turns_per_second", "overhead"}  # fmt: skip
    assert set(report["search"]) == {"queries", "p50_ms", "p95_ms", "steps_ms"}
    assert not (tmp_path / "remem.db").exists()  # bench never touches the default db


# ----------------------------------------------------------------------- read paths


def test_search_json_ranks_the_pottery_turn_first(populated: Populated) -> None:
    found = _json(populated.db, "search", "-u", "ana", "pottery class")
    top = found["hits"][0]
    assert top["rank"] == 1
    assert top["memory"]["source_ids"] == ["p1"]
    assert top["memory"]["id"] == populated.memory_of["p1"]
    assert found["recipe"] == "default"
    assert all(h["memory"]["scope"]["user_id"] == "ana" for h in found["hits"])


def test_search_human_output_and_explain(populated: Populated) -> None:
    result = _invoke(populated.db, "search", "-u", "ana", "--explain", "beagle Oscar")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 hits for 'beagle Oscar'")
    first = next(line for line in lines if line.lstrip().startswith("1 "))
    assert "2023-06-27" in first and "Oscar" in first
    assert "sources: d1" in result.stdout
    assert "scores: " in result.stdout


def test_search_filters(populated: Populated) -> None:
    assert _json(populated.db, "search", "-u", "bob", "pottery")["hits"][0]["memory"][
        "source_ids"
    ] == ["b1"]
    later = _json(populated.db, "search", "-u", "ana", "--since", "2023-06-01", "pottery")
    assert [h["memory"]["source_ids"] for h in later["hits"]] == [["d1"]]
    one = _json(populated.db, "search", "-u", "ana", "--limit", "1", "--recipe", "bm25", "bowl")
    assert len(one["hits"]) == 1 and one["recipe"] == "bm25"


def test_list_json_and_human(populated: Populated) -> None:
    records = _json(populated.db, "list", "-u", "ana", "--kind", "turn")
    assert {r["source_ids"][0] for r in records} == {"p1", "p2", "d1"}
    assert (
        _json(populated.db, "list", "-u", "ana", "--limit", "1", "--offset", "1")[0]["id"]
        == records[1]["id"]
    )
    human = _invoke(populated.db, "list", "-u", "bob")
    assert human.exit_code == 0 and populated.memory_of["b1"] in human.stdout


def test_get_json_and_human(populated: Populated) -> None:
    memory_id = populated.memory_of["d1"]
    record = _json(populated.db, "get", memory_id)
    assert record["text"] == "Ana: We adopted a beagle called Oscar last week."
    assert record["metadata"] == {"topic": "pets"}
    assert record["scope"] == {"user_id": "ana", "agent_id": None, "session_id": "s1",
                               "namespace": "default"}  # fmt: skip
    assert record["occurred_at"] == "2023-06-27T10:37:00"
    human = _invoke(populated.db, "get", memory_id)
    assert "session:       s1" in human.stdout and '"topic": "pets"' in human.stdout


def test_history_and_stats(populated: Populated) -> None:
    events = _json(populated.db, "history", populated.memory_of["p1"])
    assert events[0]["action"] == "ADD" and events[0]["memory_id"] == populated.memory_of["p1"]
    stats = _json(populated.db, "stats")
    assert (stats["messages"], stats["memories"], stats["users"]) == (4, 4, 2)
    assert stats["memories_by_kind"] == {"turn": 4}
    human = _invoke(populated.db, "stats")
    assert "memories: 4 (turn 4)" in human.stdout


def test_namespaces_are_isolated(populated: Populated) -> None:
    assert _json(populated.db, "--namespace", "other", "stats")["memories"] == 0
    assert _invoke(populated.db, "--namespace", "other", "get", populated.memory_of["p1"]
                   ).exit_code == 3  # fmt: skip


def test_export_then_import_into_a_new_db(populated: Populated, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    exported = _json(populated.db, "export", str(dump))
    assert exported["rows"] > 0 and dump.exists()
    fresh = tmp_path / "fresh.db"
    imported = _invoke(fresh, "import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert f"imported {exported['rows']} rows" in imported.stdout
    assert _json(fresh, "stats")["memories"] == 4
    found = _json(fresh, "search", "-u", "ana", "pottery class")
    assert found["hits"][0]["memory"]["source_ids"] == ["p1"]


# ---------------------------------------------------------------------- write paths


def test_add_duplicates_conflicts_and_stdin(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    first = _json(db, "add", "-u", "u1", "--id", "m1", "--role", "assistant", "hello there")
    assert first["message_ids"] == ["m1"] and len(first["memory_ids"]) == 1
    again = _invoke(db, "add", "-u", "u1", "--id", "m1", "--role", "assistant", "hello there")
    assert again.exit_code == 0 and "duplicate m1" in again.stdout
    conflict = _invoke(db, "add", "-u", "u1", "--id", "m1", "something else")
    assert conflict.exit_code == 2 and "already exists" in conflict.stderr
    piped = _json(db, "add", "-u", "u1", "-", "--metadata", '{"via": "stdin"}',
                  input="piped text\n")  # fmt: skip
    assert set(piped) == {"message_ids", "memory_ids", "duplicate_ids"}
    record = _json(db, "get", piped["memory_ids"][0])
    assert (record["text"], record["metadata"]) == ("user: piped text", {"via": "stdin"})


def test_add_file_reports_the_bad_line(tmp_path: Path) -> None:
    good = {"role": "user", "content": "fine"}
    bad_role = _write_jsonl(tmp_path / "role.jsonl", [good, good, {"role": "x", "content": "y"}])
    result = _invoke(tmp_path / "f.db", "add", "-u", "u", "--file", str(bad_role))
    assert result.exit_code == 2
    assert "line 3: role 'x' is unknown" in result.stderr
    not_json = tmp_path / "broken.jsonl"
    not_json.write_text('{"content": "ok"}\n\n{oops\n', encoding="utf-8")
    result = _invoke(tmp_path / "f.db", "add", "-u", "u", "--file", str(not_json))
    assert result.exit_code == 2 and "line 3 is not valid JSON" in result.stderr
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"content": "café"}\n'.encode("latin-1"))
    result = _invoke(tmp_path / "f.db", "add", "-u", "u", "--file", str(latin1))
    assert result.exit_code == 2 and "not valid UTF-8" in result.stderr


def test_delete_asks_first_and_keeps_history(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    memory_id = _json(db, "add", "-u", "u", "forget me")["memory_ids"][0]
    declined = _invoke(db, "delete", memory_id, input="n\n")
    assert declined.exit_code == 1
    assert _invoke(db, "delete", memory_id, input="y\n").exit_code == 0
    assert _invoke(db, "get", memory_id).exit_code == 3
    assert [e["action"] for e in _json(db, "history", memory_id)] == ["ADD", "DELETE"]


def test_delete_all_needs_a_scope(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    _json(db, "add", "-u", "u", "one")
    _json(db, "add", "-u", "v", "two")
    refused = _invoke(db, "delete", "--all", "--yes")
    assert refused.exit_code == 2 and "needs --user" in refused.output
    assert _json(db, "delete", "--all", "-u", "u", "--yes") == {"memories": 1, "messages": 1}
    assert _json(db, "stats")["users"] == 1
    assert _invoke(db, "delete", "--yes").exit_code == 2  # neither ID nor --all


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["add", "-u", "x", "   "], None, 2, "error: TEXT is empty"),
        (["add", "-u", "x", "--timestamp", "yesterday", "hi"], None, 2, "--timestamp"),
        (["add", "-u", "x", "-"], b"\xff\xfe", 2, "standard input is not valid UTF-8"),
        (["add", "-u", "x", "--metadata", "[1]", "hi"], None, 2, "JSON object"),
        (["add", "-u", "x"], None, 2, "give the message TEXT"),
        (["get", "missing-id"], None, 3, "error: no memory 'missing-id'"),
        (["history", "missing-id"], None, 3, "error: no memory 'missing-id'"),
        (["delete", "--yes", "missing-id"], None, 3, "error: no memory"),
        (["search", "--limit", "0", "q"], None, 2, "limit"),
        (["search", "--recipe", "nope", "q"], None, 2, "Invalid value for '--recipe'"),
        (["import", "missing.jsonl"], None, 2, "does not exist"),
    ],
)
def test_bad_input_exit_codes(
    tmp_path: Path, args: list[str], stdin: bytes | None, code: int, message: str
) -> None:
    result = _invoke(tmp_path / "e.db", *args, input=stdin)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_corrupt_database_exits_4(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    result = _invoke(junk, "list")
    assert result.exit_code == 4
    assert result.stderr.startswith("error: ") and "junk.db" in result.stderr


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    runner = CliRunner(env={**{name: None for name in ENV_VARS}, "REMEM_DB": str(db)})
    assert runner.invoke(main, ["add", "-u", "e", "from env"]).exit_code == 0
    assert db.exists()
    bad = CliRunner(env={"REMEM_DB": str(db), "REMEM_MAX_MESSAGE_CHARS": "lots"})
    result = bad.invoke(main, ["stats"])
    assert result.exit_code == 2 and "REMEM_MAX_MESSAGE_CHARS" in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInputError("x"), 2), (MessageTooLargeError("x"), 2), (DataFormatError("x"), 2),
        (ConfigError("x"), 2), (ConflictError("x"), 2), (NotFoundError("x"), 3),
        (StoreError("x"), 4), (CorruptStoreError("x"), 4), (EmbedderError("x"), 1),
        (RememError("x"), 1),
    ],
)  # fmt: skip
def test_exit_code_mapping(error: RememError, code: int) -> None:
    assert exit_code(error) == code


# ------------------------------------------------------------------------------ help


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    for name, command in main.commands.items():
        paths.append([name])
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.commands]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "remem")
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    result = _runner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.stdout
    assert "Example" in result.stdout


def test_all_commands_are_there() -> None:
    assert set(main.commands) == {
        "add", "search", "context", "list", "get", "delete", "history", "export", "import",
        "stats", "bench", "entities", "serve", "keys", "import-mem0", "mcp", "postgres", "forget",
        "ask", "worker", "jobs", "compact",
    }  # fmt: skip
    assert set(bench.commands) == {
        "locomo", "longmemeval", "vectors", "live", "concurrency", "latency",
        "serve-crash", "serve-writers", "serve-hostile", "serve-load", "scale",
    }  # fmt: skip


# ----------------------------------------------------------------------------- bench


def test_bench_longmemeval_prints_session_metrics() -> None:
    result = _invoke(None, "bench", "longmemeval", str(LONGMEMEVAL), "--no-progress")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("category"))
    assert header.split()[1:] == [
        "session_recall_any@5", "session_recall_all@5", "session_recall_any@10",
        "session_ndcg@10", "turn_recall_any@5", "turn_recall_all@10", "n",
    ]  # fmt: skip
    assert "LongMemEval" in result.stdout and "p95" in result.stdout


def test_bench_several_recipes_json_and_comparison(tmp_path: Path) -> None:
    out = tmp_path / "both.json"
    args = ["bench", "locomo", str(LOCOMO), "-" + "-recipe", "default", "--recipe", "bm25"]
    result = _invoke(None, *args, "--out", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert any(line.startswith("recipe ") for line in result.stdout.splitlines())
    reports = json.loads(out.read_text(encoding="utf-8"))
    assert [r["recipe"] for r in reports] == ["default", "bm25"]
    as_json = _invoke(None, "--json", "bench", "locomo", str(LOCOMO), "--no-progress")
    assert json.loads(as_json.stdout)["benchmark"] == "locomo"


def test_bench_rejects_the_other_layout(tmp_path: Path) -> None:
    result = _invoke(None, "bench", "longmemeval", str(LOCOMO), "--no-progress")
    assert result.exit_code == 2
    assert "is a LoCoMo file, not LongMemEval" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert _invoke(None, "bench", "locomo", str(bad)).exit_code == 2
    missing_dir = tmp_path / "nope" / "r.json"
    result = _invoke(None, "bench", "locomo", str(LOCOMO), "--out", str(missing_dir))
    assert result.exit_code == 2 and "existing folder" in result.stderr


def test_bench_vectors_compares_index_options() -> None:
    from click.testing import CliRunner

    from remem.cli.main import main

    result = CliRunner().invoke(
        main, ["--json", "bench", "vectors", "--rows", "300", "--queries", "5"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    cached = report["options"]["numpy-cached"]
    assert cached["available"] and cached["recall@k"] == 1.0
    assert report["options"]["numpy-reload"]["recall@k"] == 1.0


def test_context_command_prints_a_budgeted_block(tmp_path: Path) -> None:
    from click.testing import CliRunner

    db = str(tmp_path / "ctx.db")
    runner = CliRunner()
    added = runner.invoke(
        main, ["--db", db, "add", "-u", "ana", "--id", "m1", "--name", "Ana", "--session", "s1",
               "--timestamp", "2023-05-08T13:56:00", "I moved to Lisbon in May"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = runner.invoke(main, ["--db", db, "context", "-u", "ana", "--budget", "100", "Lisbon"])
    assert shown.exit_code == 0, shown.output
    assert "- 13:56 Ana: I moved to Lisbon in May [m1]" in shown.output
    data = json.loads(
        runner.invoke(main, ["--db", db, "--json", "context", "-u", "ana", "Lisbon"]).output
    )
    assert data["tokens"] <= data["budget_tokens"] == 1000
    assert data["items"][0]["memory"]["source_ids"] == ["m1"]


# ------------------------------------------------------------- enrichment and retrieval


def test_entities_command_lists_names_and_key_phrases(populated: Populated) -> None:
    table = _json(populated.db, "entities", "-u", "ana")
    keys = {e["key"]: e for e in table}
    assert keys["oscar"]["kind"] == "name" and keys["oscar"]["mentions"] == 1
    human = _invoke(populated.db, "entities", "-u", "ana", "--kind", "name")
    assert human.exit_code == 0 and "Oscar" in human.stdout
    assert "keyphrase" not in human.stdout
    empty = _invoke(populated.db, "entities", "-u", "nobody")
    assert empty.exit_code == 0 and "no entities" in empty.stderr


def test_search_explain_prints_the_analysis_and_what_found_each_hit(populated: Populated) -> None:
    result = _invoke(populated.db, "search", "-u", "ana", "--explain", "--reference-time",
                     "2023-07-01", "When did Ana adopt Oscar last week?")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"intent": "when"' in result.stdout
    assert '"time_windows": [{"text": "last week"' in result.stdout
    assert "found by: bm25, dense, time" in result.stdout


def test_search_takes_ablation_recipes_and_explains_bad_ones(populated: Populated) -> None:
    ok = _invoke(populated.db, "search", "-u", "ana", "--recipe", "default-no-graph", "beagle")
    assert ok.exit_code == 0 and "recipe default-no-graph" in ok.stdout
    bad = _invoke(populated.db, "search", "--recipe", "default-no-wings", "beagle")
    assert bad.exit_code == 2 and "unknown mechanism 'wings'" in bad.output


def test_bench_ablate_prints_what_each_mechanism_adds(tmp_path: Path) -> None:
    out = tmp_path / "ablation.json"
    result = _invoke(None, "bench", "locomo", str(LOCOMO), "--ablate", "--recipe", "bm25",
                     "--out", str(out), "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = [r["recipe"] for r in json.loads(out.read_text(encoding="utf-8"))]
    assert names[:3] == ["bm25", "default", "default-no-bm25"]
    assert "default-no-multihop" in names and "default-no-time" in names
    assert "turn_recall_all@10 per category:" in result.stdout
    reports = {r["recipe"]: r for r in json.loads(out.read_text(encoding="utf-8"))}
    steps = reports["default"]["search"]["steps_ms"]
    assert {"bm25", "dense", "multihop", "neighbours", "sessions", "total"} <= steps.keys()
    table = result.stdout.split("what each step of default costs")[1].splitlines()
    assert table[1].split()[:2] == ["step", "ms"]
    rows = {line.split()[0]: line.split() for line in table[3:] if line.strip()}
    assert {"bm25", "dense", "multihop", "neighbours"} <= rows.keys()
    assert float(rows["neighbours"][1]) == pytest.approx(steps["neighbours"], abs=1e-3)
