"""Load bench: a bounded loopback load test of ``remem serve`` with the default embedder.

After a short prefill (so searches have something to find) and a few uncounted warm-up
requests, ``clients`` threads each keep one connection and send, until ``duration``
seconds have passed, a mix of one-message adds (with their own ids) and searches. It
reports requests per second and p50/p99 latency for each, and the errors (any non-2xx or
lost connection). Finally every acknowledged add is looked up in the tenant's export.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from remem.bench.live import SyntheticChat, live_queries
from remem.bench.metrics import percentile
from remem.bench.serving.integrity import Dump, Ledger, check
from remem.bench.serving.process import CONNECTION_ERRORS, Client, Server, create_key

TENANT = "load"
USERS = ("ana", "ben")
PREFILL_SESSIONS = 3  # of 20 turns each, per user
WARMUP = 3  # uncounted requests of each kind
EXAMPLES = 5


@dataclass(frozen=True)
class Timing:
    """One kind of request: how many, per second, latency percentiles, errors."""

    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def of(cls, latencies: Sequence[float], errors: int, seconds: float) -> Timing:
        """From the latencies (ms) of the successful requests."""
        p50 = percentile(latencies, 50) if latencies else 0.0
        p99 = percentile(latencies, 99) if latencies else 0.0
        count = len(latencies) + errors
        return cls(count, round(count / seconds, 1) if seconds else 0.0, round(p50, 2),
                   round(p99, 2), errors)  # fmt: skip


@dataclass(frozen=True)
class LoadReport:
    """What ``run_load`` measured; ``lost`` counts acknowledged adds missing afterwards."""

    duration: float
    clients: int
    search_share: float
    requests: int
    per_second: float
    errors: int
    lost: int
    add: Timing
    search: Timing
    embedder: str
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No request failed and no acknowledged add is missing."""
        return self.errors == 0 and self.lost == 0

    def table(self) -> str:
        """A header line and one row per kind of request."""
        head = (f"load  {self.clients} clients, {self.duration:g} s, "
                f"{self.search_share:.0%} searches, embedder {self.embedder}")  # fmt: skip
        lines = [head, f"{'':<8}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
                       f"{'errors':>8}"]  # fmt: skip
        for name, t in (("add", self.add), ("search", self.search)):
            lines.append(f"{name:<8}{t.requests:>10}{t.per_second:>9.1f}{t.p50_ms:>9.1f}"
                         f"{t.p99_ms:>9.1f}{t.errors:>8}")  # fmt: skip
        lines.append(f"{'total':<8}{self.requests:>10}{self.per_second:>9.1f}{'':>18}"
                     f"{self.errors:>8}")  # fmt: skip
        lines.append(f"acknowledged adds lost afterwards: {self.lost}")
        lines += [f"  e.g. {e}" for e in self.examples]
        return "\n".join(lines)


@dataclass
class Tally:
    """Latencies and errors of one client thread."""

    adds: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)
    add_errors: int = 0
    search_errors: int = 0
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, what: str) -> None:
        """Count a failed request of ``kind`` (add or search), keeping a few examples."""
        if kind == "add":
            self.add_errors += 1
        else:
            self.search_errors += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{kind}: {what}"[:300])


def _one(client: Client, kind: str, body: object, tally: Tally) -> float | None:
    """Send one request; its latency in ms, or None (and an error noted) if it failed."""
    path = "/v1/memories" if kind == "add" else "/v1/search"
    started = time.perf_counter()
    try:
        reply = client.request("POST", path, body)
    except CONNECTION_ERRORS as exc:
        tally.fail(kind, f"{type(exc).__name__}: {exc}")
        return None
    took = (time.perf_counter() - started) * 1000
    if reply.status not in (200, 201):
        tally.fail(kind, f"{reply.status} {reply.body[:200]!r}")
        return None
    return took


def _client(url: str, key: str, number: int, share: float, due: float, ledger: Ledger,
            tally: Tally) -> None:  # fmt: skip
    """Mix adds and searches on one connection until ``due`` (a monotonic time)."""
    rng = random.Random(number)
    chat = SyntheticChat(seed=500 + number)
    queries = live_queries(200, seed=number)
    with Client(url, key) as client:
        n = 0
        while time.monotonic() < due:
            n += 1
            if rng.random() < share:
                query = {"query": queries[n % len(queries)], "user_id": rng.choice(USERS)}
                took = _one(client, "search", query, tally)
                if took is not None:
                    tally.searches.append(took)
                continue
            add, user = f"c{number}-{n}", rng.choice(USERS)
            body = {"messages": chat.next_turns(1, [add]), "user_id": user,
                    "session_id": f"live-{number}"}  # fmt: skip
            ledger.send(add, [add], body)
            took = _one(client, "add", body, tally)
            if took is not None:
                ledger.ack(add)
                tally.adds.append(took)


def _prefill(url: str, key: str) -> None:
    """A few sessions per user, then uncounted warm-up searches and adds."""
    chat = SyntheticChat(seed=99)
    warm = Tally()
    with Client(url, key) as client:
        for user in USERS:
            for session, messages in chat.sessions(20 * PREFILL_SESSIONS):
                _one(client, "add", {"messages": messages, "user_id": user,
                                     "session_id": session}, warm)  # fmt: skip
        for n, query in enumerate(live_queries(WARMUP, seed=98)):
            _one(client, "search", {"query": query, "user_id": USERS[n % 2]}, warm)
            _one(client, "add", {"messages": chat.next_turns(1), "user_id": USERS[n % 2]}, warm)
    if warm.examples:
        raise AssertionError(f"the load bench's prefill failed: {warm.examples}")


def _drive(url: str, key: str, clients: int, share: float, duration: float, ledger: Ledger,
           progress: bool) -> list[Tally]:  # fmt: skip
    """Run the client threads for ``duration`` seconds, with a progress bar in seconds."""
    tallies = [Tally() for _ in range(clients)]
    due = time.monotonic() + duration
    threads = [threading.Thread(target=_client, name=f"load-client-{n}", daemon=True,
                                args=(url, key, n, share, due, ledger, tallies[n]))
               for n in range(clients)]  # fmt: skip
    for thread in threads:
        thread.start()
    with tqdm(total=round(duration), desc="load", unit="s", disable=not progress) as bar:
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.25)
            bar.update(min(round(duration), round(duration - (due - time.monotonic()))) - bar.n)
    for thread in threads:
        thread.join()
    return tallies


def run_load(
    duration: float = 10.0,
    clients: int = 4,
    search_share: float = 0.5,
    progress: bool = True,
) -> LoadReport:
    """Load a fresh ``remem serve`` for ``duration`` seconds with ``clients`` clients,
    ``search_share`` of the requests searches, the rest adds; see the module doc."""
    ledger = Ledger()
    with tempfile.TemporaryDirectory(prefix="remem-load-") as tmp:
        db = Path(tmp) / "load.db"
        key = create_key(db, TENANT).secret
        with Server(db, Path(tmp) / "server.log") as server:
            server.start()
            _prefill(server.url, key)
            started = time.perf_counter()
            tallies = _drive(server.url, key, clients, search_share, duration, ledger, progress)
            elapsed = time.perf_counter() - started
            with Client(server.url, key) as client:
                exported = client.request("GET", "/v1/export").body.decode("utf-8")
                embedder = client.request("GET", "/v1/stats").json().get("embedder", "")
    found = check(Dump.parse(exported.splitlines()), ledger)
    add = Timing.of([t for x in tallies for t in x.adds], sum(x.add_errors for x in tallies),
                    elapsed)  # fmt: skip
    search = Timing.of([t for x in tallies for t in x.searches],
                       sum(x.search_errors for x in tallies), elapsed)  # fmt: skip
    return LoadReport(
        duration=duration, clients=clients, search_share=search_share,
        requests=add.requests + search.requests,
        per_second=round((add.requests + search.requests) / elapsed, 1),
        errors=add.errors + search.errors, lost=found.lost, add=add, search=search,
        embedder=str(embedder), examples=tuple(e for x in tallies for e in x.examples)[:EXAMPLES],
    )  # fmt: skip
