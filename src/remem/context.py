"""Token-budgeted context: the best memories that fit N tokens, laid out for a prompt.

Packing is greedy in rank order (a memory that does not fit is skipped and smaller ones
after it may still fit); the packed memories are then grouped by conversation session
and shown in time order, each line citing its source message ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from remem.models import MemoryRecord, SearchHit
from remem.tokens import TOKENIZER_NAME, count_tokens

HEADER = "Relevant memories (oldest first, [source ids]):"


@dataclass(frozen=True)
class ContextItem:
    """One packed memory: the line shown, its tokens and its rank in the search."""

    memory: MemoryRecord
    line: str
    tokens: int
    rank: int


@dataclass(frozen=True)
class Context:
    """A prompt-ready block of memories within ``budget_tokens``."""

    query: str
    text: str
    items: tuple[ContextItem, ...]
    tokens: int
    budget_tokens: int
    tokenizer: str = TOKENIZER_NAME

    @property
    def source_ids(self) -> tuple[str, ...]:
        """Every cited message id, in the order shown."""
        return tuple(s for item in self.items for s in item.memory.source_ids)


def _day(moment: datetime | None) -> str:
    return "undated" if moment is None else f"{moment.day} {moment:%B} {moment.year}"


def render_line(memory: MemoryRecord) -> str:
    """One memory as a prompt line: time, text and cited sources."""
    when = "" if memory.occurred_at is None else f"{memory.occurred_at:%H:%M} "
    return f"- {when}{memory.text} [{', '.join(memory.source_ids)}]"


def _session_header(memory: MemoryRecord) -> str:
    session = memory.scope.session_id or "no session"
    return f"## {_day(memory.occurred_at)} (session {session})"


def pack(
    query: str,
    hits: Sequence[SearchHit],
    budget_tokens: int,
    count: Callable[[str], int] = count_tokens,
    positions: Mapping[str, int] | None = None,
) -> Context:
    """Choose hits in rank order while the whole block (headers included) fits the budget.

    ``positions`` (memory id -> position of the turn in its session) orders turns that
    share a timestamp, as LoCoMo's do; without it they keep their rank order.
    """
    chosen: list[ContextItem] = []
    headers: set[str] = set()
    used = count(HEADER)
    for hit in hits:
        line = render_line(hit.memory)
        header = _session_header(hit.memory)
        cost = count(line) + (0 if header in headers else count(header))
        if used + cost > budget_tokens:
            continue
        used += cost
        headers.add(header)
        chosen.append(ContextItem(hit.memory, line, count(line), hit.rank))
    ordered = _ordered(chosen, positions or {})
    return Context(query, _layout(ordered), tuple(ordered), used if chosen else 0, budget_tokens)


def _ordered(items: Sequence[ContextItem], positions: Mapping[str, int]) -> list[ContextItem]:
    def key(item: ContextItem) -> tuple[datetime, str, datetime, int, int]:
        # (day, session) first: that is the header, so each header's lines stay together
        moment = item.memory.occurred_at or datetime.min
        day = datetime(moment.year, moment.month, moment.day)
        position = positions.get(item.memory.id, 0)
        return (day, item.memory.scope.session_id or "", moment, position, item.rank)

    return sorted(items, key=key)


def _layout(items: Sequence[ContextItem]) -> str:
    if not items:
        return ""
    lines = [HEADER]
    last_header = None
    for item in items:
        header = _session_header(item.memory)
        if header != last_header:
            lines.append(header)
            last_header = header
        lines.append(item.line)
    return "\n".join(lines)
