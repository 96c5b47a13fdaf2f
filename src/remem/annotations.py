"""The enrichment a memory carries in its attributes, and the index rows derived from them.

A memory's ``attributes`` are the source of truth for what ingest found in it:

- ``"entities"``: ``[{"key", "name", "kind"}]``, names and titles it mentions;
- ``"keyphrases"``: ``[{"key", "score"}]``, its most surprising phrases (score in bits;
  linked with ``keyphrase_weight``);
- ``"times"``: ``[{"text", "start", "end", "grain", "kind"}]``, time expressions resolved
  against when it was said (ISO dates, inclusive).

Stores derive their entity and time indexes from these with the functions below, on insert
and on import alike, so an export carries everything and nothing can drift.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import snowballstemmer

ENTITIES = "entities"
KEYPHRASES = "keyphrases"
TIMES = "times"
KEYPHRASE_KIND = "keyphrase"
FULL_BITS = 8.0  # surprisal of a word in about 1 of 256 turns
_WORD = re.compile(r"([^\W\d_]+)(?:'[^\W\d_]+)?", re.UNICODE)  # group 1: before any '


@dataclass(frozen=True)
class EntityLink:
    """A memory's link to an entity-table row (a name, a title or a key phrase)."""

    key: str
    name: str
    kind: str
    weight: float = 1.0


@dataclass(frozen=True)
class TimeLink:
    """A period a memory refers to (inclusive days) and what kind of reference it is."""

    start: date
    end: date
    kind: str


def entity_links(attributes: Mapping[str, Any]) -> list[EntityLink]:
    """Entity and key-phrase links of a memory, one per key (first kind wins)."""
    out: dict[str, EntityLink] = {}
    for item in _items(attributes, ENTITIES):
        key, name = item.get("key"), item.get("name")
        if isinstance(key, str) and key and key not in out:
            shown = name if isinstance(name, str) and name else key
            out[key] = EntityLink(key, shown, str(item.get("kind") or "name"))
    for item in _items(attributes, KEYPHRASES):
        key, score = item.get("key"), item.get("score")
        if isinstance(key, str) and key and key not in out:
            out[key] = EntityLink(key, key, KEYPHRASE_KIND, keyphrase_weight(score))
    return list(out.values())


def keyphrase_weight(score: Any) -> float:
    """A key phrase's link weight: its surprisal over ``FULL_BITS``, at most 1 (a name's
    weight), so a phrase that rare weighs like a name and a commoner one less."""
    if not isinstance(score, int | float) or score <= 0:
        return 0.5
    return min(1.0, float(score) / FULL_BITS)


def time_links(attributes: Mapping[str, Any]) -> list[TimeLink]:
    """The resolved periods a memory mentions; malformed entries are skipped."""
    out: list[TimeLink] = []
    for item in _items(attributes, TIMES):
        try:
            start = date.fromisoformat(str(item["start"]))
            end = date.fromisoformat(str(item["end"]))
        except (KeyError, ValueError):
            continue
        if start <= end:
            out.append(TimeLink(start, end, str(item.get("kind") or "date")))
    return out


def _items(attributes: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = attributes.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` in order ("Nate's" -> "nate"): the unit of the term
    statistics stores keep for key-phrase surprisal."""
    found: list[str] = _WORD.findall(text.lower())
    return found


_STEMMERS = threading.local()  # a Snowball stemmer keeps state while it works: one per thread
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _stemmer() -> Any:
    found = getattr(_STEMMERS, "stemmer", None)
    if found is None:
        found = _STEMMERS.stemmer = snowballstemmer.stemmer("english")
    return found


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of a lower-case word ("camping" -> "camp"); safe to
    call from several threads (each has its own stemmer; the cache is shared)."""
    result: str = _stemmer().stemWord(word)
    return result


def _fold(text: str) -> str:
    """Lower case without diacritics ("Café" -> "cafe")."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def keyword_terms(text: str) -> list[str]:
    """The terms of the keyword (BM25) index, in order: lower-cased, diacritics removed,
    letters and digits split at anything else ("Nate's" -> "nate", "s"), stemmed."""
    return [stem(t) if not t.isdigit() else t for t in _TOKEN.findall(_fold(text))]


@lru_cache(maxsize=16384)
def query_terms(word: str) -> tuple[str, ...]:
    """``keyword_terms`` of one query word or entity key, remembered: searches ask for the
    same few thousand words again and again."""
    return tuple(keyword_terms(word))


def stems(text: str) -> list[str]:
    """Stemmed words of ``text``: the terms of the session keyword index."""
    return [stem(w) for w in words(text)]
