"""``remem add``: add one message, stdin, or a JSONL file of messages."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from remem.cli.common import (
    State,
    decode_utf8,
    json_object,
    pass_state,
    read_input,
    scope_options,
    to_json,
)
from remem.engine import Memory
from remem.errors import ConflictError, DataFormatError, InvalidInputError, RememError
from remem.models import ROLES
from remem.portability import jsonl_objects, split_lines

BATCH_SIZE = 256
_BATCH_INDEX = re.compile(r"messages\[(\d+)\](\.?)")
_SINGLE_FIELD = re.compile(r"messages\[0\]\.(\w+)")
# ------------------------------------------------------------------------------- add


@click.command()
@click.argument("text", required=False)
@scope_options
@click.option("--role", type=click.Choice(ROLES), help="Who said TEXT.  [default: user]")
@click.option("--name", help="Speaker name for TEXT.")
@click.option("--timestamp", help="When it was said (ISO 8601); the default for --file lines.")
@click.option("--id", "message_id", help="Your id for TEXT; re-adding it is a no-op.")
@click.option("--metadata", callback=json_object, help="JSON object stored with each message.")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL file, one message per line: {role, content, name, timestamp, id, metadata}.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="With an LLM configured: queue deriving memories for `remem worker` and return at once.",
)
@pass_state
def add(
    state: State,
    text: str | None,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    role: str | None,
    name: str | None,
    timestamp: str | None,
    message_id: str | None,
    metadata: dict[str, Any] | None,
    file: Path | None,
    no_wait: bool,
) -> None:
    """Add one message (TEXT, or '-' for stdin) or a JSONL file of messages.

    Prints the id of each new memory. A message whose id is already stored is
    reported as a duplicate and skipped. --file adds in batches of 256; each
    batch commits on its own, so give ids to make a re-run safe.

    \b
    Examples:
      remem add -u ana "I moved to Lisbon in May"
      echo "We adopted a beagle" | remem add -u ana --session s2 -
      remem add -u ana --session s1 --file chat.jsonl
    """
    scope = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id,
             "wait": not no_wait}  # fmt: skip
    if text is None and file is None:
        raise click.UsageError("give the message TEXT, '-' to read it from stdin, or --file")
    if text is not None and file is not None:
        raise click.UsageError("give TEXT or --file, not both")
    if file is not None:
        if role or name or message_id:
            raise click.UsageError("--role, --name and --id apply to TEXT; put them in each line")
        summary = _add_file(state.memory(), file, scope, timestamp, metadata)
    else:
        message = {"role": role or "user", "content": read_input(str(text)), "name": name,
                   "timestamp": timestamp, "id": message_id}  # fmt: skip
        summary = _add_one(state.memory(), message, scope, metadata)
    _print_added(state, summary, file)


def _add_one(
    memory: Memory,
    message: Mapping[str, Any],
    scope: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
) -> dict[str, list[str]]:
    """Add one message; errors name the option (``--timestamp``) rather than ``messages[0]``."""
    try:
        result = memory.add([message], **scope, metadata=metadata)
    except InvalidInputError as exc:
        raise type(exc)(_SINGLE_FIELD.sub(_option_name, str(exc))) from exc
    return {
        "message_ids": list(result.message_ids),
        "memory_ids": [m.id for m in result.memories],
        "duplicate_ids": list(result.duplicate_ids),
    }


def _read_messages(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The messages of a JSONL file, each with its line number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = split_lines(decode_utf8(raw, str(path)).removeprefix("\ufeff"))  # a BOM is not data
    out = jsonl_objects(path, lines, '{"role": "user", "content": "hi"}')
    if not out:
        raise DataFormatError(f"{path} holds no messages (one JSON object per line)")
    return out


def _add_file(
    memory: Memory,
    path: Path,
    scope: Mapping[str, Any],
    timestamp: str | None,
    metadata: Mapping[str, Any] | None,
) -> dict[str, list[str]]:
    """Add a JSONL file in batches, with a progress bar; errors name the file's line."""
    items = _read_messages(path)
    summary: dict[str, list[str]] = {"message_ids": [], "memory_ids": [], "duplicate_ids": []}
    with tqdm(total=len(items), desc="add", unit="msg", disable=None) as bar:
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            try:
                result = memory.add(
                    [m for _, m in chunk], **scope, timestamp=timestamp, metadata=metadata
                )
            except (InvalidInputError, ConflictError) as exc:
                raise _at_lines(exc, path, [n for n, _ in chunk], start > 0) from exc
            summary["message_ids"] += result.message_ids
            summary["memory_ids"] += [m.id for m in result.memories]
            summary["duplicate_ids"] += result.duplicate_ids
            bar.update(len(chunk))
    return summary


def _option_name(match: re.Match[str]) -> str:
    """``messages[0].content`` -> ``TEXT``; ``messages[0].timestamp`` -> ``--timestamp``."""
    return "TEXT" if match.group(1) == "content" else f"--{match.group(1)}"


def _at_lines(error: RememError, path: Path, lines: Sequence[int], partial: bool) -> RememError:
    """The same error, pointing at file lines instead of positions in the batch."""
    text = _BATCH_INDEX.sub(
        lambda m: f"line {lines[int(m.group(1))]}{': ' if m.group(2) else ''}", str(error)
    )
    note = f" (lines before {lines[0]} were added)" if partial else ""
    return type(error)(f"{path}: {text}{note}")


def _print_added(state: State, summary: Mapping[str, list[str]], file: Path | None) -> None:
    if state.as_json:
        click.echo(to_json(summary))
        return
    for memory_id in summary["memory_ids"]:
        click.echo(f"added {memory_id}")
    for message_id in summary["duplicate_ids"]:
        click.echo(f"duplicate {message_id} (already stored, skipped)")
    if file is not None:
        added, dupes = len(summary["memory_ids"]), len(summary["duplicate_ids"])
        click.echo(f"{file}: {added} added, {dupes} duplicates", err=True)
