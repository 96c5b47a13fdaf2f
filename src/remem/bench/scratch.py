"""A throwaway store for a benchmark run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from remem import EmbedderConfig, Memory, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder


@contextmanager
def temporary_memory(
    embedder: Embedder | str | None = None, recipe: str | None = None, name: str = "bench"
) -> Iterator[Memory]:
    """A ``Memory`` on a fresh SQLite file in a temporary folder, removed afterwards
    (a benchmark never touches the user's database)."""
    with tempfile.TemporaryDirectory(prefix=f"remem-{name}-") as tmp:
        config = MemoryConfig(StoreConfig(path=str(Path(tmp) / f"{name}.db")), EmbedderConfig())
        with Memory(config, embedder=embedder, recipe=recipe) as memory:
            yield memory
