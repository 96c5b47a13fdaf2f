"""Answers from memory: ``Memory.ask`` packs a token-budgeted context, asks the LLM to
answer from it and cite the memories it used by number, and returns a typed ``Answer``.

One LLM call per question, structured (``AnswerReply``): the model sees the memories
numbered ``[1]``, ``[2]``, ... in the context's layout (grouped by session and date, oldest
first) and answers ``{"answer", "citations"}``. Citations are mapped back to the memories
and through them to their source messages; a number that names no memory in the context is
dropped. When the memories do not hold the answer the model is told to say
``NO_ANSWER`` (LoCoMo's scorer looks for that phrase on its adversarial questions).

This module needs pydantic (the ``[llm]`` extra); ``Memory.ask`` imports it only once it
has an LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from remem.context import HEADER, Context, ContextItem
from remem.llms.base import LLM, ChatMessage, Usage
from remem.tokens import count_tokens
from remem.util import parse_timestamp, utcnow
from remem.validation import check_text

if TYPE_CHECKING:
    from remem.engine import Memory
    from remem.retrieval.recipes import Recipe

__all__ = [
    "ANSWER_MAX_TOKENS",
    "ANSWER_VERSION",
    "NO_ANSWER",
    "Answer",
    "AnswerReply",
    "Citation",
    "answer",
    "answer_messages",
    "citations",
    "numbered",
]

ANSWER_VERSION = "answer/1"
ANSWER_MAX_TOKENS = 300  # a short phrase and a few numbers, with room for a chatty model
NO_ANSWER = "No information available."


class AnswerReply(BaseModel):
    """The model's answer and the numbers of the memories it rests on."""

    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, description="the answer, a short phrase")
    citations: list[int] = Field(description="numbers of the memories the answer rests on")


@dataclass(frozen=True)
class Citation:
    """A memory the answer rests on: its number in the prompt, id, source messages and text."""

    number: int
    memory_id: str
    source_ids: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Answer:
    """What ``Memory.ask`` returns.

    ``text``: the answer; ``citations``: the memories it cites (numbers that named no
    memory dropped); ``context_tokens``: WordPiece tokens of the numbered memories the
    model saw; ``usage``: the LLM call's tokens (re-asks included); ``model``: the model
    that answered; ``prompt_version``: ``ANSWER_VERSION``.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    context_tokens: int
    usage: Usage
    model: str
    prompt_version: str = ANSWER_VERSION

    @property
    def source_ids(self) -> tuple[str, ...]:
        """The cited memories' source message ids, each once, in citation order."""
        return tuple(dict.fromkeys(s for c in self.citations for s in c.source_ids))


# ------------------------------------------------------------------------- prompt


def answer_messages(question: str, memories: str, today: datetime) -> list[ChatMessage]:
    """Ask for an answer to ``question`` from ``memories`` (numbered lines, ``numbered``),
    citing them by number (version ``ANSWER_VERSION``)."""
    system = (
        "You answer questions using only the memories given: numbered notes from earlier "
        "conversations, grouped under the date they were said. Answer with a short "
        "phrase, in the memories' own words where you can. Resolve relative dates "
        "('yesterday', 'last year') against the date of the memory they appear in. Cite "
        "the numbers of the memories your answer rests on. If the memories do not contain "
        f'the answer, answer exactly "{NO_ANSWER}" and cite nothing. Reply in JSON: '
        '{"answer": "...", "citations": [1, 3]}.'
    )
    user = (
        f"Memories:\n{memories or '(none)'}\n\n"
        f"Today is {today.day} {today:%B} {today.year}.\nQuestion: {question}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def numbered(context: Context) -> str:
    """The context's layout with each memory's line numbered ``[n]`` (n from 1, in the
    order shown) instead of bulleted, without its source ids (the model cites numbers)."""
    items = iter(enumerate(context.items, start=1))
    following = next(items, None)
    lines = []
    for line in context.text.splitlines():
        if line == HEADER:
            continue
        if following is not None and line == following[1].line:
            lines.append(_numbered_line(*following))
            following = next(items, None)
        else:
            lines.append(line)
    return "\n".join(lines)


def _numbered_line(number: int, item: ContextItem) -> str:
    sources = f" [{', '.join(item.memory.source_ids)}]"
    line = item.line.removeprefix("- ")
    return f"[{number}] {line.removesuffix(sources)}"


def citations(numbers: Sequence[int], items: Sequence[ContextItem]) -> tuple[Citation, ...]:
    """The cited memories, each once, in the order cited; numbers outside 1..len(items)
    are dropped."""
    chosen = dict.fromkeys(n for n in numbers if 1 <= n <= len(items))
    return tuple(
        Citation(n, items[n - 1].memory.id, items[n - 1].memory.source_ids,
                 items[n - 1].memory.text)
        for n in chosen
    )  # fmt: skip


# ---------------------------------------------------------------------------- ask


def answer(
    memory: Memory,
    llm: LLM,
    question: str,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    budget_tokens: int = 1000,
    recipe: str | Recipe | None = None,
    reference_time: Any = None,
) -> Answer:
    """``question`` answered by ``llm`` from ``memory``'s context for it (see
    ``Memory.ask``); raises ``LLMError`` when the model's answer stays invalid."""
    text = check_text(question, "question", memory.config.max_message_chars)
    when = parse_timestamp(reference_time, "reference_time")
    context = memory.context(
        text, budget_tokens=budget_tokens, user_id=user_id, agent_id=agent_id,
        session_id=session_id, recipe=recipe, reference_time=when,
    )  # fmt: skip
    block = numbered(context)
    messages = answer_messages(text, block, when or utcnow())
    reply = llm.structured(messages, AnswerReply, max_tokens=ANSWER_MAX_TOKENS)
    return Answer(
        question=text, text=reply.value.answer.strip(),
        citations=citations(reply.value.citations, context.items),
        context_tokens=count_tokens(block) if block else 0, usage=reply.usage,
        model=reply.model,
    )  # fmt: skip
