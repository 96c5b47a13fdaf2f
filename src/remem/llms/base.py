"""The LLM contract: text and structured completions, typed results, usage accounting.

This module imports neither httpx nor pydantic, so the registry can name it without the
``[llm]`` extra installed.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypedDict, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

V = TypeVar("V")
M = TypeVar("M", bound="BaseModel")


class ChatMessage(TypedDict):
    """One chat message as OpenAI-compatible endpoints take it."""

    role: str  # "system", "user" or "assistant"
    content: str


class Mode(StrEnum):
    """How a structured answer was asked for, from the strongest guarantee to the weakest.

    ``json_schema``: the server constrains the answer to the schema (``response_format``
    type ``json_schema``). ``json_object``: the server guarantees JSON, the schema is in the
    prompt (and in ``response_format.schema``, which llama-cpp-python enforces). ``text``:
    plain text with the schema in the prompt; the first JSON object in the answer is taken.
    Every mode's answer is validated against the schema all the same.
    """

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    TEXT = "text"


MODES: tuple[Mode, ...] = (Mode.JSON_SCHEMA, Mode.JSON_OBJECT, Mode.TEXT)


@dataclass(frozen=True)
class Usage:
    """Tokens and requests, for one call (``Completion.usage``) or summed per client.

    ``calls``: ``complete``/``structured`` calls; ``requests``: requests sent for them,
    retries, re-asks and fallbacks included; ``failures``: calls that raised.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    calls: int = 0
    requests: int = 0
    failures: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class UsageMeter:
    """A thread-safe running total of ``Usage``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Usage()

    def add(self, usage: Usage) -> None:
        """Add to the total."""
        with self._lock:
            self._total = self._total + usage

    def total(self) -> Usage:
        """The total so far."""
        with self._lock:
            return self._total


@dataclass(frozen=True)
class Completion(Generic[V]):
    """One call's result.

    ``value``: the validated object (``structured``) or the text (``complete``); ``text``:
    the model's last raw answer; ``mode``: how the answer was asked for; ``attempts``:
    answers received (re-asks and fallbacks included); ``usage``: this call's tokens.
    """

    value: V
    text: str
    mode: Mode
    attempts: int
    usage: Usage
    model: str


class LLM(ABC):
    """A chat model: ``complete`` for text, ``structured`` for a validated pydantic object.

    Implementations set ``model_id``, count every call in ``self.meter`` (``usage()`` reads
    it) and raise ``LLMError`` for anything that went wrong, with the reason and the last
    raw answer; they never return an unvalidated object.
    """

    model_id: str

    def __init__(self) -> None:
        self.meter = UsageMeter()

    @abstractmethod
    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion[str]:
        """The model's plain-text answer to ``messages``."""

    @abstractmethod
    def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[M],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion[M]:
        """The model's answer to ``messages`` as a valid ``schema`` instance, or LLMError."""

    def usage(self) -> Usage:
        """Tokens, calls, requests and failures of this client so far."""
        return self.meter.total()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Reply:
    """One answer from a chat transport (the I/O half of a ``ChatLLM``).

    ``text`` is ``None`` when the model sent no content (a refusal, say); ``usage`` carries
    its tokens; ``requests`` how many requests it took (retries included).
    """

    text: str | None
    usage: Usage = Usage()
    finish_reason: str | None = None
    refusal: str | None = None
    requests: int = 1


class FormatRejected(Exception):
    """Raised by a transport when the server does not support the ``response_format`` sent;
    the core falls back to the next mode. Never escapes a ``ChatLLM``. ``requests``: how
    many requests the rejection took (retries included)."""

    def __init__(self, message: str, requests: int = 1) -> None:
        super().__init__(message)
        self.requests = requests


Params = dict[str, Any]
"""Sampling parameters passed through to the endpoint (``max_tokens``, ``temperature``)."""
