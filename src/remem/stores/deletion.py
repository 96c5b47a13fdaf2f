"""What a deletion takes with it: the rules every store applies when it deletes memories
or a scope's messages (``docs/deletion.md`` explains each choice).

- A deleted memory leaves no copy of its content: its row and vector go, a tombstone (its
  id and scope ids, no content) tells scope indexes in every process, its turns' words
  leave the term counts and its names and key phrases the entity rows (each counts what
  holds it; a row at zero is dropped), and its audit events lose their
  ``before``/``after`` snapshots and reasons. The history keeps what happened, by whom
  and when; a DELETE event without content closes it.
- Deleting a scope deletes its messages, its memories, and every memory elsewhere that
  cites only deleted messages (a fact of the user derived from one deleted session). A
  memory citing deleted and surviving messages stays, with the deleted ids taken out of
  its ``source_ids`` and of the snapshots its events keep (an UPDATE event records that
  sources were deleted, not which): what survives still supports it, and a client's
  message ids may themselves say something.
- A memory superseded by a deleted one stays retired: reviving it would bring back what
  the deleted memory had corrected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from remem.index.rules import Linked, Owner, TermValues, entity_rows, term_deltas
from remem.models import MemoryRecord
from remem.stores.base import MemoryFilter
from remem.stores.common import owner
from remem.util import utcnow

SOURCES_DELETED = "its source messages were deleted"  # reason of the events it causes


def reaches_beyond(flt: MemoryFilter) -> bool:
    """Whether memories outside the deleted scope may cite its messages. Memories cite
    messages of their own user/agent; a scope without a session holds every memory of
    every user/agent whose messages it holds, a session scope does not."""
    return flt.session_id is not None


def split_citing(
    records: Iterable[MemoryRecord], gone: Mapping[Owner, set[str]]
) -> tuple[list[MemoryRecord], list[tuple[MemoryRecord, MemoryRecord]]]:
    """Memories citing deleted messages (``gone``: ids per user/agent), as those citing
    nothing else (to delete) and (before, after) pairs of the others, the deleted ids taken
    out of ``after.source_ids`` (to keep)."""
    orphans: list[MemoryRecord] = []
    trimmed: list[tuple[MemoryRecord, MemoryRecord]] = []
    now = utcnow()
    for record in records:
        deleted = gone.get(owner(record.scope), set())
        kept = tuple(i for i in record.source_ids if i not in deleted)
        if len(kept) == len(record.source_ids):
            continue
        if kept:
            trimmed.append((record, replace(record, source_ids=kept, updated_at=now)))
        else:
            orphans.append(record)
    return orphans, trimmed


def without_sources(snapshot: Any, deleted: set[str]) -> Any:
    """An audit snapshot (a memory as JSON) without the ``deleted`` message ids among
    its ``source_ids``; anything else as it is."""
    if not isinstance(snapshot, Mapping) or not isinstance(snapshot.get("source_ids"), list):
        return snapshot
    return {**snapshot, "source_ids": [i for i in snapshot["source_ids"] if i not in deleted]}


def removed_sources(before: MemoryRecord, after: MemoryRecord) -> set[str]:
    """The source ids a trimmed memory lost."""
    return set(before.source_ids) - set(after.source_ids)


def linked(records: Iterable[MemoryRecord]) -> list[Linked]:
    """What the link tables derived from each memory came from (``remem.index.rules``)."""
    return [(owner(r.scope), r.kind, r.text, r.attributes) for r in records]


def entity_refs(memories: Iterable[Linked]) -> Counter[tuple[str, str, str, str]]:
    """How many of the memories name each (namespace, user, agent, entity key)."""
    return Counter((*where, link.key) for where, _, _, attributes in memories
                   for link in entity_rows(attributes))  # fmt: skip


def term_removals(memories: Iterable[Linked]) -> list[TermValues]:
    """The term-count changes of removing memories, one row per user/agent and word."""
    deltas: Counter[tuple[str, str, str, str]] = Counter()
    for where, kind, text, _ in memories:
        for term, delta in term_deltas(kind, text, -1):
            deltas[(*where, term)] += delta
    return [(*key, delta) for key, delta in deltas.items()]
