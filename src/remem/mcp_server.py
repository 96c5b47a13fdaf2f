"""remem's MCP server: the memory tools of ``remem.tools`` over one ``Memory``, confined to
one scope.

Agents get ``remember``, ``recall``, ``context``, ``update``, ``pin``, ``forget`` and
``list_memories``, exactly as ``remem.tools.tool_definitions`` defines them (one source of
truth for function calling and MCP). The user and agent the tools work for are fixed when
the server is built: no tool takes a scope argument, reads span that owner's sessions,
writes go to the configured session, and a memory id outside the owner's memories answers
exactly like an unknown id.

Each call goes through ``remem.tools.call_tool``, which checks the arguments against the
tool's schema and returns plain data, trimmed to what an agent uses (ids, text, scores,
times, source message ids). Arguments that do not match the schema (a wrong type, a
missing argument, an unknown field in a message) answer ``Error executing tool <name>:
<reason>``, as MCP SDKs report a schema mismatch; top-level arguments a tool does not take
are ignored, as MCP SDKs ignore them. Any other ``RememError`` comes back as a tool error result
(``isError``) whose text is ``<code>: <message>`` and whose structured content is
``{"error": {"code", "message"}}``, the code from ``remem.errors.ERRORS``. Any other
failure reads only ``Error executing tool <name>``; the traceback goes to stderr.

Calls run in worker threads, so ``Memory``'s blocking calls never hold up the event loop.
Built on ``mcp.server.mcpserver.MCPServer`` (mcp 2.x), whose ``list_tools`` and
``call_tool`` are replaced to serve the shared definitions; its constructor sets up root
logging to stderr unless the application already configured logging.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import UnexpectedToolError
from mcp.types import CallToolResult, TextContent, Tool, ToolAnnotations

from remem import __version__
from remem.engine import Memory
from remem.errors import InvalidInputError, RememError, kind_of
from remem.models import Scope
from remem.tools import TOOL_NAMES, TOOLS, ToolArgumentError, ToolSpec, call_tool
from remem.validation import check_scope

__all__ = ["TOOL_NAMES", "build_server", "tool_error"]

logger = logging.getLogger(__name__)
_SPECS = {spec.name: spec for spec in TOOLS}


def tool_error(error: RememError) -> CallToolResult:
    """``error`` as a tool error result: ``isError``, the text ``<code>: <message>``, and
    ``{"error": {"code", "message"}}`` as structured content (the REST server's shape)."""
    code = kind_of(error).code
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {error}")],
        structured_content={"error": {"code": code, "message": str(error)}},
        is_error=True,
    )


def _annotations(spec: ToolSpec) -> ToolAnnotations:
    """A tool's hints for clients: read-only, destructive, idempotent; never open-world
    (the tools touch only this memory)."""
    if spec.read_only:
        return ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return ToolAnnotations(
        read_only_hint=False, destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent, open_world_hint=False,
    )  # fmt: skip


class _MemoryServer(MCPServer[Any]):
    """An ``MCPServer`` whose tools are ``remem.tools``' definitions, run for one owner."""

    def __init__(self, memory: Memory, scope: Scope, **options: Any) -> None:
        super().__init__(**options)
        self.memory, self.scope = memory, scope
        self._tools = [
            Tool(name=spec.name, description=spec.description,
                 input_schema=dict(spec.parameters), annotations=_annotations(spec))
            for spec in TOOLS
        ]  # fmt: skip

    async def list_tools(self) -> list[Tool]:
        """The tools, as ``remem.tools`` defines them."""
        return [tool.model_copy(deep=True) for tool in self._tools]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        """Run one tool in a worker thread; remem's errors become tool error results.

        Top-level arguments the tool does not take are dropped, as MCP SDKs do: a made-up
        ``user_id`` changes nothing (``call_tool`` itself refuses them)."""
        spec = _SPECS.get(name)
        if spec is not None:
            arguments = {k: v for k, v in arguments.items() if k in spec.parameters["properties"]}
        run = functools.partial(
            call_tool, self.memory, name, arguments, user_id=self.scope.user_id,
            agent_id=self.scope.agent_id, session_id=self.scope.session_id,
        )  # fmt: skip
        try:
            result = await anyio.to_thread.run_sync(run)
        except ToolArgumentError as exc:
            logger.info("tool %s refused its arguments: %s", name, exc)
            text = f"Error executing tool {name}: {exc}"
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        except RememError as exc:
            logger.info("tool %s refused: %s", name, exc)
            return tool_error(exc)
        except Exception as exc:  # the SDK logs it and answers without the details
            raise UnexpectedToolError(f"Error executing tool {name}") from exc
        return _result(result)


def _result(data: Mapping[str, Any]) -> CallToolResult:
    """A tool's data as structured content and as the same JSON in a text block."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=dict(data)
    )


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
    return _MemoryServer(
        memory, scope, name="remem", version=__version__, instructions=_instructions(scope),
        log_level="WARNING",
    )  # fmt: skip


def _instructions(scope: Scope) -> str:
    """What the server tells the agent about itself."""
    owner = " and ".join(
        f"{what} {value!r}" for what, value in (("user", scope.user_id), ("agent", scope.agent_id))
        if value is not None
    )  # fmt: skip
    return (
        f"remem: long-term memory of {owner}. Call recall or context before answering "
        "anything that may depend on earlier conversations; call remember for facts, "
        "preferences and decisions worth keeping, and update or forget for what turned out "
        "wrong. Results carry memory ids for update, pin and forget, and source message ids "
        "to cite."
    )
