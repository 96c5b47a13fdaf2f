"""What a store holds after a bench, against what its clients were told.

A ``Ledger`` records every add a client sent (its message ids) and which ones were
acknowledged. ``check`` compares it with a tenant's export (through ``GET /v1/export`` or
``Memory.export`` on the file): acknowledged messages missing (lost), messages stored or
cited twice (duplicated), and torn records: a turn memory whose message is missing, a
message without its turn memory, or an add only partly stored.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remem.engine import Memory

EXAMPLES = 5  # problem ids kept per kind


@dataclass
class Ledger:
    """Adds sent by the bench's clients (thread-safe): message ids, bodies, acknowledgements."""

    sent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bodies: dict[str, Any] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, add: str, ids: Sequence[str], body: Any = None) -> None:
        """Note an add (and the request body, to send it again) before it is sent."""
        with self.lock:
            self.sent[add] = tuple(ids)
            self.bodies[add] = body

    def ack(self, add: str) -> None:
        """Note that the add was acknowledged (201, or a CLI exit code of 0)."""
        with self.lock:
            self.acked.add(add)

    def pending(self) -> list[str]:
        """Adds sent but not acknowledged (their fate is unknown)."""
        with self.lock:
            return [add for add in self.sent if add not in self.acked]

    def acknowledged_messages(self) -> int:
        """Messages in acknowledged adds."""
        with self.lock:
            return sum(len(self.sent[add]) for add in self.acked)


@dataclass(frozen=True)
class Dump:
    """A tenant's export: message rows and memory rows."""

    messages: list[dict[str, Any]]
    memories: list[dict[str, Any]]

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Dump:
        """Read export lines (JSONL: a header, then message, memory and event rows)."""
        rows = [json.loads(line) for line in lines if line.strip()]
        return cls([r for r in rows if r.get("type") == "message"],
                   [r for r in rows if r.get("type") == "memory"])  # fmt: skip


def file_dump(path: Path, tenant: str) -> Dump:
    """The tenant's export read straight from the SQLite file with ``remem.Memory``."""
    with tempfile.TemporaryDirectory(prefix="remem-check-") as tmp, Memory(str(path)) as memory:
        target = Path(tmp) / "export.jsonl"
        memory.tenant(tenant).export(target)
        return Dump.parse(target.read_text("utf-8").splitlines())


def integrity_check(path: Path) -> str:
    """SQLite's ``PRAGMA integrity_check`` of the file: ``ok`` or the problems it lists."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(row[0]) for row in rows)


@dataclass(frozen=True)
class Findings:
    """Problems found in one dump: counts, and a few ids of each kind."""

    stored: int
    lost: int
    duplicated: int
    torn: int
    unexpected: int
    examples: Mapping[str, tuple[str, ...]]


def check(dump: Dump, ledger: Ledger) -> Findings:
    """Compare a dump with the ledger (see the module docstring for what counts)."""
    with ledger.lock:
        sent, acked = dict(ledger.sent), set(ledger.acked)
    stored = Counter(str(m["id"]) for m in dump.messages)
    cited = Counter(str(s) for m in dump.memories if m["kind"] == "turn" for s in m["source_ids"])
    known = {i for ids in sent.values() for i in ids}
    lost = sorted(i for add in acked for i in sent[add] if i not in stored)
    duplicated = sorted({i for i, n in stored.items() if n > 1} | {i for i, n in cited.items()
                                                                   if n > 1})  # fmt: skip
    torn = sorted({i for i in cited if i not in stored} | {i for i in stored if i not in cited})
    torn += sorted(add for add, ids in sent.items() if 0 < sum(i in stored for i in ids) < len(ids))
    unexpected = sorted(i for i in stored if i not in known)
    found = {"lost": lost, "duplicated": duplicated, "torn": torn, "unexpected": unexpected}
    return Findings(stored=len(stored), lost=len(lost), duplicated=len(duplicated),
                    torn=len(torn), unexpected=len(unexpected),
                    examples={k: tuple(v[:EXAMPLES]) for k, v in found.items() if v})  # fmt: skip


def worst(findings: Sequence[Findings]) -> Findings:
    """The largest count of each kind over several checks (one dump per check)."""
    examples: dict[str, tuple[str, ...]] = {}
    for found in findings:
        for kind, ids in found.examples.items():
            examples[kind] = tuple(dict.fromkeys([*examples.get(kind, ()), *ids]))[:EXAMPLES]
    return Findings(
        stored=max((f.stored for f in findings), default=0),
        lost=max((f.lost for f in findings), default=0),
        duplicated=max((f.duplicated for f in findings), default=0),
        torn=max((f.torn for f in findings), default=0),
        unexpected=max((f.unexpected for f in findings), default=0),
        examples=examples,
    )
