"""Turn memories: each message becomes one retrievable memory (no LLM needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from remem.models import MemoryRecord, Message
from remem.util import new_id


def turn_text(message: Message) -> str:
    """What a reader sees: the speaker (or role) and the verbatim content."""
    who = message.speaker or message.role
    return f"{who}: {message.content}"


def format_day(moment: datetime) -> str:
    """A date as words ("8 May 2023"), so keyword search can match it."""
    return f"{moment.day} {moment:%B} {moment.year}"


def turn_index_text(message: Message, dates: str = "") -> str:
    """What the keyword index sees: speaker, content, the day it was said and ``dates``
    (words for the periods the message refers to, such as "7 May 2023")."""
    text = turn_text(message)
    days = [format_day(message.occurred_at)] if message.occurred_at is not None else []
    if dates:
        days.append(dates)
    return f"{text} [{' | '.join(days)}]" if days else text


def turn_embed_text(message: Message) -> str:
    """What the embedder sees: speaker and content (dates add noise to vectors)."""
    return turn_text(message)


def turn_memories(
    messages: Sequence[Message],
    now: datetime,
    attributes: Sequence[Mapping[str, Any]] | None = None,
) -> list[MemoryRecord]:
    """One ``turn`` memory per message, citing it, with each message's enrichment."""
    extra = attributes if attributes is not None else [{}] * len(messages)
    return [
        MemoryRecord(
            id=new_id(),
            kind="turn",
            text=turn_text(m),
            scope=m.scope,
            source_ids=(m.id,),
            occurred_at=m.occurred_at,
            created_at=now,
            updated_at=now,
            metadata=dict(m.metadata),
            attributes={"role": m.role, **({"speaker": m.speaker} if m.speaker else {}), **more},
        )
        for m, more in zip(messages, extra, strict=True)
    ]
