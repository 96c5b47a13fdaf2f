"""``remem forget`` in process: dry run, a real run, JSON, the ttl policy and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from remem import Memory
from remem.cli.forget import forget
from remem.cli.main import main
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.models import MemoryRecord, Scope
from remem.settings import ENV_VARS
from remem.stores.base import NewMemory, WriteBatch
from remem.util import utcnow


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``forget`` as ``remem forget`` (whether or not main registers it yet)."""
    monkeypatch.setitem(main.commands, "forget", forget)


def _invoke(db: Path, *args: str) -> Result:
    return CliRunner(env={name: None for name in ENV_VARS}).invoke(main, ["--db", str(db), *args])


@pytest.fixture
def db(tmp_path: Path, embedder: OnnxMiniLMEmbedder) -> Path:
    """A file with a stale memory, a stale pinned one and a fresh one of user ana, a stale
    one of bob, and an expired one of ana."""
    path = tmp_path / "m.db"
    now, old = utcnow(), utcnow() - timedelta(days=30)
    rows: list[tuple[str, str, Any]] = [
        ("stale", "ana", {"created_at": old}), ("pinned", "ana", {"created_at": old,
        "pinned": True}), ("fresh", "ana", {"created_at": now}),
        ("bob-stale", "bob", {"created_at": old}),
        ("expired", "ana", {"created_at": now, "expires_at": now - timedelta(days=1)}),
    ]  # fmt: skip
    with Memory(path, embedder=embedder) as memory:
        vector = memory.embedder.embed_one("Rex the dog")
        records = [
            MemoryRecord(id=name, kind="fact", text=f"{name}: Rex the dog", scope=Scope(user),
                         source_ids=(), occurred_at=None, updated_at=more["created_at"], **more)
            for name, user, more in rows
        ]  # fmt: skip
        memory.store.write(WriteBatch(memories=tuple(NewMemory(r, r.text, vector)
                                                     for r in records)))  # fmt: skip
    return path


def _current(db: Path, user: str) -> set[str]:
    result = _invoke(db, "--json", "list", "-u", user)
    assert result.exit_code == 0, result.output
    return {row["id"] for row in json.loads(result.stdout)}


def test_dry_run_lists_with_reasons_and_writes_nothing(db: Path) -> None:
    result = _invoke(db, "forget", "--policy", "retention", "--threshold", "0.05", "--dry-run",
                     "-u", "ana")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("stale  R=0.0000") and "stale: Rex the dog" in lines[0]
    assert "below 0.05: never recalled" in lines[1]
    assert lines[-1] == ("would archive 1 of 4 memories (retention < 0.05); kept 1 pinned "
                         "(dry run: nothing written)")  # fmt: skip
    assert _current(db, "ana") == {"stale", "pinned", "fresh"}


def test_a_real_run_archives_only_the_scope_and_history_says_why(db: Path) -> None:
    result = _invoke(db, "--json", "forget", "-u", "ana")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["policy"], report["threshold"], report["dry_run"]) == ("retention", 0.05, False)
    assert [item["memory"]["id"] for item in report["archived"]] == ["stale"]
    assert report["archived"][0]["memory"]["expired_at"] is not None
    assert _current(db, "ana") == {"pinned", "fresh"}
    assert _current(db, "bob") == {"bob-stale"}  # another user's scope is untouched
    history = _invoke(db, "--json", "history", "stale")
    events = json.loads(history.stdout)
    assert [e["action"] for e in events] == ["ADD", "ARCHIVE"]
    assert "retention" in events[-1]["reason"]
    assert _invoke(db, "--json", "get", "stale").exit_code == 0  # get still shows it


def test_the_ttl_policy_archives_expired_memories(db: Path) -> None:
    result = _invoke(db, "forget", "--policy", "ttl")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("expired  R=-")
    assert result.stdout.splitlines()[-1] == "archived 1 of 5 memories (ttl)"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--threshold", "0"], "above 0 and at most 1"), (["--threshold", "2"], "above 0"),
     (["--policy", "ttl", "--threshold", "0.1"], "takes no threshold"),
     (["--policy", "never"], "'never' is not one of 'retention', 'ttl'")],
)  # fmt: skip
def test_bad_policies_and_thresholds_exit_2_and_say_why(
    db: Path, args: list[str], message: str
) -> None:
    result = _invoke(db, "forget", *args)
    assert result.exit_code == 2
    assert message in result.stderr
