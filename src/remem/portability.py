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
from remem.errors import DataFormatError, InvalidInputError, StoreError
from remem.export_format import check_rows
from remem.stores.base import Store
from remem.util import dumps, shown, to_db_time, utcnow
from remem.validation import check_path

FORMAT = "remem-export"
VERSION = 1


def embedder_key(embedder: Embedder) -> str:
    """How exports and stores name an embedder."""
    return f"{embedder.model_id}:{embedder.dimensions}"


def export_jsonl(store: Store, namespace: str, embedder: Embedder, path: Path) -> int:
    """Write the header and every row of ``namespace``; returns the number of rows."""
    path = check_path(path, "export path")
    if not path.name or path.is_dir():
        raise InvalidInputError(f"export path {path} must name a file, not a folder")
    header = {"type": "header", "format": FORMAT, "version": VERSION, "namespace": namespace,
              "embedder": embedder_key(embedder), "exported_at": to_db_time(utcnow())}  # fmt: skip
    count = 0
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write(dumps(header) + "\n")
            for row in store.dump(namespace):
                out.write(_row_line(row))
                count += 1
        tmp.replace(path)  # a crash never leaves a truncated export under the real name
    except (OSError, ValueError) as exc:  # ValueError: a name the OS cannot represent
        reason = getattr(exc, "strerror", None) or exc
        raise StoreError(f"cannot write the export to {path}: {reason}") from exc
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; removed after a failure
    return count


def _row_line(row: dict[str, Any]) -> str:
    try:
        return dumps(row) + "\n"
    except (TypeError, ValueError) as exc:  # a stored value JSON cannot hold (NaN)
        raise StoreError(
            f"cannot export {row.get('type')} {shown(row.get('id', row.get('memory_id')))}: "
            f"{exc}; the database holds a value JSON cannot represent"
        ) from exc


def read_text(path: Path) -> str:
    """A data file's text, strictly UTF-8 (a byte order mark is dropped); errors name the
    file and what to do."""
    try:
        if not path.is_file():
            raise DataFormatError(f"{path} does not exist or is not a file")
        return path.read_bytes().decode("utf-8-sig")  # tolerate a byte order mark
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); convert it to UTF-8"
        ) from exc
    except (OSError, ValueError) as exc:  # ValueError: a name the OS cannot represent
        reason = getattr(exc, "strerror", None) or exc
        raise DataFormatError(f"cannot read {path}: {reason}") from exc


def read_jsonl(path: Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The header and (line number, row) pairs of an export file; errors name the line."""
    rows = jsonl_objects(path, split_lines(read_text(path)))
    if not rows or rows[0][1].get("type") != "header" or rows[0][1].get("format") != FORMAT:
        raise DataFormatError(
            f"{path} is not a remem export: line 1 must be a header with format {FORMAT!r}"
        )
    header = rows[0][1]
    version = header.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise DataFormatError(
            f"{path} has export version {shown(version)}; this remem reads version {VERSION}"
        )
    return header, rows[1:]


def split_lines(text: str) -> list[str]:
    """Lines split at newlines only: ``str.splitlines`` would also split inside JSON strings
    holding U+2028, U+2029 or U+0085, which JSON (and ``dumps``) leave unescaped."""
    return text.split("\n")


class _NotJson(ValueError):
    """NaN, Infinity and -Infinity: Python's json accepts them, JSON does not."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def jsonl_objects(
    path: Path, lines: list[str], example: str = ""
) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL text with their line numbers; blank lines are skipped."""
    out: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            item = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{where} is not valid JSON ({exc.msg})") from exc
        except _NotJson as exc:
            raise DataFormatError(
                f"{where} holds {exc}, which is not JSON; use null or a finite number"
            ) from exc
        except RecursionError as exc:
            raise DataFormatError(f"{where} is nested too deeply to read") from exc
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise DataFormatError(f"{where} cannot be read: {exc}") from exc
        if not isinstance(item, dict):
            hint = f" like {example}" if example else ""
            raise DataFormatError(f"{where} must be a JSON object{hint}")
        out.append((number, item))
    return out


def import_jsonl(store: Store, namespace: str, embedder: Embedder, path: Path) -> int:
    """Load an export into ``namespace`` in one transaction; re-embed if the model differs.

    Every row is checked (``export_format.check_rows``) before anything is written.
    """
    header, numbered = read_jsonl(check_path(path, "import path"))
    same_model = header.get("embedder") == embedder_key(embedder)
    if not same_model:
        numbered = [(n, {**row, "embedding": None}) for n, row in numbered]
    rows = check_rows(numbered, str(path), embedder.dimensions)
    if not same_model:
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
