"""The consolidation prompt: candidates and their nearest memories in, one decision per
candidate out (after ``remem.llms.prompts``' convention: a versioned pure function beside
its schema).

The model sees memories and candidates by short local numbers, never by id, so it cannot
invent an id; ``remem.evolution.consolidate`` maps the numbers back and drops what names
a number it was not shown. Imported only when an LLM is configured (it needs pydantic,
from the ``[llm]`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remem.llms.base import ChatMessage

CONSOLIDATE_VERSION = "consolidate/1"
TOKENS_PER_DECISION = 120  # ``max_tokens`` per candidate of a call (plus ``TOKENS_BASE``)
TOKENS_BASE = 64

Action = Literal["ADD", "UPDATE", "MERGE", "NOOP", "INVALIDATE"]


class ConsolidationDecision(BaseModel):
    """What to do with one candidate."""

    model_config = ConfigDict(extra="forbid")

    candidate: int = Field(description="the candidate's number (C1 is 1)")
    action: Action
    targets: list[int] = Field(
        description="numbers of the existing memories it updates, merges, restates or "
        "invalidates (M2 is 2); [] for ADD"
    )
    links: list[int] = Field(description="numbers of related memories it does not replace")
    text: str = Field(
        description="for MERGE (or UPDATE), the text of the memory that replaces the "
        'targets; "" to keep the candidate\'s text'
    )
    reason: str = Field(description="why, in a few words")


class Consolidation(BaseModel):
    """One decision per candidate."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[ConsolidationDecision]


@dataclass(frozen=True)
class Shown:
    """A memory or candidate as the prompt shows it."""

    kind: str
    text: str
    when: datetime | None


@dataclass(frozen=True)
class Asked:
    """A candidate and the numbers of the memories nearest it."""

    item: Shown
    nearest: tuple[int, ...]


_SYSTEM = """You keep a long-term memory of facts about a user, the people in their life \
and their world. New candidate memories arrive; for each, decide how it changes the \
existing memories:
- ADD: new information. Keep it as a new memory.
- UPDATE: it changes one existing memory (a newer value, a correction). The old memory \
is kept as history and replaced by the candidate.
- MERGE: it and several existing memories describe one thing. They are all replaced by \
one memory; put its full text in "text".
- NOOP: nothing new. An existing memory already says it (name it in "targets"), or it \
is not worth remembering (no targets).
- INVALIDATE: it says an existing memory is no longer true and nothing replaces it \
("I sold my car" ends "has a car").
Name existing memories only by their numbers (M3 is 3) and candidates by theirs (C1 is \
1). "links": related existing memories (same person, topic or event) it does not \
replace. Keep every fact that is still true: when unsure, ADD. One decision per \
candidate."""


def consolidate_messages(
    memories: Sequence[Shown], candidates: Sequence[Asked]
) -> list[ChatMessage]:
    """Ask for one decision per candidate, given the existing memories nearest them."""
    lines = ["Existing memories:"]
    lines += [f"M{i}: {_line(m)}" for i, m in enumerate(memories, start=1)] or ["(none)"]
    lines += ["", "Candidates:"]
    for i, asked in enumerate(candidates, start=1):
        near = ", ".join(f"M{n}" for n in asked.nearest) or "none"
        lines.append(f"C{i}: {_line(asked.item)} (nearest: {near})")
    lines += ["", f"Decide for each of C1 to C{len(candidates)}."]
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


def _line(item: Shown) -> str:
    when = f", {item.when:%Y-%m-%d}" if item.when is not None else ""
    text = " ".join(item.text.split())
    return f"[{item.kind}{when}] {text}"


def max_tokens(candidates: int) -> int:
    """The answer budget of a call deciding ``candidates`` candidates."""
    return TOKENS_BASE + TOKENS_PER_DECISION * candidates
