"""The store contract every backend implements, and the data it exchanges."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.annotations import TimeLink
from remem.models import MemoryEvent, MemoryRecord, Message, Scope, Stats


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories a read may see. ``namespace`` is always enforced.

    Scope fields left ``None`` do not filter. ``metadata`` matches by equality on
    top-level keys. ``since``/``until`` bound ``occurred_at`` (inclusive).
    ``current_only`` hides superseded, invalidated and expired memories.
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


@dataclass(frozen=True)
class NewMemory:
    """A memory to insert, with its embedding and the text the keyword index sees."""

    record: MemoryRecord
    index_text: str
    vector: npt.NDArray[np.float32] | None


@dataclass(frozen=True)
class WriteBatch:
    """Everything one ``add`` writes, applied in one transaction or not at all.

    ``supersedes`` maps ids of existing memories to the new memories that replace them
    (a refreshed session summary): the old ones stay, marked ``superseded_by``.
    """

    messages: tuple[Message, ...] = ()
    memories: tuple[NewMemory, ...] = ()
    supersedes: Mapping[str, str] = field(default_factory=dict)
    actor: str = "remem"
    reason: str = "add"


@dataclass(frozen=True)
class EntityRow:
    """One row of a scope's entity table: a name, a title or a key phrase."""

    key: str
    name: str
    kind: str


@dataclass(frozen=True)
class ScopeIndex:
    """What retrieval needs about the memories a filter sees, besides their text.

    Per-memory fields are parallel tuples (row ``i`` describes ``ids[i]``). ``mentions``
    links memory rows to entity rows with a weight; ``times`` lists the periods each
    memory refers to. ``memo`` holds structures derived from the index (a graph, say),
    built once per index: stores cache an index until their data changes.
    """

    ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()
    positions: tuple[int, ...] = ()
    occurred: tuple[datetime | None, ...] = ()
    expires: tuple[datetime | None, ...] = ()
    entities: tuple[EntityRow, ...] = ()
    mentions: tuple[tuple[int, int, float], ...] = ()
    times: tuple[tuple[int, TimeLink], ...] = ()
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class StoreCapabilities:
    """What a backend can do, declared instead of probed."""

    keyword_search: bool = True
    vector_search: bool = True
    transactions: bool = True
    multi_process: bool = True


def session_key(user_id: str | None, agent_id: str | None, session_id: str | None) -> str:
    """How stores name a conversation (a user/agent's session) in ``ScopeIndex.sessions``,
    ``positions`` and ``session_search``."""
    return f"{user_id or ''}\x1f{agent_id or ''}\x1f{session_id or ''}"


@dataclass(frozen=True)
class ScoredId:
    """A memory id with one channel's score (higher is better)."""

    id: str
    score: float


class Store(ABC):
    """A backend for the message log, memories, vectors and the audit log.

    Every method takes the namespace (directly or inside a ``MemoryFilter``) and never
    returns another namespace's rows. Writes are atomic: on error nothing is written.
    """

    capabilities: StoreCapabilities = StoreCapabilities()

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
        self,
        namespace: str,
        memory_id: str,
        changes: Mapping[str, Any],
        index_text: str | None,
        vector: npt.NDArray[np.float32] | None,
        actor: str,
        reason: str,
    ) -> MemoryRecord:
        """Apply field changes, logging an UPDATE event with before/after."""

    @abstractmethod
    def delete_memory(self, namespace: str, memory_id: str, actor: str, reason: str) -> None:
        """Delete one memory, logging a DELETE event."""

    @abstractmethod
    def delete_scope(self, flt: MemoryFilter, actor: str) -> tuple[int, int]:
        """Delete memories and messages in a scope; returns (memories, messages) deleted."""

    @abstractmethod
    def events(self, namespace: str, memory_id: str) -> list[MemoryEvent]:
        """The audit log of one memory, oldest first."""

    @abstractmethod
    def keyword_search(self, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[ScoredId]:
        """BM25 over the index text; any of ``terms`` may match."""

    @abstractmethod
    def positions(self, namespace: str, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """For each memory: a key of its conversation (user, agent, session) and the
        position of its first source message in that conversation (1-based; 0 unknown)."""

    @abstractmethod
    def session_search(self, terms: Sequence[str], flt: MemoryFilter, limit: int) -> list[ScoredId]:
        """BM25 over whole conversations (a session's turns as one document); ids are
        ``session_key``s. Only the filter's namespace, user, agent and session apply."""

    @abstractmethod
    def scope_index(self, flt: MemoryFilter) -> ScopeIndex:
        """Slots, times and entity links of the memories the filter sees (expiry is not
        applied: callers check ``expires`` against their clock)."""

    @abstractmethod
    def entity_kinds(self, scope: Scope) -> dict[str, str]:
        """Key -> kind of every entity known in the scope's user/agent (for extraction)."""

    @abstractmethod
    def term_counts(self, scope: Scope, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many turns the scope's user/agent has, and in how many of them each word
        occurs (words as ``remem.annotations.words`` splits a turn's text)."""

    @abstractmethod
    def vector_search(
        self, vector: npt.NDArray[np.float32], flt: MemoryFilter, limit: int
    ) -> list[ScoredId]:
        """Cosine similarity over stored embeddings."""

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
    def close(self) -> None:
        """Release connections."""
