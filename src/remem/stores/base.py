"""The store contract every backend implements, and the data it exchanges."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.models import (
    ApiKey,
    CompactReport,
    Job,
    MemoryEvent,
    MemoryRecord,
    Message,
    Scope,
    Stats,
)

# (strength in days, the previous recall or the storing, this recall) -> new strength:
# the reinforcement rule ``Store.record_access`` applies (``remem.evolution.retention``)
Reinforce = Callable[[float, datetime, datetime], float]


_CALLS = itertools.count()  # ``Store.reads``'s default


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories a read may see. ``namespace`` is always enforced.

    Scope fields left ``None`` do not filter; an empty string matches exactly the memories
    stored without that field (``user_id=""``: no user). ``metadata`` matches by equality
    on top-level keys (``None`` matches a stored null). ``since``/``until`` bound when a
    memory happened (``occurred_at``, else when it was recorded), inclusive.
    ``current_only`` hides superseded, invalidated and expired memories. ``as_of``, when
    set, admits instead the memories that were current at that time (valid from
    ``valid_from``, else their storing, until ``valid_to``, their archiving or their
    expiry: ``remem.evolution.history``), whatever ``current_only`` says.
    """

    namespace: str = "default"
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    kinds: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[str, ...] = ()
    current_only: bool = True
    as_of: datetime | None = None

    @property
    def scope_key(self) -> ScopeKey:
        """The scope part of the filter: what a scope index covers."""
        return ScopeKey(self.namespace, self.user_id, self.agent_id, self.session_id)


@dataclass(frozen=True)
class ScopeKey:
    """A scope as reads name it: ``None`` fields span every value, ``""`` means unset."""

    namespace: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class NewMemory:
    """A memory to insert, with its embedding and the text the keyword index sees."""

    record: MemoryRecord
    index_text: str
    vector: npt.NDArray[np.float32] | None


@dataclass(frozen=True)
class Retire:
    """An existing current memory a write ends (consolidation's UPDATE, MERGE or
    INVALIDATE): its ``valid_to`` becomes ``at`` and ``superseded_by`` the batch's memory
    that replaces it (``None``: invalidated, nothing replaces it, and ``expired_at``
    becomes the commit time, so it is no longer current either), logged as ``action``
    with ``reason``. It stays stored, readable with ``as_of`` and in history mode. A
    memory that is no longer current when the batch commits fails the whole batch with
    ``ConflictError`` (another writer got there first; the caller retries)."""

    memory_id: str
    superseded_by: str | None
    at: datetime
    action: str = "SUPERSEDE"
    reason: str = ""
    namespace: str = "default"


@dataclass(frozen=True)
class Note:
    """An event about an existing memory that changes nothing in it (consolidation's
    NOOP: a candidate restated it), logged as ``action`` with ``reason``. The memory must
    be current when the batch commits (or be written by the batch), else the batch fails
    with ``ConflictError``."""

    memory_id: str
    action: str
    reason: str
    namespace: str = "default"


@dataclass(frozen=True)
class NewJob:
    """A background job to enqueue with the batch, atomically with the messages it
    names (``kind`` names its handler; ``payload`` is plain JSON).

    ``batch_size`` above 0 coalesces: if a job of the same kind, exact scope and payload
    is still pending, never run and unclaimed, and has room for these ids (at most
    ``batch_size`` in all), they are appended to it instead, so messages added one at a
    time are derived in batches (one LLM call each). ``Store.job_of`` finds where
    they went."""

    id: str
    kind: str
    scope: Scope
    message_ids: tuple[str, ...]
    payload: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 0


@dataclass(frozen=True)
class JobClaim:
    """A worker's hold on a job. A batch carrying it commits only while the claim still
    holds (the job was not reclaimed after its lease ran out) and marks the job done in
    the same transaction, so a job's results are written exactly once. ``result``: what
    the run did (counts, LLM calls, tokens, seconds), kept on the done job."""

    job_id: str
    token: str
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteBatch:
    """Everything one ``add`` writes, applied in one transaction or not at all.

    ``singleton_kinds``: a written memory of one of these kinds (a session summary)
    supersedes every other current memory of its kind in exactly its scope, inside the
    same transaction, so concurrent writers never leave two current ones.
    ``retire``: existing memories this batch ends (see ``Retire``); ``jobs``: jobs to
    enqueue; ``complete``: the job whose results these are (see ``JobClaim``);
    ``notes``: events about memories the batch does not change (see ``Note``). A new
    memory whose attributes carry a ``text_hash`` (consolidation's normalised-text hash)
    fails the batch with ``ConflictError`` if a current derived memory of its user/agent
    not retired by the batch already carries the same one: two writers consolidating
    the same fact at once leave one copy.
    """

    messages: tuple[Message, ...] = ()
    memories: tuple[NewMemory, ...] = ()
    singleton_kinds: tuple[str, ...] = ()
    actor: str = "remem"
    reason: str = "add"
    retire: tuple[Retire, ...] = ()
    jobs: tuple[NewJob, ...] = ()
    complete: JobClaim | None = None
    notes: tuple[Note, ...] = ()


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # a ``MemoryPatch`` field left as it is


@dataclass(frozen=True)
class MemoryPatch:
    """A typed change to one memory; fields left ``KEEP`` stay as they are.

    A new ``text`` comes with its ``index_text``, ``vector`` and ``attributes`` (the
    enrichment of the old text no longer holds)."""

    text: str | _Keep = KEEP
    index_text: str | _Keep = KEEP
    vector: npt.NDArray[np.float32] | _Keep | None = KEEP
    attributes: Mapping[str, Any] | _Keep = KEEP
    metadata: Mapping[str, Any] | _Keep = KEEP
    pinned: bool | _Keep = KEEP
    expires_at: datetime | _Keep | None = KEEP
    importance: float | _Keep = KEEP

    def changes(self) -> dict[str, Any]:
        """The record fields this patch sets (not the index text or vector)."""
        names = ("text", "attributes", "metadata", "pinned", "expires_at", "importance")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not KEEP}


@dataclass(frozen=True)
class EntityRow:
    """One row of a scope's entity table: a name, a title or a key phrase."""

    key: str
    name: str
    kind: str


@dataclass(frozen=True)
class IndexRow:
    """What a scope index keeps of one memory (``Store.changes`` returns these)."""

    id: str
    kind: str
    user_id: str
    agent_id: str
    session_id: str
    position: int
    occurred_at: datetime | None
    created_at: datetime
    expires_at: datetime | None
    current: bool
    metadata: Mapping[str, Any]
    attributes: Mapping[str, Any]
    text: str
    index_text: str
    vector: npt.NDArray[np.float32] | None
    importance: float = 0.5
    pinned: bool = False
    strength: float = 1.0
    last_accessed_at: datetime | None = None
    source_ids: tuple[str, ...] = ()  # the messages it cites (retrieval lifts their turns)
    # the period it was current in: from ``valid_from`` (else its storing) until
    # ``valid_to``, its archiving or its superseding (``None``: not ended)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    # the memory as ``get_memories`` returns it (a search's hits are read from the scope
    # index, not the store, when the index kept it); ``None`` when a store does not say
    record: MemoryRecord | None = None


@dataclass(frozen=True)
class AccessRow:
    """A memory's recall statistics, changed by ``Store.record_access`` alone (its indexed
    content did not change): scope indexes update them in place."""

    id: str
    strength: float
    access_count: int
    last_accessed_at: datetime | None


@dataclass(frozen=True)
class Changes:
    """What changed in a scope after a revision: ids deleted, then rows written (their
    latest state), up to ``revision``; ``accessed``: rows whose recall statistics alone
    changed (rows in ``rows`` carry theirs already)."""

    revision: int
    rows: tuple[IndexRow, ...] = ()
    deleted: tuple[str, ...] = ()
    accessed: tuple[AccessRow, ...] = ()


@dataclass(frozen=True)
class SessionInfo:
    """One exact session's size (messages logged) and its current summary."""

    messages: int
    summary: MemoryRecord | None


def session_key(user_id: str | None, agent_id: str | None, session_id: str | None) -> str:
    """How a conversation (a user/agent's session) is named in scope indexes."""
    return f"{user_id or ''}\x1f{agent_id or ''}\x1f{session_id or ''}"


class Store(ABC):
    """A backend for the message log, memories, vectors and the audit log.

    Every method takes the namespace (directly or inside a ``MemoryFilter``) and never
    returns another namespace's rows. Writes are atomic: on error nothing is written.
    """

    @abstractmethod
    def bind_embedder(self, model_id: str, dimensions: int) -> None:
        """Record the embedder on first use; raise ``ConfigError`` if another one built it."""

    @abstractmethod
    def write(self, batch: WriteBatch) -> tuple[str, ...]:
        """Insert messages and memories atomically; return ids of messages already present
        (with identical content), which are skipped with the memories citing them."""

    @abstractmethod
    def existing_messages(self, scope: Scope, ids: Sequence[str]) -> dict[str, Message]:
        """Messages among ``ids`` that already exist for this scope's user/agent."""

    @abstractmethod
    def get_memories(self, namespace: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """Memories by id, in the order asked; unknown ids are left out."""

    @abstractmethod
    def list_memories(
        self, flt: MemoryFilter, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        """Memories matching the filter, newest first."""

    @abstractmethod
    def get_messages(self, namespace: str, scope: Scope, ids: Sequence[str]) -> list[Message]:
        """Messages by id within a user/agent scope."""

    @abstractmethod
    def update_memory(
        self, namespace: str, memory_id: str, patch: MemoryPatch, actor: str, reason: str
    ) -> MemoryRecord:
        """Apply a patch, logging an UPDATE event with before/after."""

    @abstractmethod
    def record_access(
        self, namespace: str, accesses: Sequence[tuple[str, datetime]], reinforce: Reinforce
    ) -> int:
        """Record recalls in one write transaction: for each (memory id, time), in time
        order, ``strength = reinforce(strength, last_accessed_at or created_at, time)``,
        ``access_count += 1`` and ``last_accessed_at`` = the latest time. Unknown ids are
        skipped; returns how many memories changed. No event is logged, and the rows keep
        their revision (``rev``): ``changes`` reports them in ``Changes.accessed`` (by
        their own access revision), so scope indexes update them in place instead of
        re-indexing them."""

    @abstractmethod
    def archive_memories(
        self, namespace: str, items: Sequence[tuple[MemoryRecord, str]], actor: str
    ) -> list[MemoryRecord]:
        """Archive memories in one write: set ``expired_at`` (reads of current memories,
        search and list, stop showing them; ``get_memories`` and ``events`` still do)
        and log an ARCHIVE event with each one's reason. Each item is a memory as the
        caller read it and why it goes; it is left as it is if it is pinned, no longer
        current, or changed since (``updated_at`` or ``last_accessed_at`` differ): the
        decision was made on a state that no longer holds. Returns the archived states."""

    @abstractmethod
    def delete_memory(self, namespace: str, memory_id: str, actor: str, reason: str) -> None:
        """Delete one memory and what was derived from it (its vector, term counts,
        entity rows nothing else names, its events' content), logging a DELETE event
        without content (``remem.stores.deletion``); its source messages stay."""

    @abstractmethod
    def delete_scope(self, flt: MemoryFilter, actor: str) -> tuple[int, int]:
        """Delete a scope's messages and memories, with the memories elsewhere that cite
        only its messages (those citing others too lose the deleted ids from
        ``source_ids``), and what was derived from all of them, as ``delete_memory``
        does; returns (memories, messages) deleted."""

    @abstractmethod
    def compact(self, full: bool = False) -> CompactReport:
        """Clear what earlier deletions left behind and give freed space back so deleted
        content is no longer in the store's files (SQLite: WAL emptied, file rebuilt by
        VACUUM; PostgreSQL: VACUUM of remem's tables, ``full``: VACUUM FULL, rewriting
        them). Whole-store maintenance: every namespace."""

    @abstractmethod
    def events(self, namespace: str, memory_id: str) -> list[MemoryEvent]:
        """The audit log of one memory, oldest first."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[int]:
        """Run the reads inside the ``with`` block on one consistent view of the store
        (re-entrant per thread); yields the store's revision at that view."""

    def latest_revision(self) -> int:
        """The newest committed revision, read at once without holding a view open
        (inside ``snapshot``: that view's revision). This default opens a snapshot;
        the bundled backends read it in one statement."""
        with self.snapshot() as revision:
            return revision

    def reads(self) -> int:
        """How many queries this thread has run (with ``latest_revision``, what lets a
        reader check that reads made outside a snapshot all saw one revision). This
        default changes on every call, so such a reader always checks; the bundled
        backends count."""
        return next(_CALLS)

    @abstractmethod
    def changes(self, scope: ScopeKey, since: int) -> Changes:
        """The scope's memories written, and ids deleted, after revision ``since``, up to
        the current revision (inside ``snapshot``: that view's)."""

    @abstractmethod
    def session_info(self, scope: Scope) -> SessionInfo:
        """The exact session's message count and current summary (cheap: no scan)."""

    @abstractmethod
    def session_turns(self, scope: Scope) -> list[MemoryRecord]:
        """The exact session's current turn memories, in conversation order."""

    @abstractmethod
    def entity_kinds(self, scope: Scope, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Key -> kind of the entities known in the scope's user/agent, among ``keys``
        (all of them when ``keys`` is None)."""

    @abstractmethod
    def term_counts(self, scope: Scope, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many turns the scope's user/agent has, and in how many of them each word
        occurs (words as ``remem.annotations.words`` splits a turn's text)."""

    @abstractmethod
    def stats(self, namespace: str, scope: Scope | None = None) -> Stats:
        """Counts for one namespace."""

    @abstractmethod
    def dump(self, namespace: str) -> Iterator[dict[str, Any]]:
        """Every row of a namespace as JSON-ready dicts (``{"type": ..., ...}``)."""

    @abstractmethod
    def load(self, namespace: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert dumped rows atomically; returns the number of rows written."""

    @abstractmethod
    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new API key (its hash, never the key)."""

    @abstractmethod
    def api_keys(self) -> list[ApiKey]:
        """Every API key, revoked ones included, oldest first."""

    @abstractmethod
    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        """Revoke a key (``NotFoundError`` if unknown); revoking twice keeps the first time."""

    @abstractmethod
    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not, or ``None``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- the job queue (``WriteBatch.jobs`` enqueues, ``WriteBatch.complete`` finishes) --

    @abstractmethod
    def claim_job(
        self,
        namespace: str | None,
        worker: str,
        lease_seconds: float,
        kinds: Sequence[str] = (),
    ) -> Job | None:
        """Atomically take the oldest runnable job of ``namespace`` (``None``: any) and
        of ``kinds`` (empty: any): one pending whose ``run_after`` has passed, or one
        running whose lease ran out (its worker died or stalled). It becomes running
        under a fresh token, held by ``worker`` for ``lease_seconds``, ``attempts`` + 1.
        Two workers never get the same claim; ``None`` when nothing is runnable."""

    @abstractmethod
    def claim_job_by_id(
        self, namespace: str, job_id: str, worker: str, lease_seconds: float
    ) -> Job | None:
        """Claim one job as ``claim_job`` would, whatever its ``run_after`` (the caller
        wants it now: ``add(wait=True)``); ``None`` if it is done, failed, unknown, or
        running under a lease that still holds."""

    @abstractmethod
    def fail_job(
        self, claim: JobClaim, reason: str, retry_after_seconds: float | None
    ) -> Job | None:
        """Record a failed run: the job goes back to pending, runnable after
        ``retry_after_seconds`` (``None``: it becomes failed, for good until
        ``retry_job``), ``error`` the reason. ``None`` (and nothing changes) if the claim
        no longer holds: another worker took the job over and its run decides."""

    @abstractmethod
    def retry_job(self, namespace: str, job_id: str) -> Job:
        """Make a failed job pending again, runnable now, attempts back to 0
        (``NotFoundError`` if unknown, ``InvalidInputError`` if it is not failed)."""

    @abstractmethod
    def get_job(self, namespace: str, job_id: str) -> Job | None:
        """One job by id, or ``None``."""

    @abstractmethod
    def jobs(self, namespace: str, status: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs of a namespace (of one status), newest first."""

    @abstractmethod
    def job_of(self, namespace: str, kind: str, scope: Scope, message_id: str) -> Job | None:
        """The newest job of ``kind`` and exactly ``scope`` that holds ``message_id``
        (where a coalesced ``NewJob`` went)."""
