"""Export and import of a namespace as JSON-ready rows (the JSONL format's body).

Rows, one per line in an export file:
``{"type": "message", ...}``, ``{"type": "memory", ..., "index_text", "embedding"}``
(embedding: base64 of little-endian float32, or null) and ``{"type": "event", ...}``.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from remem.errors import DataFormatError
from remem.export_format import FIELDS, JSON_FIELDS
from remem.stores.sqlite.links import link_memory
from remem.util import dumps

_TABLES = {"message": "messages", "memory": "memories", "event": "memory_events"}


def _decode(field: str, value: Any) -> Any:
    return json.loads(value) if field in JSON_FIELDS and value is not None else value


def _encode(field: str, value: Any) -> Any:
    return dumps(value) if field in JSON_FIELDS and value is not None else value


def dump_rows(conn: sqlite3.Connection, namespace: str) -> Iterator[dict[str, Any]]:
    """Messages, then memories, then events of one namespace, in insertion order."""
    for kind, table in _TABLES.items():
        fields = FIELDS[kind]
        extra = ", embedding" if kind == "memory" else ""
        cursor = conn.execute(
            f"SELECT {', '.join(fields)}{extra} FROM {table} WHERE namespace = ? "
            f"ORDER BY {'id' if kind == 'event' else 'pk'}",
            (namespace,),
        )
        for row in cursor:
            item: dict[str, Any] = {"type": kind}
            item.update({f: _decode(f, row[f]) for f in fields})
            if kind == "memory":
                blob = row["embedding"]
                item["embedding"] = None if blob is None else base64.b64encode(blob).decode()
            yield item


def load_rows(
    conn: sqlite3.Connection, namespace: str, items: Sequence[Mapping[str, Any]], revision: int
) -> int:
    """Insert dumped rows into ``namespace`` at ``revision``; the caller holds the
    transaction."""
    written = 0
    for number, item in enumerate(items, start=1):
        kind = item.get("type")
        if kind not in FIELDS:
            raise DataFormatError(f"row {number}: unknown type {kind!r}; expected {sorted(FIELDS)}")
        table, fields = _TABLES[kind], FIELDS[kind]
        missing = [f for f in fields if f not in item]
        if missing:
            raise DataFormatError(f"row {number} ({kind}): missing fields {missing}")
        columns = ["namespace", *fields]
        values = [namespace, *(_encode(f, item[f]) for f in fields)]
        if kind == "memory":
            columns.extend(("embedding", "rev"))
            values.extend((_embedding(item.get("embedding"), number), revision))
        conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(values))})",
            values,
        )
        if kind == "memory":
            owner = (namespace, str(item["user_id"] or ""), str(item["agent_id"] or ""))
            link_memory(conn, owner, str(item["kind"]), str(item["text"]),
                        item["attributes"] or {})  # fmt: skip
        written += 1
    return written


def _embedding(value: Any, number: int) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise DataFormatError(f"row {number}: embedding is not valid base64") from exc
