"""Crash bench: ``kill -9`` the server during ingest, restart it, count what was lost.

One SQLite file and one key serve every trial. In a trial, client threads post adds of
1-3 messages with their own message ids (acknowledged = answered 201) until the server is
killed with SIGKILL at a random moment; then it is restarted, the tenant's export is
checked against the ledger (lost, torn, duplicated: ``integrity.check``), and the adds
whose answer never came are sent again with the same ids, as a client that retries would.
At the end the file is checked once more through ``remem.Memory`` and ``PRAGMA
integrity_check``.
"""

from __future__ import annotations

import itertools
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from remem.bench.live import SyntheticChat
from remem.bench.serving.integrity import (
    Dump,
    Findings,
    Ledger,
    check,
    file_dump,
    integrity_check,
    worst,
)
from remem.bench.serving.process import CONNECTION_ERRORS, Client, Server, create_key
from remem.bench.serving.table import format_rows

TENANT = "crash"
USERS = ("ana", "ben")
EXAMPLES = 5


@dataclass(frozen=True)
class CrashReport:
    """What ``run_crash`` found. ``acknowledged`` counts messages answered with 201;
    ``in_flight_stored`` the adds in flight at a kill found stored whole after the
    restart; ``lost``, ``torn`` and ``duplicated`` are the worst over every check (after
    each restart and on the file at the end); ``failed`` counts non-201 answers from a
    live server (a refused connection after the kill is expected, not a failure)."""

    trials: int
    adds: int
    acknowledged: int
    in_flight: int
    in_flight_stored: int
    resent: int
    lost: int
    torn: int
    duplicated: int
    unexpected: int
    failed: int
    integrity: str
    seconds: float
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No acknowledged write lost, nothing torn or doubled, the file intact."""
        return (self.lost, self.torn, self.duplicated, self.unexpected, self.failed) == (
            0, 0, 0, 0, 0) and self.integrity == "ok"  # fmt: skip

    def table(self) -> str:
        """The figures as a small table."""
        rows = [
            ("trials (kill -9 during ingest)", self.trials), ("adds sent", self.adds),
            ("messages acknowledged (201)", self.acknowledged),
            ("adds in flight at a kill", self.in_flight),
            ("  of which stored whole (committed, unanswered)", self.in_flight_stored),
            ("adds resent after restart (same ids)", self.resent),
            ("acknowledged messages lost", self.lost), ("torn records", self.torn),
            ("duplicated records", self.duplicated), ("unexpected records", self.unexpected),
            ("failed requests", self.failed), ("PRAGMA integrity_check", self.integrity),
            ("seconds", round(self.seconds, 1)),
        ]  # fmt: skip
        return format_rows(rows, self.examples)


@dataclass
class Trial:
    """One ingest between a start and a kill: counters shared by the client threads."""

    number: int
    ledger: Ledger
    failed: list[str] = field(default_factory=list)
    adds: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post_until_gone(url: str, key: str, trial: Trial, client_no: int, seed: int) -> None:
    """Post adds until the connection fails (the server was killed)."""
    rng = random.Random(seed)
    chat = SyntheticChat(seed=seed)
    with Client(url, key) as client:
        for n in itertools.count():
            add = f"t{trial.number}-c{client_no}-{n}"
            ids = [f"{add}-m{k}" for k in range(rng.randint(1, 3))]
            body = {"messages": chat.next_turns(len(ids), ids), "user_id": rng.choice(USERS),
                    "session_id": f"s{trial.number % 4}"}  # fmt: skip
            trial.ledger.send(add, ids, body)
            with trial.lock:
                trial.adds += 1
            try:
                reply = client.request("POST", "/v1/memories", body)
            except CONNECTION_ERRORS:
                return
            if reply.status == 201:
                trial.ledger.ack(add)
            else:
                with trial.lock:
                    trial.failed.append(f"{add}: {reply.status} {reply.body[:200]!r}")


def _ingest_and_kill(server: Server, key: str, trial: Trial, clients: int, delay: float) -> None:
    """Run the client threads, SIGKILL the server after ``delay`` seconds, join them."""
    threads = [
        threading.Thread(target=_post_until_gone, name=f"crash-client-{c}",
                         args=(server.url, key, trial, c, trial.number * 100 + c), daemon=True)
        for c in range(clients)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(delay)
    server.kill()
    for thread in threads:
        thread.join(timeout=120)


def _resend(url: str, key: str, ledger: Ledger, failed: list[str]) -> int:
    """Send every unacknowledged add again with the same ids; returns how many."""
    pending = ledger.pending()
    with Client(url, key) as client:
        for add in pending:
            reply = client.request("POST", "/v1/memories", ledger.bodies[add])
            if reply.status == 201:
                ledger.ack(add)
            else:
                failed.append(f"resend {add}: {reply.status} {reply.body[:200]!r}")
    return len(pending)


def _api_check(url: str, key: str, ledger: Ledger) -> tuple[Findings, int]:
    """Check the tenant's export through the API; also returns how many of the pending
    adds were stored whole (committed, but killed before the answer went out)."""
    with Client(url, key) as client:
        reply = client.request("GET", "/v1/export")
    dump = Dump.parse(reply.body.decode("utf-8").splitlines())
    stored = {str(m["id"]) for m in dump.messages}
    whole = sum(all(i in stored for i in ledger.sent[add]) for add in ledger.pending())
    return check(dump, ledger), whole


def _restart(
    server: Server, key: str, ledger: Ledger, failed: list[str]
) -> tuple[Findings, int, int]:
    """Start the server again, check what survived the kill (also: how many unanswered
    adds were stored whole), then send the unanswered adds again (also: how many)."""
    server.start()
    found, whole = _api_check(server.url, key, ledger)
    return found, whole, _resend(server.url, key, ledger, failed)


def run_crash(
    trials: int = 50,
    clients: int = 2,
    max_delay: float = 1.5,
    seed: int = 7,
    progress: bool = True,
) -> CrashReport:
    """Kill the server ``trials`` times during ingest, each after a random 0.05 to
    ``max_delay`` seconds, restarting and checking after each kill; see the module doc."""
    rng = random.Random(seed)
    ledger, failed, checks = Ledger(), list[str](), list[Findings]()
    started = time.perf_counter()
    adds = in_flight = committed = resent = 0
    with tempfile.TemporaryDirectory(prefix="remem-crash-") as tmp:
        db = Path(tmp) / "crash.db"
        key = create_key(db, TENANT).secret
        with Server(db, Path(tmp) / "server.log") as server:
            for number in tqdm(range(trials + 1), desc="crash trials", disable=not progress):
                found, whole, sent = _restart(server, key, ledger, failed)
                checks.append(found)
                committed, resent = committed + whole, resent + sent
                if number == trials:  # the last restart: check once more, and stop
                    checks.append(_api_check(server.url, key, ledger)[0])
                    break
                trial = Trial(number, ledger)
                _ingest_and_kill(server, key, trial, clients, rng.uniform(0.05, max_delay))
                adds, in_flight = adds + trial.adds, in_flight + len(ledger.pending())
                failed += trial.failed
            server.stop()
        checks.append(check(file_dump(db, TENANT), ledger))
        intact = integrity_check(db)
    found = worst(checks)
    examples = dict(found.examples)
    if failed:
        examples["failed"] = tuple(failed[:EXAMPLES])
    return CrashReport(
        trials=trials, adds=adds, acknowledged=ledger.acknowledged_messages(),
        in_flight=in_flight, in_flight_stored=committed, resent=resent, lost=found.lost,
        torn=found.torn, duplicated=found.duplicated, unexpected=found.unexpected,
        failed=len(failed), integrity=intact, seconds=time.perf_counter() - started,
        examples=examples,
    )  # fmt: skip
