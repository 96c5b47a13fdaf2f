"""Extractive session summaries: the session's topics and its most informative turns.

A turn's salience is the weight of the key phrases and entities it names, over the square
root of its length (long turns do not win by length alone). The summary lists the
session's top key phrases and entities, then its most salient turns in conversation order,
and cites those turns. Retrieval uses summaries to find the right session first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from remem.annotations import EntityLink, entity_links
from remem.models import MemoryRecord

MAX_TURN_CHARS = 240
TOPICS = 8
MIN_TURNS = 4  # a shorter session is its own summary


@dataclass(frozen=True)
class SummaryDraft:
    """A session summary before it is stored."""

    text: str
    source_ids: tuple[str, ...]
    attributes: dict[str, Any]


def salience(turn: MemoryRecord, links: Sequence[EntityLink] | None = None) -> float:
    """Key-phrase weights plus one per named entity, over the square root of the word
    count (a long turn does not win by length alone)."""
    links = entity_links(turn.attributes) if links is None else links
    weight = sum(link.weight for link in links if link.kind != "speaker")
    return weight / math.sqrt(max(len(turn.text.split()), 1))


def summarize(turns: Sequence[MemoryRecord]) -> SummaryDraft | None:
    """The summary of one session's turns (in conversation order); None when empty."""
    if not turns:
        return None
    count = min(5, max(1, round(len(turns) / 8)))
    links = [entity_links(t.attributes) for t in turns]
    scored = {i: salience(t, links[i]) for i, t in enumerate(turns)}
    ranked = sorted(scored, key=lambda i: (-scored[i], i))
    picked = sorted(i for i in ranked[:count] if scored[i] > 0) or ranked[:1]
    topics = _topics(links)
    lines = [_clip(turns[i].text) for i in picked]
    text = (f"Topics: {', '.join(topics)}. " if topics else "") + " … ".join(lines)
    sources = tuple(s for i in picked for s in turns[i].source_ids)
    return SummaryDraft(text, sources, {"turns": len(turns), "topics": topics})


def _topics(links: Sequence[Sequence[EntityLink]]) -> list[str]:
    weight: dict[str, float] = {}
    names: dict[str, str] = {}
    for turn_links in links:
        for link in turn_links:
            if link.kind == "speaker":
                continue
            weight[link.key] = weight.get(link.key, 0.0) + link.weight
            names.setdefault(link.key, link.name)
    best = sorted(weight, key=lambda k: (-weight[k], k))[:TOPICS]
    return [names[key] for key in best]


def summary_embed_text(record: MemoryRecord) -> str:
    """What the embedder sees of a summary: its topics (a summary quotes up to five long
    turns, and embedding all of it cost a quarter of ingest's embedding time); the
    first quoted turn when it has no topics."""
    topics = record.attributes.get("topics")
    if isinstance(topics, list) and topics:
        return "Topics: " + ", ".join(str(t) for t in topics)
    return _clip(record.text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TURN_CHARS else text[: MAX_TURN_CHARS - 1] + "…"


def needs_refresh(turn_count: int, summarized: int | None) -> bool:
    """Summarise a session once it has ``MIN_TURNS`` turns, then again each time it grew
    by a quarter (at least ``MIN_TURNS`` turns), so a session added one turn at a time
    gets few summary versions."""
    if summarized is None:
        return turn_count >= MIN_TURNS
    return turn_count - summarized >= max(MIN_TURNS, summarized // 4)
