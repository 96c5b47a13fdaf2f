"""LLM extraction: facts, events, profile entries and procedures from a batch of turns, in
one call per batch, each citing the turns it came from.

The prompt numbers the turns ([1], [2], ...) and the model cites numbers, mapped back to
message ids here: a model never copies ids (long hex strings a small model garbles). An
item citing no valid number is dropped and counted, as are empty and duplicate ones. Event
times are resolved by the deterministic grammar (``remem.times``) against the date of the
turns cited, never by the model: "yesterday" said on 8 May 2023 becomes 7 May 2023 in the
memory's text and its ``occurred_at``.

The schema is deliberately small (four lists of flat items, every field required) so a
135M model's grammar-constrained output can follow it. Its length and count bounds are
declared for servers that constrain output by the schema, and applied here after
validation, so a long answer is trimmed instead of re-asked.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from remem.errors import ConfigError
from remem.formation.derived import Candidate
from remem.formation.extractors import ExtractResult, RuleTimes, TimeParser
from remem.formation.turns import format_day
from remem.llms.base import LLM, ChatMessage, Usage
from remem.models import Message
from remem.times import TimeSpan, describe

EXTRACT_VERSION = "extract/1"

MAX_TEXT_CHARS = 300  # a memory's text; longer answers are cut at a word
MAX_FIELD_CHARS = 120  # when, where, task, and each name in who
MAX_WHO = 8  # names per event
MAX_CITES = 8  # turn numbers per memory the schema allows
MIN_PER_LIST, MAX_PER_LIST = 3, 15  # memories of each kind per batch: one per turn, bounded
MAX_TURN_CHARS = 2000  # of each turn's content shown to the model
LISTS = ("facts", "events", "profile", "procedures")


# -- the schema ------------------------------------------------------------------------
# Bounds (maxLength, maxItems) are declared in the JSON schema only, not validated: a
# server that constrains output by the schema (llama.cpp's grammars, vLLM, OpenAI's strict
# mode) then cannot loop forever inside a list or a string, and an answer from a server
# that ignores them is capped here instead of re-asked.


def _text(description: str, limit: int = MAX_FIELD_CHARS) -> Any:
    return Field(description=description, json_schema_extra={"maxLength": limit})


def _turns() -> Any:
    return Field(description="the numbers of the turns it comes from, e.g. [2]",
                 json_schema_extra={"maxItems": MAX_CITES})  # fmt: skip


Name = Annotated[str, Field(json_schema_extra={"maxLength": MAX_FIELD_CHARS})]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactItem(_Item):
    """A statement about a person or the world."""

    text: str = _text("one short self-contained sentence", MAX_TEXT_CHARS)
    turns: list[int] = _turns()


class EventItem(_Item):
    """Something that happened or will happen."""

    text: str = _text("what happened, one short sentence", MAX_TEXT_CHARS)
    when: str = _text("the time as said, e.g. 'yesterday', or ''")
    where: str = _text("the place, or ''")
    who: list[Name] = Field(description="names of the people involved",
                            json_schema_extra={"maxItems": MAX_WHO})  # fmt: skip
    turns: list[int] = _turns()


ProfileCategory = Literal["preference", "trait", "relationship", "other"]


class ProfileItem(_Item):
    """A preference, trait or relationship of a person."""

    text: str = _text("one short sentence", MAX_TEXT_CHARS)
    category: ProfileCategory
    explicit: bool = Field(description="true if stated, false if inferred")
    turns: list[int] = _turns()


class ProcedureItem(_Item):
    """How someone wants a kind of task done, or a lesson from how one went."""

    text: str = _text("the instruction or lesson, one sentence", MAX_TEXT_CHARS)
    task: str = _text("the kind of task it applies to")
    turns: list[int] = _turns()


class Extraction(BaseModel):
    """The memories worth keeping from a batch of numbered turns."""

    model_config = ConfigDict(extra="forbid")

    facts: list[FactItem]
    events: list[EventItem]
    profile: list[ProfileItem]
    procedures: list[ProcedureItem]


def per_list(turns: int) -> int:
    """Memories of each kind a batch of ``turns`` may propose: one per turn, at least
    ``MIN_PER_LIST`` and at most ``MAX_PER_LIST``."""
    return max(MIN_PER_LIST, min(MAX_PER_LIST, turns))


@functools.cache
def extraction_schema(limit: int) -> type[Extraction]:
    """``Extraction`` with each list's JSON schema bounded at ``limit`` items (see above:
    declared, not validated); what the extractor asks for."""

    def bound(schema: dict[str, Any]) -> None:
        for name in LISTS:
            schema["properties"][name]["maxItems"] = limit

    config = ConfigDict(extra="forbid", json_schema_extra=bound)
    namespace = {"model_config": config, "__module__": __name__, "__doc__": Extraction.__doc__}
    return cast(type[Extraction], type("Extraction", (Extraction,), namespace))


# -- the prompt ------------------------------------------------------------------------

_SYSTEM = """\
You turn a conversation into memories worth keeping. Read the numbered turns and list:
- facts: statements about people and the world.
- events: what happened or is planned, with when (the time words as said, e.g. \
"yesterday", or ""), where (or "") and who.
- profile: a person's preferences, traits and relationships, with a category; explicit \
is true when the person said it, false when you inferred it.
- procedures: how someone wants a kind of task done, or a lesson learnt from how a task \
went, with the task it applies to.
Write each memory as one short sentence that names the people (never "I", "you", "he" or \
"she") and cite in turns the numbers of the turns it comes from. Skip greetings and small \
talk; empty lists are fine.
Answer in JSON with the keys facts, events, profile and procedures."""


def extract_messages(turns: Sequence[Message]) -> list[ChatMessage]:
    """The extraction prompt for a batch of turns, numbered from 1 (pure: the same turns
    give the same messages)."""
    lines = [_turn_line(i, m) for i, m in enumerate(turns, 1)]
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": "Turns:\n" + "\n".join(lines)},
    ]


def _turn_line(number: int, message: Message) -> str:
    who = message.speaker or message.role
    when = f"({format_day(message.occurred_at)}) " if message.occurred_at else ""
    return f"[{number}] {when}{who}: {_cut(_flat(message.content), MAX_TURN_CHARS)}"


# -- from the answer to candidates -----------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """The candidates one answer gives, and how many of its items were dropped."""

    candidates: tuple[Candidate, ...]
    dropped: int


def candidates_from(
    answer: Extraction,
    turns: Sequence[Message],
    times: TimeParser | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Converted:
    """The candidates an answer about ``turns`` proposes: citations mapped to message ids,
    texts trimmed and capped, event times resolved. Dropped: items beyond ``per_list``
    of a kind, items with no valid citation or no text, and duplicates (their citations
    joined to the first's)."""
    parser = times or RuleTimes()
    meta = dict(metadata or {})
    unique = _Unique()
    limit = per_list(len(turns))
    dropped = 0
    for kind, items in _lists(answer):
        dropped += max(0, len(items) - limit)
        for item in items[:limit]:
            cited = _cited(item.turns, turns)
            text = _cut(_flat(item.text), MAX_TEXT_CHARS)
            # no valid citation, no text, or a repeat: dropped
            kept = bool(cited and text) and unique.add(
                _candidate(kind, text, item, cited, parser, meta)
            )
            dropped += not kept
    return Converted(tuple(unique.candidates()), dropped)


_Answer = FactItem | EventItem | ProfileItem | ProcedureItem


def _lists(answer: Extraction) -> list[tuple[str, Sequence[_Answer]]]:
    return [("fact", answer.facts), ("event", answer.events), ("profile", answer.profile),
            ("procedure", answer.procedures)]  # fmt: skip


class _Unique:
    """Candidates by kind and text (in any case): a repeat's citations join the first's."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], Candidate] = {}

    def add(self, candidate: Candidate) -> bool:
        """Keep ``candidate``; ``False`` if it repeats one kept (which gains its sources)."""
        key = (candidate.kind, candidate.text.casefold())
        first = self.kept.get(key)
        if first is None:
            self.kept[key] = candidate
            return True
        sources = tuple(dict.fromkeys((*first.source_ids, *candidate.source_ids)))
        self.kept[key] = replace(first, source_ids=sources)
        return False

    def candidates(self) -> list[Candidate]:
        """The candidates kept, in the order first seen."""
        return list(self.kept.values())


def _cited(numbers: Sequence[int], turns: Sequence[Message]) -> list[Message]:
    """The turns cited by valid numbers (1..len), each once, in order."""
    valid = sorted({n for n in numbers if 1 <= n <= len(turns)})
    return [turns[n - 1] for n in valid]


def _candidate(
    kind: str,
    text: str,
    item: _Answer,
    cited: Sequence[Message],
    parser: TimeParser,
    metadata: Mapping[str, Any],
) -> Candidate:
    said = max((m.occurred_at for m in cited if m.occurred_at), default=None)
    attributes: dict[str, Any] = {}
    occurred_at = said
    if isinstance(item, EventItem):
        text, occurred_at, attributes = _event(text, item, said, parser)
    elif isinstance(item, ProfileItem):
        attributes = {"category": item.category, "explicit": item.explicit}
    elif isinstance(item, ProcedureItem):
        task = _cut(_flat(item.task), MAX_FIELD_CHARS)
        origin = "instruction" if all(m.role == "user" for m in cited) else "experience"
        attributes = {"origin": origin, **({"task": task} if task else {})}
    return Candidate(
        kind=kind, text=text, source_ids=tuple(m.id for m in cited), occurred_at=occurred_at,
        attributes=attributes, metadata=metadata,
    )  # fmt: skip


def _event(
    text: str, item: EventItem, said: datetime | None, parser: TimeParser
) -> tuple[str, datetime | None, dict[str, Any]]:
    """An event's text with its relative dates made absolute, when it happened (the
    start of the time it names, resolved against when it was said, else when it was
    said) and its who/where/when."""
    when = _cut(_flat(item.when), MAX_FIELD_CHARS)
    span = _first_date(parser.times(when, said)) if when else None
    span = span or _first_date(parser.times(text, said))
    attributes: dict[str, Any] = {}
    who = [n for n in dict.fromkeys(_cut(_flat(w), MAX_FIELD_CHARS) for w in item.who) if n]
    if who:
        attributes["who"] = who[:MAX_WHO]
    where = _cut(_flat(item.where), MAX_FIELD_CHARS)
    if where:
        attributes["where"] = where
    if span is not None:
        attributes["when"] = {"text": when or span.text, "start": span.start.isoformat(),
                              "end": span.end.isoformat(), "grain": span.grain}  # fmt: skip
    elif when:
        attributes["when"] = {"text": when}
    start = datetime.combine(span.start, time(), said.tzinfo if said else None) if span else None
    absolute = _cut(absolute_dates(text, parser.times(text, said)), MAX_TEXT_CHARS)
    return absolute, start or said, attributes


def _first_date(spans: Sequence[TimeSpan]) -> TimeSpan | None:
    return next((s for s in spans if s.kind == "date"), None)


_REPEATED = re.compile(r"\b(?:every|each)\s+$", re.IGNORECASE)


def absolute_dates(text: str, spans: Sequence[TimeSpan]) -> str:
    """``text`` with its relative dates (``spans`` found in it) written out: "yesterday"
    said on 8 May 2023 -> "7 May 2023", "last month" -> "April 2023", "last week" -> "the
    week of 1 May 2023". Vague times, durations, ranges and repeated days ("every
    Friday") stay as written: no single date says them."""
    out, end = [], 0
    for span in spans:
        words = _written(span)
        if not words or _REPEATED.search(text, 0, span.offset):
            continue
        out.append(text[end : span.offset])
        out.append(words)
        end = span.offset + len(span.text)
    out.append(text[end:])
    return "".join(out)


def _written(span: TimeSpan) -> str | None:
    if not span.relative or span.kind != "date":
        return None
    if span.grain in ("day", "month", "year", "season"):
        return describe(span) or None
    if span.grain in ("week", "weekend"):
        return f"the {span.grain} of {span.start.day} {span.start:%B} {span.start.year}"
    return None


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"


# -- the extractor ---------------------------------------------------------------------


class LLMExtractor:
    """A ``MemoryExtractor`` asking an LLM: one ``structured`` call per batch of up to
    ``batch_turns`` messages. An answer that stays invalid after the client's re-asks
    raises ``LLMError`` and nothing from any batch is returned."""

    def __init__(
        self,
        llm: LLM,
        *,
        batch_turns: int = 20,
        max_tokens: int | None = None,
        times: TimeParser | None = None,
    ) -> None:
        if batch_turns < 1:
            raise ConfigError(f"batch_turns must be 1 or more, not {batch_turns}")
        self.llm = llm
        self.batch_turns = batch_turns
        self.max_tokens = max_tokens
        self.times = times or RuleTimes()

    def extract(self, messages: Sequence[Message]) -> ExtractResult:
        """Candidates from ``messages``, batch by batch; duplicates across batches are
        joined (their citations merged) and counted as dropped."""
        metadata = {"prompt": EXTRACT_VERSION, "model": self.llm.model_id}
        unique = _Unique()
        dropped, calls, usage = 0, 0, Usage()
        for start in range(0, len(messages), self.batch_turns):
            batch = messages[start : start + self.batch_turns]
            schema = extraction_schema(per_list(len(batch)))
            completion = self.llm.structured(
                extract_messages(batch), schema, max_tokens=self.max_tokens
            )
            calls, usage = calls + 1, usage + completion.usage
            converted = candidates_from(completion.value, batch, self.times, metadata)
            repeats = sum(not unique.add(c) for c in converted.candidates)
            dropped += converted.dropped + repeats
        return ExtractResult(tuple(unique.candidates()), dropped, calls, usage)
