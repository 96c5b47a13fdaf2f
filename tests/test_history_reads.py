"""Reads over history: ``as_of=`` and ``mode="history"`` on ``search``, ``get``, ``list``
and ``context``, through the library, the command line and the REST server.

One history is built through consolidation (the scripted LLM, registered through the
real registry): Ana lived in Paris from January, moved to Berlin in June (an UPDATE),
sold her car in September (an INVALIDATE) and likes tea all along."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from remem import Memory, MemoryConfig
from remem.cli.main import main
from remem.config import DeriveConfig, LLMConfig
from remem.embedders.base import Embedder
from remem.errors import InvalidInputError, NotFoundError
from remem.evolution.consolidate import consolidate_and_write
from remem.formation.derived import Candidate
from remem.keys import KeyRing
from remem.llms.scripted import ScriptedLLM
from remem.models import MemoryRecord, Scope
from remem.registry import register_llm, store_config
from remem.server.app import ServerConfig, create_app
from remem.server.run import running
from remem.settings import ENV_VARS

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

JAN, MAR, JUNE, JULY, SEPT, OCT = (
    datetime(2024, m, d) for m, d in ((1, 10), (3, 1), (6, 1), (7, 1), (9, 1), (10, 1))
)
BEFORE = datetime(2023, 6, 1)
ANA = Scope(user_id="ana", session_id="s1")


@dataclass
class Lived:
    """The history and the memories in it."""

    db: Path
    memory: Memory
    paris: MemoryRecord
    berlin: MemoryRecord
    car: MemoryRecord
    tea: MemoryRecord


def _decision(action: str, reason: str) -> dict[str, Any]:
    return {
        "decisions": [
            {
                "candidate": 1,
                "action": action,
                "targets": [1],
                "links": [],
                "text": "",
                "reason": reason,
            }
        ]
    }


@pytest.fixture(scope="module")
def lived(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Lived]:
    db = tmp_path_factory.mktemp("history") / "history.db"
    replies = [_decision("UPDATE", "she moved"), _decision("INVALIDATE", "she sold it")]
    config = MemoryConfig(
        store_config(str(db)),
        llm=LLMConfig("scripted", options={"replies": replies}),
        derive=DeriveConfig(enabled=False),
        record_access=False,
    )
    memory = Memory(config, embedder=embedder)
    src = memory.add(
        "I live in Paris, have a car and love tea", user_id="ana", session_id="s1", timestamp=JAN
    ).message_ids
    paris, car, tea = memory.remember_many(
        [
            Candidate("fact", t, src, occurred_at=JAN)
            for t in ("Ana lives in Paris", "Ana has a car", "Ana likes tea")
        ],
        user_id="ana",
        session_id="s1",
    )
    assert _texts(memory.search("where does Ana live?", user_id="ana", kinds="fact"))
    moved = consolidate_and_write(
        memory, ANA, [Candidate("fact", "Ana lives in Berlin", src, occurred_at=JUNE)]
    )
    consolidate_and_write(
        memory, ANA, [Candidate("fact", "Ana sold her car", src, occurred_at=SEPT)]
    )
    berlin = memory.get(moved.decisions[0].memory_id or "")
    yield Lived(db, memory, paris, berlin, car, tea)
    memory.close()


def _texts(found: Any) -> set[str]:
    records = [getattr(item, "memory", item) for item in found]
    return {r.text for r in records}


FACTS = {"Ana lives in Paris", "Ana lives in Berlin", "Ana has a car", "Ana likes tea"}
CURRENT_AT = {
    None: {"Ana lives in Berlin", "Ana likes tea"},
    BEFORE: set(),
    MAR: {"Ana lives in Paris", "Ana has a car", "Ana likes tea"},
    JULY: {"Ana lives in Berlin", "Ana has a car", "Ana likes tea"},
    OCT: {"Ana lives in Berlin", "Ana likes tea"},
}


@pytest.mark.parametrize(
    "when", list(CURRENT_AT), ids=lambda w: "now" if w is None else f"{w:%Y-%m}"
)
def test_search_and_list_see_what_was_current_then(lived: Lived, when: datetime | None) -> None:
    m = lived.memory
    found = m.search(
        "where does Ana live, her car, tea?", user_id="ana", kinds="fact", as_of=when, limit=20
    )
    assert _texts(found) == CURRENT_AT[when]
    assert _texts(m.list(user_id="ana", kinds="fact", as_of=when)) == CURRENT_AT[when]
    if when is not None:  # the same time as an ISO string
        assert (
            _texts(m.list(user_id="ana", kinds="fact", as_of=when.isoformat()))
            == (CURRENT_AT[when])
        )


def test_history_mode_sees_every_version(lived: Lived) -> None:
    m = lived.memory
    assert _texts(m.list(user_id="ana", kinds="fact", mode="history")) == FACTS
    found = m.search("Ana lives", user_id="ana", kinds="fact", mode="history", limit=20)
    assert {"Ana lives in Paris", "Ana lives in Berlin"} <= _texts(found)
    assert _texts(m.list(user_id="ana", kinds="fact", mode="current")) == CURRENT_AT[None]


def test_context_reads_history_too(lived: Lived) -> None:
    m = lived.memory
    now = m.context("Where does Ana live?", user_id="ana", kinds="fact")
    then = m.context("Where does Ana live?", user_id="ana", kinds="fact", as_of=MAR)
    every = m.context("Where does Ana live?", user_id="ana", kinds="fact", mode="history")
    assert "Berlin" in now.text and "Paris" not in now.text
    assert "Paris" in then.text and "Berlin" not in then.text
    assert "Paris" in every.text and "Berlin" in every.text


def test_get_returns_any_version_and_follows_the_line_as_of(lived: Lived) -> None:
    m, paris, berlin = lived.memory, lived.paris, lived.berlin
    old = m.get(paris.id)  # a superseded memory is still there, saying so
    assert old.text == "Ana lives in Paris" and old.superseded_by == berlin.id
    assert old.valid_to == JUNE and m.get(paris.id, mode="history") == old
    assert m.get(paris.id, as_of=MAR) == old
    assert m.get(paris.id, as_of=JULY).id == berlin.id  # its successor then
    assert m.get(berlin.id, as_of=OCT).id == berlin.id
    with pytest.raises(NotFoundError, match="not current"):
        m.get(berlin.id, as_of=MAR)  # it did not exist yet (no walking back)
    with pytest.raises(NotFoundError, match="not current"):
        m.get(lived.car.id, as_of=OCT)  # invalidated, nothing replaced it
    assert m.get(lived.car.id).expired_at is not None


def test_history_shows_each_step_with_its_reason(lived: Lived) -> None:
    m = lived.memory
    steps = m.history(lived.paris.id)
    assert [e.action for e in steps] == ["ADD", "SUPERSEDE"]
    assert "she moved" in steps[1].reason and "Ana lives in Berlin" in steps[1].reason
    assert steps[1].after is not None and steps[1].after["superseded_by"] == lived.berlin.id
    assert [(e.action, "she sold it" in e.reason) for e in m.history(lived.car.id)] == [
        ("ADD", False),
        ("INVALIDATE", True),
    ]
    (added,) = m.history(lived.berlin.id)
    assert added.after is not None and added.after["attributes"]["consolidation"]["reason"] == (
        "she moved"
    )


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "everything"},
        {"mode": None},
        {"as_of": "early 2024"},
        {"as_of": [2024]},
        {"as_of": MAR, "mode": "history"},
    ],
    ids=["unknown-mode", "no-mode", "bad-time", "bad-type", "both"],
)
def test_bad_history_options_are_refused(lived: Lived, options: dict[str, Any]) -> None:
    m = lived.memory
    calls = [
        lambda: m.search("Ana", user_id="ana", **options),
        lambda: m.list(user_id="ana", **options),
        lambda: m.context("Ana", user_id="ana", **options),
        lambda: m.get(lived.paris.id, **options),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()


# -- the command line and the REST server --------------------------------------------------


def _cli(db: Path, *args: str) -> Any:
    result = CliRunner(env={name: None for name in ENV_VARS}).invoke(
        main, ["--db", str(db), "--json", *args]
    )
    return result


def test_cli_reads_history(lived: Lived) -> None:
    listed = _cli(lived.db, "list", "-u", "ana", "--kind", "fact", "--history")
    assert listed.exit_code == 0, listed.output
    assert {r["text"] for r in json.loads(listed.output)} == FACTS
    then = _cli(lived.db, "list", "-u", "ana", "--kind", "fact", "--as-of", "2024-03-01")
    assert {r["text"] for r in json.loads(then.output)} == CURRENT_AT[MAR]
    found = _cli(
        lived.db,
        "search",
        "-u",
        "ana",
        "--kind",
        "fact",
        "--as-of",
        "2024-03-01",
        "where does Ana live?",
    )
    assert found.exit_code == 0, found.output
    assert "Ana lives in Berlin" not in {
        h["memory"]["text"] for h in json.loads(found.output)["hits"]
    }
    packed = _cli(lived.db, "context", "-u", "ana", "--kind", "fact", "--history", "live")
    assert "Paris" in json.loads(packed.output)["text"]
    got = _cli(lived.db, "get", lived.paris.id, "--as-of", "2024-07-01")
    assert json.loads(got.output)["id"] == lived.berlin.id
    bad = _cli(lived.db, "list", "-u", "ana", "--as-of", "not a time")
    both = _cli(lived.db, "list", "-u", "ana", "--as-of", "2024-03-01", "--history")
    assert bad.exit_code == 2 and both.exit_code == 2
    assert "as_of" in bad.output and "exclude each other" in both.output


def test_rest_reads_history(lived: Lived) -> None:
    m = lived.memory
    _, key = KeyRing(m.store).create("default")
    with running(create_app(m, ServerConfig())) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        with client:
            page = client.get(
                "/v1/memories", params={"user_id": "ana", "kind": "fact", "mode": "history"}
            ).json()
            assert {r["text"] for r in page["items"]} == FACTS
            page = client.get(
                "/v1/memories", params={"user_id": "ana", "kind": "fact", "as_of": "2024-03-01"}
            ).json()
            assert {r["text"] for r in page["items"]} == CURRENT_AT[MAR]
            hits = client.post(
                "/v1/search",
                json={
                    "query": "Ana",
                    "user_id": "ana",
                    "kinds": ["fact"],
                    "as_of": "2024-10-01",
                    "limit": 20,
                },
            ).json()
            assert {h["memory"]["text"] for h in hits["hits"]} == CURRENT_AT[OCT]
            packed = client.post(
                "/v1/context",
                json={"query": "live", "user_id": "ana", "kinds": ["fact"], "mode": "history"},
            )
            assert "Paris" in packed.json()["text"]
            got = client.get(f"/v1/memories/{lived.paris.id}", params={"as_of": "2024-07-01"})
            assert got.json()["id"] == lived.berlin.id
            bad = client.post("/v1/search", json={"query": "Ana", "mode": "everything"})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
