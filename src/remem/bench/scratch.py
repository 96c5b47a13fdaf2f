"""A throwaway store for a benchmark run."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from remem import EmbedderConfig, Memory, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder
from remem.registry import store_config


@contextmanager
def temporary_memory(
    embedder: Embedder | str | None = None,
    recipe: str | None = None,
    name: str = "bench",
    database: str | None = None,
) -> Iterator[Memory]:
    """A ``Memory`` on a fresh SQLite file in a temporary folder, removed afterwards (a
    benchmark never touches the user's database); or, given ``database`` (a path or URL,
    e.g. ``postgresql://...``), on that database in a new namespace ``<name>-<random>``,
    which is left there for inspection (drop it, or the database, afterwards)."""
    if database is not None:
        config = MemoryConfig(store_config(database), EmbedderConfig())
        namespace = f"{name}-{uuid.uuid4().hex[:8]}"
        with Memory(config, embedder=embedder, recipe=recipe, namespace=namespace) as memory:
            yield memory
        return
    with tempfile.TemporaryDirectory(prefix=f"remem-{name}-") as tmp:
        config = MemoryConfig(StoreConfig(path=str(Path(tmp) / f"{name}.db")), EmbedderConfig())
        with Memory(config, embedder=embedder, recipe=recipe) as memory:
            yield memory
