"""The shared core of chat LLMs: mode fallback, validation, re-asking and usage accounting
over one abstract transport method, so the HTTP client and the scripted fake behave alike."""

from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from remem.errors import ConfigError, InvalidInputError, LLMError
from remem.llms import structured as so
from remem.llms.base import (
    LLM,
    MODES,
    ChatMessage,
    Completion,
    FormatRejected,
    M,
    Mode,
    Params,
    Reply,
    Usage,
)

log = logging.getLogger(__name__)


@dataclass
class _Call:
    """What one ``structured`` call has spent so far."""

    usage: Usage = field(default_factory=lambda: Usage(calls=1))
    requests: int = 0  # the transport counts these in the meter itself, failed ones too
    attempts: int = 0
    reasks: int = 0

    def record(self, reply: Reply) -> None:
        self.usage = self.usage + reply.usage
        self.requests += reply.requests
        self.attempts += 1


class ChatLLM(LLM):
    """An ``LLM`` built on ``_send``, one chat request to some endpoint.

    ``structured`` starts in the mode that last worked for this client (``start_mode`` at
    first), moves to the next weaker mode when the server rejects a ``response_format`` or
    answers without any JSON, and remembers that; an answer that fails validation is sent
    back with the reason up to ``max_reasks`` times, then ``LLMError`` carries the reason
    and the last raw answer.
    """

    def __init__(self, *, max_reasks: int = 2, start_mode: str = "json_schema") -> None:
        super().__init__()
        if max_reasks < 0:
            raise ConfigError("max_reasks must be 0 or more")
        try:
            self._mode = Mode(start_mode)
        except ValueError:
            raise ConfigError(f"start_mode={start_mode!r}; use one of {', '.join(MODES)}") from None
        self.max_reasks = max_reasks
        self._mode_lock = threading.Lock()

    @property
    def mode(self) -> Mode:
        """The mode the next ``structured`` call starts in."""
        return self._mode

    @abstractmethod
    def _send(
        self, messages: list[ChatMessage], response_format: dict[str, Any] | None, params: Params
    ) -> Reply:
        """One chat request; raises ``FormatRejected`` if the server does not support
        ``response_format``, ``LLMError`` for anything else that failed. Adds every
        request it sends, retries included, to ``self.meter`` as ``Usage(requests=1)``,
        and the count to ``Reply.requests``."""

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion[str]:
        """The model's plain-text answer to ``messages``."""
        params = _params(max_tokens, temperature)
        with self._counted() as call:
            reply = self._send(_checked(messages), None, params)
            call.record(reply)
            return self._result(reply.text or "", reply, Mode.TEXT, call)

    def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[M],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion[M]:
        """The model's answer as a valid ``schema`` instance, or ``LLMError`` with the reason."""
        params = _params(max_tokens, temperature)
        history = _checked(messages)
        mode = self._mode
        with self._counted() as call:
            while True:
                try:
                    reply = self._send(
                        so.prepare(history, mode, schema), so.response_format(mode, schema), params
                    )
                except FormatRejected as exc:
                    call.requests += exc.requests
                    mode = self._fall_back(mode, f"the server rejected it: {exc}")
                    continue
                call.record(reply)
                outcome = so.parse(reply, schema)
                if not isinstance(outcome, so.Invalid):
                    return self._result(cast(M, outcome), reply, mode, call)
                if outcome.no_json and mode is not Mode.TEXT:
                    mode = self._fall_back(mode, f"{outcome.reason}: {so.preview(reply.text)}")
                    continue
                history = self._reask(history, reply, outcome.reason, call, schema)

    def _reask(
        self, history: list[ChatMessage], reply: Reply, reason: str, call: _Call, schema: type[M]
    ) -> list[ChatMessage]:
        if call.reasks >= self.max_reasks:
            raise LLMError(
                f"the LLM's answer stayed invalid after {call.attempts} attempts: {reason}; "
                "the output was not used (try a stronger model, or raise max_reasks)",
                reason=reason,
                raw=reply.text,
            )
        call.reasks += 1
        log.info(
            "re-asking the LLM (%d of %d): %s; it answered: %s",
            call.reasks, self.max_reasks, reason, so.preview(reply.text),
        )  # fmt: skip
        return so.reask(history, reply.text or "", reason, schema)

    def _fall_back(self, mode: Mode, why: str) -> Mode:
        if mode is Mode.TEXT:  # nothing weaker to try: a transport bug, say so
            raise LLMError(f"the LLM failed in plain text mode: {why}", reason=why)
        weaker = MODES[MODES.index(mode) + 1]
        with self._mode_lock:
            if MODES.index(self._mode) < MODES.index(weaker):
                self._mode = weaker
        log.info(
            "%s structured output failed (%s); using %s mode from now on for %s",
            mode, why, weaker, self.model_id,
        )  # fmt: skip
        return weaker

    def _result(self, value: Any, reply: Reply, mode: Mode, call: _Call) -> Completion[Any]:
        return Completion(
            value=value,
            text=reply.text or "",
            mode=mode,
            attempts=call.attempts,
            usage=call.usage + Usage(requests=call.requests),
            model=self.model_id,
        )

    @contextmanager
    def _counted(self) -> Iterator[_Call]:
        """Adds the call's usage to the client's total, and counts it as failed if it raised."""
        call = _Call()
        try:
            yield call
        except BaseException:
            call.usage = call.usage + Usage(failures=1)
            raise
        finally:
            self.meter.add(call.usage)


def _params(max_tokens: int | None, temperature: float | None) -> Params:
    params: Params = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    return params


def _checked(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """A copy of ``messages``, checked to be a non-empty list of role/content string pairs."""
    if isinstance(messages, str) or not messages:
        raise InvalidInputError(
            'messages must be a non-empty list of {"role": ..., "content": ...} dicts'
        )
    out: list[ChatMessage] = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise InvalidInputError(f"messages[{i}] needs string 'role' and 'content' fields")
        out.append({"role": role, "content": content})
    return out
