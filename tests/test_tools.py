"""Memory as tools (``remem.tools``): the definitions are valid JSON Schema in each provider's
shape, ``call_tool`` checks arguments exactly as the schema says and runs every tool on a
real ``Memory`` (SQLite file, default embedder) for one owner, and a scripted agent loop
drives the tools the way a model with function calling does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from remem import Memory
from remem.config import LLMConfig
from remem.errors import InvalidInputError, NotFoundError
from remem.llms.base import ChatMessage
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.registry import create_llm, register_llm
from remem.tools import (
    TOOL_NAMES,
    TOOLS,
    ToolArgumentError,
    call_tool,
    parse_arguments,
    tool_definitions,
)

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
VALIDATOR = jsonschema.Draft202012Validator


# ----------------------------------------------------------------------- schemas


def test_the_tools_are_the_memory_operations() -> None:
    assert TOOL_NAMES == (
        "remember", "recall", "context", "update", "pin", "forget", "list_memories",
    )  # fmt: skip


@pytest.mark.parametrize("style", ["openai", "anthropic", "json_schema"])
def test_every_definition_is_valid_json_schema_in_the_providers_shape(style: str) -> None:
    definitions = tool_definitions(style)
    assert len(definitions) == len(TOOLS)
    for definition, spec in zip(definitions, TOOLS, strict=True):
        if style == "openai":
            assert set(definition) == {"type", "function"} and definition["type"] == "function"
            body = definition["function"]
            schema = body["parameters"]
            assert set(body) == {"name", "description", "parameters"}
        elif style == "anthropic":
            body = definition
            schema = body["input_schema"]
            assert set(body) == {"name", "description", "input_schema"}
        else:
            body = definition
            schema = body["parameters"]
            assert set(body) == {"name", "description", "parameters"}
        assert body["name"] == spec.name and len(body["description"]) > 80
        for draft in (jsonschema.Draft202012Validator, jsonschema.Draft7Validator,
                      jsonschema.Draft4Validator):  # fmt: skip
            draft.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert not {"user_id", "agent_id", "session_id", "namespace"} & schema["properties"].keys()
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (spec.name, name)
        json.dumps(definition)  # plain data


def test_definitions_are_fresh_copies_and_can_be_chosen_by_name() -> None:
    first = tool_definitions("anthropic", names=["recall", "forget"])
    assert [d["name"] for d in first] == ["recall", "forget"]
    first[0]["input_schema"]["properties"].clear()
    assert tool_definitions("anthropic", names=["recall"])[0]["input_schema"]["properties"]
    with pytest.raises(InvalidInputError, match="style must be one of openai"):
        tool_definitions("gemini")
    with pytest.raises(InvalidInputError, match="unknown tool 'recal'"):
        tool_definitions(names=["recal"])


def test_the_mcp_server_serves_the_same_definitions(memory: Memory) -> None:
    from remem.mcp_server import build_server

    server = build_server(memory, user_id="ana")
    listed = asyncio.run(server.list_tools())
    served = {t.name: (t.description, t.input_schema) for t in listed}
    defined = {d["name"]: (d["description"], d["parameters"])
               for d in tool_definitions("json_schema")}  # fmt: skip
    assert served == defined


# ---------------------------------------------------------------------- checking


def _schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = tool_definitions("json_schema", names=[name])[0]["parameters"]
    return found


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2, allow_nan=False)
    | st.sampled_from(["", "tea", "user", "2023-05-08T13:56:00"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["content", "role", "speaker", "mood"]), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a schema's type (objects with their own properties, some left out)."""
    kind = schema["type"]
    if kind == "object" and "properties" in schema:
        return st.fixed_dictionaries(
            {}, optional={k: _values(p) for k, p in schema["properties"].items()}
        )
    simple: dict[str, st.SearchStrategy[Any]] = {
        "string": st.sampled_from(["", "tea", "user", "2023-05-08T13:56:00"]),
        "integer": st.integers(-5, 5), "number": st.floats(-2, 2, allow_nan=False),
        "boolean": st.booleans(), "object": st.dictionaries(st.text(max_size=3), JSON_VALUES),
    }  # fmt: skip
    if kind == "array":
        return st.lists(_values(schema["items"]) | JSON_VALUES, max_size=2)
    return simple[kind]


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A tool and arguments: mostly its required ones and some optional ones, mostly of
    their type (else any JSON value); now and then one missing or one it does not take."""
    name = draw(st.sampled_from(TOOL_NAMES))
    schema = _schema(name)
    properties = {**schema["properties"], "user_id": {"type": "string"}}
    required = schema.get("required", [])
    optional = [k for k in properties if k not in required and k != "user_id"]
    extra = draw(st.lists(st.sampled_from(optional), unique=True, max_size=2)) if optional else []
    chosen = [*required, *extra]
    if draw(st.integers(0, 4)) == 0:
        chosen = chosen[1:] if draw(st.booleans()) else [*chosen, "user_id"]
    values = {k: _values(p) for k, p in properties.items()}
    return name, {k: draw(st.one_of(values[k], values[k], values[k], JSON_VALUES)) for k in chosen}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_arguments_pass_exactly_when_the_schema_says_they_are_valid(
    call: tuple[str, dict[str, Any]],
) -> None:
    name, arguments = call
    valid = VALIDATOR(_schema(name)).is_valid(arguments)
    try:
        checked = parse_arguments(name, arguments)
    except ToolArgumentError as exc:
        assert not valid, f"refused valid arguments: {exc}"
        return
    assert valid, f"accepted invalid arguments {arguments}"
    assert {k: v for k, v in checked.items() if k in arguments} == arguments


def test_defaults_are_filled_in_and_json_text_is_read() -> None:
    assert parse_arguments("recall", '{"query": "tea"}') == {"query": "tea", "limit": 10}
    assert parse_arguments("list_memories", "") == {"limit": 20, "offset": 0}
    assert parse_arguments("pin", {"memory_id": "x"}) == {"memory_id": "x", "pinned": True}
    assert parse_arguments("recall", {"query": "tea", "limit": 3.0})["limit"] == 3


BAD_CALLS = [
    pytest.param("recal", {"query": "tea"}, InvalidInputError, "unknown tool 'recal'; the tools "
                 "are remember, recall", id="unknown-tool"),
    pytest.param("recall", '{"query": "tea"', ToolArgumentError, "not valid JSON",
                 id="bad-json"),
    pytest.param("recall", '["tea"]', ToolArgumentError, "must be a JSON object, not a list",
                 id="json-not-an-object"),
    pytest.param("recall", {"query": 42}, ToolArgumentError, "query must be a string, not a "
                 "number (42)", id="wrong-type"),
    pytest.param("recall", {"query": "tea", "limit": True}, ToolArgumentError,
                 "limit must be an integer, not a boolean", id="bool-for-int"),
    pytest.param("recall", {"query": "tea", "limit": 2.5}, ToolArgumentError,
                 "limit must be an integer", id="fraction-for-int"),
    pytest.param("recall", {}, ToolArgumentError, "query is required", id="missing"),
    pytest.param("recall", {"query": "tea", "user_id": "bob"}, ToolArgumentError,
                 "unknown argument 'user_id'; it takes query, limit", id="extra"),
    pytest.param("remember", {"messages": [{"content": "hi", "mood": "happy"}]},
                 ToolArgumentError, "unknown argument 'mood' in messages[0]", id="extra-nested"),
    pytest.param("remember", {"messages": [{"role": "user"}]}, ToolArgumentError,
                 "messages[0].content is required", id="missing-nested"),
    pytest.param("remember", {"text": None}, ToolArgumentError, "text must be a string, not "
                 "null", id="null"),
    pytest.param("remember", {"text": ""}, InvalidInputError, "empty", id="empty-text"),
    pytest.param("remember", {}, InvalidInputError, "either text or messages", id="nothing"),
    pytest.param("update", {"memory_id": UNKNOWN_ID}, InvalidInputError,
                 "give text, metadata or importance", id="update-nothing"),
    pytest.param("forget", {"memory_id": UNKNOWN_ID}, NotFoundError, UNKNOWN_ID,
                 id="forget-unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "arguments", "error", "words"), BAD_CALLS)
def test_bad_calls_are_clear_errors_and_store_nothing(
    memory: Memory, name: str, arguments: Any, error: type[Exception], words: str
) -> None:
    memory.add("My vault code is 4417", user_id="ana")
    before = memory.stats()
    with pytest.raises(error) as raised:
        call_tool(memory, name, arguments, user_id="ana")
    assert words in str(raised.value)
    assert memory.stats() == before


def test_tools_act_for_one_owner(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="pass user_id or agent_id"):
        call_tool(memory, "recall", {"query": "tea"})
    with pytest.raises(InvalidInputError, match="session_id"):
        call_tool(memory, "recall", {"query": "tea"}, user_id="ana", session_id="")


# ------------------------------------------------------------------------ running


def test_every_tool_end_to_end(memory: Memory) -> None:
    def run(name: str, arguments: Any) -> dict[str, Any]:
        result = call_tool(memory, name, arguments, user_id="ana", session_id="s1")
        assert json.loads(json.dumps(result)) == result  # plain JSON data
        return result

    lisbon_text = {"role": "user", "speaker": "Ana", "timestamp": "2023-05-08T13:56:00",
                   "content": "I moved to Lisbon in May"}  # fmt: skip
    added = run("remember", {"messages": [lisbon_text]})
    (lisbon,) = added["memories"]
    assert lisbon["session_id"] == "s1" and lisbon["source_ids"] == added["message_ids"]
    tea = run("remember", json.dumps({"text": "My favourite tea is genmaicha",
                                      "metadata": {"topic": "tea"}}))["memories"][0]  # fmt: skip
    assert tea["metadata"] == {"topic": "tea"}

    hits = run("recall", {"query": "where does Ana live?", "limit": 1})["hits"]
    assert [h["id"] for h in hits] == [lisbon["id"]] and hits[0]["rank"] == 1
    block = run("context", {"query": "which tea do I like?", "budget_tokens": 200})
    assert "genmaicha" in block["text"] and tea["id"] in block["memory_ids"]
    assert 0 < block["tokens"] <= 200

    fixed = run("update", {"memory_id": tea["id"], "text": "My favourite tea is sencha",
                           "importance": 0.9, "reason": "Ana corrected it"})["memory"]  # fmt: skip
    assert fixed["text"] == "My favourite tea is sencha"
    assert memory.get(tea["id"]).importance == 0.9
    assert memory.history(tea["id"])[-1].reason == "Ana corrected it"

    assert run("pin", {"memory_id": lisbon["id"]})["memory"]["pinned"] is True
    assert run("pin", {"memory_id": lisbon["id"], "pinned": False})["memory"]["pinned"] is False

    pages = [run("list_memories", {"limit": 1, "offset": n}) for n in range(3)]
    assert [[m["id"] for m in p["memories"]] for p in pages] == [[tea["id"]], [lisbon["id"]], []]
    assert [p["next_offset"] for p in pages] == [1, 2, None]

    assert run("forget", {"memory_id": lisbon["id"]}) == {"deleted": lisbon["id"]}
    assert [m["id"] for m in run("list_memories", {})["memories"]] == [tea["id"]]


def test_another_owners_memory_answers_like_an_unknown_one(memory: Memory) -> None:
    (bob,) = memory.add("My vault code is 4417", user_id="bob").memories
    (helper,) = memory.add("Ana likes short answers", user_id="ana", agent_id="helper").memories
    call_tool(memory, "remember", {"text": "My code is 1234"}, user_id="ana")
    for name, extra in (("forget", {}), ("pin", {}), ("update", {"text": "mine now"})):
        for memory_id in (bob.id, UNKNOWN_ID):
            with pytest.raises(NotFoundError) as raised:
                call_tool(memory, name, {"memory_id": memory_id, **extra}, user_id="ana")
            assert str(raised.value) == (
                f"no memory {memory_id!r} here; find memory ids with recall or list_memories"
            )
    hits = call_tool(memory, "recall", {"query": "vault code", "limit": 50}, user_id="ana")
    assert bob.id not in {h["id"] for h in hits["hits"]}
    assert memory.get(bob.id) == bob
    # ana working with agent "other" does not reach what ana told agent "helper"
    with pytest.raises(NotFoundError):
        call_tool(memory, "pin", {"memory_id": helper.id}, user_id="ana", agent_id="other")
    pinned = call_tool(memory, "pin", {"memory_id": helper.id}, user_id="ana", agent_id="helper")
    assert pinned["memory"]["pinned"] is True


# --------------------------------------------------------------------- agent loop


class Step(BaseModel):
    """One turn of the scripted agent: a tool call (name and JSON arguments, as function
    calling carries them) or a final answer."""

    model_config = ConfigDict(extra="forbid")
    tool: str | None
    arguments: str | None
    answer: str | None


def _agent(memory: Memory, llm: Any, question: str, max_steps: int = 6) -> tuple[str, list[Any]]:
    """A minimal function-calling loop: the tools' definitions in the prompt, each call run
    with ``call_tool`` for user ana, its result (or error) sent back, until an answer."""
    tools = json.dumps(tool_definitions("json_schema"))
    messages: list[ChatMessage] = [
        {"role": "system", "content": f"You have these memory tools: {tools}"},
        {"role": "user", "content": question},
    ]
    trace: list[Any] = []
    for _ in range(max_steps):
        step = llm.structured(messages, Step).value
        if step.answer is not None:
            return step.answer, trace
        try:
            result: Any = call_tool(memory, step.tool, step.arguments, user_id="ana")
        except InvalidInputError as exc:
            result = {"error": str(exc)}
        trace.append((step.tool, result))
        messages += [
            {"role": "assistant", "content": step.model_dump_json()},
            {"role": "user", "content": f"Tool result: {json.dumps(result)}"},
        ]
    raise AssertionError("the agent never answered")


def _answer_from_last_result(request: ScriptedRequest) -> dict[str, Any]:
    """The scripted model's final turn: the top hit of the last tool result it was sent."""
    result = json.loads(request.messages[-1]["content"].removeprefix("Tool result: "))
    return {"tool": None, "arguments": None, "answer": result["hits"][0]["text"]}


def test_a_scripted_agent_remembers_recovers_from_a_bad_call_and_recalls(memory: Memory) -> None:
    call = {"tool": None, "arguments": None, "answer": None}
    llm = create_llm(LLMConfig(name="scripted", model="agent", options={"replies": [
        {**call, "tool": "remember", "arguments": json.dumps(
            {"text": "My sister Bea lives in Porto"})},
        {**call, "tool": "recall", "arguments": '{"query": 42}'},  # a wrong type: refused
        {**call, "tool": "recall", "arguments": '{"query": "where does Bea live?"}'},
        _answer_from_last_result,
    ]}))  # fmt: skip
    answer, trace = _agent(memory, llm, "Remember that Bea lives in Porto, then tell me where.")
    assert answer == "user: My sister Bea lives in Porto"
    assert [name for name, _ in trace] == ["remember", "recall", "recall"]
    assert "query must be a string" in trace[1][1]["error"]  # the model read why, and retried
    stored = memory.list(user_id="ana")
    assert [m.text for m in stored] == ["user: My sister Bea lives in Porto"]
    assert trace[2][1]["hits"][0]["id"] == stored[0].id
    assert isinstance(llm, ScriptedLLM) and llm.remaining == 0
    assert "remember" in llm.requests[0].messages[0]["content"]  # the definitions were sent
