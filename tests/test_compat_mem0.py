"""The mem0-compatible surface: ``remem.compat.mem0.Memory`` on a real SQLite file with the
real default embedder, ``import_mem0`` and ``remem import-mem0`` on fixture exports, and
the mem0-shaped REST routes on a real uvicorn server called with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import remem
from remem.cli.common import Cli, State
from remem.cli.mem0 import import_mem0_command
from remem.compat.mem0 import Memory, import_mem0
from remem.compat.mem0_routes import mem0_router
from remem.embedders.base import Embedder
from remem.errors import (
    ConflictError,
    DataFormatError,
    InvalidInputError,
    NotFoundError,
    RememError,
    kind_of,
)
from remem.server.run import running
from remem.settings import ENV_VARS

MEM0 = Path(__file__).parent / "fixtures" / "mem0"
EXPORTS = ["export_oss.json", "export_platform.json", "export.jsonl"]
ALICE_PEANUTS = "8a1c6f3e-0b7e-4d1a-9a57-6f1f2b3c4d01"
BOB_DENTIST = "8a1c6f3e-0b7e-4d1a-9a57-6f1f2b3c4d03"
# the keys mem0's MemoryItem always has (get_all leaves out "score")
ITEM_KEYS = {"id", "memory", "hash", "metadata", "created_at", "updated_at"}
HISTORY_KEYS = {"id", "memory_id", "old_memory", "new_memory", "event", "created_at",
                "updated_at", "is_deleted", "actor_id", "role"}  # fmt: skip


@pytest.fixture
def m0(memory: remem.Memory) -> Memory:
    """The mem0 surface over the test's ``remem.Memory`` (which the fixture closes)."""
    return Memory(memory)


def _texts(result: dict[str, Any]) -> list[str]:
    return [item["memory"] for item in result["results"]]


def _counts(memory: remem.Memory) -> tuple[int, int, int]:
    stats = memory.stats()
    return stats.messages, stats.memories, stats.events


# ----------------------------------------------------------------------------- class


def test_add_search_get_update_history_delete(m0: Memory) -> None:
    added = m0.add(
        [{"role": "user", "content": "I adopted a beagle called Oscar", "name": "Ana"},
         {"role": "assistant", "content": "Oscar sounds like a great dog!"}],
        user_id="ana", run_id="s1", metadata={"topic": "pets"}, infer=True,
    )  # fmt: skip
    assert [set(r) for r in added["results"]] == [{"id", "memory", "event", "actor_id", "role"}] * 2
    first = added["results"][0]
    assert first["memory"] == "I adopted a beagle called Oscar"
    assert (first["event"], first["actor_id"], first["role"]) == ("ADD", "Ana", "user")
    m0.add("I moved to Lisbon in May", user_id="ana", infer=False)

    found = m0.search("what dog did Ana adopt?", filters={"user_id": "ana"}, top_k=2)
    assert len(found["results"]) == 2
    hit = found["results"][0]
    assert ITEM_KEYS | {"score", "user_id", "role"} <= set(hit)
    assert "Oscar" in hit["memory"] and isinstance(hit["score"], float)

    got = m0.get(first["id"])
    assert got is not None
    assert ITEM_KEYS | {"score", "user_id", "run_id", "actor_id", "role"} == set(got)
    assert (got["user_id"], got["run_id"], got["metadata"]) == ("ana", "s1", {"topic": "pets"})
    assert got["created_at"].endswith("+00:00") and len(got["hash"]) == 32

    listed = m0.get_all(filters={"user_id": "ana"})
    assert sorted(_texts(listed)) == sorted(
        ["I adopted a beagle called Oscar", "Oscar sounds like a great dog!",
         "I moved to Lisbon in May"]
    )  # fmt: skip
    # (the session summary that remem derives is not listed)
    assert all(set(item) >= ITEM_KEYS and "score" not in item for item in listed["results"])

    assert m0.update(first["id"], "I adopted a poodle called Oscar") == {
        "message": "Memory updated successfully!"
    }
    updated = m0.get(first["id"])
    assert updated is not None and updated["memory"] == "I adopted a poodle called Oscar"
    assert updated["actor_id"] == "Ana"  # still a turn of its speaker
    assert m0.search("poodle", user_id="ana", limit=1)["results"][0]["id"] == first["id"]

    history = m0.history(first["id"])
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert all(set(h) == HISTORY_KEYS for h in history)
    assert history[1]["old_memory"] == "I adopted a beagle called Oscar"
    assert history[1]["new_memory"] == "I adopted a poodle called Oscar"

    assert m0.delete(first["id"]) == {"message": "Memory deleted successfully!"}
    assert m0.get(first["id"]) is None
    assert [h["event"] for h in m0.history(first["id"])] == ["ADD", "UPDATE", "DELETE"]
    assert m0.history(first["id"])[-1]["is_deleted"] is True

    assert m0.delete_all(user_id="ana") == {"message": "Memories deleted successfully!"}
    assert m0.get_all(user_id="ana") == {"results": []}


def test_scopes_are_kept_apart(m0: Memory) -> None:
    m0.add("Ana likes green tea", user_id="ana")
    m0.add("Bea likes black coffee", user_id="bea")
    m0.add("The planner books trains", agent_id="planner")
    m0.add("Ana's trip is in June", user_id="ana", run_id="trip")
    m0.add("Bea's trip is in July", user_id="bea", run_id="trip")
    m0.add("A run with no owner", run_id="trip")

    assert set(_texts(m0.get_all(user_id="bea"))) == {"Bea likes black coffee",
                                                      "Bea's trip is in July"}  # fmt: skip
    assert _texts(m0.get_all(agent_id="planner")) == ["The planner books trains"]
    assert set(_texts(m0.get_all(filters={"run_id": "trip"}))) == {
        "Ana's trip is in June", "Bea's trip is in July", "A run with no owner"}  # fmt: skip
    assert _texts(m0.get_all(filters={"user_id": "ana", "run_id": "trip"})) == [
        "Ana's trip is in June"
    ]
    hits = m0.search("what does she drink?", filters={"user_id": "ana"})
    assert {h["user_id"] for h in hits["results"]} == {"ana"}

    m0.delete_all(run_id="trip")  # as in mem0: that run, whoever owns it
    assert m0.get_all(run_id="trip") == {"results": []}
    assert _texts(m0.get_all(user_id="ana")) == ["Ana likes green tea"]
    assert _texts(m0.get_all(user_id="bea")) == ["Bea likes black coffee"]


def test_filters_map_to_metadata_equality(m0: Memory) -> None:
    m0.add("Pasta with pesto", user_id="ana", metadata={"meal": "dinner", "stars": 5})
    m0.add("Porridge with honey", user_id="ana", metadata={"meal": "breakfast", "stars": 4})
    for filters in (
        {"user_id": "ana", "meal": "dinner"},
        {"user_id": "ana", "meal": {"eq": "dinner"}},
        {"AND": [{"user_id": "ana"}, {"stars": 5}]},
        {"user_id": "ana", "metadata": {"meal": "dinner"}},
    ):
        assert _texts(m0.get_all(filters=filters)) == ["Pasta with pesto"], filters
        assert _texts(m0.search("food", filters=filters)) == ["Pasta with pesto"], filters
    refused = [
        ({"user_id": "ana", "stars": {"gte": 4}}, "gte"),
        ({"user_id": "ana", "meal": {"in": ["dinner", "lunch"]}}, "in"),
        ({"user_id": "ana", "OR": [{"meal": "dinner"}, {"stars": 4}]}, "OR"),
        ({"user_id": "ana", "NOT": [{"meal": "dinner"}]}, "NOT"),
        ({"user_id": "ana", "meal": "*"}, "wildcard"),
        ({"user_id": "ana", "actor_id": "Ana"}, "actor_id"),
        ({"meal": "dinner"}, "user_id, agent_id or run_id"),
    ]
    for filters, words in refused:
        with pytest.raises(InvalidInputError, match=words):
            m0.search("food", filters=filters)
    with pytest.raises(InvalidInputError, match="two values"):
        m0.get_all(user_id="ana", filters={"user_id": "bea"})


def test_threshold_keeps_hits_scoring_at_least_it(m0: Memory) -> None:
    m0.add("Ana keeps bees on her roof", user_id="ana")
    m0.add("The weather was mild on Tuesday", user_id="ana")
    scores = [h["score"] for h in m0.search("bees", user_id="ana")["results"]]
    assert len(scores) == 2 and scores[0] > scores[1]
    kept = m0.search("bees", user_id="ana", threshold=scores[0])["results"]
    assert [h["score"] for h in kept] == [scores[0]]
    assert m0.search("bees", user_id="ana", threshold=scores[0] + 1)["results"] == []
    with pytest.raises(InvalidInputError, match="threshold"):
        m0.search("bees", user_id="ana", threshold=-0.5)


def test_unknown_ids_and_refusals(m0: Memory) -> None:
    assert m0.get("no-such-id") is None
    assert m0.history("no-such-id") == []
    with pytest.raises(NotFoundError):
        m0.update("no-such-id", "text")
    with pytest.raises(NotFoundError):
        m0.delete("no-such-id")
    with pytest.raises(InvalidInputError, match="user_id, agent_id or run_id"):
        m0.add("no scope")
    for option in ({"memory_type": "procedural_memory"}, {"prompt": "Extract facts"},
                   {"expiration_date": "2030-01-01"}):  # fmt: skip
        with pytest.raises(InvalidInputError):
            m0.add("hello", user_id="ana", **option)
    with pytest.raises(InvalidInputError, match="metadata cannot hold user_id"):
        m0.add("hello", user_id="ana", metadata={"user_id": "bea"})
    with pytest.raises(InvalidInputError, match="show_expired"):
        m0.get_all(user_id="ana", show_expired=True)
    with pytest.raises(InvalidInputError, match="whole"):
        m0.reset()
    assert m0.get_all(user_id="ana") == {"results": []}  # nothing was stored


def test_reset_deletes_only_the_scope_given(m0: Memory) -> None:
    m0.add("Ana likes tea", user_id="ana")
    m0.add("Bea likes coffee", user_id="bea")
    assert m0.reset(user_id="ana") is None
    assert m0.get_all(user_id="ana") == {"results": []}
    assert _texts(m0.get_all(user_id="bea")) == ["Bea likes coffee"]


def test_update_merges_metadata_and_sets_expiration(m0: Memory) -> None:
    memory_id = m0.add("Ana's passport expires soon", user_id="ana",
                       metadata={"kind": "document"})["results"][0]["id"]  # fmt: skip
    m0.update(memory_id, metadata={"urgent": True})
    got = m0.get(memory_id)
    assert got is not None and got["metadata"] == {"kind": "document", "urgent": True}
    assert got["memory"] == "Ana's passport expires soon"  # the text is kept

    m0.update(memory_id, expiration_date="2999-12-31")
    got = m0.get(memory_id)
    assert got is not None and got["expiration_date"] == "2999-12-31"
    m0.update(memory_id, expiration_date="2000-01-01")  # in the past: hidden
    assert m0.get_all(user_id="ana") == {"results": []}
    m0.update(memory_id, expiration_date=None)
    assert [r["id"] for r in m0.get_all(user_id="ana")["results"]] == [memory_id]
    with pytest.raises(InvalidInputError, match="YYYY-MM-DD"):
        m0.update(memory_id, expiration_date="next week")


def test_opens_a_path_or_wraps_a_memory(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(tmp_path / "own.db", embedder=embedder) as own:
        own.add("Ana likes tea", user_id="ana")
    with Memory(tmp_path / "own.db", embedder=embedder) as reopened:
        assert _texts(reopened.get_all(user_id="ana")) == ["Ana likes tea"]
    with remem.Memory(tmp_path / "shared.db", embedder=embedder) as shared:
        Memory(shared, namespace="acme").add("Acme's memory", user_id="ana")
        wrapped = Memory(shared)
        wrapped.close()  # leaves the wrapped memory open
        assert wrapped.get_all(user_id="ana") == {"results": []}  # another namespace
        assert _texts(Memory(shared, namespace="acme").get_all(user_id="ana")) == ["Acme's memory"]


# ---------------------------------------------------------------------------- import


@pytest.mark.parametrize("name", EXPORTS)
def test_import_keeps_ids_text_scope_metadata_and_times(memory: remem.Memory, name: str) -> None:
    assert import_mem0(memory, MEM0 / name) == 4
    m0 = Memory(memory)
    peanuts = m0.get(ALICE_PEANUTS)
    assert peanuts is not None
    assert peanuts["memory"] == "Alice is allergic to peanuts"
    assert peanuts["user_id"] == "alice" and peanuts["metadata"] == {"source": "onboarding"}
    assert peanuts["created_at"] == "2024-07-01T19:00:00+00:00"  # -07:00, in UTC
    dentist = m0.get(BOB_DENTIST)
    assert dentist is not None
    assert (dentist["user_id"], dentist["agent_id"], dentist["run_id"]) == (
        "bob", "planner", "trip-42")  # fmt: skip
    assert dentist["metadata"] == {"priority": 2}
    if name != "export_platform.json":  # the platform keeps no speaker
        assert dentist["actor_id"] == "bob"
    assert set(_texts(m0.get_all(agent_id="planner"))) == {
        "Remind Bob about the dentist on Friday",
        "Book the early train to Porto for the conference",
    }
    hits = m0.search("food allergy", user_id="alice")["results"]
    assert hits[0]["id"] == ALICE_PEANUTS
    if name == "export_platform.json":  # platform fields come back in place
        assert peanuts["categories"] == ["health"] and peanuts["immutable"] is False

    # the mem0 id works wherever mem0 takes one
    m0.update(ALICE_PEANUTS, "Alice is allergic to peanuts and cashews")
    assert [h["event"] for h in m0.history(ALICE_PEANUTS)] == ["ADD", "UPDATE"]
    assert m0.history(ALICE_PEANUTS)[0]["memory_id"] == ALICE_PEANUTS
    m0.delete(BOB_DENTIST)
    assert m0.get(BOB_DENTIST) is None


@pytest.mark.parametrize("name", EXPORTS)
def test_importing_again_is_a_no_op(memory: remem.Memory, name: str) -> None:
    assert import_mem0(memory, MEM0 / name) == 4
    before = _counts(memory)
    assert import_mem0(memory, MEM0 / name) == 0
    assert _counts(memory) == before
    if name != "export_platform.json":  # the same memories, in the other form of mem0 OSS
        other = "export.jsonl" if name == "export_oss.json" else "export_oss.json"
        assert import_mem0(memory, MEM0 / other) == 0
        assert _counts(memory) == before


BAD_FILES = [
    ("bad_malformed.json", r"bad_malformed\.json is not valid JSON .*line 11"),
    ("bad_no_text.json", r"results\[1\]: field 'memory' is missing"),
    ("bad_types.jsonl", r"line 2: field 'metadata' must be a dict"),
    ("bad_id_type.json", r"\[1\]: field 'id' must be a non-empty string, not 42"),
    ("bad_utf8.jsonl", r"not UTF-8 text \(bad byte at offset 185\)"),
]


@pytest.mark.parametrize(("name", "message"), BAD_FILES)
def test_a_bad_file_imports_nothing(memory: remem.Memory, name: str, message: str) -> None:
    import_mem0(memory, MEM0 / "export_oss.json")
    before = _counts(memory)
    with pytest.raises(DataFormatError, match=message):
        import_mem0(memory, MEM0 / name)
    assert _counts(memory) == before
    assert Memory(memory).get_all(user_id="carol") == {"results": []}


def test_import_refuses_rows_it_cannot_place(memory: remem.Memory, tmp_path: Path) -> None:
    rows = [{"id": "m1", "memory": "Dana plays chess"},
            {"id": "m2", "memory": "Dana plays go", "user_id": "dana"}]  # fmt: skip
    path = tmp_path / "unscoped.json"
    path.write_text(json.dumps({"results": rows}), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"results\[0\]: has none of user_id"):
        import_mem0(memory, path)
    assert _counts(memory) == (0, 0, 0)
    assert import_mem0(memory, path, user_id="dana") == 2
    assert len(Memory(memory).get_all(user_id="dana")["results"]) == 2

    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join(json.dumps({**r, "user_id": "eve"}) for r in [rows[0]] * 2))
    with pytest.raises(DataFormatError, match="appears twice"):
        import_mem0(memory, twice)
    for bad in ({"role": "narrator"}, {"created_at": "yesterday"}, {"memory": "  "}):
        path.write_text(json.dumps([{"id": "x1", "memory": "text", "user_id": "eve", **bad}]))
        with pytest.raises(DataFormatError, match=r"\[0\]: field"):
            import_mem0(memory, path)


def test_jsonl_is_read_whatever_the_file_is_named(memory: remem.Memory, tmp_path: Path) -> None:
    lines = (MEM0 / "export.jsonl").read_text(encoding="utf-8")
    renamed = tmp_path / "export.json"
    renamed.write_text("\ufeff" + lines, encoding="utf-8")  # and with a byte order mark
    assert import_mem0(memory, renamed) == 4
    one = tmp_path / "one.json"
    one.write_text(lines.splitlines()[0], encoding="utf-8")  # one line: a single memory
    assert import_mem0(memory, one, user_id="ignored") == 0  # already imported
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"memories": []}), encoding="utf-8")
    with pytest.raises(DataFormatError, match="is not a mem0 export"):
        import_mem0(memory, other)


def test_import_refuses_an_id_stored_with_other_content(
    memory: remem.Memory, tmp_path: Path
) -> None:
    import_mem0(memory, MEM0 / "export_oss.json")
    before = _counts(memory)
    changed = [
        {"id": "new-1", "memory": "Brand new", "user_id": "alice"},
        {"id": ALICE_PEANUTS, "memory": "Alice loves peanuts", "user_id": "alice"},
    ]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    with pytest.raises(ConflictError, match=r"\[1\]: message id"):
        import_mem0(memory, path)
    assert _counts(memory) == before


def _cli(db: Path, *args: str) -> Any:
    """Run ``import-mem0`` under a group with remem's global options (as main.py has)."""

    @click.group(cls=Cli)
    @click.option("--db")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def group(ctx: click.Context, db: str | None, as_json: bool) -> None:
        ctx.obj = State(db, None, as_json)
        ctx.call_on_close(ctx.obj.close)

    group.add_command(import_mem0_command)
    runner = CliRunner(env={name: None for name in ENV_VARS})
    return runner.invoke(group, ["--db", str(db), *args])


def test_cli_import_mem0(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    result = _cli(db, "import-mem0", str(MEM0 / "export_oss.json"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("imported 4 memories from ")
    again = _cli(db, "--json", "import-mem0", str(MEM0 / "export.jsonl"))
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["imported"] == 0
    bad = _cli(db, "import-mem0", str(MEM0 / "bad_no_text.json"))
    assert bad.exit_code == 2 and "field 'memory' is missing" in bad.output


# ------------------------------------------------------------------------------ REST


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[httpx.Client]:
    """A real uvicorn server with the mem0 routes at /mem0, and a client for it."""
    memory = remem.Memory(tmp_path_factory.mktemp("mem0") / "rest.db", embedder=embedder)

    async def remem_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RememError)
        kind = kind_of(exc)
        body = {"error": {"code": kind.code, "message": str(exc)}}
        return JSONResponse(body, kind.http_status)

    app = FastAPI()
    app.add_exception_handler(RememError, remem_error)
    app.include_router(mem0_router(lambda: memory), prefix="/mem0")
    with running(app) as url, httpx.Client(base_url=f"{url}/mem0", timeout=60) as client:
        yield client
    memory.close()


def test_rest_add_search_get_update_history_delete(rest: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "I keep two cats, Miso and Tofu"}],
            "user_id": "rita", "metadata": {"topic": "pets"}}  # fmt: skip
    added = rest.post("/memories", json=body)
    assert added.status_code == 200, added.text
    (item,) = added.json()["results"]
    assert (item["memory"], item["event"]) == ("I keep two cats, Miso and Tofu", "ADD")
    memory_id = item["id"]

    found = rest.post("/search", json={"query": "what pets?", "filters": {"user_id": "rita"}})
    assert found.status_code == 200, found.text
    assert [h["id"] for h in found.json()["results"]] == [memory_id]
    assert ITEM_KEYS | {"score"} <= set(found.json()["results"][0])

    got = rest.get(f"/memories/{memory_id}")
    assert got.status_code == 200 and got.json()["metadata"] == {"topic": "pets"}
    listed = rest.get("/memories", params={"user_id": "rita"})
    assert [m["id"] for m in listed.json()["results"]] == [memory_id]

    updated = rest.put(f"/memories/{memory_id}", json={"text": "I keep three cats"})
    assert updated.status_code == 200 and "updated" in updated.json()["message"]
    assert rest.get(f"/memories/{memory_id}").json()["memory"] == "I keep three cats"
    history = rest.get(f"/memories/{memory_id}/history").json()
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]

    deleted = rest.delete(f"/memories/{memory_id}")
    assert deleted.status_code == 200 and "deleted" in deleted.json()["message"]
    assert rest.get(f"/memories/{memory_id}").status_code == 404


def test_rest_errors_are_json(rest: httpx.Client) -> None:
    for answer in (rest.get("/memories/nope"), rest.get("/memories/nope/history"),
                   rest.put("/memories/nope", json={"text": "x"}),
                   rest.delete("/memories/nope")):  # fmt: skip
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
    unscoped = rest.post("/memories", json={"messages": [{"role": "user", "content": "hi"}]})
    assert unscoped.status_code == 400
    assert "user_id, agent_id or run_id" in unscoped.json()["error"]["message"]
    assert rest.post("/reset").status_code == 400
    assert rest.get("/memories").status_code == 400  # a scope is required
    operator = rest.post(
        "/search", json={"query": "x", "filters": {"user_id": "r", "n": {"gt": 1}}}
    )
    assert operator.status_code == 400 and operator.json()["error"]["code"] == "invalid_input"


def test_rest_delete_all_and_reset_by_scope(rest: httpx.Client) -> None:
    for user in ("sam", "sam", "tom"):
        body = {"messages": [{"role": "user", "content": f"{user} likes jazz"}], "user_id": user}
        assert rest.post("/memories", json=body).status_code == 200
    assert len(rest.get("/memories", params={"user_id": "sam"}).json()["results"]) == 2
    assert rest.delete("/memories", params={"user_id": "sam"}).status_code == 200
    assert rest.get("/memories", params={"user_id": "sam"}).json() == {"results": []}
    assert rest.post("/reset", params={"user_id": "tom"}).status_code == 200
    assert rest.get("/memories", params={"user_id": "tom"}).json() == {"results": []}
