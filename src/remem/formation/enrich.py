"""Deterministic enrichment at ingest: entities, resolved dates and key phrases per message.

Everything found goes into the turn memory's attributes (see ``remem.annotations``), from
which stores build their entity and time indexes; resolved dates are also appended to the
text the keyword index sees, so "yesterday" said on 8 May 2023 matches "7 May 2023".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remem.annotations import ENTITIES, KEYPHRASES, TIMES
from remem.config import EnrichConfig
from remem.formation import keyphrases
from remem.formation.entities import EntityMention, entity_key, extract_entities
from remem.models import Message
from remem.times import TimeSpan, describe, find_times

# (scope docs, {word: docs containing it}) for the words asked
TermCounts = Callable[[Sequence[str]], tuple[int, dict[str, int]]]
# {key: kind} of those of the asked keys that the scope's entity table holds
KnownEntities = Callable[[Sequence[str]], dict[str, str]]


@dataclass(frozen=True)
class Enriched:
    """What enrichment found in one message."""

    attributes: dict[str, Any]
    times: tuple[TimeSpan, ...]


def enrich(
    messages: Sequence[Message],
    known: KnownEntities,
    term_counts: TermCounts,
    config: EnrichConfig,
    seen: Mapping[str, str] | None = None,
) -> list[Enriched]:
    """Entities, times and key phrases of each message (each part switchable). ``known``
    answers which of the keys extraction asks about the scope already holds; ``seen``
    holds entities known from earlier answers (an entity's kind never changes)."""
    names: list[list[dict[str, str]]] = [[] for _ in messages]
    if config.entities:
        mentions = _mentions(messages, known, seen or {})
        names = [_entities(m, found) for m, found in zip(messages, mentions, strict=True)]
    phrases = _keyphrases(messages, names, term_counts, config) if config.keyphrases else None
    out = []
    for i, m in enumerate(messages):
        attrs: dict[str, Any] = {}
        spans: tuple[TimeSpan, ...] = ()
        if config.entities:
            attrs[ENTITIES] = names[i]
        if config.times and m.occurred_at is not None:
            spans = tuple(find_times(m.content, m.occurred_at))
            attrs[TIMES] = [_time_item(s) for s in spans]
        if phrases is not None:
            attrs[KEYPHRASES] = [{"key": k.key, "score": k.score} for k in phrases[i]]
        out.append(Enriched({k: v for k, v in attrs.items() if v}, spans))
    return out


class _Asked(Mapping[str, str]):
    """A read-only view of known entities that records every key extraction looks up
    (``get`` and ``in`` without exceptions: extraction makes hundreds of lookups)."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.known[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.known.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self.known

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def _mentions(
    messages: Sequence[Message], known: KnownEntities, seen: Mapping[str, str]
) -> list[list[EntityMention]]:
    """The entities of each message, with the entity table as far as they need it:
    extraction runs with what is known so far (``seen``) and records the keys it looks
    up; the store answers for the keys not known yet, until a run asks nothing new (one
    run when ``seen`` has what the messages name). An add never loads the whole table, so
    its cost does not grow with the scope."""
    table: dict[str, str] = dict(seen)
    for m in messages:  # speakers are people in the conversation: always entities
        if m.speaker:
            table.setdefault(entity_key(m.speaker), "speaker")
    looked_up: set[str] = set()
    while True:
        view = _Asked(table)
        found = [extract_entities(m.content, view) for m in messages]
        new = sorted(view.asked - looked_up - table.keys())
        answers = known(new) if new else {}
        looked_up.update(new)
        if not answers:  # nothing the last run asked about is known: its result stands
            return found
        table.update(answers)  # the stored kind wins over "speaker"


def _entities(message: Message, mentions: Sequence[EntityMention]) -> list[dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if message.speaker:
        key = entity_key(message.speaker)
        found[key] = {"key": key, "name": message.speaker, "kind": "speaker"}
    for mention in mentions:
        found.setdefault(mention.key, {"key": mention.key, "name": mention.name,
                                       "kind": mention.kind})  # fmt: skip
    return list(found.values())


def _time_item(span: TimeSpan) -> dict[str, str]:
    return {"text": span.text, "start": span.start.isoformat(), "end": span.end.isoformat(),
            "grain": span.grain, "kind": span.kind}  # fmt: skip


def _keyphrases(
    messages: Sequence[Message],
    names: Sequence[Sequence[Mapping[str, str]]],
    term_counts: TermCounts,
    config: EnrichConfig,
) -> list[list[keyphrases.KeyPhrase]]:
    """Score each message's candidate phrases against the scope plus this batch; words
    of the names a message mentions are left to its entity links."""
    candidates = []
    for m, found in zip(messages, names, strict=True):
        taken = {w for e in found for w in e["key"].split()}
        candidates.append([c for c in keyphrases.candidates(m.content)
                           if not taken & set(c.split())])  # fmt: skip
    words = sorted({w for c in candidates for phrase in c for w in phrase.split(" ")})
    docs, df = term_counts(words)
    batch = Counter(w for c in candidates for w in {p for p in c if " " not in p})
    total = docs + len(messages)
    merged = {w: df.get(w, 0) + batch[w] for w in words}
    # in a small store no word can be very surprising yet: a word no other memory has
    # always qualifies
    floor = min(config.keyphrase_min_bits, keyphrases.surprisal(1, total))
    return [keyphrases.score(c, merged, total, config.keyphrases_per_turn, floor)
            for c in candidates]  # fmt: skip


def index_suffix(spans: Sequence[TimeSpan]) -> str:
    """Words for the resolved periods a message mentions ("7 May 2023"), deduplicated."""
    words = dict.fromkeys(describe(s) for s in spans if s.kind != "vague")
    return " ".join(w for w in words if w)
