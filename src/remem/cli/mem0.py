"""``remem import-mem0``: load a mem0 export (get_all's JSON, or JSONL) into the store."""

from __future__ import annotations

from pathlib import Path

import click

from remem.cli.common import State, pass_state, to_json
from remem.compat.mem0 import import_mem0


@click.command(name="import-mem0")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "-u", "user_id", help="user_id for memories that have no scope.")
@click.option("--agent", "-a", "agent_id", help="agent_id for memories that have no scope.")
@click.option("--run", "run_id", help="run_id (remem session) for memories that have no scope.")
@pass_state
def import_mem0_command(
    state: State, file: Path, user_id: str | None, agent_id: str | None, run_id: str | None
) -> None:
    """Import the memories of a mem0 export FILE.

    FILE is mem0's get_all output saved as JSON ({"results": [...]} or a list), or JSONL
    with one memory per line. Every row is checked first: a bad row imports nothing. Each
    memory keeps its mem0 id, text, scope, metadata and created_at; importing the same
    file again adds nothing.

    \b
    Examples:
      remem --db my.db import-mem0 export.json
      remem --db my.db import-mem0 --user ana ana-memories.jsonl
    """
    count = import_mem0(state.memory(), file, user_id=user_id, agent_id=agent_id, run_id=run_id)
    if state.as_json:
        click.echo(to_json({"imported": count, "file": str(file)}))
    else:
        click.echo(f"imported {count} memories from {file}")
