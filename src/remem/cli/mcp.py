"""``remem mcp``: serve one user's or agent's memory to MCP clients, over stdio or HTTP."""

from __future__ import annotations

import ipaddress
import signal
from types import FrameType

import click

from remem.cli.common import State, db_option, pass_state, scope_options
from remem.errors import ConfigError

MCP_PATH = "/mcp"


@click.command(name="mcp")
@db_option
@scope_options
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: the client starts remem and talks over its stdin/stdout. http: serve "
    f"streamable HTTP at http://HOST:PORT{MCP_PATH}.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (--transport http)."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (--transport http).",
)
@pass_state
def mcp(
    state: State,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    transport: str,
    host: str,
    port: int,
) -> None:
    """Serve this memory to MCP clients (Claude Desktop, Cursor, agents) as tools.

    The tools are remember, recall, context, forget, pin and list_memories. They work for
    the --user and/or --agent given here: an agent cannot reach anyone else's memories.
    New memories go to --session if given; reads span every session. With stdio, stdout
    carries only the protocol; notes and logs go to stderr. The HTTP endpoint has no
    authentication: keep it on 127.0.0.1 or behind an authenticating proxy.

    \b
    Examples:
      remem --db ~/memory.db mcp --user ana
      remem --db ~/memory.db mcp --user ana --agent coder --session 2024-06-01
      remem --db ~/memory.db mcp --user ana --transport http --port 8765
    """
    if user_id is None and agent_id is None:
        raise click.UsageError(
            "give --user or --agent (or both): the server reads and writes only that "
            "user's or agent's memories"
        )
    try:  # the MCP SDK is an extra: import it only when serving
        from remem.mcp_server import build_server
    except ImportError as exc:
        raise ConfigError(
            f"remem mcp needs the MCP SDK, which failed to import ({exc}); install it with "
            "pip install 'remem[mcp]'"
        ) from exc
    memory = state.memory()  # load the embedder now, not on the agent's first call
    server = build_server(memory, user_id=user_id, agent_id=agent_id, session_id=session_id)
    who = ", ".join(f"{k} {v!r}" for k, v in (("user", user_id), ("agent", agent_id),
                                               ("session", session_id)) if v)  # fmt: skip
    where = f"{memory.stats().path}, namespace {memory.namespace!r}"  # no password shown
    if transport == "stdio":
        click.echo(f"remem MCP server on stdio for {who} ({where})", err=True)
        server.run("stdio")
        return
    if not is_loopback(host):
        click.echo(no_auth_warning(host, port, who), err=True)
    click.echo(f"remem MCP server at {endpoint(host, port)} for {who} ({where})", err=True)
    _exit_cleanly_on_signals()
    server.run("streamable-http", host=host, port=port, streamable_http_path=MCP_PATH)


def _exit_cleanly_on_signals() -> None:
    """End the process with exit code 0 on SIGINT or SIGTERM, closing the store on the way.

    uvicorn shuts down gracefully on either, then re-raises it to the handler it found,
    and Python's default for SIGTERM kills the process before anything is closed.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a name other than localhost
    may resolve to anything, so it counts as reachable from outside)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint(host: str, port: int) -> str:
    """The MCP URL clients connect to."""
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    return f"http://{shown}:{port}{MCP_PATH}"


def no_auth_warning(host: str, port: int, who: str) -> str:
    """The warning printed when the HTTP endpoint may be reachable from other machines."""
    rule = "!" * 78
    return (
        f"{rule}\n"
        f"WARNING: the MCP endpoint {endpoint(host, port)} has NO AUTHENTICATION.\n"
        f"Anyone who can reach {host}:{port} can read, add and delete the memories of "
        f"{who}.\n"
        "Bind 127.0.0.1 (the default), or put an authenticating proxy in front of it.\n"
        f"{rule}"
    )
