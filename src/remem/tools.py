"""Memory as tools: the operations an agent calls, as JSON-schema definitions for function
calling, and ``call_tool``, which checks a call against them and runs it for one owner.

The tools are ``remember``, ``recall``, ``context``, ``update``, ``pin``, ``forget`` and
``list_memories``. ``tool_definitions(style)`` gives them as plain dicts in the shape a
provider takes (OpenAI's ``{"type": "function", "function": {...}}``, Anthropic's
``{"name", "description", "input_schema"}``, or the neutral ``{"name", "description",
"parameters"}``); the MCP server (``remem.mcp_server``) serves the same definitions, so an
agent sees one set of tools whichever way it reaches remem.

``call_tool(memory, name, arguments, user_id=..., agent_id=...)`` takes the arguments as a
mapping or as the JSON text a model produced, checks them against the tool's schema (an
unknown tool, bad JSON, a wrong type, a missing or unknown argument is an
``InvalidInputError`` naming it, and nothing is stored), runs the operation through
``remem.api``'s requests and returns plain JSON data. The owner is the caller's, never
the model's: no tool takes a user, agent or session id, reads span the owner's sessions,
writes go to ``session_id``, and a memory id outside the owner's memories answers exactly
like an unknown one.

``remember`` logs what it is given as verbatim messages (``Memory.add``), not as a
derived fact (``Memory.remember``): the message log stays the one source every memory
cites, deleting a message takes everything derived from it, and when extraction is
configured the stated fact goes through the same extraction and consolidation as a
conversation, instead of being written around them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remem.api import (
    AddRequest,
    ContextRequest,
    ListRequest,
    SearchRequest,
    UpdateRequest,
    to_plain,
)
from remem.errors import InvalidInputError, NotFoundError
from remem.models import ROLES, MemoryRecord, Scope, SearchHit
from remem.validation import check_scope

if TYPE_CHECKING:
    from remem.engine import Memory

__all__ = [
    "STYLES",
    "TOOLS",
    "TOOL_NAMES",
    "ToolArgumentError",
    "ToolSpec",
    "call_tool",
    "hit_view",
    "memory_view",
    "parse_arguments",
    "tool_definitions",
]

Plain = dict[str, Any]
STYLES = ("openai", "anthropic", "json_schema")


class ToolArgumentError(InvalidInputError):
    """A tool call's arguments do not match the tool's schema (wrong type, missing,
    unknown, not JSON). Reported like any ``InvalidInputError``; the MCP server reports it
    the way MCP SDKs report a schema mismatch."""


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, the description the model reads, the JSON schema of its
    arguments, and hints for clients (MCP tool annotations)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False


# ------------------------------------------------------------------------ schemas


def _arg(kind: str, description: str, **more: Any) -> Plain:
    return {"type": kind, "description": description, **more}


def _object(properties: Mapping[str, Plain], required: list[str] | None = None) -> Plain:
    schema: Plain = {"type": "object", "properties": dict(properties)}
    if required:  # omitted when empty: older JSON Schema drafts refuse an empty list
        schema["required"] = required
    return {**schema, "additionalProperties": False}


_MEMORY_ID = _arg("string", "Id of the memory (from recall, context or list_memories).")
_MESSAGE = _object(
    {
        "role": _arg("string", f"Who wrote it: one of {', '.join(ROLES)}.", default="user"),
        "content": _arg("string", "The message text, kept verbatim."),
        "speaker": _arg("string", "The speaker's name, e.g. 'Ana' (optional)."),
        "timestamp": _arg(
            "string", "When it was said, ISO 8601 (optional; default: the call's timestamp)."
        ),
    },
    ["content"],
)

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "remember",
        "Store something in long-term memory: a fact, preference, decision or event worth "
        "keeping across conversations, or a few chat messages. Give either `text` or "
        "`messages`. Everything is kept verbatim and can be found later with `recall`. "
        "Returns the new memories with their ids.",
        _object(
            {
                "text": _arg("string", "One thing to remember, in plain words."),
                "messages": _arg(
                    "array", "Instead of text: chat messages to remember, in order.", items=_MESSAGE
                ),
                "metadata": _arg("object", "JSON object stored with each message."),
                "timestamp": _arg("string", "When it was said, ISO 8601; default: now."),
            }
        ),
    ),
    ToolSpec(
        "recall",
        "Search long-term memory for what answers `query` (hybrid keyword and semantic "
        'search, time-aware: "what did I say last week?"). Returns hits best first, each '
        "with its memory id, text, score, date and the ids of the messages it came from.",
        _object(
            {
                "query": _arg("string", "What to look for: a question or key words."),
                "limit": _arg("integer", "How many memories to return, best first.", default=10),
            },
            ["query"],
        ),
        read_only=True,
    ),
    ToolSpec(
        "context",
        "Build a prompt-ready block of the memories most relevant to `query` that fits "
        "`budget_tokens`, grouped by session and date, each line citing its source message "
        "ids. Use it before answering anything that may depend on earlier conversations.",
        _object(
            {
                "query": _arg("string", "The question or task to gather memories for."),
                "budget_tokens": _arg(
                    "integer", "Most tokens the block may take (WordPiece tokens).", default=1000
                ),
            },
            ["query"],
        ),
        read_only=True,
    ),
    ToolSpec(
        "update",
        "Correct a memory that is wrong or out of date: new `text`, `metadata` or "
        "`importance` (0 to 1). The change is kept in the memory's history with `reason`. "
        "Returns the memory as it is now.",
        _object(
            {
                "memory_id": _MEMORY_ID,
                "text": _arg("string", "The corrected text."),
                "metadata": _arg("object", "JSON object replacing the memory's metadata."),
                "importance": _arg("number", "How much it matters, from 0 to 1."),
                "reason": _arg("string", "Why it changed, kept in its history.", default="update"),
            },
            ["memory_id"],
        ),
        idempotent=True,
    ),
    ToolSpec(
        "pin",
        "Pin a memory that must not fade or be dropped (a lasting preference, a key fact), "
        "or unpin it. Returns the memory as it is now.",
        _object(
            {
                "memory_id": _arg("string", "Id of the memory to pin or unpin."),
                "pinned": _arg("boolean", "True to pin, false to unpin.", default=True),
            },
            ["memory_id"],
        ),
        idempotent=True,
    ),
    ToolSpec(
        "forget",
        "Delete one memory by id (from `recall` or `list_memories`), e.g. when the user "
        "asks you to forget something or it is wrong. The original messages stay in the log.",
        _object({"memory_id": _arg("string", "Id of the memory to delete.")}, ["memory_id"]),
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        "list_memories",
        "List stored memories, most recent first, one page at a time. Pass the returned "
        "`next_offset` as `offset` for the next page; it is null after the last page.",
        _object(
            {
                "limit": _arg("integer", "How many memories per page.", default=20),
                "offset": _arg("integer", "How many to skip: the next_offset.", default=0),
            }
        ),
        read_only=True,
    ),
)
TOOL_NAMES: tuple[str, ...] = tuple(spec.name for spec in TOOLS)
_BY_NAME = {spec.name: spec for spec in TOOLS}


def tool_definitions(
    style: str = "openai", names: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The tools (all, or those ``names``) as plain dicts for function calling.

    ``openai``: ``{"type": "function", "function": {"name", "description",
    "parameters"}}`` (Chat Completions ``tools``); ``anthropic``: ``{"name",
    "description", "input_schema"}`` (Messages API ``tools``); ``json_schema``: ``{"name",
    "description", "parameters"}``. Each call returns fresh copies, safe to change.
    """
    if style not in STYLES:
        raise InvalidInputError(f"style must be one of {', '.join(STYLES)}, not {style!r}")
    chosen = [_spec(name) for name in names] if names is not None else list(TOOLS)
    out: list[dict[str, Any]] = []
    for spec in chosen:
        schema = copy.deepcopy(dict(spec.parameters))
        if style == "anthropic":
            out.append({"name": spec.name, "description": spec.description,
                        "input_schema": schema})  # fmt: skip
            continue
        plain = {"name": spec.name, "description": spec.description, "parameters": schema}
        out.append({"type": "function", "function": plain} if style == "openai" else plain)
    return out


def _spec(name: Any) -> ToolSpec:
    if not isinstance(name, str) or name not in _BY_NAME:
        raise InvalidInputError(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
    return _BY_NAME[name]


# ----------------------------------------------------------------------- checking

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}  # fmt: skip


def parse_arguments(name: str, arguments: Mapping[str, Any] | str | None) -> Plain:
    """``arguments`` checked against tool ``name``'s schema, with defaults filled in.

    A string is read as JSON (what a model's tool call carries). Raises
    ``ToolArgumentError`` naming the argument at fault, ``InvalidInputError`` for an
    unknown tool.
    """
    spec = _spec(name)
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str | bytes):
        try:
            arguments = json.loads(arguments or "{}")
        except (ValueError, RecursionError) as exc:
            raise ToolArgumentError(
                f"the arguments of {name} are not valid JSON ({exc}); send a JSON object"
            ) from None
    if not isinstance(arguments, Mapping):
        raise ToolArgumentError(
            f"the arguments of {name} must be a JSON object, not {_json_type(arguments)}"
        )
    checked = _check(spec.parameters, dict(arguments), "")
    defaults = {k: p["default"] for k, p in spec.parameters["properties"].items() if "default" in p}
    return {**defaults, **checked}


def _check(schema: Mapping[str, Any], value: Any, path: str) -> Any:
    """``value`` if it matches ``schema`` (the subset of JSON Schema the tools use:
    type, properties, required, additionalProperties false, items), else a
    ``ToolArgumentError`` saying where and why. An integral float passes as an integer."""
    kind = schema["type"]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _matches(kind, value):
        where = path or "the arguments"
        raise ToolArgumentError(
            f"{where} must be {_NAMES[kind]}, not {_json_type(value)}{_shown(value)}"
        )
    if kind == "array" and "items" in schema:
        return [_check(schema["items"], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind != "object" or "properties" not in schema:
        return value
    properties: Mapping[str, Any] = schema["properties"]
    unknown = sorted(set(value) - set(properties))
    if unknown:
        where = f" in {path}" if path else ""
        raise ToolArgumentError(
            f"unknown argument {unknown[0]!r}{where}; it takes {', '.join(properties)}"
        )
    for required in schema.get("required", ()):
        if required not in value:
            raise ToolArgumentError(f"{_join(path, required)} is required")
    return {k: _check(properties[k], v, _join(path, k)) for k, v in value.items()}


def _matches(kind: str, value: Any) -> bool:
    """Whether ``value`` is of JSON type ``kind`` (``true`` is not a number)."""
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _JSON_TYPES[kind])


_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
          "boolean": "true or false", "object": "a JSON object", "array": "a list"}  # fmt: skip


def _json_type(value: Any) -> str:
    """What a JSON value is, in the words of the error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    for name, kinds in _JSON_TYPES.items():
        if isinstance(value, kinds):
            return _NAMES[name]
    return type(value).__name__


def _shown(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f" ({text[:40]}...)" if len(text) > 40 else f" ({text})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ------------------------------------------------------------------------ running


def call_tool(
    memory: Memory,
    name: str,
    arguments: Mapping[str, Any] | str | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> Plain:
    """Run tool ``name`` with ``arguments`` (a mapping, or JSON text) as the owner
    ``user_id`` and/or ``agent_id`` (at least one), writing to ``session_id``; returns
    plain JSON data. Bad arguments raise ``InvalidInputError`` and store nothing."""
    scope = check_scope(memory.namespace, user_id, agent_id, session_id)
    if scope.user_id is None and scope.agent_id is None:
        raise InvalidInputError(
            "tools act for one owner: pass user_id or agent_id (or both) to call_tool"
        )
    checked = parse_arguments(name, arguments)
    run: Callable[..., Plain] = getattr(_Toolbox(memory, scope), name)
    return run(**checked)


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


class _Toolbox:
    """The tools' bodies: ``Memory`` calls as one owner, on checked arguments."""

    def __init__(self, memory: Memory, scope: Scope) -> None:
        self.memory, self.scope = memory, scope
        self.user_id, self.agent_id = scope.user_id, scope.agent_id

    def remember(
        self,
        text: str | None = None,
        messages: list[Plain] | None = None,
        metadata: Plain | None = None,
        timestamp: str | None = None,
    ) -> Plain:
        if (text is None) == (messages is None):
            raise InvalidInputError("give either text or messages (a list of chat messages)")
        result = AddRequest(
            messages=text if text is not None else list(messages or ()),
            user_id=self.user_id, agent_id=self.agent_id, session_id=self.scope.session_id,
            metadata=metadata, timestamp=timestamp,
        ).run(self.memory)  # fmt: skip
        return {
            "message_ids": list(result.message_ids),
            "memories": [memory_view(r) for r in result.memories],
            "duplicate_ids": list(result.duplicate_ids),
        }

    def recall(self, query: str, limit: int) -> Plain:
        results = SearchRequest(
            query=query, limit=limit, user_id=self.user_id, agent_id=self.agent_id
        ).run(self.memory)
        return {"query": results.query, "hits": [hit_view(h) for h in results.hits]}

    def context(self, query: str, budget_tokens: int) -> Plain:
        request = ContextRequest(
            query=query, budget_tokens=budget_tokens, user_id=self.user_id, agent_id=self.agent_id
        )
        found = request.run(self.memory)
        return {
            "text": found.text, "tokens": found.tokens, "budget_tokens": found.budget_tokens,
            "memory_ids": [item.memory.id for item in found.items],
            "source_ids": list(found.source_ids),
        }  # fmt: skip

    def update(
        self,
        memory_id: str,
        reason: str,
        text: str | None = None,
        metadata: Plain | None = None,
        importance: float | None = None,
    ) -> Plain:
        if text is None and metadata is None and importance is None:
            raise InvalidInputError("give text, metadata or importance to change")
        request = UpdateRequest(text=text, metadata=metadata, importance=importance,
                                reason=reason)  # fmt: skip
        return {"memory": memory_view(request.run(self.memory, self._own(memory_id)))}

    def pin(self, memory_id: str, pinned: bool) -> Plain:
        record = UpdateRequest(pinned=pinned).run(self.memory, self._own(memory_id))
        return {"memory": memory_view(record)}

    def forget(self, memory_id: str) -> Plain:
        self.memory.delete(self._own(memory_id))
        return {"deleted": memory_id}

    def list_memories(self, limit: int, offset: int) -> Plain:
        page = ListRequest(
            limit=limit, offset=offset, user_id=self.user_id, agent_id=self.agent_id
        ).run(self.memory)
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
            for want, got in ((self.scope.user_id, record.scope.user_id),
                              (self.scope.agent_id, record.scope.agent_id))
        ):  # fmt: skip
            raise NotFoundError(
                f"no memory {memory_id!r} here; find memory ids with recall or list_memories"
            )
        return record.id
