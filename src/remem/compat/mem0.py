"""A mem0-compatible ``Memory`` (mem0's method names, arguments and dict results) over
``remem.Memory``; ``import_mem0`` (from ``remem.compat.mem0_import``) loads a mem0 export.

The mapping, for people moving from ``mem0.Memory`` (see docs/migrating-from-mem0.md):

- mem0's ``run_id`` is remem's ``session_id``; ``user_id`` and ``agent_id`` are the same.
- A mem0 ``memory`` is the text of a remem memory. remem stores each message verbatim as a
  ``turn`` memory whose text starts with its speaker ("user: ..."); this shim shows the text
  without that prefix, and ``update`` keeps it, so the memory stays a turn of its speaker.
- ``infer`` is accepted but no LLM is called: remem always stores the messages verbatim and
  derives entities, times, key phrases and session summaries from them deterministically.
- ``filters`` may hold ``user_id``/``agent_id``/``run_id`` and metadata equalities (also as
  ``{"key": {"eq": value}}``, ``{"metadata": {...}}`` and ``{"AND": [...]}``); any other
  operator is refused with ``InvalidInputError``.
- Scores are remem's fused scores (larger is better, not bounded by 1); ``threshold`` drops
  hits scoring below it.
- ``reset`` needs a scope: remem never wipes a whole store without being told what.

Imported memories keep their mem0 id: it is the id of the message they are stored from,
and the metadata key ``mem0_id``, which this shim shows as the memory's ``id`` and accepts
wherever mem0 takes a memory id. Errors are remem's ``RememError`` subclasses: a bad
argument is an ``InvalidInputError`` (a ``ValueError``, as mem0 raises), an unknown id a
``NotFoundError`` (a ``KeyError``, where mem0 raises ``ValueError``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from remem.compat.mem0_import import MEM0_FIELDS, MEM0_ID, RESERVED, SCOPE_KEYS, import_mem0
from remem.config import MemoryConfig
from remem.embedders.base import Embedder
from remem.engine import Memory as RememMemory
from remem.errors import InvalidInputError, NotFoundError
from remem.models import MEMORY_KINDS, MemoryEvent, MemoryRecord
from remem.util import shown
from remem.validation import check_flag, check_id, check_limit, check_number, check_text

__all__ = ["Memory", "import_mem0"]

IDENTITY = ("user_id", "agent_id", "run_id", "actor_id")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
LISTED_KINDS = tuple(k for k in MEMORY_KINDS if k != "summary")  # summaries are derived
EVENTS = {"ADD": "ADD", "UPDATE": "UPDATE", "DELETE": "DELETE", "RESTORE": "ADD",
          "SUPERSEDE": "DELETE", "ARCHIVE": "DELETE"}  # fmt: skip
_UNSET: Any = object()


class ScopeArgs(TypedDict):
    """remem's scope keyword arguments."""

    user_id: str | None
    agent_id: str | None
    session_id: str | None


class Memory:
    """mem0's ``Memory`` API over a remem store: the same calls, the same dict results.

    >>> m = Memory("memory.db")  # or Memory(remem.Memory(...)), or Memory(MemoryConfig(...))
    >>> m.add("I moved to Lisbon in May", user_id="ana")
    >>> m.search("where does Ana live?", filters={"user_id": "ana"})["results"]
    """

    def __init__(
        self,
        memory: RememMemory | str | Path | MemoryConfig = "remem.db",
        *,
        embedder: Embedder | str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Open a remem store (a path or ``MemoryConfig``), or wrap an open ``remem.Memory``
        (then ``namespace`` picks a tenant view of it, and ``close`` leaves it open)."""
        self._owned = not isinstance(memory, RememMemory)
        if isinstance(memory, RememMemory):
            if embedder is not None:
                raise InvalidInputError(
                    "embedder is set by the remem.Memory you wrap; pass it to remem.Memory"
                )
            self.remem = memory if namespace is None else memory.tenant(namespace)
        else:
            self.remem = RememMemory(memory, embedder=embedder, namespace=namespace)

    # -- writing -----------------------------------------------------------------------

    def add(
        self,
        messages: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        expiration_date: Any = None,
        infer: bool = True,
        memory_type: str | None = None,
        prompt: str | None = None,
    ) -> dict[str, Any]:
        """Store messages verbatim, one memory each: ``{"results": [{"id", "memory",
        "event": "ADD", "actor_id", "role"}]}``. Re-adding a message ``id`` is a no-op.

        ``infer`` is accepted and calls no LLM either way; ``memory_type``, ``prompt`` (they
        need an LLM) and ``expiration_date`` (set it with ``update``) are refused.
        """
        check_flag(infer, "infer")
        for name, value in (("memory_type", memory_type), ("prompt", prompt)):
            if value is not None:
                raise InvalidInputError(
                    f"{name} is not supported: remem calls no LLM; it stores messages verbatim "
                    "and derives memories from them"
                )
        if expiration_date is not None:
            raise InvalidInputError(
                "expiration_date is not supported by add; set it afterwards with "
                "update(memory_id, expiration_date='YYYY-MM-DD')"
            )
        scope = _require_scope(user_id, agent_id, run_id, "add")
        given = [messages] if isinstance(messages, Mapping) else messages
        result = self.remem.add(given, **scope, metadata=_own_metadata(metadata),
                                timestamp=timestamp)  # fmt: skip
        return {"results": [_added(r) for r in result.memories]}

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expiration_date: Any = _UNSET,
        *,
        data: str | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text (``text``, or mem0's older ``data``), merge ``metadata``
        into its own, or set ``expiration_date`` ("YYYY-MM-DD"; ``None`` clears it)."""
        if text is not None and data is not None and text != data:
            raise InvalidInputError("give the new text as text or data, not both")
        new_text = text if text is not None else data
        if new_text is None and metadata is None and expiration_date is _UNSET:
            raise InvalidInputError("update needs text, metadata or expiration_date")
        record = self._require(memory_id)
        changes: dict[str, Any] = {}
        if new_text is not None:
            changes["text"] = _stored_text(record, check_text(new_text, "text"))
        if metadata is not None:
            changes["metadata"] = {**record.metadata, **(_own_metadata(metadata) or {})}
        if expiration_date is not _UNSET:
            changes["expires_at"] = _expiry(expiration_date)
        self.remem.update(record.id, **changes)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, Any]:
        """Delete one memory (``NotFoundError`` if unknown); its history keeps the events,
        without their content."""
        self.remem.delete(self._require(memory_id).id)
        return {"message": "Memory deleted successfully!"}

    def delete_all(
        self, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        """Delete every memory (and logged message) of a scope; a scope is required.

        As in mem0, ``run_id`` alone means that run of every user and agent (remem's own
        ``delete_all`` reads a session id alone as the session added without an owner).
        """
        scope = _require_scope(user_id, agent_id, run_id, "delete_all")
        if scope["user_id"] is None and scope["agent_id"] is None:
            for owner_user, owner_agent in self._run_owners(run_id):
                self.remem.delete_all(user_id=owner_user, agent_id=owner_agent,
                                      session_id=run_id)  # fmt: skip
        self.remem.delete_all(**scope)
        return {"message": "Memories deleted successfully!"}

    def reset(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> None:
        """Delete a scope's memories. Unlike mem0, a scope is required: remem never wipes a
        whole store without being told what (delete the file, or use a new namespace)."""
        if user_id is None and agent_id is None and run_id is None:
            raise InvalidInputError(
                "reset() without a scope would delete every memory; remem never wipes a whole "
                "store: pass user_id, agent_id or run_id (as delete_all), or delete the "
                "database file, or use another namespace"
            )
        self.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id)

    # -- reading -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        limit: int | None = None,
        threshold: float | None = None,
        rerank: bool = False,
        explain: bool = False,
        show_expired: bool = False,
    ) -> dict[str, Any]:
        """The memories that best answer ``query``: ``{"results": [{..., "score"}]}``, best
        first, at most ``top_k`` (or mem0's older ``limit``; default 20).

        The scope comes from ``filters`` (mem0 2.x) or the id arguments (older mem0).
        ``rerank`` is accepted and ignored (choose a remem recipe for reranking);
        ``explain`` adds each hit's per-channel scores as ``score_details``.
        """
        check_flag(rerank, "rerank")
        check_flag(explain, "explain")
        _refuse_expired(show_expired)
        scope, wanted = _scope_and_metadata(filters, user_id, agent_id, run_id, "search")
        minimum = None if threshold is None else check_number(threshold, "threshold", 0, math.inf)
        results = self.remem.search(query, **scope, metadata=wanted,
                                    limit=_top_k(top_k, limit, 20))  # fmt: skip
        out = []
        for hit in results.hits:
            if minimum is not None and hit.score < minimum:
                continue
            item = {**_view(hit.memory), "score": hit.score}
            if explain:
                item["score_details"] = dict(hit.scores)
            out.append(item)
        return {"results": out}

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id (a remem id, or the mem0 id it was imported with), or ``None``."""
        record = self._find(memory_id)
        return None if record is None else {**_view(record), "score": None}

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        limit: int | None = None,
        show_expired: bool = False,
    ) -> dict[str, Any]:
        """A scope's memories, most recent first: ``{"results": [...]}``, at most ``top_k``
        (or ``limit``; default 100). Session summaries, which remem derives, are left out."""
        _refuse_expired(show_expired)
        scope, wanted = _scope_and_metadata(filters, user_id, agent_id, run_id, "get_all")
        records = self.remem.list(**scope, kinds=LISTED_KINDS, metadata=wanted,
                                  limit=_top_k(top_k, limit, 100))  # fmt: skip
        return {"results": [_view(r) for r in records]}

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """Every change to a memory, oldest first, as mem0's history rows (``[]`` if the id
        was never known). Works after deletion for remem ids."""
        memory_id = check_id(memory_id, "memory_id")
        record = self._find(memory_id)
        try:
            events = self.remem.history(memory_id if record is None else record.id)
        except NotFoundError:
            return []
        shown_id = memory_id if record is None else _view_id(record)
        return [_history_row(e, shown_id) for e in events]

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the remem store if this object opened it (a wrapped one stays open)."""
        if self._owned:
            self.remem.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------

    def _find(self, memory_id: str) -> MemoryRecord | None:
        """The memory with this remem id, else the one imported from mem0 with this id."""
        memory_id = check_id(memory_id, "memory_id")
        try:
            return self.remem.get(memory_id)
        except NotFoundError:
            pass  # not a remem id: try the mem0 ids imports keep in metadata
        found = self.remem.list(metadata={MEM0_ID: memory_id}, limit=1)
        return found[0] if found else None

    def _require(self, memory_id: str) -> MemoryRecord:
        record = self._find(memory_id)
        if record is None:
            raise NotFoundError(
                f"no memory {memory_id!r} in namespace {self.remem.namespace!r}; "
                "find ids with get_all() or search()"
            )
        return record

    def _run_owners(self, run_id: str | None) -> set[tuple[str | None, str | None]]:
        """The (user, agent) owners that have a run of this id, the unowned one aside."""
        owners: set[tuple[str | None, str | None]] = set()
        offset, page = 0, 1000
        while True:
            records = self.remem.list(session_id=run_id, limit=page, offset=offset)
            owners.update((r.scope.user_id, r.scope.agent_id) for r in records)
            if len(records) < page:
                return owners - {(None, None)}
            offset += page


# ------------------------------------------------------------------------ arguments


def _require_scope(user_id: Any, agent_id: Any, run_id: Any, what: str) -> ScopeArgs:
    """remem's scope arguments from mem0's; mem0 requires at least one."""
    if user_id is None and agent_id is None and run_id is None:
        raise InvalidInputError(
            f"{what} needs at least one of user_id, agent_id or run_id (as mem0 does)"
        )
    return {"user_id": user_id, "agent_id": agent_id, "session_id": run_id}


def _own_metadata(metadata: Any) -> dict[str, Any] | None:
    """Caller metadata, refusing keys that name a scope or that imports reserve."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, not {type(metadata).__name__}")
    taken = sorted(set(metadata) & {*IDENTITY, *RESERVED})
    if taken:
        raise InvalidInputError(
            f"metadata cannot hold {', '.join(taken)}: pass user_id, agent_id and run_id as "
            "arguments (actor_id is a message's name); mem0_id and mem0 are set by import_mem0"
        )
    return dict(metadata)


def _top_k(top_k: Any, limit: Any, default: int) -> int:
    if top_k is not None and limit is not None and top_k != limit:
        raise InvalidInputError("give the number of results as top_k or limit, not both")
    chosen = top_k if top_k is not None else limit
    return default if chosen is None else check_limit(chosen, "top_k")


def _refuse_expired(show_expired: Any) -> None:
    if check_flag(show_expired, "show_expired"):
        raise InvalidInputError(
            "show_expired=True is not supported: remem hides expired memories from search "
            "and listing; clear a memory's expiration_date with update to see it again"
        )


def _scope_and_metadata(
    filters: Any, user_id: Any, agent_id: Any, run_id: Any, what: str
) -> tuple[ScopeArgs, dict[str, Any] | None]:
    """remem's scope and metadata filter from mem0's ``filters`` and id arguments."""
    scope: dict[str, Any] = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    wanted: dict[str, Any] = {}
    for key, condition in _conditions(filters):
        value = _equality(key, condition)
        if key in ("actor_id", "role"):
            raise InvalidInputError(
                f"filtering by {key} is not supported: remem keeps it as the message's "
                f"{'speaker' if key == 'actor_id' else 'role'}, not as metadata"
            )
        target = scope if key in SCOPE_KEYS else wanted
        if target.get(key) is not None and target[key] != value:
            raise InvalidInputError(f"filters give {key} two values, {shown(target[key])} and "
                                    f"{shown(value)}")  # fmt: skip
        target[key] = value
    return _require_scope(scope["user_id"], scope["agent_id"], scope["run_id"], what), (
        wanted or None
    )


def _conditions(filters: Any, nested: bool = False) -> Iterator[tuple[str, Any]]:
    """(key, condition) pairs of mem0 filters, flattening ``AND`` and ``metadata``."""
    if filters is None:
        return
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}")
    for key, value in filters.items():
        if key in ("OR", "NOT") or (key == "AND" and nested):
            raise InvalidInputError(
                f"the {key} filter is not supported: remem filters by a scope and metadata "
                "equalities (all of them must hold); run one search per alternative instead"
            )
        if key == "AND":
            if not isinstance(value, list):
                raise InvalidInputError("the AND filter takes a list of conditions")
            for condition in value:
                yield from _conditions(condition, nested=True)
        elif key == "metadata" and isinstance(value, Mapping):
            yield from value.items()
        else:
            yield str(key), value


def _equality(key: str, condition: Any) -> Any:
    """The value a mem0 condition asks ``key`` to equal; other operators are refused."""
    if isinstance(condition, Mapping):
        if set(condition) == {"eq"}:
            return condition["eq"]
        ops = sorted(str(k) for k in condition)
        known = [op for op in ops if op in OPERATORS]
        raise InvalidInputError(
            f"filter on {key!r} uses {', '.join(known or ops)}; remem filters metadata by "
            f"equality only: use {{{key!r}: value}} or {{{key!r}: {{'eq': value}}}}"
        )
    if condition == "*":
        raise InvalidInputError(
            f"the wildcard filter {{{key!r}: '*'}} is not supported; leave the key out"
        )
    return condition


def _expiry(value: Any) -> datetime | None:
    """remem's ``expires_at`` for mem0's ``expiration_date``: the memory stays visible
    through that day (UTC) and expires at the next midnight."""
    if value is None:
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInputError(
                f"expiration_date {shown(value)} is not a date; use 'YYYY-MM-DD'"
            ) from None
    else:
        raise InvalidInputError(f"expiration_date must be 'YYYY-MM-DD' or None, not {shown(value)}")
    return datetime(day.year, day.month, day.day) + timedelta(days=1)


# -------------------------------------------------------------------------- results


def _who(kind: Any, attributes: Any) -> str | None:
    """The speaker (or role) a turn memory's text starts with."""
    if kind != "turn" or not isinstance(attributes, Mapping):
        return None
    who = attributes.get("speaker") or attributes.get("role")
    return who if isinstance(who, str) else None


def _plain_text(kind: Any, text: Any, attributes: Any) -> Any:
    """A memory's text as mem0 shows it: a turn without its "speaker: " prefix."""
    who = _who(kind, attributes)
    prefix = f"{who}: "
    if who is not None and isinstance(text, str) and text.startswith(prefix):
        return text[len(prefix) :]
    return text


def _stored_text(record: MemoryRecord, text: str) -> str:
    """New text for a memory as remem stores it: a turn keeps its "speaker: " prefix."""
    who = _who(record.kind, record.attributes)
    return text if who is None else f"{who}: {text}"


def _iso(moment: datetime | str | None) -> str | None:
    """A stored (naive UTC) time as mem0 writes times: ISO 8601 with ``+00:00``."""
    if moment is None:
        return None
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.replace(tzinfo=UTC).isoformat()


def _view_id(record: MemoryRecord) -> str:
    mem0_id = record.metadata.get(MEM0_ID)
    return mem0_id if isinstance(mem0_id, str) else record.id


def _view(record: MemoryRecord) -> dict[str, Any]:
    """A memory as mem0 returns one: ``id``, ``memory``, ``hash``, ``metadata``, times,
    and the scope, speaker, role and expiration date where they are set."""
    metadata = {k: v for k, v in record.metadata.items() if k not in RESERVED}
    text = _plain_text(record.kind, record.text, record.attributes)
    item: dict[str, Any] = {
        "id": _view_id(record),
        "memory": text,
        "hash": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "metadata": metadata or None,
        "created_at": _iso(record.occurred_at or record.created_at),
        "updated_at": _iso(record.updated_at),
    }
    expires = record.expires_at
    promoted = {
        "user_id": record.scope.user_id, "agent_id": record.scope.agent_id,
        "run_id": record.scope.session_id, "actor_id": record.attributes.get("speaker"),
        "role": record.attributes.get("role"),
        "expiration_date": (expires - timedelta(microseconds=1)).date().isoformat()
        if expires else None,
    }  # fmt: skip
    item.update({k: v for k, v in promoted.items() if v is not None})
    extra = record.metadata.get(MEM0_FIELDS)
    if isinstance(extra, Mapping):  # fields of an imported mem0 memory, back in place
        for key, value in extra.items():
            item.setdefault(key, value)
    return item


def _added(record: MemoryRecord) -> dict[str, Any]:
    """One entry of ``add``'s results, as mem0 reports a memory stored without inference."""
    view = _view(record)
    return {"id": view["id"], "memory": view["memory"], "event": "ADD",
            "actor_id": view.get("actor_id"), "role": view.get("role")}  # fmt: skip


def _history_row(event: MemoryEvent, memory_id: str) -> dict[str, Any]:
    """One remem event as a row of mem0's history table."""
    snapshot = event.after or event.before or {}
    attributes = snapshot.get("attributes") or {}

    def text(state: Mapping[str, Any] | None) -> Any:
        if state is None:
            return None
        return _plain_text(state.get("kind"), state.get("text"), state.get("attributes"))

    return {
        "id": str(event.id),
        "memory_id": memory_id,
        "old_memory": text(event.before),
        "new_memory": text(event.after),
        "event": EVENTS.get(event.action, event.action),
        "created_at": _iso(snapshot.get("occurred_at") or snapshot.get("created_at")),
        "updated_at": _iso(event.at),
        "is_deleted": event.action == "DELETE",
        "actor_id": attributes.get("speaker"),
        "role": attributes.get("role"),
    }
