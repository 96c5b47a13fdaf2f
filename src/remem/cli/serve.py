"""``remem serve`` (the REST server) and ``remem keys`` (its API keys)."""

from __future__ import annotations

import ipaddress

import click

from remem.api import to_json
from remem.cli.common import State, db_option, format_when, pass_state
from remem.errors import ConfigError
from remem.keys import KeyRing
from remem.registry import create_store
from remem.settings import load_settings

OPEN_WARNING = (
    "WARNING: no API keys exist, so this server answers anyone who can reach {where} "
    "without authentication, as tenant 'default'. Create a key with "
    "`remem keys create --db PATH --tenant NAME` and restart to require keys."
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@pass_state
def serve(state: State, host: str, port: int, log_level: str) -> None:
    """Serve the REST API (/v1, docs at /docs, OpenAPI at /openapi.json).

    Requests authenticate with 'Authorization: Bearer KEY'; each key is confined to its
    tenant. With no keys in the database the server runs open, and only on loopback.

    \b
    Example:
      remem keys create --db memory.db --tenant acme
      remem serve --db memory.db --host 0.0.0.0 --port 8000
    """
    try:
        import uvicorn

        from remem.server.app import ServerConfig, create_app
    except ImportError as exc:
        raise ConfigError(
            f"the REST server needs its extra ({exc.name} is missing): pip install 'remem[server]'"
        ) from None
    memory = state.memory()
    keyless = not KeyRing(memory.store).active()
    if keyless and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve {host} without API keys; create one with `remem keys create "
            "--db PATH --tenant NAME`, or bind 127.0.0.1"
        )
    if keyless:
        click.secho(OPEN_WARNING.format(where=f"{host}:{port}"), fg="red", bold=True, err=True)
    app = create_app(memory, ServerConfig(open=keyless))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@click.group()
def keys() -> None:
    """Create, list and revoke the REST server's API keys.

    \b
    Example:
      remem keys create --db memory.db --tenant acme
      remem keys list --db memory.db
    """


def _ring(state: State) -> KeyRing:
    store = create_store(load_settings(state.db).store)
    click.get_current_context().call_on_close(store.close)
    return KeyRing(store)


@keys.command()
@db_option
@click.option("--tenant", required=True, help="The tenant (namespace) the key is confined to.")
@click.option("--name", default="", help="A label, e.g. who holds the key.")
@click.option("--admin", is_flag=True, help="The key may also manage keys over the API.")
@pass_state
def create(state: State, tenant: str, name: str, admin: bool) -> None:
    """Create a key; it is printed once, alone on the last line, and stored hashed.

    \b
    Example:
      remem keys create --db memory.db --tenant acme --name "acme backend"
    """
    key, secret = _ring(state).create(tenant, name, admin)
    if state.as_json:
        click.echo(to_json({"id": key.id, "tenant": key.tenant, "admin": key.admin,
                            "key": secret}))  # fmt: skip
        return
    role = "admin key" if admin else "key"
    click.echo(f"created {role} {key.id} for tenant {key.tenant!r}; it is shown only now:")
    click.echo(secret)


@keys.command(name="list")
@db_option
@pass_state
def list_(state: State) -> None:
    """List keys (ids, tenants, roles; never the keys themselves).

    \b
    Example:
      remem keys list --db memory.db
    """
    found = _ring(state).list()
    if state.as_json:
        click.echo(to_json(found))
        return
    if not found:
        click.echo("no keys (the server runs open, on loopback only)", err=True)
    for key in found:
        status = f"revoked {format_when(key.revoked_at, True)}" if key.revoked_at else "active"
        role = "admin" if key.admin else "tenant"
        click.echo(f"{key.id}  {key.tenant:<16}  {role:<6}  {status:<27}  {key.name}")


@keys.command()
@db_option
@click.argument("key_id")
@pass_state
def revoke(state: State, key_id: str) -> None:
    """Revoke a key; every server on the database refuses it from the next request.

    \b
    Example:
      remem keys revoke --db memory.db 4892d85af1e0
    """
    key = _ring(state).revoke(key_id)
    click.echo(to_json(key) if state.as_json else f"revoked {key.id} (tenant {key.tenant!r})")
