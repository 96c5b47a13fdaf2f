"""Key phrases: the words of a message that are surprising for this store (after SirLLM).

SirLLM keeps the tokens an LLM finds most surprising (high entropy) and lets their weight
decay as the conversation moves on. Without an LLM, surprisal comes from the store's own
term statistics: a word that few of the scope's memories contain carries more bits,
``-log2((df + 1) / (docs + 2))``. A phrase of two content words scores the mean of its
words plus one bit (a phrase is more specific than its words). Decay happens on read:
``decayed`` weighs a mention by how many sessions have passed since.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from remem.annotations import words as all_words
from remem.formation.entities import COMMON
from remem.retrieval.query import STOPWORDS

_BREAK = re.compile(r"[.!?;:,()\[\]\"“”]|\s[-\u2013\u2014]\s")  # phrases never cross these
PHRASE_BONUS = 1.0


@dataclass(frozen=True)
class KeyPhrase:
    """A phrase of a message and its surprisal in bits."""

    key: str
    score: float


def _word_ok(word: str) -> bool:
    return len(word) >= 3 and word not in STOPWORDS and word not in COMMON


def candidates(text: str) -> list[str]:
    """Content words and phrases of two adjacent content words, in order, no repeats."""
    seen: dict[str, None] = {}
    for chunk in _BREAK.split(text.lower()):
        previous: str | None = None
        for word in all_words(chunk):
            if not _word_ok(word):
                previous = None
                continue
            seen.setdefault(word, None)
            if previous is not None:
                seen.setdefault(f"{previous} {word}", None)
            previous = word
    return list(seen)


def surprisal(df: int, docs: int) -> float:
    """Bits of surprise of a term found in ``df`` of ``docs`` documents (smoothed)."""
    return -math.log2((max(df, 0) + 1) / (max(docs, df, 0) + 2))


def score(
    phrases: Iterable[str], df: Mapping[str, int], docs: int, top: int, min_bits: float
) -> list[KeyPhrase]:
    """The ``top`` most surprising phrases with at least ``min_bits``, best first.

    ``df`` holds document frequencies of single words; a two-word phrase scores the mean
    of its words plus ``PHRASE_BONUS``, so it wins over its words only when both are rare.
    """
    scored: list[KeyPhrase] = []
    for phrase in phrases:
        parts = phrase.split(" ")
        bits = sum(surprisal(df.get(p, 0), docs) for p in parts) / len(parts)
        if len(parts) > 1:
            bits += PHRASE_BONUS
        if bits >= min_bits:
            scored.append(KeyPhrase(phrase, round(bits, 3)))
    scored.sort(key=lambda k: (-k.score, k.key))
    return _drop_covered(scored)[:top]


def _drop_covered(scored: Sequence[KeyPhrase]) -> list[KeyPhrase]:
    """Drop a word when a better-scored phrase already contains it."""
    kept: list[KeyPhrase] = []
    covered: set[str] = set()
    for item in scored:
        parts = item.key.split(" ")
        if len(parts) == 1 and item.key in covered:
            continue
        kept.append(item)
        covered.update(parts)
    return kept


def decayed(weight: float, sessions_since: int, rate: float) -> float:
    """A mention's weight after ``sessions_since`` later sessions (``rate`` per session)."""
    return weight * rate ** max(sessions_since, 0)
