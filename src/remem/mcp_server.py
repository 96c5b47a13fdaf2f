"""remem's MCP server: six memory tools over one ``Memory``, confined to one scope.

Agents get ``remember``, ``recall``, ``context``, ``forget``, ``pin`` and ``list_memories``.
The user and agent the tools work for are fixed when the server is built: no tool takes a
scope argument, reads span that owner's sessions, writes go to the configured session, and
a memory id outside the owner's memories answers exactly like an unknown id.

Each tool builds one of ``remem.api``'s requests and returns ``to_plain`` data, trimmed to
what an agent uses (ids, text, scores, times, source message ids). A ``RememError`` comes
back as a tool error result (``isError``) whose text is ``<code>: <message>`` and whose
structured content is ``{"error": {"code", "message"}}``, the code from
``remem.errors.ERRORS``. Any other failure is the SDK's: the client reads only
``Error executing tool <name>`` and the server logs the traceback to stderr.

The tools are plain functions, which the SDK runs in worker threads, so ``Memory``'s
blocking calls never hold up the event loop. Built on ``mcp.server.mcpserver.MCPServer``
(mcp 2.x), whose constructor sets up root logging to stderr unless the application already
configured logging.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from remem import __version__
from remem.api import (
    AddRequest,
    ContextRequest,
    ListRequest,
    SearchRequest,
    UpdateRequest,
    to_plain,
)
from remem.engine import Memory
from remem.errors import InvalidInputError, NotFoundError, RememError, kind_of
from remem.models import ROLES, MemoryRecord, Scope, SearchHit
from remem.validation import check_scope

__all__ = ["TOOL_NAMES", "ChatMessage", "MemoryTools", "build_server", "tool_error"]

logger = logging.getLogger(__name__)
P = ParamSpec("P")
Plain = dict[str, Any]

TOOL_NAMES = ("remember", "recall", "context", "forget", "pin", "list_memories")
_READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_ADDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_SETS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
_DELETES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


class ChatMessage(BaseModel):
    """One chat message given to ``remember``."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field("user", description=f"Who wrote it: one of {', '.join(ROLES)}.")
    content: str = Field(description="The message text, kept verbatim.")
    speaker: str | None = Field(None, description="The speaker's name, e.g. 'Ana' (optional).")
    timestamp: str | None = Field(
        None, description="When it was said, ISO 8601 (optional; default: the call's timestamp)."
    )


# --------------------------------------------------------------------------- results


def memory_view(record: MemoryRecord) -> Plain:
    """A memory as an agent reads it: ``to_plain`` without the large internal fields
    (``attributes``, index statistics); ``date`` is when it happened, else when stored."""
    plain = to_plain(record)
    return {
        "id": plain["id"], "kind": plain["kind"], "text": plain["text"],
        "date": plain["occurred_at"] or plain["created_at"],
        "source_ids": plain["source_ids"], "session_id": plain["scope"]["session_id"],
        "pinned": plain["pinned"], "metadata": plain["metadata"],
        "created_at": plain["created_at"], "updated_at": plain["updated_at"],
    }  # fmt: skip


def hit_view(hit: SearchHit) -> Plain:
    """A search hit: the memory's view plus its rank and fused score."""
    return {"rank": hit.rank, "score": hit.score, **memory_view(hit.memory)}


def tool_error(error: RememError) -> CallToolResult:
    """``error`` as a tool error result: ``isError``, the text ``<code>: <message>``, and
    ``{"error": {"code", "message"}}`` as structured content (the REST server's shape)."""
    code = kind_of(error).code
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {error}")],
        structured_content={"error": {"code": code, "message": str(error)}},
        is_error=True,
    )


def _reported(tool: Callable[P, Plain]) -> Callable[P, Plain | CallToolResult]:
    """``tool`` answering a ``RememError`` with ``tool_error`` (the SDK reads the schema
    from ``tool``'s signature through ``functools.wraps``)."""

    @functools.wraps(tool)
    def call(*args: P.args, **kwargs: P.kwargs) -> Plain | CallToolResult:
        try:
            return tool(*args, **kwargs)
        except RememError as exc:
            logger.info("tool %s refused: %s", tool.__name__, exc)
            return tool_error(exc)

    return call


# ----------------------------------------------------------------------------- tools


class MemoryTools:
    """The tools: ``Memory`` calls as one owner (user and/or agent), writing to its session.

    The docstrings are the descriptions the agent reads.
    """

    def __init__(self, memory: Memory, scope: Scope) -> None:
        self.memory = memory
        self.scope = scope
        self.user_id, self.agent_id = scope.user_id, scope.agent_id

    def remember(
        self,
        text: Annotated[
            str | None, Field(description="One thing to remember, in plain words.")
        ] = None,
        messages: Annotated[
            list[ChatMessage] | None,
            Field(description="Instead of text: chat messages to remember, in order."),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="JSON object stored with each message.")
        ] = None,
        timestamp: Annotated[
            str | None, Field(description="When it was said, ISO 8601; default: now.")
        ] = None,
    ) -> Plain:
        """Store something in long-term memory: a fact, preference, decision or event worth
        keeping across conversations, or a few chat messages. Give either `text` or
        `messages`. Everything is kept verbatim and can be found later with `recall`.
        Returns the new memories with their ids."""
        if (text is None) == (messages is None):
            raise InvalidInputError("give either text or messages (a list of chat messages)")
        content: str | list[dict[str, Any]] = (
            text if text is not None else [m.model_dump(exclude_none=True) for m in messages or ()]
        )
        result = AddRequest(
            messages=content, user_id=self.user_id, agent_id=self.agent_id,
            session_id=self.scope.session_id, metadata=metadata, timestamp=timestamp,
        ).run(self.memory)  # fmt: skip
        return {
            "message_ids": list(result.message_ids),
            "memories": [memory_view(r) for r in result.memories],
            "duplicate_ids": list(result.duplicate_ids),
        }

    def recall(
        self,
        query: Annotated[str, Field(description="What to look for: a question or key words.")],
        limit: Annotated[int, Field(description="How many memories to return, best first.")] = 10,
    ) -> Plain:
        """Search long-term memory for what answers `query` (hybrid keyword and semantic
        search, time-aware: "what did I say last week?"). Returns hits best first, each with
        its memory id, text, score, date and the ids of the messages it came from."""
        request = SearchRequest(
            query=query, limit=limit, user_id=self.user_id, agent_id=self.agent_id
        )
        results = request.run(self.memory)
        return {"query": results.query, "hits": [hit_view(h) for h in results.hits]}

    def context(
        self,
        query: Annotated[str, Field(description="The question or task to gather memories for.")],
        budget_tokens: Annotated[
            int, Field(description="Most tokens the block may take (WordPiece tokens).")
        ] = 1000,
    ) -> Plain:
        """Build a prompt-ready block of the memories most relevant to `query` that fits
        `budget_tokens`, grouped by session and date, each line citing its source message
        ids. Use it before answering anything that may depend on earlier conversations."""
        request = ContextRequest(
            query=query, budget_tokens=budget_tokens, user_id=self.user_id, agent_id=self.agent_id
        )
        found = request.run(self.memory)
        return {
            "text": found.text, "tokens": found.tokens, "budget_tokens": found.budget_tokens,
            "memory_ids": [item.memory.id for item in found.items],
            "source_ids": list(found.source_ids),
        }  # fmt: skip

    def forget(
        self, memory_id: Annotated[str, Field(description="Id of the memory to delete.")]
    ) -> Plain:
        """Delete one memory by id (from `recall` or `list_memories`), e.g. when the user
        asks you to forget something or it is wrong. The original messages stay in the log."""
        self.memory.delete(self._own(memory_id))
        return {"deleted": memory_id}

    def pin(
        self,
        memory_id: Annotated[str, Field(description="Id of the memory to pin or unpin.")],
        pinned: Annotated[bool, Field(description="True to pin, false to unpin.")] = True,
    ) -> Plain:
        """Pin a memory that must not fade or be dropped (a lasting preference, a key fact),
        or unpin it. Returns the memory as it is now."""
        record = UpdateRequest(pinned=pinned).run(self.memory, self._own(memory_id))
        return {"memory": memory_view(record)}

    def list_memories(
        self,
        limit: Annotated[int, Field(description="How many memories per page.")] = 20,
        offset: Annotated[int, Field(description="How many to skip: the next_offset.")] = 0,
    ) -> Plain:
        """List stored memories, most recent first, one page at a time. Pass the returned
        `next_offset` as `offset` for the next page; it is null after the last page."""
        request = ListRequest(
            limit=limit, offset=offset, user_id=self.user_id, agent_id=self.agent_id
        )
        page = request.run(self.memory)
        return {
            "memories": [memory_view(r) for r in page.items],
            "limit": page.limit, "offset": page.offset, "next_offset": page.next_offset,
        }  # fmt: skip

    def _own(self, memory_id: str) -> str:
        """``memory_id`` if it names one of the owner's memories; otherwise the same
        ``NotFoundError`` whether it is unknown or someone else's, which reveals nothing."""
        try:
            record: MemoryRecord | None = self.memory.get(memory_id)
        except NotFoundError:
            record = None
        if record is None or any(
            want is not None and want != got
            for want, got in ((self.user_id, record.scope.user_id),
                              (self.agent_id, record.scope.agent_id))
        ):  # fmt: skip
            raise NotFoundError(
                f"no memory {memory_id!r} here; find memory ids with recall or list_memories"
            )
        return record.id


# ---------------------------------------------------------------------------- server


def build_server(
    memory: Memory,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> MCPServer[Any]:
    """An MCP server whose tools read and write ``memory`` as ``user_id`` and/or
    ``agent_id`` (at least one), adding to ``session_id`` if given.

    Run it with ``server.run("stdio")`` or ``server.run("streamable-http", host=...,
    port=..., streamable_http_path="/mcp")``; ``remem mcp`` does.
    """
    scope = check_scope(memory.namespace, user_id, agent_id, session_id)
    if scope.user_id is None and scope.agent_id is None:
        raise InvalidInputError(
            "the MCP server needs a user_id or an agent_id (or both): it serves one owner's "
            "memories"
        )
    tools = MemoryTools(memory, scope)
    server: MCPServer[Any] = MCPServer(
        "remem", version=__version__, instructions=_instructions(scope), log_level="WARNING"
    )
    table: tuple[tuple[Callable[..., Plain], ToolAnnotations], ...] = (
        (tools.remember, _ADDS), (tools.recall, _READS), (tools.context, _READS),
        (tools.forget, _DELETES), (tools.pin, _SETS), (tools.list_memories, _READS),
    )  # fmt: skip
    for tool, hints in table:
        description = " ".join((tool.__doc__ or "").split())  # one paragraph, unwrapped
        server.add_tool(
            _reported(tool), name=tool.__name__, description=description, annotations=hints
        )
    return server


def _instructions(scope: Scope) -> str:
    """What the server tells the agent about itself."""
    owner = " and ".join(
        f"{what} {value!r}" for what, value in (("user", scope.user_id), ("agent", scope.agent_id))
        if value is not None
    )  # fmt: skip
    return (
        f"remem: long-term memory of {owner}. Call recall or context before answering "
        "anything that may depend on earlier conversations; call remember for facts, "
        "preferences and decisions worth keeping. Results carry memory ids for pin and "
        "forget, and source message ids to cite."
    )
