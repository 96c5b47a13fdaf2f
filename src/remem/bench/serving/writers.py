"""Writers bench: several ``remem serve`` processes and CLI writers on one SQLite file.

Each server gets client threads that post adds of 1-3 messages with their own ids to
shared users and sessions, and every fourth add re-sends an acknowledged one to another
server (it must come back as duplicates, stored once). Meanwhile ``remem add --file``
processes write their own messages to the same users. Then the file is checked: every
acknowledged message stored once with its turn memory (``integrity.check``), through the
API and through ``remem.Memory``, and ``PRAGMA integrity_check``. Every failed request
(non-2xx, lost connection, CLI exit code other than 0) is counted.
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from remem.bench.live import SyntheticChat
from remem.bench.serving.integrity import Dump, Ledger, check, file_dump, integrity_check, worst
from remem.bench.serving.process import CONNECTION_ERRORS, Client, Server, create_key, run_remem
from remem.bench.serving.table import format_rows

TENANT = "writers"
USERS = ("ana", "ben")
SESSIONS = ("s0", "s1", "s2")
EXAMPLES = 5


@dataclass(frozen=True)
class WritersReport:
    """What ``run_writers`` found; ``lost``, ``duplicated``, ``torn`` are the worst of the
    API and file checks, ``integrity`` is SQLite's own check of the file."""

    servers: int
    cli_writers: int
    http_clients: int
    adds: int
    acknowledged: int
    resends: int
    resends_stored_again: int
    failed: int
    lost: int
    duplicated: int
    torn: int
    unexpected: int
    integrity: str
    internal_errors: int
    seconds: float
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled, torn or failed; the file intact."""
        counts = (self.failed, self.lost, self.duplicated, self.torn, self.unexpected,
                  self.resends_stored_again, self.internal_errors)  # fmt: skip
        return not any(counts) and self.integrity == "ok"

    def table(self) -> str:
        """The figures as a small table."""
        rows = [
            ("servers on one file", self.servers), ("CLI writer processes", self.cli_writers),
            ("HTTP client threads", self.http_clients), ("adds (HTTP and CLI)", self.adds),
            ("messages acknowledged", self.acknowledged),
            ("re-sent adds (to another server)", self.resends),
            ("  stored again", self.resends_stored_again), ("failed requests", self.failed),
            ("acknowledged messages lost", self.lost), ("duplicated records", self.duplicated),
            ("torn records", self.torn), ("unexpected records", self.unexpected),
            ("PRAGMA integrity_check", self.integrity),
            ("server internal errors logged", self.internal_errors),
            ("seconds", round(self.seconds, 1)),
        ]  # fmt: skip
        return format_rows(rows, self.examples)


@dataclass
class Run:
    """State the writer threads share."""

    ledger: Ledger = field(default_factory=Ledger)
    failed: list[str] = field(default_factory=list)
    resends: int = 0
    stored_again: list[str] = field(default_factory=list)
    done: int = 0
    cli_done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, what: str) -> None:
        """Note a failed request."""
        with self.lock:
            self.failed.append(what)

    def count(self) -> None:
        """Count a request done (for the progress bar)."""
        with self.lock:
            self.done += 1


def _post(client: Client, run: Run, add: str, body: Any) -> Any:
    """POST an add; returns its JSON answer when it was acknowledged, else ``None``."""
    try:
        reply = client.request("POST", "/v1/memories", body)
    except CONNECTION_ERRORS as exc:
        run.fail(f"{add}: {type(exc).__name__}: {exc}")
        return None
    finally:
        run.count()
    if reply.status != 201:
        run.fail(f"{add}: {reply.status} {reply.body[:200]!r}")
        return None
    return reply.json()


def _http_writer(urls: Sequence[str], key: str, run: Run, number: int, adds: int) -> None:
    """Post ``adds`` adds (more while CLI writers still run), round-robin over the servers;
    every fourth one re-sends an acknowledged add to another server than its first."""
    rng = random.Random(number)
    chat = SyntheticChat(seed=number)
    clients = [Client(url, key) for url in urls]
    mine: list[tuple[str, int]] = []  # acknowledged adds, and the server that took them
    try:
        for n in itertools.count():
            if n >= adds and run.cli_done.is_set():
                return
            server = (number + n) % len(clients)
            if n % 4 == 3 and mine:
                add, first = rng.choice(mine)
                _resend(clients[(first + 1) % len(clients)], run, add)
                continue
            add = f"h{number}-{n}"
            ids = [f"{add}-m{k}" for k in range(rng.randint(1, 3))]
            body = {"messages": chat.next_turns(len(ids), ids), "user_id": rng.choice(USERS),
                    "session_id": rng.choice(SESSIONS)}  # fmt: skip
            run.ledger.send(add, ids, body)
            if _post(clients[server], run, add, body) is not None:
                run.ledger.ack(add)
                mine.append((add, server))
    finally:
        for client in clients:
            client.close()


def _resend(client: Client, run: Run, add: str) -> None:
    """Send an acknowledged add again: every id must come back in ``duplicate_ids``."""
    with run.lock:
        run.resends += 1
    answer = _post(client, run, f"resend {add}", run.ledger.bodies[add])
    if answer is not None and answer["message_ids"]:
        with run.lock:
            run.stored_again.append(f"{add}: {answer['message_ids']}")


def _cli_writer(db: Path, folder: Path, run: Run, number: int, adds: int, size: int) -> None:
    """``adds`` runs of ``remem add --file`` with ``size`` messages each, one at a time."""
    rng = random.Random(1000 + number)
    chat = SyntheticChat(seed=1000 + number)
    for n in range(adds):
        add = f"cli{number}-{n}"
        ids = [f"{add}-m{k}" for k in range(size)]
        chunk = folder / f"{add}.jsonl"
        chunk.write_text("".join(json.dumps(m) + "\n" for m in chat.next_turns(size, ids)),
                         encoding="utf-8")  # fmt: skip
        run.ledger.send(add, ids)
        done = run_remem("--db", str(db), "--namespace", TENANT, "add", "--user",
                         rng.choice(USERS), "--session", rng.choice(SESSIONS),
                         "--file", str(chunk))  # fmt: skip
        run.count()
        if done.returncode == 0:
            run.ledger.ack(add)
        else:
            run.fail(f"{add}: exit {done.returncode}: {done.stderr.strip()[:200]}")


def _start(
    db: Path, folder: Path, urls: Sequence[str], key: str, run: Run, sizes: tuple[int, ...]
) -> tuple[list[threading.Thread], list[threading.Thread]]:
    """Start the HTTP writers (``clients`` per server) and the CLI writers at once."""
    clients, adds, cli_writers, cli_adds, batch = sizes
    threads = [
        threading.Thread(target=_http_writer, args=(urls, key, run, n, adds), daemon=True)
        for n in range(clients * len(urls))
    ]
    cli = [
        threading.Thread(
            target=_cli_writer, args=(db, folder, run, n, cli_adds, batch), daemon=True
        )
        for n in range(cli_writers)
    ]
    for thread in [*threads, *cli]:
        thread.start()
    return threads, cli


def _watch(
    http: Sequence[threading.Thread], cli: Sequence[threading.Thread], run: Run, progress: bool
) -> None:
    """Wait for the writers, showing the requests done; the HTTP writers are told when the
    CLI writers are done (they keep writing until then)."""
    with tqdm(desc="writes", unit="req", disable=not progress) as bar:
        while any(thread.is_alive() for thread in [*http, *cli]):
            if not any(thread.is_alive() for thread in cli):
                run.cli_done.set()
            time.sleep(0.2)
            bar.update(run.done - bar.n)
        bar.update(run.done - bar.n)


def run_writers(
    servers: int = 3,
    cli_writers: int = 2,
    clients: int = 2,
    adds: int = 40,
    cli_adds: int = 8,
    cli_batch: int = 3,
    progress: bool = True,
) -> WritersReport:
    """``servers`` servers with ``clients`` client threads each posting at least ``adds``
    adds, and ``cli_writers`` processes running ``remem add --file`` ``cli_adds`` times
    with ``cli_batch`` messages, all on one fresh file; see the module docstring."""
    started = time.perf_counter()
    run = Run()
    with tempfile.TemporaryDirectory(prefix="remem-writers-") as tmp, ExitStack() as stack:
        folder, db = Path(tmp), Path(tmp) / "shared.db"
        key = create_key(db, TENANT).secret
        procs = [stack.enter_context(Server(db, folder / f"server{n}.log"))
                 for n in range(servers)]  # fmt: skip
        for proc in procs:
            proc.start()
        sizes = (clients, adds, cli_writers, cli_adds, cli_batch)
        http, cli = _start(db, folder, [p.url for p in procs], key, run, sizes)
        _watch(http, cli, run, progress)
        with Client(procs[0].url, key) as client:
            exported = client.request("GET", "/v1/export").body.decode("utf-8")
        for proc in procs:
            proc.stop()
        internal = sum(proc.internal_errors() for proc in procs)
        found = worst([check(Dump.parse(exported.splitlines()), run.ledger),
                       check(file_dump(db, TENANT), run.ledger)])  # fmt: skip
        intact = integrity_check(db)
    examples = dict(found.examples)
    for kind, items in (("failed", run.failed), ("stored again", run.stored_again)):
        if items:
            examples[kind] = tuple(items[:EXAMPLES])
    return WritersReport(
        servers=servers, cli_writers=cli_writers, http_clients=servers * clients,
        adds=len(run.ledger.sent), acknowledged=run.ledger.acknowledged_messages(),
        resends=run.resends, resends_stored_again=len(run.stored_again),
        failed=len(run.failed), lost=found.lost, duplicated=found.duplicated, torn=found.torn,
        unexpected=found.unexpected, integrity=intact, internal_errors=internal,
        seconds=time.perf_counter() - started, examples=examples,
    )  # fmt: skip
