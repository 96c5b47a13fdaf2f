"""Deterministic enrichment at ingest: entities, resolved dates and key phrases per message.

Everything found goes into the turn memory's attributes (see ``remem.annotations``), from
which stores build their entity and time indexes; resolved dates are also appended to the
text the keyword index sees, so "yesterday" said on 8 May 2023 matches "7 May 2023".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remem.annotations import ENTITIES, KEYPHRASES, TIMES
from remem.config import EnrichConfig
from remem.formation import keyphrases
from remem.formation.entities import entity_key, extract_entities
from remem.models import Message
from remem.times import TimeSpan, describe, find_times

# (scope docs, {word: docs containing it}) for the words asked
TermCounts = Callable[[Sequence[str]], tuple[int, dict[str, int]]]


@dataclass(frozen=True)
class Enriched:
    """What enrichment found in one message."""

    attributes: dict[str, Any]
    times: tuple[TimeSpan, ...]


def enrich(
    messages: Sequence[Message],
    known: Mapping[str, str],
    term_counts: TermCounts,
    config: EnrichConfig,
) -> list[Enriched]:
    """Entities, times and key phrases of each message (each part switchable)."""
    known = dict(known)
    for m in messages:  # speakers are people in the conversation: always entities
        if config.entities and m.speaker:
            known.setdefault(entity_key(m.speaker), "speaker")
    names = [_entities(m, known) if config.entities else [] for m in messages]
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


def _entities(message: Message, known: Mapping[str, str]) -> list[dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if message.speaker:
        key = entity_key(message.speaker)
        found[key] = {"key": key, "name": message.speaker, "kind": "speaker"}
    for mention in extract_entities(message.content, known):
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
