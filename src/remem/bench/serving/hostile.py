"""Hostile bench: every probe of ``probes`` against one server with tenants A to D.

Before the probes, A and B store a little data (B's holds a secret); the store is then
snapshotted through the API (A's and B's exports and stats, and the key list). Each probe
is sent raw over its own connection and judged by its ``Expect``; an answer that shows
B's data to another tenant, or where the server keeps its files, is a leak. Afterwards
the snapshot must be unchanged (C and D, which write valid data, are not in it).
Optionally a schemathesis run (``fuzz``) follows on the same server.
"""

from __future__ import annotations

import random
import select
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from remem.bench.serving.fuzz import FuzzReport, load_schemathesis, run_fuzz
from remem.bench.serving.probes import Expect, Fixture, Probe, all_probes
from remem.bench.serving.process import Client, Key, Reply, Server, create_key, revoke_key
from remem.bench.serving.table import format_rows

TENANTS = {"a": "tenant-a", "b": "tenant-b", "c": "tenant-c", "d": "tenant-d", "admin": "ops",
           "revoked": "tenant-a"}  # fmt: skip
SECRET = "B-SECRET: the vault code is qz4471vault"
CHUNK = 64 * 1024
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Outcome:
    """One probe's answer and what was wrong with it (``problem`` is None when fine)."""

    name: str
    method: str
    target: str
    status: int
    code: str | None
    problem: str | None


@dataclass(frozen=True)
class HostileReport:
    """What ``run_hostile`` found. ``unexpected_2xx`` counts 2xx answers to probes that
    must be refused (or answered like an unknown id); ``unlike_unknown`` foreign-id
    answers that differ from an unknown id's; ``store_changed`` names what changed."""

    requests: int
    answered_4xx: int
    answered_2xx: int
    server_errors: int
    no_answer: int
    unexpected_2xx: int
    unlike_unknown: int
    failed_checks: int
    leaks: int
    store_changed: tuple[str, ...]
    internal_errors: int
    seconds: float
    failures: tuple[Outcome, ...] = ()
    fuzz: FuzzReport | None = None

    @property
    def ok(self) -> bool:
        """Every probe answered as expected, nothing leaked or changed, the fuzz clean."""
        counts = (self.server_errors, self.no_answer, self.unexpected_2xx, self.unlike_unknown,
                  self.failed_checks, self.leaks, self.internal_errors)  # fmt: skip
        fuzzed = self.fuzz is None or self.fuzz.ok
        return not any(counts) and not self.store_changed and fuzzed

    def table(self) -> str:
        """The figures as a small table, then every failure."""
        rows = [
            ("hostile requests", self.requests), ("answered 4xx", self.answered_4xx),
            ("answered 2xx (allowed: own tenant)", self.answered_2xx),
            ("answered 5xx", self.server_errors), ("no answer", self.no_answer),
            ("unexpected 2xx", self.unexpected_2xx),
            ("foreign id unlike unknown id", self.unlike_unknown),
            ("failed checks (verbatim, fresh ids)", self.failed_checks),
            ("answers leaking tenant B", self.leaks),
            ("store changed", ", ".join(self.store_changed) or "no"),
            ("server internal errors logged", self.internal_errors),
            ("seconds", round(self.seconds, 1)),
        ]  # fmt: skip
        lines = [format_rows(rows)]
        lines += [f"  FAIL {o.method} {o.target[:80]} -> {o.status} {o.code}: {o.problem}"
                  f"  ({o.name})" for o in self.failures]  # fmt: skip
        if self.fuzz is not None:
            lines += ["", self.fuzz.table()]
        return "\n".join(lines)


# ------------------------------------------------------------------------------- wire


def encode(probe: Probe, secrets: Mapping[str, str], host: str) -> bytes:
    """The probe's request head (``\\udcXX`` in the target or a header becomes byte XX)."""
    lines = [f"{probe.method} {probe.target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if probe.auth in secrets:
        lines.append(f"Authorization: Bearer {secrets[probe.auth]}")
    elif probe.auth != "none":
        lines.append("Authorization: " + probe.auth.replace("{a}", secrets["a"]))
    if probe.content_type is not None and probe.body is not None:
        lines.append(f"Content-Type: {probe.content_type}")
    named = {name.lower() for name, _ in probe.headers}
    if probe.chunked:
        lines.append("Transfer-Encoding: chunked")
    elif probe.body is not None and "content-length" not in named:
        lines.append(f"Content-Length: {len(probe.body)}")
    lines += [f"{name}: {value}" for name, value in probe.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _pieces(probe: Probe) -> list[bytes]:
    body = probe.body or b""
    parts = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    if probe.chunked:
        return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]
    return parts


def send(probe: Probe, secrets: Mapping[str, str], host: str, port: int) -> Reply:
    """Send one probe on a new connection; stop sending the body as soon as the server
    answers (it may refuse a large body early). Status 0: no answer came."""
    with socket.create_connection((host, port), timeout=READ_TIMEOUT) as sock:
        try:
            sock.sendall(encode(probe, secrets, f"{host}:{port}"))
            for piece in _pieces(probe):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(piece)
        except OSError:
            pass  # the server closed early: read what it answered
        data = b""
        try:
            while chunk := sock.recv(CHUNK):
                data += chunk
        except OSError:
            pass
    return parse(data)


def parse(data: bytes) -> Reply:
    """An HTTP/1.1 response read to the end of the connection."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Reply(0, {}, data)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Reply(status, headers, body)


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


# ------------------------------------------------------------------------------ judge


def _leak(probe: Probe, reply: Reply, fx: Fixture) -> str | None:
    """A marker of B's data in the answer that the request did not itself contain, or
    where the server keeps its files."""
    asked = probe.target + (probe.body or b"").decode("utf-8", "replace")
    answer = reply.body.decode("utf-8", "replace")
    markers = fx.server_paths + (fx.b_markers if probe.auth != "b" else ())
    found = [m for m in markers if m in answer and m not in asked]
    return f"mentions {found[0]!r}" if found else None


def _same(reply: Reply, control: Reply, foreign: str, unknown: str) -> str | None:
    """How a foreign id's answer differs from an unknown id's (None: it does not)."""
    mine = (reply.status, reply.error_code(), _message(reply).replace(foreign, "<id>"))
    theirs = (control.status, control.error_code(), _message(control).replace(unknown, "<id>"))
    return None if mine == theirs else f"{mine} vs unknown id {theirs}"


def _message(reply: Reply) -> str:
    try:
        return str(reply.json()["error"]["message"])
    except (ValueError, TypeError, KeyError):
        return reply.body.decode("utf-8", "replace")


def judge(
    probe: Probe,
    reply: Reply,
    control: tuple[Reply, str] | None,
    fx: Fixture,
    fetch: Callable[[str, str], Reply],
) -> tuple[str, str] | None:
    """What is wrong with a probe's answer, as (kind, detail); None if nothing is.
    ``control`` is the answer to the same request with an unknown id, and that id."""
    status = reply.status
    if status == 0:
        return "no answer", reply.body[:100].decode("latin-1")
    if status >= 500:
        return "5xx", _message(reply)[:200]
    leak = _leak(probe, reply, fx)
    if leak is not None:
        return "leak", leak
    ok = 200 <= status < 300
    if probe.expect is Expect.HARMLESS:
        if not (ok or 400 <= status < 500):
            return "status", f"expected a 2xx or 4xx, got {status}"
        problem = probe.check(reply, fetch) if probe.check is not None else None
        return ("check", problem) if problem is not None else None
    if ok:
        return "unexpected 2xx", reply.body[:160].decode("utf-8", "replace")
    if not 400 <= status < 500:
        return "status", f"expected a 4xx, got {status}"
    if probe.expect is Expect.UNKNOWN and control is not None and probe.foreign:
        differs = _same(reply, control[0], probe.foreign, control[1])
        return ("unlike unknown", differs) if differs is not None else None
    return None


# ---------------------------------------------------------------------------- the run


def _keys(db: Path) -> dict[str, Key]:
    """The tenants' keys, made with ``remem keys create`` (the first one alone: it creates
    the database)."""
    names = list(TENANTS)
    made = {names[0]: create_key(db, TENANTS[names[0]])}
    with ThreadPoolExecutor(len(names) - 1) as pool:
        futures = {n: pool.submit(create_key, db, TENANTS[n], n == "admin") for n in names[1:]}
        made.update({n: f.result() for n, f in futures.items()})
    return made


def _add(url: str, key: str, body: object) -> list[str]:
    with Client(url, key) as client:
        reply = client.request("POST", "/v1/memories", body)
    if reply.status != 201:
        raise AssertionError(f"setting up the hostile bench failed: {reply.status} {reply.body!r}")
    return [m["id"] for m in reply.json()["memories"]]


def setup(url: str, keys: Mapping[str, Key], folder: Path) -> Fixture:
    """Store A's and B's data (B's with a secret, one memory pinned for history);
    ``folder`` holds the server's files."""
    a = _add(
        url,
        keys["a"].secret,
        {
            "user_id": "user-a",
            "session_id": "sa",
            "messages": [
                {"role": "user", "content": f"A's note {n}: the garden needs water"}
                for n in range(3)
            ],
        },
    )
    b_messages = tuple(f"bsecret-msg-{n}" for n in range(3))
    b = _add(url, keys["b"].secret, {"user_id": "user-b", "session_id": "sb", "messages": [
        {"role": "user", "content": f"{SECRET} (note {n})", "id": i}
        for n, i in enumerate(b_messages)]})  # fmt: skip
    with Client(url, keys["b"].secret) as client:
        client.request("PATCH", f"/v1/memories/{b[0]}", {"pinned": True})
        b_export = client.request("GET", "/v1/export").body
    with Client(url, keys["a"].secret) as client:
        a_export = client.request("GET", "/v1/export").body
    markers = ("B-SECRET", "qz4471vault", TENANTS["b"], keys["b"].secret, *b, *b_messages)
    return Fixture(a_memory=a[0], a_export=a_export, b_memories=tuple(b),
                   b_messages=b_messages, b_key_id=keys["b"].id, b_user="user-b",
                   b_export=b_export, b_markers=markers,
                   server_paths=(str(folder),))  # fmt: skip


def snapshot(url: str, keys: Mapping[str, Key]) -> dict[str, object]:
    """A's and B's exports (without the export time) and stats, and the key list."""
    shot: dict[str, object] = {}
    for name in ("a", "b"):
        with Client(url, keys[name].secret) as client:
            lines = client.request("GET", "/v1/export").body.decode("utf-8").splitlines()
            stats = client.request("GET", "/v1/stats").body
        shot[TENANTS[name]] = (sorted(line for line in lines if '"type":"header"' not in line),
                               stats)  # fmt: skip
    with Client(url, keys["admin"].secret) as client:
        shot["keys"] = client.request("GET", "/v1/keys").body
    return shot


def _run_probe(
    probe: Probe, url: str, port: int, fx: Fixture, secrets: Mapping[str, str], rng: random.Random
) -> Outcome:
    reply = send(probe, secrets, "127.0.0.1", port)
    control = None
    if probe.expect is Expect.UNKNOWN and probe.foreign:
        unknown = "".join(rng.choice("0123456789abcdef") for _ in probe.foreign)
        mirror = Probe(probe.name, probe.method, probe.target.replace(probe.foreign, unknown),
                       probe.body, probe.auth)  # fmt: skip
        control = (send(mirror, secrets, "127.0.0.1", port), unknown)
    with Client(url, secrets.get(probe.auth)) as client:
        found = judge(probe, reply, control, fx, lambda m, t: client.request(m, t))
    return Outcome(probe.name, probe.method, probe.target, reply.status, reply.error_code(),
                   None if found is None else f"{found[0]}: {found[1]}")  # fmt: skip


def run_hostile(fuzz_examples: int = 0, seed: int = 0, progress: bool = True) -> HostileReport:
    """Send every probe to a fresh server and judge the answers; then, if
    ``fuzz_examples`` is not 0, run schemathesis with that many examples per operation."""
    if fuzz_examples:
        load_schemathesis()  # fail before the probes if it is missing
    started = time.perf_counter()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="remem-hostile-") as tmp:
        db = Path(tmp) / "hostile.db"
        keys = _keys(db)
        secrets = {name: key.secret for name, key in keys.items()}
        with Server(db, Path(tmp) / "server.log") as server:
            server.start()
            revoke_key(db, keys["revoked"])  # while it runs: refused from the next request
            fx = setup(server.url, keys, Path(tmp))
            before = snapshot(server.url, keys)
            probes = all_probes(fx)
            outcomes = [
                _run_probe(p, server.url, server.port, fx, secrets, rng)
                for p in tqdm(probes, desc="hostile requests", disable=not progress)
            ]
            after = snapshot(server.url, keys)
            internal = server.internal_errors()
            fuzz = (run_fuzz(server.url, secrets["admin"], fuzz_examples, seed, progress)
                    if fuzz_examples else None)  # fmt: skip
    changed = tuple(part for part in before if before[part] != after[part])
    return _report(outcomes, changed, internal, fuzz, time.perf_counter() - started)


def _report(
    outcomes: list[Outcome],
    changed: tuple[str, ...],
    internal: int,
    fuzz: FuzzReport | None,
    seconds: float,
) -> HostileReport:
    kinds = [o.problem.partition(":")[0] for o in outcomes if o.problem]
    return HostileReport(
        requests=len(outcomes),
        answered_4xx=sum(400 <= o.status < 500 for o in outcomes),
        answered_2xx=sum(200 <= o.status < 300 for o in outcomes),
        server_errors=kinds.count("5xx"), no_answer=kinds.count("no answer"),
        unexpected_2xx=kinds.count("unexpected 2xx"),
        unlike_unknown=kinds.count("unlike unknown"),
        failed_checks=kinds.count("check") + kinds.count("status"), leaks=kinds.count("leak"),
        store_changed=changed, internal_errors=internal, seconds=seconds,
        failures=tuple(o for o in outcomes if o.problem), fuzz=fuzz,
    )  # fmt: skip
