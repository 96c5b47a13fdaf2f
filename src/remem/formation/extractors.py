"""The small interfaces formation is built from: an entity extractor, a time parser and a
memory extractor, with the deterministic implementations remem has always used.

The rule-based ones wrap ``formation.entities`` and ``remem.times`` as they are (ingest
calls those functions directly, so its behaviour and speed do not depend on this module);
an LLM extractor (``formation.extract.LLMExtractor``) stands beside them, and anything
else that satisfies a protocol (a NER model, another date parser) can be passed where
one is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from remem.formation.derived import Candidate
from remem.formation.entities import EntityMention, extract_entities, query_entities
from remem.llms.base import Usage
from remem.models import Message
from remem.times import TimeSpan, find_times


@runtime_checkable
class EntityExtractor(Protocol):
    """Finds the named entities of a text. ``known`` maps entity keys the scope already
    holds to their kinds, so a known name is found in any case."""

    def entities(self, text: str, known: Mapping[str, str] | None = None) -> list[EntityMention]:
        """The entities mentioned in ``text``, left to right."""
        ...


@runtime_checkable
class TimeParser(Protocol):
    """Finds time expressions and resolves them to day ranges against the moment the text
    was written (a relative "yesterday" needs it)."""

    def times(self, text: str, reference: date | datetime | None = None) -> list[TimeSpan]:
        """The time expressions of ``text``, left to right, resolved against ``reference``."""
        ...


@dataclass(frozen=True)
class ExtractResult:
    """What a memory extractor proposed from some messages.

    ``candidates``: the memories proposed, each citing its source messages; ``dropped``:
    items the extractor discarded (no valid citation, empty, duplicate, over the cap);
    ``llm_calls`` and ``usage``: what it cost (zero for a rule-based extractor).
    """

    candidates: tuple[Candidate, ...]
    dropped: int = 0
    llm_calls: int = 0
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class MemoryExtractor(Protocol):
    """Proposes derived memories (facts, events, profile entries, procedures) from
    messages; consolidation then decides what becomes of each."""

    def extract(self, messages: Sequence[Message]) -> ExtractResult:
        """Candidates from ``messages``, each citing some of their ids."""
        ...


class RuleEntities:
    """The deterministic entity extractor (capitalised runs, quoted titles, known names:
    ``formation.entities``). ``query=True`` reads a question instead of a message: a
    known name is looked for from every word."""

    def __init__(self, *, query: bool = False) -> None:
        self.query = query

    def entities(self, text: str, known: Mapping[str, str] | None = None) -> list[EntityMention]:
        """The entities mentioned in ``text``."""
        if self.query:
            return query_entities(text, known)
        return extract_entities(text, known)


class RuleTimes:
    """The deterministic time parser (the regular grammar of ``remem.times``)."""

    def times(self, text: str, reference: date | datetime | None = None) -> list[TimeSpan]:
        """The time expressions of ``text`` resolved against ``reference``."""
        return find_times(text, reference)
