"""``remem compact``: make deleted content unrecoverable from the store's files."""

from __future__ import annotations

import click

from remem.cli.common import State, pass_state, to_json


@click.command(name="compact")
@click.option(
    "--full",
    is_flag=True,
    help="PostgreSQL: VACUUM FULL, rewriting remem's tables (each is locked while it "
    "runs). SQLite always rewrites the whole file.",
)
@pass_state
def compact_command(state: State, full: bool) -> None:
    """Clear what deletions left in the store's files and give the space back.

    Deleted memories and messages leave no rows behind, but their bytes can linger in
    free pages and in the write-ahead log until overwritten. This clears leftovers of
    deletions made by earlier versions (audit snapshots, entity rows, term counts), then
    SQLite: VACUUM and an emptied write-ahead log; PostgreSQL: VACUUM of remem's tables.
    It covers every namespace of the store. See docs/deletion.md for what it cannot
    reach (backups, PostgreSQL's WAL).

    \b
    Examples:
      remem --db notes.db delete --all --user ana --yes
      remem --db notes.db compact
    """
    report = state.memory().compact(full=full)
    if state.as_json:
        click.echo(to_json(report))
    else:
        click.echo(f"compacted: {report.size_before} -> {report.size_after} bytes, "
                   f"{report.swept} leftovers of earlier deletions cleared")  # fmt: skip
    if not report.complete:
        click.echo("the write-ahead log was in use by another connection and still holds "
                   "older pages: run `remem compact` again when nothing else uses the "
                   "database", err=True)  # fmt: skip
