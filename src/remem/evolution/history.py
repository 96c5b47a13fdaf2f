"""Reads over history: ``as_of=`` a time, and ``mode="history"``.

Consolidation never overwrites a memory: an UPDATE or MERGE supersedes it (``valid_to``
and ``superseded_by`` set), an INVALIDATE ends it (``valid_to`` and ``expired_at``),
forgetting archives it (``expired_at``). Reads default to what is current now; these
options read the rest:

- ``as_of=T``: the memories that were current at ``T``: valid from ``valid_from`` (else
  their storing) up to, not including, ``valid_to``, their archiving, their superseding
  and their ``expires_at`` (``remem.stores.common.lifetime``). ``valid_from`` is when a
  derived memory's fact began (the time its candidate happened or was said), so ``as_of``
  asks what the memory held true then.
- ``mode="history"``: every version, current or not.

For ``get``, an id names one memory: by default it is returned in whatever state it is
(``superseded_by`` / ``valid_to`` say whether it is current), and so in history mode;
``as_of=T`` returns the version of its line current at ``T``, following ``superseded_by``
forward from it (never back to the memories it replaced).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from remem.errors import InvalidInputError, NotFoundError
from remem.models import MemoryRecord
from remem.stores.base import MemoryFilter, Store
from remem.stores.common import lifetime
from remem.util import parse_timestamp

MODES = ("current", "history")


def check_mode(mode: Any) -> str:
    """A read mode: ``"current"`` (the default) or ``"history"``."""
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidInputError(
            f"mode must be 'current' (current memories) or 'history' (every version, "
            f"superseded ones too), not {mode!r}"
        )
    return mode


def read_filter(flt: MemoryFilter, as_of: Any, mode: Any) -> MemoryFilter:
    """``flt`` reading at ``as_of`` or in ``mode`` (checked; they exclude each other)."""
    chosen = check_mode(mode)
    at = parse_timestamp(as_of, "as_of")
    if at is not None and chosen == "history":
        raise InvalidInputError(
            "as_of and mode='history' exclude each other: as_of=T reads what was current "
            "at T, mode='history' reads every version; pass one of them"
        )
    if at is not None:
        return replace(flt, as_of=at, current_only=False)
    if chosen == "history":
        return replace(flt, current_only=False)
    return flt


def version_at(store: Store, record: MemoryRecord, as_of: Any, mode: Any) -> MemoryRecord:
    """``get``'s answer: ``record`` itself, or with ``as_of`` the version of its line
    current then (``NotFoundError`` if none was)."""
    read_filter(MemoryFilter(record.scope.namespace), as_of, mode)  # checks both
    at = parse_timestamp(as_of, "as_of")
    if at is None:
        return record
    first, seen = record.id, {record.id}
    while True:
        start, end = lifetime(record.created_at, record.updated_at, record.valid_from,
                              record.valid_to, record.expired_at, record.superseded_by)  # fmt: skip
        expired = record.expires_at is not None and record.expires_at <= at
        if start <= at and (end is None or end > at) and not expired:
            return record
        successor = record.superseded_by
        if start > at or end is None or end > at or successor is None or successor in seen:
            break
        found = store.get_memories(record.scope.namespace, [successor])
        if not found:
            break
        seen.add(successor)
        record = found[0]
    raise NotFoundError(
        f"memory {first!r} (and the memories that superseded it) was not current at "
        f"{at.isoformat()}; read its versions with mode='history' or Memory.history()"
    )
