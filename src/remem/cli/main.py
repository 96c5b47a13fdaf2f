"""The ``remem`` command: add, search and manage memories, and run retrieval benchmarks."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from remem import __version__
from remem.engine import Memory
from remem.errors import (
    InvalidInputError,
    RememError,
    kind_of,
)
from remem.models import MEMORY_KINDS, MemoryEvent, MemoryRecord, SearchResults, Stats
from remem.retrieval.recipes import RECIPES, get_recipe
from remem.settings import DEFAULT_DB, load_settings

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

TEXT_WIDTH = 160


# ------------------------------------------------------------------------------ edge


def exit_code(error: RememError) -> int:
    """The process exit code for a library error (``remem.errors.ERRORS``): 2 input, 3 not
    found, 4 store, 1 other."""
    return kind_of(error).exit_code


def report_internal_error(exc: Exception) -> int:
    """Print an unexpected exception as one line (no traceback) and return exit code 1.

    The traceback goes to this module's logger at DEBUG level, for whoever configured one.
    """
    logger.debug("internal error", exc_info=exc)
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    click.echo(f"error: internal error: {what}; please report it", err=True)
    return 1


# click's own control flow (usage errors, --help, aborted prompts) passes through untouched
_CLICK_FLOW = (click.ClickException, click.exceptions.Exit, click.Abort)


class _Cli(click.Group):
    """A click group that turns every ``RememError`` into ``error: ...`` and an exit code,
    and any other exception into ``error: internal error: ...`` and exit code 1: the
    command line never prints a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RememError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exit_code(exc))
        except _CLICK_FLOW:
            raise
        except Exception as exc:  # the edge: report it, never a traceback
            ctx.exit(report_internal_error(exc))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Also catch what fails outside a command (closing the store, parsing)."""
        try:
            return super().main(*args, **kwargs)
        except RememError as exc:
            if not kwargs.get("standalone_mode", True):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exit_code(exc))
        except _CLICK_FLOW:
            raise
        except Exception as exc:
            if not kwargs.get("standalone_mode", True):
                raise
            sys.exit(report_internal_error(exc))


@dataclass
class State:
    """Global options, and the ``Memory`` built on first use (the embedder loads slowly)."""

    db: str | None
    namespace: str | None
    as_json: bool
    _memory: Memory | None = None

    def memory(self) -> Memory:
        """The ``Memory`` for ``--db``/``--namespace`` and the ``REMEM_*`` settings."""
        if self._memory is None:
            config = load_settings(self.db)
            if self.namespace is not None:
                config = dataclasses.replace(config, namespace=self.namespace)
            self._memory = Memory(config)
        return self._memory

    def close(self) -> None:
        """Close the ``Memory`` if one was built."""
        if self._memory is not None:
            self._memory.close()
            self._memory = None


# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """Dataclasses (and lists of them) as JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """``value`` as indented JSON: dataclasses as objects, datetimes as ISO 8601 strings."""
    return json.dumps(_plain(value), default=_json_default, ensure_ascii=False, indent=2)


def _compact(value: Any) -> str:
    """``value`` as one-line JSON."""
    return json.dumps(_plain(value), default=_json_default, ensure_ascii=False)


def _decode(data: bytes, what: str) -> str:
    """Strict UTF-8 decoding, with an error that says where the bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8"
        ) from None


def _arg_text(value: str, what: str) -> str:
    """A command-line argument, re-checked as UTF-8 (undecodable bytes arrive escaped)."""
    return _decode(os.fsencode(value), what)


def _read_input(text: str, what: str = "TEXT") -> str:
    """``text`` itself, or standard input (one trailing newline dropped) when it is ``-``."""
    if text != "-":
        return _arg_text(text, what)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InvalidInputError("standard input is closed; pipe the text in, or give it as TEXT")
    data = stream.read()
    return _decode(data, "standard input").removesuffix("\n").removesuffix("\r")


def _json_object(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """Click callback: parse an option holding a JSON object."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f'not valid JSON ({exc.msg}); e.g. \'{{"topic": "pets"}}\''
        ) from None
    except RecursionError:
        raise click.BadParameter("nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise click.BadParameter(f"cannot be read as JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"must be a JSON object, not {type(parsed).__name__}")
    return parsed


def _check_writable(path: Path) -> Path:
    """Fail before any work if ``path`` cannot be created (its folder is missing)."""
    if path.is_dir() or not path.resolve().parent.is_dir():
        raise click.BadParameter(f"cannot write {path}: not a file in an existing folder")
    return path


def _short(text: str, width: int = TEXT_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _when(value: datetime | None, seconds: bool = False) -> str:
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d")


def _scope_options(func: F) -> F:
    """Add ``--user/-u``, ``--agent`` and ``--session``."""
    func = click.option("--session", "-s", "session_id", help="Session id.")(func)
    func = click.option("--agent", "-a", "agent_id", help="Agent id.")(func)
    return click.option("--user", "-u", "user_id", help="User id.")(func)


def check_recipes(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Validate recipe names (one or several) with the library's own lookup."""
    for name in value if isinstance(value, tuple) else (value,) if value else ():
        try:
            get_recipe(name)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


RECIPE_HELP = (
    f"one of {', '.join(sorted(RECIPES))}, or '<recipe>-no-<mechanism>' to switch one "
    "mechanism off (e.g. default-no-graph)"
)


def _recipe_option(func: F) -> F:
    return click.option(
        "--recipe",
        callback=check_recipes,
        help=f"Retrieval recipe: {RECIPE_HELP}.  [default: REMEM_RECIPE or default]",
    )(func)


def _kind_option(func: F) -> F:
    return click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(MEMORY_KINDS),
        help="Only memories of this kind (repeatable).",
    )(func)


# ------------------------------------------------------------------------------ main


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
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


pass_state = click.make_pass_decorator(State)


# ---------------------------------------------------------------------------- search


@main.command()
@click.argument("query")
@_scope_options
@_kind_option
@click.option("--limit", "-n", type=int, default=10, show_default=True, help="Hits to return.")
@_recipe_option
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
) -> None:
    """Find the memories that best answer QUERY, best first.

    Each hit shows its rank, fused score, date, text and source message ids.

    \b
    Examples:
      remem search -u ana "where does Ana live?"
      remem search -u ana --since 2024-01-01 --recipe bm25 --explain "dog"
    """
    results = state.memory().search(
        _arg_text(query, "QUERY"), user_id=user_id, agent_id=agent_id, session_id=session_id,
        kinds=kinds or None, since=since, until=until, limit=limit, recipe=recipe,
        explain=explain, reference_time=reference_time,
    )  # fmt: skip
    if state.as_json:
        click.echo(to_json(results))
        return
    for line in _format_hits(results, explain):
        click.echo(line)


@main.command()
@click.argument("query")
@_scope_options
@_kind_option
@click.option(
    "--budget",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help="Token budget for the packed memories.",
)
@_recipe_option
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
) -> None:
    """Print the best memories for QUERY that fit a token budget, ready for a prompt.

    Lines are grouped by session and date and cite their source message ids;
    tokens are counted with remem's bundled WordPiece tokenizer.

    \b
    Example:
      remem context -u ana --budget 500 "where does Ana live?"
    """
    result = state.memory().context(
        _arg_text(query, "QUERY"), budget_tokens=budget, user_id=user_id, agent_id=agent_id,
        session_id=session_id, kinds=kinds or None, recipe=recipe,
    )  # fmt: skip
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
        lines += [f"{key}: {_compact(value)}" for key, value in results.explain.items()]
    for hit in results:
        memory = hit.memory
        when = _when(memory.occurred_at or memory.created_at)
        lines.append(f"{hit.rank:>3}  {hit.score:.3f}  {when}  {_short(memory.text)}")
        lines.append(f"{'':17}sources: {', '.join(memory.source_ids)}")
        if explain:
            found = ", ".join(hit.channels) or "context steps only"
            scores = "  ".join(f"{c}={s:.4g}" for c, s in hit.scores.items())
            lines.append(f"{'':17}found by: {found}")
            lines.append(f"{'':17}scores: {scores or '-'}")
    return lines


# -------------------------------------------------------------------- list/get/delete


@main.command(name="list")
@_scope_options
@_kind_option
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Rows to show.")
@click.option("--offset", type=int, default=0, show_default=True, help="Rows to skip.")
@pass_state
def list_(
    state: State,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    kinds: tuple[str, ...],
    limit: int,
    offset: int,
) -> None:
    """List memories, most recent first.

    \b
    Example:
      remem list -u ana --kind turn --limit 50 --offset 50
    """
    records = state.memory().list(
        user_id=user_id, agent_id=agent_id, session_id=session_id, kinds=kinds or None,
        limit=limit, offset=offset,
    )  # fmt: skip
    if state.as_json:
        click.echo(to_json(records))
        return
    if not records:
        click.echo("no memories", err=True)
    for record in records:
        when = _when(record.occurred_at or record.created_at)
        click.echo(f"{record.id}  {when}  {record.kind:<5}  {_short(record.text, 100)}")


@main.command()
@click.argument("memory_id")
@pass_state
def get(state: State, memory_id: str) -> None:
    """Show one memory in full.

    \b
    Example:
      remem get 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
    """
    record = state.memory().get(_arg_text(memory_id, "ID"))
    click.echo(to_json(record) if state.as_json else "\n".join(_describe(record)))


def _describe(record: MemoryRecord) -> list[str]:
    """``field: value`` lines for a memory, leaving out empty fields."""
    scope = record.scope
    rows: list[tuple[str, Any]] = [
        ("id", record.id), ("kind", record.kind), ("text", record.text),
        ("namespace", scope.namespace), ("user", scope.user_id), ("agent", scope.agent_id),
        ("session", scope.session_id), ("sources", ", ".join(record.source_ids)),
        ("occurred", record.occurred_at and _when(record.occurred_at, True)),
        ("created", _when(record.created_at, True)), ("updated", _when(record.updated_at, True)),
        ("metadata", record.metadata and json.dumps(dict(record.metadata), ensure_ascii=False)),
        ("importance", f"{record.importance:.2f}"), ("pinned", record.pinned and "yes"),
        ("expires", record.expires_at and _when(record.expires_at, True)),
        ("superseded by", record.superseded_by),
    ]  # fmt: skip
    return [f"{name + ':':<15}{value}" for name, value in rows if value]


@main.command()
@click.argument("memory_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Delete a whole scope (needs a scope).")
@_scope_options
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

    Asks first unless --yes. The audit history of deleted memories is kept.

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
    record = memory.get(_arg_text(memory_id, "ID"))
    if not yes:
        click.confirm(f"Delete memory {record.id} ({_short(record.text, 60)!r})?", abort=True,
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
@_scope_options
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
        seen = f"{_when(e.first_seen)}..{_when(e.last_seen)}"
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
    events: Sequence[MemoryEvent] = state.memory().history(_arg_text(memory_id, "ID"))
    if state.as_json:
        click.echo(to_json(events))
        return
    for event in events:
        click.echo(_format_event(event))


def _format_event(event: MemoryEvent) -> str:
    line = f"{_when(event.at, True)}  {event.action:<9}  by {event.actor} ({event.reason})"
    text = (event.after or {}).get("text")
    return f"{line}\n{'':21}{_short(str(text))}" if text else line


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
    _check_writable(path)
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
    return [f"{name + ':':<10}{value}" for name, value in rows]


from remem.cli import add as _add  # noqa: E402,F401  (registers `remem add`)
from remem.cli import bench as _bench  # noqa: E402,F401  (registers `remem bench`)
