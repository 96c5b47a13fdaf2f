"""Shared fixtures: the real default embedder (loaded once), a ``Memory`` on a temporary
SQLite file, and a factory of bare stores parametrised over every backend."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remem import Memory, StoreConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.registry import create_store
from remem.stores.base import Store

StoreFactory = Callable[..., Store]

# Later backends (e.g. "postgres") join the contract suite by being added here and to
# ``_location`` below.
STORE_BACKENDS = ["sqlite"]


@pytest.fixture(scope="session")
def embedder() -> Iterator[OnnxMiniLMEmbedder]:
    """The default embedder (all-MiniLM-L6-v2 int8 ONNX), loaded once per test session."""
    model = OnnxMiniLMEmbedder()
    yield model
    model.close()


@pytest.fixture
def memory(tmp_path: Path, embedder: OnnxMiniLMEmbedder) -> Iterator[Memory]:
    """A ``Memory`` on a fresh SQLite file, closed after the test."""
    mem = Memory(tmp_path / "m.db", embedder=embedder)
    yield mem
    mem.close()


def _location(backend: str, tmp_path: Path, name: str) -> str:
    if backend == "sqlite":
        return str(tmp_path / f"{name}.db")
    raise AssertionError(f"no test location for backend {backend!r}")  # pragma: no cover


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``store_factory(name="store")`` opens (or reopens) a store of the current backend.

    Calling it twice with the same name reaches the same data; every store it opened is
    closed after the test.
    """
    backend: str = request.param
    opened: list[Store] = []

    def make(name: str = "store") -> Store:
        store = create_store(StoreConfig(backend, _location(backend, tmp_path, name)))
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):  # a test may have closed it already
            store.close()
