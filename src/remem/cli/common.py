"""What every ``remem`` command shares: the error edge, global state, option helpers."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from remem.api import to_json
from remem.engine import Memory
from remem.errors import InvalidInputError, RememError, kind_of
from remem.models import MEMORY_KINDS
from remem.retrieval.recipes import RECIPES, get_recipe
from remem.settings import load_settings

__all__ = ["to_json"]


F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("remem.cli.main")

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


class Cli(click.Group):
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


def _set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(State).db = value
    return value


def db_option(func: F) -> F:
    """``--db`` on a subcommand too (``remem serve --db PATH``), same as the group's."""
    return click.option(
        "--db",
        metavar="PATH|URL",
        expose_value=False,
        is_eager=True,
        callback=_set_db,
        help="Database (overrides the one given before the command).  [env: REMEM_DB]",
    )(func)


# --------------------------------------------------------------------------- helpers


def write_report(out: Path | None, payload: Any) -> None:
    """Write a bench report to ``--out`` as JSON (nothing when ``out`` is ``None``)."""
    if out is None:
        return
    try:
        out.write_text(to_json(payload) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(out), exc.strerror) from None
    click.echo(f"wrote {out}", err=True)


def compact(value: Any) -> str:
    """``value`` as one-line JSON."""
    return to_json(value, indent=None)


def decode_utf8(data: bytes, what: str) -> str:
    """Strict UTF-8 decoding, with an error that says where the bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8"
        ) from None


def arg_text(value: str, what: str) -> str:
    """A command-line argument, re-checked as UTF-8 (undecodable bytes arrive escaped)."""
    return decode_utf8(os.fsencode(value), what)


def read_input(text: str, what: str = "TEXT") -> str:
    """``text`` itself, or standard input (one trailing newline dropped) when it is ``-``."""
    if text != "-":
        return arg_text(text, what)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InvalidInputError("standard input is closed; pipe the text in, or give it as TEXT")
    data = stream.read()
    return decode_utf8(data, "standard input").removesuffix("\n").removesuffix("\r")


def json_object(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
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


def check_writable(path: Path) -> Path:
    """Fail before any work if ``path`` cannot be created (its folder is missing)."""
    if path.is_dir() or not path.resolve().parent.is_dir():
        raise click.BadParameter(f"cannot write {path}: not a file in an existing folder")
    return path


def shorten(text: str, width: int = TEXT_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_when(value: datetime | None, seconds: bool = False) -> str:
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d")


def scope_options(func: F) -> F:
    """Add ``--user/-u``, ``--agent`` and ``--session``."""
    func = click.option("--session", "-s", "session_id", help="Session id.")(func)
    func = click.option("--agent", "-a", "agent_id", help="Agent id.")(func)
    return click.option("--user", "-u", "user_id", help="User id.")(func)


def history_options(func: F) -> F:
    """Add ``--as-of`` and ``--history``: which versions of the memories a read sees."""
    func = click.option(
        "--history",
        is_flag=True,
        help="Every version: superseded and invalidated memories too.",
    )(func)
    return click.option(
        "--as-of",
        "as_of",
        help="The memories as they were current at this time (ISO 8601).",
    )(func)


def read_mode(history: bool) -> str:
    """The library's ``mode`` for the ``--history`` flag."""
    return "history" if history else "current"


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


def recipe_option(func: F) -> F:
    return click.option(
        "--recipe",
        callback=check_recipes,
        help=f"Retrieval recipe: {RECIPE_HELP}.  [default: REMEM_RECIPE or default]",
    )(func)


def kind_option(func: F) -> F:
    return click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(MEMORY_KINDS),
        help="Only memories of this kind (repeatable).",
    )(func)


# ------------------------------------------------------------------------------ main


pass_state = click.make_pass_decorator(State)
