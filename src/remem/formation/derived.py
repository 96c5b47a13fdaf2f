"""Derived memories (facts, events, profile entries, procedures): what an extractor
proposes (a ``Candidate``), and the record a written one becomes.

A candidate cites the messages it came from (``source_ids``); retrieval counts a hit on
it through them. Enrichment (entities, times) runs over its text as over a turn's, so
derived memories join the same entity graph and time index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remem.formation.turns import format_day
from remem.models import MemoryRecord, Scope
from remem.util import new_id

DERIVED_KINDS: tuple[str, ...] = ("fact", "event", "profile", "procedure")


@dataclass(frozen=True)
class Candidate:
    """A memory proposed from messages, before consolidation decides its fate.

    ``occurred_at``: when it happened or was said (an event's resolved time, else the
    latest cited message's); ``attributes``: kind-specific detail (an event's ``who``,
    ``where``; a profile entry's ``category``), kept on the memory as given.
    """

    kind: str
    text: str
    source_ids: tuple[str, ...]
    occurred_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    metadata: Mapping[str, Any] = field(default_factory=dict)


def candidate_record(
    candidate: Candidate, scope: Scope, now: datetime, enrichment: Mapping[str, Any]
) -> MemoryRecord:
    """The memory a candidate becomes when written: its own attributes over what
    enrichment found in its text."""
    return MemoryRecord(
        id=new_id(),
        kind=candidate.kind,
        text=candidate.text,
        scope=scope,
        source_ids=candidate.source_ids,
        occurred_at=candidate.occurred_at,
        created_at=now,
        updated_at=now,
        metadata=dict(candidate.metadata),
        attributes={**enrichment, **candidate.attributes},
        importance=candidate.importance,
        valid_from=candidate.occurred_at or now,
    )


def derived_index_text(record: MemoryRecord, dates: str = "") -> str:
    """What the keyword index sees of a derived memory: its text, the day it happened
    and the dates it refers to (as a turn's)."""
    days = [format_day(record.occurred_at)] if record.occurred_at else []
    if dates:
        days.append(dates)
    return f"{record.text} [{' | '.join(days)}]" if days else record.text
