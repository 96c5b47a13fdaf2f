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

from remem.export_format import FIELDS, JSON_FIELDS
from remem.stores.common import DUMP_TABLES, dumped_embedding, dumped_fields, dumped_links
from remem.stores.sqlite.links import link_memories
from remem.util import dumps


def _decode(field: str, value: Any) -> Any:
    return json.loads(value) if field in JSON_FIELDS and value is not None else value


def _encode(field: str, value: Any) -> Any:
    return dumps(value) if field in JSON_FIELDS and value is not None else value


def dump_rows(conn: sqlite3.Connection, namespace: str) -> Iterator[dict[str, Any]]:
    """Messages, then memories, then events of one namespace, in insertion order."""
    for kind, table in DUMP_TABLES.items():
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
        kind, fields = dumped_fields(number, item)
        table = DUMP_TABLES[kind]
        columns = ["namespace", *fields]
        values = [namespace, *(_encode(f, item[f]) for f in fields)]
        if kind == "memory":
            columns.extend(("embedding", "rev"))
            values.extend((dumped_embedding(item.get("embedding"), number), revision))
        conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(values))})",
            values,
        )
        if kind == "memory":
            link_memories(conn, [dumped_links(namespace, item)])
        written += 1
    return written
