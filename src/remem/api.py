"""The typed core every adapter shares: requests in, results out, one JSON form.

The CLI, the REST server and the MCP server build one of these requests from what they
were given (options, a JSON body, tool arguments), ``run`` it against a ``Memory`` (a
tenant's view of one shared store and embedder) and write the result with ``to_plain``.
So an option means the same thing everywhere, and every failure is the same
``RememError``, mapped once in ``remem.errors.ERRORS``.

The requests are plain dataclasses whose fields mirror ``Memory``'s keyword arguments;
the REST server validates JSON bodies against them (unknown fields are refused) and
``Memory`` then checks every value as it does for library callers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from remem.context import Context
from remem.models import AddResult, ForgetReport, MemoryRecord, SearchResults

if TYPE_CHECKING:
    from remem.answer import Answer
    from remem.engine import Memory

# read by pydantic (the REST server) when it validates a body against a request
STRICT: dict[str, Any] = {"extra": "forbid"}
try:  # and, on these fields, no lax coercion: JSON ``true`` is not the number 1
    from pydantic import Strict

    _EXACT: Any = Strict()
except ImportError:  # the core install has no pydantic; only the server reads this mark
    _EXACT = None
Count = Annotated[int, _EXACT]
Flag = Annotated[bool, _EXACT]
Real = Annotated[float, _EXACT]
Timestamp = Annotated[str, _EXACT] | Count | Real | None  # ISO 8601, or epoch seconds


@dataclass(frozen=True, kw_only=True)
class AddRequest:
    """Log messages verbatim and derive memories (``Memory.add``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    messages: str | list[dict[str, Any]]
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    timestamp: Timestamp = None
    wait: bool = True  # with an LLM: run the derive job before answering (False: queue it)

    def run(self, memory: Memory) -> AddResult:
        return memory.add(
            self.messages, user_id=self.user_id, agent_id=self.agent_id,
            session_id=self.session_id, metadata=self.metadata, timestamp=self.timestamp,
            wait=self.wait,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ScopeFilter:
    """Which memories a read looks at: a scope, kinds, metadata and a time range; which
    versions: current ones (``mode="current"``), those current at ``as_of``, or every
    version (``mode="history"``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    kinds: list[str] | None = None
    metadata: dict[str, Any] | None = None
    since: Timestamp = None
    until: Timestamp = None
    as_of: Timestamp = None
    mode: str = "current"

    def options(self) -> dict[str, Any]:
        """The filter as ``Memory`` keyword arguments."""
        return {
            "user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id,
            "kinds": self.kinds, "metadata": self.metadata, "since": self.since,
            "until": self.until, "as_of": self.as_of, "mode": self.mode,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SearchRequest(ScopeFilter):
    """The memories that best answer ``query`` (``Memory.search``)."""

    query: str
    limit: Count = 10
    recipe: str | None = None
    explain: Flag = False
    reference_time: Timestamp = None

    def run(self, memory: Memory) -> SearchResults:
        return memory.search(
            self.query, **self.options(), limit=self.limit, recipe=self.recipe,
            explain=self.explain, reference_time=self.reference_time,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ContextRequest(ScopeFilter):
    """The best memories for ``query`` inside a token budget (``Memory.context``)."""

    query: str
    budget_tokens: Count = 1000
    recipe: str | None = None
    candidates: Count = 50
    reference_time: Timestamp = None

    def run(self, memory: Memory) -> Context:
        return memory.context(
            self.query, **self.options(), budget_tokens=self.budget_tokens,
            recipe=self.recipe, candidates=self.candidates,
            reference_time=self.reference_time,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AskRequest:
    """An answer from memory by the LLM, citing its sources (``Memory.ask``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    question: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    budget_tokens: Count = 1000
    recipe: str | None = None
    reference_time: Timestamp = None

    def run(self, memory: Memory) -> Answer:
        return memory.ask(
            self.question, user_id=self.user_id, agent_id=self.agent_id,
            session_id=self.session_id, budget_tokens=self.budget_tokens, recipe=self.recipe,
            reference_time=self.reference_time,
        )  # fmt: skip


@dataclass(frozen=True)
class Page:
    """One page of a listing, and where the next one starts (``None``: this was the last)."""

    items: tuple[MemoryRecord, ...]
    limit: int
    offset: int
    next_offset: int | None


@dataclass(frozen=True, kw_only=True)
class ListRequest(ScopeFilter):
    """A page of a scope's memories, most recent first (``Memory.list``)."""

    limit: Count = 100
    offset: Count = 0

    def run(self, memory: Memory) -> Page:
        items = memory.list(**self.options(), limit=self.limit, offset=self.offset)
        more = len(items) == self.limit  # a full page: there may be more
        return Page(tuple(items), self.limit, self.offset,
                    self.offset + self.limit if more else None)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class UpdateRequest:
    """Change some of a memory's fields (``Memory.update``); absent fields stay as they are."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    text: str | None = None
    metadata: dict[str, Any] | None = None
    pinned: Flag | None = None
    expires_at: Timestamp = None
    importance: Real | None = None
    reason: str = "update"

    def run(self, memory: Memory, memory_id: str) -> MemoryRecord:
        fields = ("text", "metadata", "pinned", "expires_at", "importance")
        changes = {f: getattr(self, f) for f in fields if getattr(self, f) is not None}
        return memory.update(memory_id, reason=self.reason, **changes)


@dataclass(frozen=True, kw_only=True)
class ForgetRequest:
    """Archive what a forgetting policy picks in a scope (``Memory.forget``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    policy: str = "retention"
    threshold: Real | None = None
    dry_run: Flag = False
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    kinds: list[str] | None = None

    def run(self, memory: Memory) -> ForgetReport:
        return memory.forget(
            policy=self.policy, threshold=self.threshold, dry_run=self.dry_run,
            user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id,
            kinds=self.kinds,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class KeyRequest:
    """A new API key for a tenant (``remem.keys.KeyRing.create``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT
    tenant: str
    name: str = ""
    admin: Flag = False


# ---------------------------------------------------------------------------- results


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts, datetimes as ISO 8601 strings,
    tuples and sets as lists, mappings as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(to_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def to_json(value: Any, indent: int | None = 2) -> str:
    """``value`` as JSON (``to_plain``), indented unless ``indent`` is ``None``."""
    return json.dumps(to_plain(value), ensure_ascii=False, indent=indent)
