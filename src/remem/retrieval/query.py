"""Query analysis: the keyword terms of a question."""

from __future__ import annotations

import re

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
