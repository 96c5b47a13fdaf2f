"""Query analysis: keyword terms, time windows, named entities and the question's type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remem.formation.entities import query_entities
from remem.times import TimeSpan, find_times

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# English function words and question words: they match nearly every turn, so they
# only add noise (and time) to an OR query. Content words are never listed here.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t don didn doesn isn wasn weren won wouldn shouldn couldn hasn haven hadn aren ll ve re d
    m o y also yet ever get got gets us let lets may might must shall
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def terms(text: str) -> list[str]:
    """Lower-cased content words of ``text`` in order, without duplicates or stopwords."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if "'" in word:
            word = word.split("'")[0]
        if word and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


# Question types that change retrieval (checked in this order on the lower-cased question).
_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("duration", re.compile(r"\bhow long\b(?! ago)|\bfor how long\b|\bsince when\b")),
    ("when", re.compile(
        r"^(?:\W*)(?:when|what (?:date|day|time|year|month|week)|which (?:date|day|year|month|"
        r"week))\b|\bwhen (?:did|does|do|is|was|were|will|are|has|have)\b|\bhow long ago\b|"
        r"\bwhat time\b|\bin what year\b|\bwhat year\b")),
    ("count", re.compile(r"\bhow (?:many|much|often)\b|\bnumber of\b")),
    ("list", re.compile(
        r"^(?:\W*)(?:what|which) (?:(?:kinds?|types?|sorts?) of |[\w+-]+ )?"
        r"(?!(?:is|was|has|does|this|its|his|us|yes|bus|plus|series)\b)[a-z]+[^s\W]s\b|"
        r"\b(?:what|which) (?:are|were)\b|\bin what ways\b|\bboth\b|\ball (?:the )?\w+s\b")),
    ("who", re.compile(r"^(?:\W*)(?:who|whom|whose)\b|\bwith whom\b|\bwho (?:did|does|is)\b")),
    ("where", re.compile(r"^(?:\W*)where\b|\bwhat (?:city|country|place|state|town)\b")),
    ("yesno", re.compile(
        r"^(?:\W*)(?:is|are|was|were|do|does|did|has|have|had|can|could|would|will|should)\b")),
)  # fmt: skip


def intent(question: str) -> str | None:
    """The question's type when it matters for retrieval: "when", "duration", "count",
    "list" (answers gathered from several places), "who", "where", "yesno", or None."""
    text = question.lower().strip()
    for name, pattern in _INTENTS:
        if pattern.search(text):
            return name
    return None


# "before the trip", "after her charity race": a time relative to an event, not a date
_ANCHOR = re.compile(
    r"\b(before|after|since|until)\s+(?:the|my|his|her|their|our|your|a|an)\s+"
    r"([a-z][a-z' -]{1,40}?)(?=\s+(?:to|and|when|while|in|on|at|with|for)\b|[?.,!;]|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Anchor:
    """An event a question places its answer before or after ("after the accident")."""

    relation: str  # "before" or "after"
    event: str


@dataclass(frozen=True)
class QueryAnalysis:
    """What retrieval understood of a question."""

    text: str
    terms: tuple[str, ...]
    intent: str | None
    windows: tuple[TimeSpan, ...]
    entities: tuple[str, ...]
    reference: datetime
    anchors: tuple[Anchor, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``explain``."""
        return {
            "terms": list(self.terms),
            "intent": self.intent,
            "time_windows": [
                {"text": w.text, "start": w.start.isoformat(), "end": w.end.isoformat(),
                 "any_year": w.recurring}
                for w in self.windows
            ],
            "entities": list(self.entities),
            "anchors": [{"relation": a.relation, "event": a.event} for a in self.anchors],
            "reference_time": self.reference.isoformat(),
        }  # fmt: skip


def analyze(question: str, reference: datetime, known: Mapping[str, str]) -> QueryAnalysis:
    """Terms, intent, time windows (relative ones resolved against ``reference``) and the
    known entities a question names."""
    windows = tuple(w for w in find_times(question, reference) if w.kind != "vague")
    return QueryAnalysis(
        question, tuple(terms(question)), intent(question), windows,
        known_entities(question, known), reference, anchors(question, windows),
    )  # fmt: skip


def known_entities(question: str, known: Mapping[str, str]) -> tuple[str, ...]:
    """The keys of the entities in ``known`` that the question names, first mention first
    (none without ``known``: only known entities count)."""
    named = query_entities(question, known) if known else []
    return tuple(dict.fromkeys(m.key for m in named if m.key in known))


def anchors(question: str, windows: tuple[TimeSpan, ...] = ()) -> tuple[Anchor, ...]:
    """Events the question places its answer before or after, where no date does."""
    dated = [(w.offset, w.offset + len(w.text)) for w in windows]
    found = []
    for match in _ANCHOR.finditer(question):
        if any(a <= match.start() < b or match.start() <= a < match.end() for a, b in dated):
            continue
        relation = "before" if match.group(1).lower() in ("before", "until") else "after"
        found.append(Anchor(relation, match.group(2).strip().lower()))
    return tuple(found)
