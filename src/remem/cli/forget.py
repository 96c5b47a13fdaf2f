"""``remem forget``: archive what a forgetting policy picks, and say why."""

from __future__ import annotations

import click

from remem.api import ForgetRequest
from remem.cli.common import (
    State,
    format_when,
    kind_option,
    pass_state,
    scope_options,
    shorten,
    to_json,
)
from remem.evolution.forgetting import DEFAULT_THRESHOLD, POLICIES
from remem.models import ForgetReport


@click.command()
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default="retention",
    show_default=True,
    help="retention: memories whose retention exp(-t/S) fell below --threshold; "
    "ttl: memories whose expires_at has passed.",
)
@click.option(
    "--threshold",
    type=float,
    help=f"Retention below which a memory is archived, above 0 and at most 1 "
    f"(--policy retention only).  [default: {DEFAULT_THRESHOLD}]",
)
@click.option("--dry-run", is_flag=True, help="List what would be archived; write nothing.")
@scope_options
@kind_option
@pass_state
def forget(
    state: State,
    policy: str,
    threshold: float | None,
    dry_run: bool,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kinds: tuple[str, ...],
) -> None:
    """Archive the memories a forgetting policy picks, each with an ARCHIVE event saying
    why. Nothing is deleted and pinned memories are never archived: archived memories
    leave search and list, and `remem get` and `remem history` still show them.

    Retention is exp(-t/S): t the days since a memory was last recalled (returned by a
    search) or stored, S its strength in days (1 at first, growing with each recall).

    \b
    Examples:
      remem forget --policy retention --threshold 0.05 --dry-run -u ana
      remem forget --policy ttl
    """
    request = ForgetRequest(
        policy=policy, threshold=threshold, dry_run=dry_run, user_id=user_id,
        agent_id=agent_id, session_id=session_id, kinds=list(kinds) or None,
    )  # fmt: skip
    report = request.run(state.memory())
    if state.as_json:
        click.echo(to_json(report))
        return
    for line in describe(report):
        click.echo(line)


def describe(report: ForgetReport) -> list[str]:
    """Human lines: each archived memory with its reason, then a summary."""
    lines = []
    for item in report.archived:
        record = item.memory
        kept = "-" if item.retention is None else f"{item.retention:.4f}"
        when = format_when(record.occurred_at or record.created_at)
        lines.append(f"{record.id}  R={kept}  {when}  {record.kind:<5}  {shorten(record.text, 80)}")
        lines.append(f"{'':34}{item.reason}")
    rule = report.policy + ("" if report.threshold is None else f" < {report.threshold:g}")
    verb = "would archive" if report.dry_run else "archived"
    summary = f"{verb} {len(report.archived)} of {report.examined} memories ({rule})"
    if report.pinned_kept:
        summary += f"; kept {report.pinned_kept} pinned"
    if report.changed:
        summary += f"; left {report.changed} recalled or updated meanwhile"
    return [*lines, summary + (" (dry run: nothing written)" if report.dry_run else "")]
