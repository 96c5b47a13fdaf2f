"""Typed, frozen records that flow through remem: messages, memories, hits, events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from remem.util import replaced

MemoryKind = Literal["turn", "keyphrase", "fact", "event", "profile", "summary", "procedure"]
MEMORY_KINDS: tuple[str, ...] = (
    "turn",
    "keyphrase",
    "fact",
    "event",
    "profile",
    "summary",
    "procedure",
)
ROLES: tuple[str, ...] = ("user", "assistant", "system", "tool")
EventAction = Literal[
    "ADD", "UPDATE", "SUPERSEDE", "ARCHIVE", "DELETE", "RESTORE", "INVALIDATE", "MERGE", "NOOP"
]


@dataclass(frozen=True)
class Scope:
    """Who a message or memory belongs to; empty fields mean 'not scoped by this'.

    ``namespace`` is the tenant: the server derives it from the API key, the library
    defaults it. Isolation by namespace is enforced inside the store's queries.
    """

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    namespace: str = "default"


@dataclass(frozen=True)
class Message:
    """One message as given, kept verbatim in the episodic log."""

    id: str
    scope: Scope
    role: str
    content: str
    speaker: str | None
    occurred_at: datetime | None
    recorded_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryRecord:
    """A retrievable unit derived from messages, citing them in ``source_ids``."""

    id: str
    kind: str
    text: str
    scope: Scope
    source_ids: tuple[str, ...]
    occurred_at: datetime | None
    created_at: datetime
    updated_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    strength: float = 1.0
    access_count: int = 0
    last_accessed_at: datetime | None = None
    pinned: bool = False
    expires_at: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    expired_at: datetime | None = None
    superseded_by: str | None = None


def recalled(
    record: MemoryRecord, strength: float, access_count: int, at: datetime | None
) -> MemoryRecord:
    """``record`` with new recall statistics (a search brings each recalled hit up to
    date this way: ``util.replaced``)."""
    return replaced(record, strength=strength, access_count=access_count, last_accessed_at=at)


@dataclass(frozen=True)
class MemoryEvent:
    """One change to a memory, as kept in the audit log."""

    id: int
    memory_id: str
    action: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class AddResult:
    """What ``add`` stored: new message ids, their turn memories (one per new message),
    skipped duplicates, and memories derived from the session as a whole (a summary)
    and, with an LLM, by the ``derive`` job run inline (``add(wait=True)``). ``job``:
    the job that derives from the new messages (``None`` without an LLM); after
    ``wait=False`` it is still pending."""

    message_ids: tuple[str, ...]
    memories: tuple[MemoryRecord, ...]
    duplicate_ids: tuple[str, ...] = ()
    derived: tuple[MemoryRecord, ...] = ()
    job: JobRun | None = None


@dataclass(frozen=True)
class SearchHit:
    """One retrieved memory: its final score, and in ``scores`` each channel's raw score
    and what each step added (time, graph, neighbours, session, ...)."""

    memory: MemoryRecord
    score: float
    scores: Mapping[str, float]
    rank: int
    channels: tuple[str, ...] = ()  # the candidate channels that found it (bm25, dense, time)

    @property
    def source_ids(self) -> tuple[str, ...]:
        """Ids of the messages this memory came from."""
        return self.memory.source_ids

    @property
    def text(self) -> str:
        """The memory's text."""
        return self.memory.text


@dataclass(frozen=True)
class SearchResults:
    """Hits in rank order, plus what was asked and how."""

    query: str
    recipe: str
    hits: tuple[SearchHit, ...]
    took_ms: float
    explain: Mapping[str, Any] | None = None

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, index: int) -> SearchHit:
        return self.hits[index]


@dataclass(frozen=True)
class Forgotten:
    """One memory a forgetting policy archived (or, in a dry run, would archive): the
    memory (as archived: ``expired_at`` set), its retention when decided (``None`` under
    the ``ttl`` policy) and why, as the ARCHIVE event in its history says."""

    memory: MemoryRecord
    retention: float | None
    reason: str


@dataclass(frozen=True)
class ForgetReport:
    """What ``Memory.forget`` did: the policy and threshold, when it decided, how many
    current memories it examined, those it archived (a dry run writes nothing and lists
    what it would archive), the pinned memories it spared that would otherwise have
    gone, and ``changed``: memories that qualified but were recalled or updated before
    the archive was written, and so were left as they are."""

    policy: str
    threshold: float | None
    dry_run: bool
    at: datetime
    examined: int
    archived: tuple[Forgotten, ...]
    pinned_kept: int = 0
    changed: int = 0


@dataclass(frozen=True)
class CompactReport:
    """What ``Memory.compact`` did. ``size_before``/``size_after``: the store's bytes on
    disk (SQLite: the file and its write-ahead log; PostgreSQL: remem's tables with their
    indexes and TOAST). ``swept``: leftovers of earlier deletions it removed (audit
    snapshots of deleted memories, entity rows nothing names, term counts at zero).
    ``complete``: every step ran to the end; ``False`` when another connection was
    reading, so the SQLite write-ahead log could not be emptied: run it again."""

    size_before: int
    size_after: int
    swept: int
    complete: bool


@dataclass(frozen=True)
class Entity:
    """A name, title or key phrase of a scope's entity table, with how it is used.

    ``strength`` sums the weights of its mentions, each decayed by the sessions since
    (a name weighs 1, a key phrase up to 1 by its surprisal); ``memory_ids`` are the
    memories naming it, oldest first.
    """

    key: str
    name: str
    kind: str
    mentions: int
    sessions: int
    strength: float
    first_seen: datetime | None
    last_seen: datetime | None
    memory_ids: tuple[str, ...]


@dataclass(frozen=True)
class Stats:
    """Counts over one namespace (optionally one scope)."""

    messages: int
    memories: int
    memories_by_kind: Mapping[str, int]
    events: int
    users: int
    sessions: int
    embedder: str | None
    schema_version: int
    path: str | None = None
    jobs: Mapping[str, int] = field(default_factory=dict)  # job backlog by status


@dataclass(frozen=True)
class ApiKey:
    """An API key of the REST server, as listed (the key itself is shown once, at creation,
    and only its hash is kept). A key belongs to one tenant (a namespace); an admin key
    also manages keys."""

    id: str
    tenant: str
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


JobStatus = Literal["pending", "running", "done", "failed"]
JOB_STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class Job:
    """A background job in the store's queue (``remem.jobs`` runs them).

    ``kind`` names its handler (``derive``); ``scope`` and ``message_ids`` say what it
    works on. ``status``: ``pending`` (waits until ``run_after``), ``running`` (claimed
    by ``worker`` with ``token`` until ``lease_until``; after that anyone may take it
    over), ``done`` (``result`` holds counts, LLM calls, tokens and seconds) or
    ``failed`` (it ran ``attempts`` times; ``error`` says why, ``retry_job`` runs it
    again). ``error`` keeps the reason of the last failure, also once a retry succeeds.
    """

    id: str
    kind: str
    scope: Scope
    message_ids: tuple[str, ...]
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    run_after: datetime | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    token: str | None = None
    worker: str | None = None
    lease_until: datetime | None = None
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRun:
    """One run of a job, as the runner saw it end: ``status`` is the job's status after
    the run (``done``; ``pending`` when it will be retried after ``retry_in`` seconds;
    ``failed`` after its last attempt; ``lost`` when its lease ran out and another worker
    took it over, so this run wrote nothing). ``memories``: what the run wrote."""

    job_id: str
    kind: str
    status: str
    attempts: int = 0
    error: str | None = None
    retry_in: float | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    memories: tuple[MemoryRecord, ...] = ()


@dataclass(frozen=True)
class JobsReport:
    """What ``Memory.run_jobs`` did: each run in order, and how many ended each way."""

    runs: tuple[JobRun, ...] = ()

    @property
    def done(self) -> int:
        """Runs that completed their job."""
        return sum(r.status == "done" for r in self.runs)

    @property
    def failed(self) -> int:
        """Runs that failed for the last time (the job is ``failed``)."""
        return sum(r.status == "failed" for r in self.runs)

    @property
    def retrying(self) -> int:
        """Runs that failed and left their job pending for another attempt."""
        return sum(r.status == "pending" for r in self.runs)
