"""The REST server, over real HTTP: a real uvicorn server on a real SQLite file with the
real default embedder, called with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from remem import Memory
from remem.embedders.base import Embedder
from remem.keys import KeyRing
from remem.server.app import ServerConfig, create_app
from remem.server.run import running


@dataclass
class Api:
    """A running server and one client per tenant key."""

    url: str
    memory: Memory
    a: httpx.Client
    b: httpx.Client
    admin: httpx.Client
    anonymous: httpx.Client


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("server") / "served.db"
    memory = Memory(path, embedder=embedder)
    ring = KeyRing(memory.store)
    _, key_a = ring.create("acme")
    _, key_b = ring.create("globex")
    _, key_admin = ring.create("ops", "operator", admin=True)
    with running(create_app(memory, ServerConfig(max_body_bytes=64 << 10))) as url:
        clients = [_client(url, k) for k in (key_a, key_b, key_admin, None)]
        yield Api(url, memory, *clients)
        for client in clients:
            client.close()
    memory.close()


def _add(client: httpx.Client, text: str, **scope: Any) -> dict[str, Any]:
    answer = client.post("/v1/memories", json={"messages": text, **scope})
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


def test_health_and_openapi_need_no_key(api: Api) -> None:
    health = api.anonymous.get("/v1/health").json()
    assert health["status"] == "ok" and health["schema_version"] >= 6
    paths = api.anonymous.get("/openapi.json").json()["paths"]
    for route in (
        "/v1/memories",
        "/v1/search",
        "/v1/context",
        "/v1/memories/{memory_id}",
        "/v1/memories/{memory_id}/history",
        "/v1/export",
        "/v1/import",
        "/v1/keys",
    ):
        assert route in paths  # fmt: skip


def test_add_search_context_get_update_history_delete(api: Api) -> None:
    added = _add(api.a, "I adopted a beagle named Rufus", user_id="ana", session_id="s1")
    memory_id = added["memories"][0]["id"]
    assert added["memories"][0]["scope"]["namespace"] == "acme"
    hits = api.a.post("/v1/search", json={"query": "what dog?", "user_id": "ana",
                                          "explain": True}).json()  # fmt: skip
    assert hits["hits"][0]["memory"]["id"] == memory_id
    assert hits["hits"][0]["memory"]["source_ids"] == added["message_ids"]
    assert "timings_ms" in hits["explain"]
    context = api.a.post("/v1/context", json={"query": "dog", "user_id": "ana"}).json()
    assert "Rufus" in context["text"] and context["tokens"] <= context["budget_tokens"]
    assert api.a.get(f"/v1/memories/{memory_id}").json()["text"].endswith("Rufus")
    changed = api.a.patch(f"/v1/memories/{memory_id}", json={"pinned": True, "reason": "key"})
    assert changed.status_code == 200 and changed.json()["pinned"] is True
    actions = [e["action"] for e in api.a.get(f"/v1/memories/{memory_id}/history").json()]
    assert actions == ["ADD", "UPDATE"]
    assert api.a.delete(f"/v1/memories/{memory_id}").json() == {"deleted": memory_id}
    _error(api.a.get(f"/v1/memories/{memory_id}"), 404, "not_found")
    assert [e["action"] for e in api.a.get(f"/v1/memories/{memory_id}/history").json()][-1] == (
        "DELETE"
    )


def test_listing_pages_until_next_offset_is_null(api: Api) -> None:
    for n in range(5):
        _add(api.a, f"page fact number {n}", user_id="pager")
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = api.a.get("/v1/memories", params={"user_id": "pager", "limit": 2,
                                                 "offset": offset}).json()  # fmt: skip
        seen += [m["text"] for m in page["items"]]
        offset = page["next_offset"]
    assert sorted(seen) == [f"user: page fact number {n}" for n in range(5)]
    only = api.a.get("/v1/memories", params={"user_id": "pager", "kind": ["turn"],
                                             "metadata": "{}"})  # fmt: skip
    assert only.status_code == 200 and len(only.json()["items"]) == 5


def test_delete_scope_needs_a_scope(api: Api) -> None:
    _add(api.a, "to be wiped", user_id="wipe")
    _error(api.a.delete("/v1/memories"), 400, "invalid_input")
    assert api.a.delete("/v1/memories", params={"user_id": "wipe"}).json()["deleted"] == {
        "memories": 1, "messages": 1}  # fmt: skip


def test_keys_confine_every_call_to_their_tenant(api: Api) -> None:
    theirs = _add(api.b, "Globex launches in March", user_id="ana")["memories"][0]["id"]
    before = api.b.post("/v1/search", json={"query": "launch", "user_id": "ana"}).json()
    unknown = "0" * 32
    for method, path, body in (
        ("GET", "/v1/memories/{}", None),
        ("PATCH", "/v1/memories/{}", {"pinned": True}),
        ("DELETE", "/v1/memories/{}", None),
        ("GET", "/v1/memories/{}/history", None),
    ):
        foreign = api.a.request(method, path.format(theirs), json=body)
        missing = api.a.request(method, path.format(unknown), json=body)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.text.replace(theirs, "ID") == missing.text.replace(unknown, "ID")
        assert "globex" not in foreign.text
    seen = api.a.post("/v1/search", json={"query": "Globex launches", "user_id": "ana"}).json()
    assert all(h["memory"]["scope"]["namespace"] == "acme" for h in seen["hits"])
    _add(api.a, "Acme launches in March too", user_id="ana")
    after = api.b.post("/v1/search", json={"query": "launch", "user_id": "ana"}).json()
    assert [(h["memory"]["id"], h["score"]) for h in after["hits"]] == [
        (h["memory"]["id"], h["score"]) for h in before["hits"]]  # fmt: skip
    assert api.b.get(f"/v1/memories/{theirs}").status_code == 200


def test_requests_without_a_valid_key_are_refused(api: Api) -> None:
    answer = api.anonymous.post("/v1/search", json={"query": "x"})
    assert "Bearer" in _error(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"
    for header in ("Basic abc", "Bearer", "Bearer rk_nope", "Bearer " + "x" * 10_000):
        refused = api.anonymous.get("/v1/stats", headers={"Authorization": header})
        _error(refused, 401, "unauthorized")


def test_bad_bodies_get_clear_4xx_and_change_nothing(api: Api) -> None:
    before = api.a.get("/v1/stats").json()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": {"query": 5}}, 422, "invalid_input"),
        ({"json": {"query": "x", "bogus": 1}}, 422, "invalid_input"),
        ({"json": {"query": ""}}, 400, "invalid_input"),
        ({"json": {"query": "x", "limit": -1}}, 400, "invalid_input"),
        ({"json": ["query"]}, 422, "invalid_input"),
        ({"content": b'{"query": "\xff"}', "headers": {"content-type": "application/json"}},
         400, "invalid_input"),
        ({"content": b'{"query": ', "headers": {"content-type": "application/json"}},
         422, "invalid_input"),
        ({"content": b'{"query": "x"}'}, 422, "invalid_input"),  # no content type
        ({"json": {"query": "x" * (70 << 10)}}, 413, "too_large"),
    ]  # fmt: skip
    for request, status, code in cases:
        _error(api.a.post("/v1/search", **request), status, code)
    for body in (
        {"messages": []},
        {"messages": "x", "user_id": 7},
        {"messages": "\x00"},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {},
    ):
        assert 400 <= api.a.post("/v1/memories", json=body).status_code < 500  # fmt: skip
    _error(api.a.patch("/v1/memories/abc", json={"importance": "high"}), 422, "invalid_input")
    _error(
        api.a.post("/v1/memories", json={"messages": "x", "timestamp": True}), 422, "invalid_input"
    )  # JSON true is not a time, nor the number 1
    _error(api.a.patch("/v1/memories/abc", json={"importance": True}), 422, "invalid_input")
    _error(api.a.get("/v1/memories", params={"offset": "9" * 30}), 400, "invalid_input")
    _error(api.a.get("/v1/memories", params={"limit": "lots"}), 422, "invalid_input")
    _error(api.a.get("/v1/memories", params={"metadata": "[1]"}), 400, "invalid_input")
    _error(api.a.get("/v1/nowhere"), 404, "not_found")
    _error(api.a.put("/v1/search"), 405, "method_not_allowed")
    assert api.a.get("/v1/stats").json() == before


def test_a_chunked_body_over_the_limit_is_refused(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    _error(api.a.post("/v1/search", content=chunks(),
                      headers={"content-type": "application/json"}), 413, "too_large")  # fmt: skip


def test_export_then_import_into_another_tenant(api: Api, tmp_path: Path) -> None:
    _add(api.a, "exported fact about sailing", user_id="porter")
    dump = api.a.get("/v1/export")
    assert dump.status_code == 200
    lines = [json.loads(line) for line in dump.text.splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["namespace"] == "acme"
    ring = KeyRing(api.memory.store)
    _, key = ring.create("fresh")
    with _client(api.url, key) as fresh:
        imported = fresh.post("/v1/import", content=dump.content)
        assert imported.status_code == 200 and imported.json()["imported"] == len(lines) - 1
        hits = fresh.post("/v1/search", json={"query": "sailing", "user_id": "porter"}).json()
        assert hits["hits"][0]["memory"]["scope"]["namespace"] == "fresh"
        _error(fresh.post("/v1/import", content=b"not json\n"), 422, "data_format")
        again = _error(fresh.post("/v1/import", content=dump.content), 409, "conflict")
        assert "tmp" not in again and "remem-import" not in again  # no server paths


def test_admin_keys_manage_keys_and_tenants_cannot(api: Api) -> None:
    _error(api.a.get("/v1/keys"), 403, "forbidden")
    created = api.admin.post("/v1/keys", json={"tenant": "initech", "name": "bob"})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("rk_") and body["tenant"] == "initech"
    listed = api.admin.get("/v1/keys").json()
    assert body["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "hash" not in k for k in listed)
    assert body["key"] not in json.dumps(listed)
    with _client(api.url, body["key"]) as bob:
        assert bob.get("/v1/stats").json()["memories"] == 0
        assert api.admin.delete(f"/v1/keys/{body['id']}").json()["revoked_at"]
        _error(bob.get("/v1/stats"), 401, "unauthorized")
    _error(api.admin.delete("/v1/keys/nope"), 404, "not_found")
    _error(api.admin.post("/v1/keys", json={"tenant": ""}), 400, "invalid_input")


def test_an_open_server_takes_keyless_requests_as_the_default_tenant(
    tmp_path: Path, embedder: Embedder
) -> None:
    memory = Memory(tmp_path / "open.db", embedder=embedder)
    with memory, running(create_app(memory, ServerConfig(open=True))) as url:
        added = httpx.post(f"{url}/v1/memories", json={"messages": "open note"})
        assert added.json()["memories"][0]["scope"]["namespace"] == "default"
        bad = httpx.get(f"{url}/v1/stats", headers={"Authorization": "Bearer rk_x"})
        assert bad.status_code == 401  # a key that is sent is still checked
        rebound = httpx.get(f"{url}/v1/stats", headers={"Host": "evil.example"})
        _error(rebound, 403, "forbidden")  # a page elsewhere rebinding its name to 127.0.0.1


def test_mem0_routes_use_the_same_keys_and_tenants(api: Api) -> None:
    _error(api.anonymous.post("/mem0/memories", json={"messages": []}), 401, "unauthorized")
    made = api.a.post(
        "/mem0/memories",
        json={"messages": [{"role": "user", "content": "I prefer green tea"}], "user_id": "mia"},
    )
    assert made.status_code == 200, made.text
    mem0_id = made.json()["results"][0]["id"]
    found = api.a.post("/mem0/search", json={"query": "tea", "user_id": "mia"}).json()
    assert found["results"][0]["id"] == mem0_id
    assert api.b.get(f"/mem0/memories/{mem0_id}").status_code == 404


def test_forget_archives_by_policy_within_the_tenant_only(api: Api) -> None:
    mine = _add(api.a, "Temporary note: the door code is 4411", user_id="forgetful")
    theirs = _add(api.b, "Temporary note: the door code is 4411", user_id="forgetful")
    memory_id = mine["memories"][0]["id"]
    gone = "2000-01-01T00:00:00"
    for client, added in ((api.a, mine), (api.b, theirs)):
        changed = client.patch(f"/v1/memories/{added['memories'][0]['id']}",
                               json={"expires_at": gone})  # fmt: skip
        assert changed.status_code == 200, changed.text
    dry = api.a.post("/v1/forget", json={"policy": "ttl", "user_id": "forgetful",
                                         "dry_run": True})  # fmt: skip
    assert dry.status_code == 200, dry.text
    assert [f["memory"]["id"] for f in dry.json()["archived"]] == [memory_id]
    assert api.a.get(f"/v1/memories/{memory_id}").json()["expired_at"] is None  # dry: no write
    done = api.a.post("/v1/forget", json={"policy": "ttl", "user_id": "forgetful"})
    assert done.status_code == 200 and len(done.json()["archived"]) == 1
    history = api.a.get(f"/v1/memories/{memory_id}/history").json()
    assert history[-1]["action"] == "ARCHIVE"
    # the other tenant's identical memory is untouched
    other = api.b.get(f"/v1/memories/{theirs['memories'][0]['id']}").json()
    assert other["expired_at"] is None
    _error(api.a.post("/v1/forget", json={"policy": "sometimes"}), 400, "invalid_input")
    _error(api.a.post("/v1/forget", json={"policy": "ttl", "mood": "x"}), 422, "invalid_input")
