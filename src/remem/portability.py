"""Export and import as JSONL: a header line, then one JSON object per row.

Line 1: ``{"type": "header", "format": "remem-export", "version": 1, "namespace": ...,
"embedder": "<model_id>:<dimensions>", "exported_at": ...}``. Then ``message`` rows,
``memory`` rows (with ``index_text`` and ``embedding`` as base64 float32) and ``event``
rows, as written by the store's ``dump``. Importing into a store with a different embedder
re-embeds the memories; everything else round-trips unchanged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from remem.embedders.base import Embedder
from remem.errors import DataFormatError, StoreError
from remem.export_format import check_row
from remem.stores.base import Store
from remem.util import dumps, to_db_time, utcnow

FORMAT = "remem-export"
VERSION = 1


def embedder_key(embedder: Embedder) -> str:
    """How exports and stores name an embedder."""
    return f"{embedder.model_id}:{embedder.dimensions}"


def export_jsonl(store: Store, namespace: str, embedder: Embedder, path: Path) -> int:
    """Write the header and every row of ``namespace``; returns the number of rows."""
    header = {"type": "header", "format": FORMAT, "version": VERSION, "namespace": namespace,
              "embedder": embedder_key(embedder), "exported_at": to_db_time(utcnow())}  # fmt: skip
    count = 0
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write(dumps(header) + "\n")
            for row in store.dump(namespace):
                out.write(dumps(row) + "\n")
                count += 1
        tmp.replace(path)  # a crash never leaves a truncated export under the real name
    except OSError as exc:
        raise StoreError(f"cannot write the export to {path}: {exc.strerror or exc}") from exc
    return count


def read_jsonl(path: Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The header and (line number, row) pairs of an export file; errors name the line."""
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist or is not a file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    rows = jsonl_objects(path, lines)
    if not rows or rows[0][1].get("type") != "header" or rows[0][1].get("format") != FORMAT:
        raise DataFormatError(
            f"{path} is not a remem export: line 1 must be a header with format {FORMAT!r}"
        )
    header = rows[0][1]
    if header.get("version") != VERSION:
        raise DataFormatError(f"{path} has export version {header.get('version')}, not {VERSION}")
    return header, rows[1:]


def jsonl_objects(
    path: Path, lines: list[str], example: str = ""
) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL text with their line numbers; blank lines are skipped."""
    out: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path} line {number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            hint = f" like {example}" if example else ""
            raise DataFormatError(f"{path} line {number} must be a JSON object{hint}")
        out.append((number, item))
    return out


def import_jsonl(store: Store, namespace: str, embedder: Embedder, path: Path) -> int:
    """Load an export into ``namespace`` in one transaction; re-embed if the model differs."""
    header, numbered = read_jsonl(path)
    rows = [row for _, row in numbered]
    if header.get("embedder") != embedder_key(embedder):
        for row in rows:
            row.pop("embedding", None)
    for number, row in numbered:
        check_row({"embedding": None, **row}, f"{path} line {number}", embedder.dimensions)
    if header.get("embedder") != embedder_key(embedder):
        _reembed(rows, embedder)
    return store.load(namespace, rows)


def _reembed(rows: list[dict[str, Any]], embedder: Embedder) -> None:
    memories = [r for r in rows if r.get("type") == "memory"]
    texts = [str(r.get("text", "")) for r in memories]
    batch = 256
    for start in tqdm(range(0, len(texts), batch), desc="re-embedding", disable=len(texts) < 1000):
        vectors = embedder.embed(texts[start : start + batch])
        for row, vector in zip(memories[start : start + batch], vectors, strict=True):
            row["embedding"] = base64.b64encode(vector.tobytes()).decode()
