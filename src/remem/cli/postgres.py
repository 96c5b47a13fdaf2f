"""``remem postgres``: a local PostgreSQL with pgvector for people who have none."""

from __future__ import annotations

from pathlib import Path

import click

from remem.cli.common import State, pass_state, to_json
from remem.stores.postgres import local

DEFAULT_DIR = "~/.remem/postgres"


@click.group()
def postgres() -> None:
    """Start or stop a local PostgreSQL server with pgvector (the [postgres] extra).

    It listens on a Unix socket in its data folder; use the printed URL as --db.

    \b
    Example:
      remem postgres start
      remem --db "$(remem postgres start)" add -u ana "I moved to Lisbon in May"
    """


def _folder_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--dir",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DIR,
        show_default=True,
        help="The server's data folder.",
    )(func)


@postgres.command()
@_folder_option
@pass_state
def start(state: State, folder: Path) -> None:
    """Start the server (or find it running) and print its URL on stdout.

    \b
    Example:
      remem postgres start --dir ~/.remem/postgres
    """
    url = local.start(folder)
    click.echo(to_json({"url": url, "dir": str(folder)}) if state.as_json else url)


@postgres.command()
@_folder_option
@pass_state
def stop(state: State, folder: Path) -> None:
    """Stop the server of a data folder (its data stays).

    \b
    Example:
      remem postgres stop --dir ~/.remem/postgres
    """
    stopped = local.stop(folder)
    if state.as_json:
        click.echo(to_json({"stopped": stopped, "dir": str(folder)}))
    else:
        click.echo(f"stopped PostgreSQL in {folder}" if stopped else f"none running in {folder}")
