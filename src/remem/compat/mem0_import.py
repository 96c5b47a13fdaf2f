"""``import_mem0``: load a mem0 export (get_all's JSON output, or JSONL) into a remem store.

Each mem0 memory becomes a message, stored verbatim, and that message's turn memory. Its
mem0 id is the message id and the metadata key ``mem0_id``; its other mem0 fields (such
as the platform's ``categories``) are kept under the metadata key ``mem0``. The mem0
surface (``remem.compat.mem0``) reads both back, so an imported memory looks as it did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from remem.engine import Memory
from remem.errors import ConflictError, DataFormatError, InvalidInputError
from remem.models import ROLES, Scope
from remem.portability import jsonl_objects, read_text, split_lines
from remem.util import parse_timestamp, shown
from remem.validation import check_id, check_metadata, check_path, check_text

__all__ = ["MEM0_FIELDS", "MEM0_ID", "RESERVED", "SCOPE_KEYS", "import_mem0"]

MEM0_ID = "mem0_id"  # metadata key: the id a memory had in mem0
MEM0_FIELDS = "mem0"  # metadata key: the other fields of an imported mem0 memory
RESERVED = (MEM0_ID, MEM0_FIELDS)
SCOPE_KEYS = ("user_id", "agent_id", "run_id")
IMPORT_BATCH = 256  # messages per add (one transaction each)

_ROW_FIELDS = ("id", "memory", *SCOPE_KEYS, "metadata", "created_at", "role", "actor_id")
_DERIVED_FIELDS = ("hash", "score", "updated_at", "event", "score_details")
_EXAMPLE = '{"id": "...", "memory": "...", "user_id": "..."}'


@dataclass(frozen=True)
class _Row:
    """One checked mem0 memory, ready to be added as a message."""

    where: str
    id: str
    text: str
    role: str
    actor: str | None
    scope: tuple[str | None, str | None, str | None]  # user, agent, run
    metadata: dict[str, Any]
    created_at: datetime | None


def import_mem0(
    memory: Memory,
    path: str | Path,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
) -> int:
    """Load a mem0 export into ``memory``; returns how many memories were written.

    The file is mem0's ``get_all`` output as JSON (``{"results": [...]}``, or a bare list),
    or JSONL with one memory per line. Every row is checked before anything is written
    (``DataFormatError`` names the row and field), and so are clashes with stored message
    ids (``ConflictError``). Each memory becomes a message (its mem0 id as the message id,
    ``created_at`` as its time, ``role`` and ``actor_id`` as its role and speaker) and that
    message's turn memory. Rows without a scope take ``user_id``/``agent_id``/``run_id``.
    Importing the same file again writes nothing. Rows are added 256 at a time, each batch
    in one transaction: should the store fail part way, run the import again.
    """
    source = check_path(path, "mem0 export path")
    defaults = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    for name, value in defaults.items():
        if value is not None:
            check_id(value, name)
    limit = memory.config.max_message_chars
    rows = [_check_row(item, where, defaults, limit) for where, item in _read_export(source)]
    groups = _by_scope(rows)
    _check_conflicts(memory, groups)
    return sum(_write(memory, scope, group) for scope, group in groups.items())


def _read_export(path: Path) -> list[tuple[str, Any]]:
    """(where, item) of every memory in the file, ``where`` naming its line or index."""
    text = read_text(path)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    data = _JSONL if jsonl else _parse_json(path, text)
    if data is _JSONL:
        lines = jsonl_objects(path, split_lines(text), _EXAMPLE)
        return [(f"{path} line {n}", row) for n, row in lines]
    if isinstance(data, dict) and "results" in data:
        items, label = data["results"], "results"
    elif isinstance(data, list):
        items, label = data, ""
    elif isinstance(data, dict) and "memory" in data:  # JSONL of one line
        return [(f"{path} line 1", data)]
    else:
        raise DataFormatError(
            f'{path} is not a mem0 export: expected {{"results": [...]}} (get_all\'s output), '
            "a JSON list of memories, or JSONL with one memory per line"
        )
    if not isinstance(items, list):
        raise DataFormatError(f"{path}: 'results' must be a list of memories")
    return [(f"{path} {label}[{n}]", item) for n, item in enumerate(items)]


_JSONL: Any = object()  # _parse_json's answer for a file of several JSON values


class _NotJson(ValueError):
    """NaN, Infinity and -Infinity: Python's json accepts them, JSON does not."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _parse_json(path: Path, text: str) -> Any:
    """The file as one JSON value, or ``_JSONL`` if it holds several (one per line)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return _JSONL
        raise DataFormatError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "a mem0 export is get_all's JSON output, or JSONL with one memory per line"
        ) from exc
    except _NotJson as exc:
        raise DataFormatError(f"{path} holds {exc}, which is not JSON; use null") from exc
    except RecursionError as exc:
        raise DataFormatError(f"{path} is nested too deeply to read") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataFormatError(f"{path} cannot be read as JSON: {exc}") from exc


def _check_row(item: Any, where: str, defaults: Mapping[str, Any], max_chars: int) -> _Row:
    """One mem0 memory, checked as ``add`` would check it; errors name the row."""
    if not isinstance(item, Mapping):
        raise DataFormatError(f"{where} must be a JSON object like {_EXAMPLE}, not "
                              f"{type(item).__name__}")  # fmt: skip
    try:
        return _row(item, where, defaults, max_chars)
    except InvalidInputError as exc:
        raise DataFormatError(f"{where}: {exc}") from exc


def _row(item: Mapping[str, Any], where: str, defaults: Mapping[str, Any], max_chars: int) -> _Row:
    for name in ("id", "memory"):
        if item.get(name) is None:
            raise InvalidInputError(
                f"field {name!r} is missing; every mem0 memory has an 'id' and its text in 'memory'"
            )
    memory_id = check_id(item["id"], "field 'id'")
    scope = tuple(
        check_id(item[k], f"field {k!r}") if item.get(k) is not None else defaults[k]
        for k in SCOPE_KEYS
    )
    if scope == (None, None, None):
        raise InvalidInputError(
            "has none of user_id, agent_id and run_id; pass a default for such rows "
            "(import_mem0(..., user_id=...), or --user with `remem import-mem0`)"
        )
    role = item.get("role") or "user"
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInputError(f"field 'role' is {shown(role)}; use one of {', '.join(ROLES)}")
    actor = item.get("actor_id")
    metadata = check_metadata(item.get("metadata"), "field 'metadata'")
    if set(metadata) & set(RESERVED):
        raise InvalidInputError(f"field 'metadata' uses the reserved keys {', '.join(RESERVED)}")
    extra = {k: v for k, v in item.items()
             if k not in _ROW_FIELDS and k not in _DERIVED_FIELDS and v is not None}  # fmt: skip
    metadata = check_metadata({**metadata, MEM0_ID: memory_id, **({MEM0_FIELDS: extra}
                                                                   if extra else {})},
                              "field 'metadata' with the other mem0 fields")  # fmt: skip
    return _Row(
        where=where, id=memory_id, text=check_text(item["memory"], "field 'memory'", max_chars),
        role=role, actor=None if actor is None else check_id(actor, "field 'actor_id'"),
        scope=(scope[0], scope[1], scope[2]), metadata=metadata,
        created_at=parse_timestamp(item.get("created_at"), "field 'created_at'"),
    )  # fmt: skip


def _by_scope(rows: list[_Row]) -> dict[tuple[str | None, str | None, str | None], list[_Row]]:
    """Rows grouped by scope, oldest first in each; an id may appear only once."""
    seen: dict[str, str] = {}
    groups: dict[tuple[str | None, str | None, str | None], list[_Row]] = {}
    for row in rows:
        if row.id in seen:
            raise DataFormatError(f"{row.where}: id {row.id!r} appears twice (first at "
                                  f"{seen[row.id]}); mem0 ids are unique")  # fmt: skip
        seen[row.id] = row.where
        groups.setdefault(row.scope, []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: r.created_at or datetime.min)
    return groups


def _check_conflicts(
    memory: Memory, groups: Mapping[tuple[str | None, str | None, str | None], list[_Row]]
) -> None:
    """Refuse before writing if a row's id is stored already with other content."""
    for (user, agent, _run), group in groups.items():
        scope = Scope(user_id=user, agent_id=agent, namespace=memory.namespace)
        stored = memory.store.existing_messages(scope, [r.id for r in group])
        for row in group:
            old = stored.get(row.id)
            if old is not None and (old.content != row.text or old.role != row.role):
                raise ConflictError(
                    f"{row.where}: message id {row.id!r} is already stored with another "
                    f"text or role (stored: {old.role} {shown(old.content)}); nothing was "
                    "imported. Import into another namespace or database, or delete the "
                    "old scope first"
                )


def _write(
    memory: Memory, scope: tuple[str | None, str | None, str | None], rows: list[_Row]
) -> int:
    """Add one scope's rows as messages; returns the memories written (not duplicates)."""
    written = 0
    for start in range(0, len(rows), IMPORT_BATCH):
        messages = [
            {"id": r.id, "role": r.role, "content": r.text, "timestamp": r.created_at,
             "metadata": r.metadata, **({"name": r.actor} if r.actor else {})}
            for r in rows[start : start + IMPORT_BATCH]
        ]  # fmt: skip
        result = memory.add(messages, user_id=scope[0], agent_id=scope[1], session_id=scope[2])
        written += len(result.memories)
    return written
