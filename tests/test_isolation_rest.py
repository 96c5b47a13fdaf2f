"""Tenant isolation over REST, as properties: whatever tenant A does, it never sees tenant
B's data and never changes B's results.

A real uvicorn server on a real SQLite file with the real default embedder. Hypothesis
generates sequences of A's calls (add, search, context, list, get, update, delete,
history, scope delete) with arbitrary ids, B's ids and B's user ids among them. Every
answer is checked as it comes: no 5xx, nothing of B's in it, and a request naming B's
memory answered exactly as one naming an unknown id. After each sequence B's searches
(ids, ranks, every score) and B's export must be what they were before any of A's calls.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem import Memory, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder
from remem.keys import KeyRing
from remem.server.app import create_app
from remem.server.run import running

B_TOKEN = "zanzibar"  # in every text of B's, in no text A can send
B_USERS = ("user-b", "shared")
B_MESSAGE_IDS = tuple(f"b-msg-{n}" for n in range(6))
QUERIES = ("where is the zanzibar archive?", "who bakes bread", "trip in May", "the archive")
Request = tuple[str, str, Any]


@dataclass(repr=False)
class Tenants:
    """The server, a client per tenant, B's ids and B's results before any of A's calls;
    ``used_by_a``: message ids A has sent; ``named_by_a``: B's ids A has put in a request
    (A may see those again, e.g. as its own message ids)."""

    url: str
    a: httpx.Client
    b: httpx.Client
    b_memories: tuple[str, ...]
    baseline: Any
    used_by_a: set[str] = field(default_factory=set)
    named_by_a: set[str] = field(default_factory=set)


def _b_state(b: httpx.Client) -> Any:
    """B's searches (hits with ids, ranks and scores), listing and export, as JSON data."""
    searches = []
    for query in QUERIES:
        for user in (None, *B_USERS):
            body = {"query": query, "limit": 20, **({"user_id": user} if user else {})}
            answer = b.post("/v1/search", json=body)
            assert answer.status_code == 200, answer.text
            hits = answer.json()["hits"]
            searches.append([(h["memory"]["id"], h["rank"], h["score"], h["scores"]) for h in hits])
    listed = b.get("/v1/memories", params={"limit": 1000}).json()
    lines = b.get("/v1/export").text.splitlines()
    return searches, listed, sorted(line for line in lines if '"type":"header"' not in line)


def _add(client: httpx.Client, body: dict[str, Any]) -> list[str]:
    answer = client.post("/v1/memories", json=body)
    assert answer.status_code == 201, answer.text
    return [m["id"] for m in answer.json()["memories"]]


def _store_b(b: httpx.Client) -> list[str]:
    """B's memories: a session of user-b's, notes of a user A also has, one pinned."""
    texts = [
        f"the {B_TOKEN} archive moved to Porto",
        f"{B_TOKEN} Ines bakes bread on Sundays",
        f"a {B_TOKEN} trip to Kyoto in May",
        f"B's {B_TOKEN} cat is called Mochi",
        f"{B_TOKEN} shared note on bread",
        f"{B_TOKEN} shared note on the archive",
    ]
    messages = [{"role": "user", "content": t, "id": i}
                for t, i in zip(texts, B_MESSAGE_IDS, strict=True)]  # fmt: skip
    ids = _add(b, {"user_id": "user-b", "session_id": "s1", "messages": messages[:4]})
    ids += _add(b, {"user_id": "shared", "messages": messages[4:]})
    b.patch(f"/v1/memories/{ids[0]}", json={"pinned": True}).raise_for_status()
    return ids


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Tenants]:
    # B's own searches observe its state; recording them as recalls would change it (that
    # recalls stay in their namespace is the store contract's test_record_access_...)
    path = tmp_path_factory.mktemp("isolation") / "tenants.db"
    config = MemoryConfig(StoreConfig(path=str(path)), record_access=False)
    memory = Memory(config, embedder=embedder)
    ring = KeyRing(memory.store)
    keys = [ring.create(name)[1] for name in ("tenant-a", "tenant-b")]
    with running(create_app(memory)) as url:
        a, b = (httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k}"},
                             timeout=60) for k in keys)  # fmt: skip
        ids = _store_b(b)
        _add(a, {"user_id": "shared", "messages": "A's own archive note about bread"})
        yield Tenants(url, a, b, tuple(ids), _b_state(b))
        a.close()
        b.close()
    memory.close()


# --------------------------------------------------------------------- A's requests


def _ids(tenants: Tenants) -> st.SearchStrategy[str]:
    known = st.sampled_from([*tenants.b_memories, *B_MESSAGE_IDS])
    made_up = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                      min_size=1, max_size=12)  # fmt: skip
    return st.one_of(known, known, made_up)


def _requests(tenants: Tenants) -> st.SearchStrategy[Request]:
    """One call of A's: any route of the memory API, B's ids and users among its values."""
    ids = _ids(tenants).map(lambda i: quote(i, safe=""))
    users = st.sampled_from([*B_USERS, "user-a"])
    scope = st.fixed_dictionaries({}, optional={"user_id": users, "session_id": st.just("s1")})
    words = st.sampled_from(["archive", "bread", "Porto", "May", "cat", "notes", "Kyoto"])
    text = st.lists(words, min_size=1, max_size=5).map(" ".join)
    message = st.fixed_dictionaries({"role": st.just("user"), "content": text},
                                    optional={"id": _ids(tenants)})  # fmt: skip
    add = st.builds(lambda m, s: ("POST", "/v1/memories", {"messages": m, **s}),
                    st.lists(message, min_size=1, max_size=3), scope)  # fmt: skip
    search = st.builds(lambda q, s: ("POST", "/v1/search", {"query": q, **s}), text, scope)
    context = st.builds(lambda q, s: ("POST", "/v1/context", {"query": q, **s}), text, scope)
    listing = st.builds(lambda u: ("GET", f"/v1/memories?user_id={u}", None), users)
    get = st.builds(lambda i: ("GET", f"/v1/memories/{i}", None), ids)
    history = st.builds(lambda i: ("GET", f"/v1/memories/{i}/history", None), ids)
    change = st.one_of(st.builds(lambda t: {"text": t}, text), st.just({"pinned": True}),
                       st.just({"metadata": {"owner": "a"}}))  # fmt: skip
    update = st.builds(lambda i, c: ("PATCH", f"/v1/memories/{i}", c), ids, change)
    delete = st.builds(lambda i: ("DELETE", f"/v1/memories/{i}", None), ids)
    wipe = st.builds(lambda u: ("DELETE", f"/v1/memories?user_id={u}", None), users)
    return st.one_of(add, search, context, listing, get, history, update, delete, wipe)


def _send(client: httpx.Client, request: Request) -> httpx.Response:
    method, path, body = request
    return client.request(method, path, json=body)


def _error(answer: httpx.Response, replace: str) -> tuple[int, str, str]:
    error = answer.json()["error"]
    return answer.status_code, error["code"], error["message"].replace(replace, "<id>")


def _check_answer(tenants: Tenants, request: Request, answer: httpx.Response) -> None:
    """No 5xx, nothing of B's, and B's memory ids answered like unknown ids."""
    method, path, body = request
    assert answer.status_code < 500, (request, answer.text)
    asked = path + json.dumps(body)
    tenants.named_by_a.update(i for i in tenants.b_memories if i in asked)
    markers = [B_TOKEN, "tenant-b", *(set(tenants.b_memories) - tenants.named_by_a)]
    leaked = [m for m in markers if m in answer.text]
    assert not leaked, (request, answer.text)
    named = [i for i in tenants.b_memories if f"/v1/memories/{i}" in path]
    if named:
        assert answer.status_code == 404, (request, answer.text)
        unknown = "".join(random.choice("0123456789abcdef") for _ in named[0])
        control = _send(tenants.a, (method, path.replace(named[0], unknown), body))
        assert _error(answer, named[0]) == _error(control, unknown)


def _check_fresh_ids(tenants: Tenants, request: Request, answer: httpx.Response) -> None:
    """B's message ids are new to A: the first time A sends one it is stored, never
    reported as a duplicate (that would tell A that B has it)."""
    method, path, body = request
    if (method, path) != ("POST", "/v1/memories"):
        return
    sent = [m["id"] for m in body["messages"] if "id" in m]
    fresh = [i for i in sent if i in B_MESSAGE_IDS and i not in tenants.used_by_a]
    tenants.used_by_a.update(sent)
    if answer.status_code == 201 and len(set(sent)) == len(sent):
        assert not set(fresh) & set(answer.json()["duplicate_ids"]), (request, answer.text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tenant_a_never_sees_or_changes_tenant_b(tenants: Tenants, data: st.DataObject) -> None:
    calls = data.draw(st.lists(_requests(tenants), min_size=1, max_size=8), label="A's calls")
    for request in calls:
        answer = _send(tenants.a, request)
        _check_answer(tenants, request, answer)
        _check_fresh_ids(tenants, request, answer)
    assert _b_state(tenants.b) == tenants.baseline


@settings(max_examples=10, deadline=None)
@given(query=st.sampled_from(QUERIES), user=st.sampled_from(B_USERS))
def test_b_sees_its_own_data_and_only_its_own(tenants: Tenants, query: str, user: str) -> None:
    answer = tenants.b.post("/v1/search", json={"query": query, "user_id": user, "limit": 50})
    assert answer.status_code == 200
    hits = answer.json()["hits"]
    assert hits and {h["memory"]["id"] for h in hits} <= set(tenants.b_memories)
    assert all(h["memory"]["scope"]["namespace"] == "tenant-b" for h in hits)
