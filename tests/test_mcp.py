"""``remem mcp``: the SDK's MCP client against the real server, over stdio and streamable
HTTP, on a real SQLite file with the default embedder.

Each server is a subprocess running ``main`` with the ``mcp`` command added (``BOOT``), as
the ``remem`` script will. One HTTP server, for user ana, serves the HTTP, bad-input and
scope tests of this module; its file also holds user bob's memories, written before it
started, and the tests read the file directly (``observer``) to see what really changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from remem import Memory
from remem.cli.common import Cli
from remem.cli.main import main
from remem.cli.mcp import mcp
from remem.config import DEFAULT_MAX_MESSAGE_CHARS
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.settings import ENV_VARS

pytestmark = pytest.mark.anyio

BOOT = (
    "from remem.cli.main import main; from remem.cli.mcp import mcp; main.add_command(mcp); main()"
)
TOOLS = {"remember", "recall", "context", "update", "forget", "pin", "list_memories"}
SCOPE_ARGUMENTS = {"user_id", "agent_id", "session_id", "namespace"}
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"  # shaped like remem's ids
HANG_GUARD = 120.0  # seconds before a server that never answers fails the test (not a speed check)
LISBON = {"role": "user", "speaker": "Ana", "timestamp": "2023-05-08T13:56:00",
          "content": "I moved to Lisbon in May"}  # fmt: skip
OSCAR = {"role": "user", "speaker": "Ana", "timestamp": "2023-06-10T09:00:00",
         "content": "We adopted a beagle called Oscar"}  # fmt: skip


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers


def _server_args(db: Path, *options: str) -> list[str]:
    """Arguments for ``python`` to run ``remem --db DB mcp OPTIONS``."""
    return ["-c", BOOT, "--db", str(db), "mcp", *options]


def _ok(result: CallToolResult) -> dict[str, Any]:
    """A successful call's structured result."""
    assert not result.is_error, result.content
    data: dict[str, Any] | None = result.structured_content
    assert data is not None
    return data


def _error_text(result: CallToolResult) -> str:
    """The one text block of a tool error."""
    assert result.is_error
    (block,) = result.content
    assert isinstance(block, TextContent)
    assert "Traceback" not in block.text
    return block.text


def _remem_error(result: CallToolResult, code: str) -> str:
    """The message of a tool error reporting a ``RememError`` of this ``code``."""
    text = _error_text(result)
    assert result.structured_content is not None
    error = result.structured_content["error"]
    assert error["code"] == code
    assert text == f"{code}: {error['message']}"
    return str(error["message"])


def _as_seen(result: CallToolResult, memory_id: str) -> str:
    """Everything a client receives, with ``memory_id`` blanked out."""
    return json.dumps(result.model_dump(mode="json")).replace(memory_id, "<id>")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the server never answered on port {port}:\n{log.read_text()}")
        time.sleep(0.05)


@contextlib.contextmanager
def _http_server(db: Path, port: int, *options: str) -> Iterator[Path]:
    """``remem mcp --transport http`` on ``port``, once it answers; yields its log's path.

    Afterwards it is stopped with SIGTERM, which must end it cleanly (exit code 0).
    """
    log = db.with_suffix(".log")
    args = _server_args(db, *options, "--transport", "http", "--port", str(port))
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, *args], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env
        )
        try:
            _wait_until_listening(process, port, log)
            yield log
        finally:
            process.terminate()
            try:
                code = process.wait(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    assert code == 0, log.read_text()


# ---------------------------------------------------------------------------- stdio


async def test_stdio_session_lists_tools_and_manages_memories(tmp_path: Path) -> None:
    """The whole life of a memory through an agent's eyes, over stdio."""
    errors = tmp_path / "stderr.log"
    server = StdioServerParameters(
        command=sys.executable,
        args=_server_args(tmp_path / "m.db", "-u", "ana", "-a", "helper", "-s", "s1"),
    )
    faults: list[Exception] = []

    async def record(message: Any) -> None:  # a line on stdout that is not protocol lands here
        if isinstance(message, Exception):
            faults.append(message)

    with errors.open("w") as errlog:
        async with Client(stdio_client(server, errlog=errlog), message_handler=record) as client:
            assert client.instructions is not None and "user 'ana'" in client.instructions
            await _check_tools(client)
            await _check_memory_life(client)
    assert faults == []
    assert "remem MCP server on stdio for user 'ana', agent 'helper'" in errors.read_text()


async def _check_tools(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.description is not None and len(tool.description) > 80
        assert "\n" not in tool.description
        properties = tool.input_schema.get("properties", {})
        assert not SCOPE_ARGUMENTS & properties.keys()  # the scope is the server's, not the agent's
        for name, schema in properties.items():
            assert schema.get("description"), (tool.name, name)

    def types(tool: str) -> dict[str, Any]:
        properties = listed[tool].input_schema["properties"]
        return {name: schema.get("type") for name, schema in properties.items()}

    assert types("recall") == {"query": "string", "limit": "integer"}
    assert types("context") == {"query": "string", "budget_tokens": "integer"}
    assert types("forget") == {"memory_id": "string"}
    assert types("pin") == {"memory_id": "string", "pinned": "boolean"}
    assert types("list_memories") == {"limit": "integer", "offset": "integer"}
    assert set(types("remember")) == {"text", "messages", "metadata", "timestamp"}
    required = {name: listed[name].input_schema.get("required", []) for name in TOOLS}
    assert required == {
        "remember": [], "recall": ["query"], "context": ["query"], "forget": ["memory_id"],
        "pin": ["memory_id"], "list_memories": [], "update": ["memory_id"],
    }  # fmt: skip
    assert listed["recall"].annotations is not None
    assert listed["recall"].annotations.read_only_hint is True
    assert listed["forget"].annotations is not None
    assert listed["forget"].annotations.destructive_hint is True


async def _check_memory_life(client: Client) -> None:
    added = _ok(await client.call_tool("remember", {"messages": [LISBON, OSCAR]}))
    lisbon, oscar = added["memories"]
    assert added["message_ids"] == lisbon["source_ids"] + oscar["source_ids"]
    assert lisbon["session_id"] == "s1" and "Lisbon" in lisbon["text"]
    assert "attributes" not in lisbon

    hits = _ok(await client.call_tool("recall", {"query": "where does Ana live?"}))["hits"]
    assert hits[0]["id"] == lisbon["id"] and hits[0]["rank"] == 1
    assert hits[0]["source_ids"] == [added["message_ids"][0]]
    assert isinstance(hits[0]["score"], float) and hits[0]["date"].startswith("2023-05-08")

    block = _ok(await client.call_tool("context", {"query": "where does Ana live?"}))
    assert "Lisbon" in block["text"] and added["message_ids"][0] in block["text"]
    assert lisbon["id"] in block["memory_ids"] and 0 < block["tokens"] <= 1000

    pinned = _ok(await client.call_tool("pin", {"memory_id": lisbon["id"]}))["memory"]
    assert pinned["id"] == lisbon["id"] and pinned["pinned"] is True
    unpinned = _ok(await client.call_tool("pin", {"memory_id": lisbon["id"], "pinned": False}))
    assert unpinned["memory"]["pinned"] is False

    pages = [_ok(await client.call_tool("list_memories", {"limit": 1, "offset": n}))
             for n in range(3)]  # fmt: skip
    assert [[m["id"] for m in p["memories"]] for p in pages] == [[oscar["id"]], [lisbon["id"]], []]
    assert [p["next_offset"] for p in pages] == [1, 2, None]

    assert _ok(await client.call_tool("forget", {"memory_id": lisbon["id"]})) == {
        "deleted": lisbon["id"]
    }
    hits = _ok(await client.call_tool("recall", {"query": "where does Ana live?"}))["hits"]
    assert [h["id"] for h in hits] == [oscar["id"]]
    again = await client.call_tool("forget", {"memory_id": lisbon["id"]})
    assert lisbon["id"] in _remem_error(again, "not_found")


# ----------------------------------------------------------------------------- HTTP


@dataclass
class HttpServer:
    """The module's HTTP server for user ana, and the file it serves."""

    url: str
    log: Path
    observer: Memory  # the same file, opened by the test
    bob: list[str]  # ids of another user's memories in that file


@pytest.fixture(scope="module")
def http_server(
    tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLMEmbedder
) -> Iterator[HttpServer]:
    db = tmp_path_factory.mktemp("mcp-http") / "m.db"
    with Memory(db, embedder=embedder) as observer:
        bob = [
            *observer.add("My vault code is 4417", user_id="bob").memories,
            *observer.add("I hide the spare key under the blue pot", user_id="bob",
                          session_id="s1").memories,
        ]  # fmt: skip
        port = _free_port()
        with _http_server(db, port, "--user", "ana") as log:
            yield HttpServer(f"http://127.0.0.1:{port}/mcp", log, observer, [m.id for m in bob])


async def test_http_remember_then_recall(http_server: HttpServer) -> None:
    async with Client(http_server.url) as client:
        added = _ok(await client.call_tool("remember", {"text": "My favourite tea is genmaicha"}))
        hits = _ok(await client.call_tool("recall", {"query": "which tea do I like?"}))["hits"]
    (memory,) = added["memories"]
    assert hits[0]["id"] == memory["id"] and hits[0]["source_ids"] == added["message_ids"]
    stored = http_server.observer.get(memory["id"])
    assert (stored.scope.user_id, stored.scope.agent_id) == ("ana", None)
    log = http_server.log.read_text()
    assert f"remem MCP server at {http_server.url} for user 'ana'" in log
    assert "NO AUTHENTICATION" not in log  # loopback: no warning


BAD_CALLS = [
    pytest.param("remember", {"text": ""}, "invalid_input", "empty", id="empty-text"),
    pytest.param("remember", {"text": " \n "}, "invalid_input", "empty", id="blank-text"),
    pytest.param("remember", {}, "invalid_input", "text or messages", id="nothing"),
    pytest.param("remember", {"text": "a", "messages": [{"content": "b"}]}, "invalid_input",
                 "text or messages", id="text-and-messages"),
    pytest.param("remember", {"text": "x" * (DEFAULT_MAX_MESSAGE_CHARS + 1)}, "too_large",
                 f"{DEFAULT_MAX_MESSAGE_CHARS:,}", id="huge-text"),
    pytest.param("remember", {"messages": [{"role": "robot", "content": "hi"}]},
                 "invalid_input", "robot", id="unknown-role"),
    pytest.param("remember", {"messages": [LISBON, {**OSCAR, "content": ""}]}, "invalid_input",
                 "messages[1].content", id="one-bad-message-of-two"),
    pytest.param("remember", {"text": "hi", "timestamp": "the day after"}, "invalid_input",
                 "timestamp", id="bad-timestamp"),
    pytest.param("remember", {"text": 42}, None, "text", id="text-not-a-string"),
    pytest.param("remember", {"text": "hi", "metadata": [1]}, None, "metadata",
                 id="metadata-not-an-object"),
    pytest.param("remember", {"messages": [{"content": "hi", "mood": "happy"}]}, None, "mood",
                 id="unknown-message-field"),
    pytest.param("recall", {"query": ""}, "invalid_input", "empty", id="empty-query"),
    pytest.param("recall", {"query": "tea", "limit": 0}, "invalid_input", "limit",
                 id="zero-limit"),
    pytest.param("recall", {"query": "tea", "limit": "many"}, None, "limit", id="limit-word"),
    pytest.param("recall", {"query": ["tea"]}, None, "query", id="query-not-a-string"),
    pytest.param("recall", {}, None, "query", id="no-query"),
    pytest.param("context", {"query": "tea", "budget_tokens": -5}, "invalid_input",
                 "budget_tokens", id="negative-budget"),
    pytest.param("list_memories", {"offset": -1}, "invalid_input", "offset",
                 id="negative-offset"),
    pytest.param("forget", {"memory_id": UNKNOWN_ID}, "not_found", UNKNOWN_ID, id="forget-unknown"),
    pytest.param("forget", {"memory_id": ""}, "invalid_input", "memory_id", id="forget-empty-id"),
    pytest.param("pin", {"memory_id": UNKNOWN_ID}, "not_found", UNKNOWN_ID, id="pin-unknown"),
    pytest.param("pin", {"memory_id": UNKNOWN_ID, "pinned": "perhaps"}, None, "pinned",
                 id="pinned-not-a-flag"),
]  # fmt: skip


@pytest.mark.parametrize(("tool", "arguments", "code", "words"), BAD_CALLS)
async def test_bad_input_is_a_clear_tool_error_and_stores_nothing(
    http_server: HttpServer, tool: str, arguments: dict[str, Any], code: str | None, words: str
) -> None:
    before = http_server.observer.stats()
    async with Client(http_server.url) as client:
        result = await client.call_tool(tool, arguments)
    if code is None:  # refused by the SDK's check of the arguments against the input schema
        text = _error_text(result)
        assert text.startswith(f"Error executing tool {tool}: ")
    else:
        text = _remem_error(result, code)
    assert words in text
    assert http_server.observer.stats() == before


async def test_other_users_memories_are_out_of_reach(http_server: HttpServer) -> None:
    observer, bob = http_server.observer, http_server.bob
    untouched = [observer.get(memory_id) for memory_id in bob]
    question = {"query": "what is the vault code? where is the spare key?", "limit": 50}
    async with Client(http_server.url) as client:
        _ok(await client.call_tool("remember", {"text": "My own vault code is 1234"}))
        hits = _ok(await client.call_tool("recall", question))["hits"]
        # a scope argument the agent makes up is not part of the tool: bob stays hidden
        sneaky = _ok(await client.call_tool("recall", {**question, "user_id": "bob"}))["hits"]
        listed = _ok(await client.call_tool("list_memories", {"limit": 100}))["memories"]
        block = _ok(await client.call_tool("context", question))
        answers = {
            (tool, memory_id): await client.call_tool(tool, {"memory_id": memory_id})
            for tool in ("forget", "pin")
            for memory_id in (*bob, UNKNOWN_ID)
        }
    assert "1234" in hits[0]["text"]
    seen = {m["id"] for m in hits + sneaky + listed} | set(block["memory_ids"])
    assert seen and not seen & set(bob)
    assert "code is 4417" not in json.dumps([hits, sneaky, listed, block])
    for (tool, memory_id), answer in answers.items():
        assert _as_seen(answer, memory_id) == _as_seen(answers[tool, UNKNOWN_ID], UNKNOWN_ID)
        _remem_error(answer, "not_found")
    assert [observer.get(memory_id) for memory_id in bob] == untouched


# --------------------------------------------------------------------------- options


def test_a_user_or_an_agent_is_required(tmp_path: Path) -> None:
    cli = Cli(name="remem", params=main.params, callback=main.callback, commands={"mcp": mcp})
    runner = CliRunner(env={name: None for name in ENV_VARS})
    result = runner.invoke(cli, ["--db", str(tmp_path / "m.db"), "mcp", "--session", "s1"])
    assert result.exit_code == 2
    assert "give --user or --agent" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "m.db").exists()  # refused before opening anything


def test_binding_beyond_loopback_warns_there_is_no_authentication(tmp_path: Path) -> None:
    port = _free_port()
    with _http_server(tmp_path / "m.db", port, "--user", "ana", "--host", "0.0.0.0") as log:
        pass
    text = log.read_text()
    assert f"WARNING: the MCP endpoint http://0.0.0.0:{port}/mcp has NO AUTHENTICATION" in text
    assert "memories of user 'ana'" in text
