"""A scripted LLM for tests: replays given answers through the same core as the real client.

Tests register it through the real registry (``register_llm("scripted", ScriptedLLM)``);
remem itself never does, so it is never picked by accident.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import BaseModel

from remem.llms.base import ChatMessage, FormatRejected, Mode, Params, Reply, Usage
from remem.llms.chat import ChatLLM


@dataclass(frozen=True)
class ScriptedRequest:
    """One request the scripted LLM received."""

    messages: list[ChatMessage]
    response_format: dict[str, Any] | None
    params: Params

    @property
    def mode(self) -> Mode:
        """The structured-output mode this request was sent in."""
        kind = (self.response_format or {}).get("type")
        return Mode(kind) if kind else Mode.TEXT


Scripted: TypeAlias = (
    "str | BaseModel | dict[str, Any] | BaseException | Reply "
    "| Callable[[ScriptedRequest], Scripted]"
)
"""An answer: text, an object sent as JSON, an exception to raise, a whole ``Reply``, or a
function of the request returning one of those."""


class ScriptedLLM(ChatLLM):
    """Answers each request with the next scripted reply, in order.

    ``reject_modes``: structured-output modes the pretend server rejects, as a server
    without ``json_schema`` support does (no reply is used up). Token usage is counted in
    words. ``requests`` lists what was asked; running out of replies raises RuntimeError,
    so a test sees an unexpected extra call.
    """

    def __init__(
        self,
        replies: Iterable[Scripted] = (),
        *,
        model: str = "scripted",
        reject_modes: Iterable[str] = (),
        max_reasks: int = 2,
        start_mode: str = "json_schema",
    ) -> None:
        super().__init__(max_reasks=max_reasks, start_mode=start_mode)
        self.model_id = f"scripted:{model}"
        self.reject_modes = frozenset(Mode(m) for m in reject_modes)
        self.requests: list[ScriptedRequest] = []
        self._replies: deque[Scripted] = deque(replies)
        self._lock = threading.Lock()

    def add(self, *replies: Scripted) -> None:
        """Script more replies."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def remaining(self) -> int:
        """Replies not used yet."""
        return len(self._replies)

    def _send(
        self, messages: list[ChatMessage], response_format: dict[str, Any] | None, params: Params
    ) -> Reply:
        request = ScriptedRequest(messages, response_format, dict(params))
        with self._lock:
            self.requests.append(request)
            self.meter.add(Usage(requests=1))
            if request.mode in self.reject_modes:
                raise FormatRejected(f"this scripted server does not support {request.mode}")
            if not self._replies:
                raise RuntimeError(
                    f"ScriptedLLM ran out of replies at request {len(self.requests)}; "
                    "script one more"
                )
            item = self._replies.popleft()
        return _reply(item, request)


def _reply(item: Scripted, request: ScriptedRequest) -> Reply:
    while callable(item) and not isinstance(item, BaseModel | BaseException):
        item = item(request)
    if isinstance(item, BaseException):
        raise item
    if isinstance(item, Reply):
        return item
    if isinstance(item, BaseModel):
        text = item.model_dump_json()
    elif isinstance(item, dict):
        text = json.dumps(item)
    else:
        text = item
    prompt = sum(len(m["content"].split()) for m in request.messages)
    completion = len(text.split())
    return Reply(text=text, usage=Usage(prompt, completion, prompt + completion))
