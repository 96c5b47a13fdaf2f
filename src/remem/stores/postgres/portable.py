"""Export and import of a namespace as JSON-ready rows, in exactly the SQLite store's form
(times as fixed-width ISO text, ``pinned`` as 0/1, embeddings as base64 of little-endian
float32), so an export moves between backends unchanged."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from remem.errors import DataFormatError
from remem.export_format import FIELDS, JSON_FIELDS
from remem.index.rules import Linked
from remem.stores.common import DUMP_TABLES, dumped_embedding, dumped_fields, dumped_links
from remem.stores.postgres.connection import Connection, Connections
from remem.stores.postgres.links import link_memories
from remem.util import from_db_time, to_db_time

TIME_FIELDS = frozenset({"occurred_at", "recorded_at", "created_at", "updated_at",
                         "last_accessed_at", "expires_at", "valid_from", "valid_to",
                         "expired_at", "at"})  # fmt: skip


def dump_rows(db: Connections, namespace: str) -> Iterator[dict[str, Any]]:
    """Messages, then memories, then events of one namespace, in insertion order; runs
    inside the caller's snapshot and streams (a server-side cursor)."""
    for kind, table in DUMP_TABLES.items():
        fields = FIELDS[kind]
        extra = ", embedding" if kind == "memory" else ""
        for row in db.stream(
            f"SELECT {', '.join(fields)}{extra} FROM {table} WHERE namespace = %s "
            f"ORDER BY {'id' if kind == 'event' else 'pk'}",
            (namespace,),
        ):
            item: dict[str, Any] = {"type": kind}
            item.update({f: _exported(f, row[f]) for f in fields})
            if kind == "memory":
                vector = row["embedding"]
                item["embedding"] = (
                    None if vector is None
                    else base64.b64encode(vector.astype("<f4").tobytes()).decode()
                )  # fmt: skip
            yield item


def _exported(field: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return to_db_time(value)
    if field == "pinned":
        return int(value)
    return value


def load_rows(
    conn: Connection, namespace: str, items: Sequence[Mapping[str, Any]], revision: int
) -> int:
    """Insert dumped rows into ``namespace`` at ``revision`` (each table's rows in the
    order given); the caller holds the write transaction."""
    values: dict[str, list[list[Any]]] = {kind: [] for kind in DUMP_TABLES}
    linked: list[Linked] = []
    for number, item in enumerate(items, start=1):
        kind, fields = dumped_fields(number, item)
        row = [namespace, *(_imported(kind, f, item[f], number) for f in fields)]
        if kind == "memory":
            raw = dumped_embedding(item.get("embedding"), number)
            row.extend((None if raw is None else np.frombuffer(raw, "<f4").astype(np.float32),
                        revision))  # fmt: skip
            linked.append(dumped_links(namespace, item))
        values[kind].append(row)
    for kind, table in DUMP_TABLES.items():
        columns = ["namespace", *FIELDS[kind], *(("embedding", "rev") if kind == "memory" else ())]
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                values[kind],
            )
    link_memories(conn, linked)
    return len(items)


def _imported(kind: str, field: str, value: Any, number: int) -> Any:
    """A dumped value as the column takes it."""
    if value is None:
        return None
    if field in JSON_FIELDS:
        return Jsonb(value)
    if field == "pinned":
        return bool(value)
    if field in TIME_FIELDS and isinstance(value, str):
        try:
            return from_db_time(value)
        except ValueError as exc:
            raise DataFormatError(
                f"row {number} ({kind}): {field} {value!r} is not an ISO 8601 time"
            ) from exc
    return value
