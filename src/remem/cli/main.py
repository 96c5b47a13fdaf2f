"""The ``remem`` command: add, search and manage memories, and run retrieval benchmarks."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from remem import __version__
from remem.api import ContextRequest, ListRequest, SearchRequest
from remem.cli.add import add
from remem.cli.ask import ask
from remem.cli.bench import bench
from remem.cli.common import (
    Cli,
    State,
    arg_text,
    check_writable,
    compact,
    exit_code,
    format_when,
    history_options,
    kind_option,
    pass_state,
    read_mode,
    recipe_option,
    scope_options,
    shorten,
    to_json,
)
from remem.cli.compact import compact_command
from remem.cli.forget import forget
from remem.cli.mcp import mcp
from remem.cli.mem0 import import_mem0_command
from remem.cli.postgres import postgres
from remem.cli.serve import keys, serve
from remem.cli.worker import jobs, worker
from remem.models import MemoryEvent, MemoryRecord, SearchResults, Stats
from remem.settings import DEFAULT_DB

__all__ = ["exit_code", "main"]


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="PATH|URL",
    help=f"SQLite database file, or a sqlite:///path URL.  [env: REMEM_DB; default: {DEFAULT_DB}]",
)
@click.option("--namespace", help="Namespace (tenant) to use.  [env: REMEM_NAMESPACE]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option(
    "--verbose", "-v", count=True, help="Log to stderr: -v what remem does, -vv debug detail."
)
@click.version_option(__version__, prog_name="remem")
@click.pass_context
def main(
    ctx: click.Context, db: str | None, namespace: str | None, as_json: bool, verbose: int
) -> None:
    """Long-term memory for LLM agents, from the shell.

    Settings come from the options, then REMEM_* variables (REMEM_DB, REMEM_NAMESPACE,
    REMEM_RECIPE, REMEM_EMBEDDER, REMEM_EMBEDDER_OPTIONS, REMEM_MAX_MESSAGE_CHARS).
    Exit codes: 2 bad input, 3 not found, 4 storage failure, 1 other errors.

    \b
    Example:
      remem --db notes.db add -u ana "I moved to Lisbon in May"
      remem --db notes.db search -u ana "where does Ana live?"
    """
    if verbose:  # the library never configures logging; the command line may
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    state = State(db, namespace, as_json)
    ctx.obj = state
    ctx.call_on_close(state.close)


# ---------------------------------------------------------------------------- search


@main.command()
@click.argument("query")
@scope_options
@kind_option
@click.option("--limit", "-n", type=int, default=10, show_default=True, help="Hits to return.")
@recipe_option
@click.option("--since", help="Only memories from this time on (ISO 8601).")
@click.option("--until", help="Only memories before this time (ISO 8601).")
@click.option(
    "--reference-time",
    help="Resolve relative times in QUERY ('last week') against this ISO 8601 time instead of now.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Show the query analysis (terms, intent, time window, entities) and, per hit, "
    "the channels that found it and what each step added.",
)
@history_options
@pass_state
def search(
    state: State,
    query: str,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kinds: tuple[str, ...],
    limit: int,
    recipe: str | None,
    since: str | None,
    until: str | None,
    reference_time: str | None,
    explain: bool,
    as_of: str | None,
    history: bool,
) -> None:
    """Find the memories that best answer QUERY, best first.

    Each hit shows its rank, fused score, date, text and source message ids.

    \b
    Examples:
      remem search -u ana "where does Ana live?"
      remem search -u ana --since 2024-01-01 --recipe bm25 --explain "dog"
      remem search -u ana --as-of 2024-03-01 "where does Ana live?"
    """
    request = SearchRequest(
        query=arg_text(query, "QUERY"), user_id=user_id, agent_id=agent_id,
        session_id=session_id, kinds=list(kinds) or None, since=since, until=until,
        limit=limit, recipe=recipe, explain=explain, reference_time=reference_time,
        as_of=as_of, mode=read_mode(history),
    )  # fmt: skip
    results = request.run(state.memory())
    if state.as_json:
        click.echo(to_json(results))
        return
    for line in _format_hits(results, explain):
        click.echo(line)


@main.command()
@click.argument("query")
@scope_options
@kind_option
@click.option(
    "--budget",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help="Token budget for the packed memories.",
)
@recipe_option
@history_options
@pass_state
def context(
    state: State,
    query: str,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kinds: tuple[str, ...],
    budget: int,
    recipe: str | None,
    as_of: str | None,
    history: bool,
) -> None:
    """Print the best memories for QUERY that fit a token budget, ready for a prompt.

    Lines are grouped by session and date and cite their source message ids;
    tokens are counted with remem's bundled WordPiece tokenizer.

    \b
    Example:
      remem context -u ana --budget 500 "where does Ana live?"
    """
    request = ContextRequest(
        query=arg_text(query, "QUERY"), budget_tokens=budget, user_id=user_id,
        agent_id=agent_id, session_id=session_id, kinds=list(kinds) or None, recipe=recipe,
        as_of=as_of, mode=read_mode(history),
    )  # fmt: skip
    result = request.run(state.memory())
    if state.as_json:
        click.echo(to_json(result))
        return
    click.echo(result.text or "(no memories fit)")
    click.echo(
        f"{result.tokens} of {result.budget_tokens} tokens ({result.tokenizer}), "
        f"{len(result.items)} memories",
        err=True,
    )


def _format_hits(results: SearchResults, explain: bool) -> list[str]:
    """Human lines for a search: a header, then each hit with its sources."""
    noun = "hit" if len(results) == 1 else "hits"
    lines = [f"{len(results)} {noun} for {results.query!r} "
             f"(recipe {results.recipe}, {results.took_ms:.1f} ms)"]  # fmt: skip
    if explain and results.explain:  # its keys vary with the recipe; show them as JSON
        lines += [f"{key}: {compact(value)}" for key, value in results.explain.items()]
    for hit in results:
        memory = hit.memory
        when = format_when(memory.occurred_at or memory.created_at)
        lines.append(f"{hit.rank:>3}  {hit.score:.3f}  {when}  {shorten(memory.text)}")
        lines.append(f"{'':17}sources: {', '.join(memory.source_ids)}")
        if explain:
            found = ", ".join(hit.channels) or "context steps only"
            scores = "  ".join(f"{c}={s:.4g}" for c, s in hit.scores.items())
            lines.append(f"{'':17}found by: {found}")
            lines.append(f"{'':17}scores: {scores or '-'}")
    return lines


# -------------------------------------------------------------------- list/get/delete


@main.command(name="list")
@scope_options
@kind_option
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Rows to show.")
@click.option("--offset", type=int, default=0, show_default=True, help="Rows to skip.")
@history_options
@pass_state
def list_(
    state: State,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kinds: tuple[str, ...],
    limit: int,
    offset: int,
    as_of: str | None,
    history: bool,
) -> None:
    """List memories, most recent first (--history: superseded ones too).

    \b
    Example:
      remem list -u ana --kind turn --limit 50 --offset 50
      remem list -u ana --kind fact --history
    """
    request = ListRequest(
        user_id=user_id, agent_id=agent_id, session_id=session_id, kinds=list(kinds) or None,
        limit=limit, offset=offset, as_of=as_of, mode=read_mode(history),
    )  # fmt: skip
    records = request.run(state.memory()).items
    if state.as_json:
        click.echo(to_json(records))
        return
    if not records:
        click.echo("no memories", err=True)
    for record in records:
        when = format_when(record.occurred_at or record.created_at)
        click.echo(f"{record.id}  {when}  {record.kind:<5}  {shorten(record.text, 100)}")


@main.command()
@click.argument("memory_id")
@click.option("--as-of", "as_of", help="The version of this memory current at this time.")
@pass_state
def get(state: State, memory_id: str, as_of: str | None) -> None:
    """Show one memory in full (superseded ones too: see 'superseded by').

    \b
    Example:
      remem get 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
    """
    record = state.memory().get(arg_text(memory_id, "ID"), as_of=as_of)
    click.echo(to_json(record) if state.as_json else "\n".join(_describe(record)))


def _describe(record: MemoryRecord) -> list[str]:
    """``field: value`` lines for a memory, leaving out empty fields."""
    scope = record.scope
    rows: list[tuple[str, Any]] = [
        ("id", record.id), ("kind", record.kind), ("text", record.text),
        ("namespace", scope.namespace), ("user", scope.user_id), ("agent", scope.agent_id),
        ("session", scope.session_id), ("sources", ", ".join(record.source_ids)),
        ("occurred", record.occurred_at and format_when(record.occurred_at, True)),
        ("created", format_when(record.created_at, True)),
        ("updated", format_when(record.updated_at, True)),
        ("metadata", record.metadata and json.dumps(dict(record.metadata), ensure_ascii=False)),
        ("importance", f"{record.importance:.2f}"), ("pinned", record.pinned and "yes"),
        ("expires", record.expires_at and format_when(record.expires_at, True)),
        ("superseded by", record.superseded_by),
        ("valid until", record.valid_to and format_when(record.valid_to, True)),
    ]  # fmt: skip
    return [f"{name + ':':<15}{value}" for name, value in rows if value]


@main.command()
@click.argument("memory_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Delete a whole scope (needs a scope).")
@scope_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def delete(
    state: State,
    memory_id: str | None,
    everything: bool,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    yes: bool,
) -> None:
    """Delete one memory by ID, or with --all every memory and message of a scope.

    Asks first unless --yes. Everything derived goes too (with --all: memories elsewhere
    citing only the scope's messages, entity rows, term counts, pending jobs). The
    history of a deleted memory keeps when it changed and by whom, not what it said.
    Run `remem compact` afterwards to clear the file's free space.

    \b
    Examples:
      remem delete 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
      remem delete --all --user ana --yes
    """
    scoped = any((user_id, agent_id, session_id))
    if everything:
        if memory_id is not None or not scoped:
            raise click.UsageError("--all takes no ID and needs --user, --agent or --session")
        _delete_scope(state, user_id, agent_id, session_id, yes)
        return
    if memory_id is None or scoped:
        raise click.UsageError("give a memory ID, or --all with --user/--agent/--session")
    memory = state.memory()
    record = memory.get(arg_text(memory_id, "ID"))
    if not yes:
        click.confirm(f"Delete memory {record.id} ({shorten(record.text, 60)!r})?", abort=True,
                      err=True)  # fmt: skip
    memory.delete(record.id)
    click.echo(to_json({"deleted": record.id}) if state.as_json else f"deleted {record.id}")


def _delete_scope(
    state: State, user_id: str | None, agent_id: str | None, session_id: str | None, yes: bool
) -> None:
    parts = [f"{k} {v!r}" for k, v in (("user", user_id), ("agent", agent_id),
                                          ("session", session_id)) if v]  # fmt: skip
    memory = state.memory()
    where = f"{' and '.join(parts)} in namespace {memory.namespace!r}"
    if not yes:
        click.confirm(f"Delete every memory and message of {where}?", abort=True, err=True)
    counts = memory.delete_all(user_id=user_id, agent_id=agent_id, session_id=session_id)
    if state.as_json:
        click.echo(to_json(counts))
    else:
        click.echo(f"deleted {counts['memories']} memories and {counts['messages']} messages "
                   f"of {where}")  # fmt: skip


@main.command()
@scope_options
@click.option("--kind", help="Only entities of this kind (name, speaker, title, keyphrase).")
@click.option("--limit", "-n", type=int, default=30, show_default=True, help="Rows to show.")
@pass_state
def entities(
    state: State,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kind: str | None,
    limit: int,
) -> None:
    """Show the entity table: names, titles and key phrases, strongest first.

    Strength adds up each mention's weight, decayed by the sessions since it was made,
    so what a conversation keeps coming back to stays on top.

    
    Example:
      remem entities -u ana --kind keyphrase
    """
    table = state.memory().entities(
        user_id=user_id, agent_id=agent_id, session_id=session_id, kind=kind, limit=limit
    )
    if state.as_json:
        click.echo(to_json(table))
        return
    if not table:
        click.echo("no entities (add messages first; enrichment finds them)", err=True)
    for e in table:
        seen = f"{format_when(e.first_seen)}..{format_when(e.last_seen)}"
        click.echo(f"{e.strength:8.2f}  {e.kind:9}  {e.mentions:4}x in {e.sessions:3} sessions"
                   f"  {seen}  {e.name}")  # fmt: skip


@main.command()
@click.argument("memory_id")
@pass_state
def history(state: State, memory_id: str) -> None:
    """Show every change to a memory, oldest first (also after it was deleted).

    \b
    Example:
      remem history 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
    """
    # Memory.history's ``list[...]`` annotation resolves to the method Memory.list under mypy
    events: Sequence[MemoryEvent] = state.memory().history(arg_text(memory_id, "ID"))
    if state.as_json:
        click.echo(to_json(events))
        return
    for event in events:
        click.echo(_format_event(event))


def _format_event(event: MemoryEvent) -> str:
    line = f"{format_when(event.at, True)}  {event.action:<9}  by {event.actor} ({event.reason})"
    text = (event.after or {}).get("text")
    return f"{line}\n{'':21}{shorten(str(text))}" if text else line


# ------------------------------------------------------------------ export/import/stats


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def export(state: State, path: Path) -> None:
    """Write this namespace (messages, memories, history) to a JSONL file.

    \b
    Example:
      remem --db notes.db export backup.jsonl
    """
    check_writable(path)
    try:
        rows = state.memory().export(path)
    except OSError as exc:
        raise click.FileError(str(path), exc.strerror) from None
    payload = {"path": str(path), "rows": rows}
    click.echo(to_json(payload) if state.as_json else f"exported {rows} rows to {path}")


@main.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def import_(state: State, path: Path) -> None:
    """Load a JSONL export into this namespace, in one transaction.

    Re-embeds the memories if the export was made with another embedder.

    \b
    Example:
      remem --db new.db import backup.jsonl
    """
    memory = state.memory()
    if not state.as_json:
        click.echo(f"importing {path} into namespace {memory.namespace!r} ...", err=True)
    rows = memory.import_(path)
    payload = {"path": str(path), "rows": rows}
    click.echo(to_json(payload) if state.as_json else f"imported {rows} rows from {path}")


@main.command()
@pass_state
def stats(state: State) -> None:
    """Show counts of messages, memories and events in this namespace.

    \b
    Example:
      remem --db notes.db stats
    """
    result = state.memory().stats()
    click.echo(to_json(result) if state.as_json else "\n".join(_describe_stats(result)))


def _describe_stats(result: Stats) -> list[str]:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.memories_by_kind.items()))
    rows = [
        ("path", result.path or "-"), ("messages", result.messages),
        ("memories", f"{result.memories}" + (f" ({kinds})" if kinds else "")),
        ("events", result.events), ("users", result.users), ("sessions", result.sessions),
        ("embedder", result.embedder or "-"), ("schema", result.schema_version),
    ]  # fmt: skip
    if result.jobs:  # the background job backlog, failures included
        rows.append(("jobs", ", ".join(f"{k} {n}" for k, n in sorted(result.jobs.items()))))
    return [f"{name + ':':<10}{value}" for name, value in rows]


main.add_command(add)
main.add_command(ask)
main.add_command(bench)
main.add_command(serve)
main.add_command(keys)
main.add_command(import_mem0_command)
main.add_command(mcp)
main.add_command(postgres)
main.add_command(forget)
main.add_command(worker)
main.add_command(jobs)
main.add_command(compact_command)
