"""The engine's and retrieval's own tests, again on PostgreSQL.

Every test function of the modules in ``MODULES`` that works on the ``memory`` fixture is
collected here a second time, with ``memory`` a ``Memory`` on a fresh PostgreSQL database
(pgvector) instead of a SQLite file: the same assertions, the other backend. Tests that
open their own SQLite files, or check what only a file has, stay in their own module.
"""

from __future__ import annotations

import importlib
import inspect
import uuid
from collections.abc import Iterator

import pytest
from conftest import database_url

from remem import Memory
from remem.embedders.onnx import OnnxMiniLMEmbedder

pytestmark = pytest.mark.postgres

# the modules whose tests use ``memory`` (the others open their own stores; those about
# consolidation, jobs, deletion and derived retrieval are parametrized over both backends)
MODULES = ("test_memory_api", "test_retention", "test_enrichment")


def _engine_tests() -> dict[str, object]:
    found: dict[str, object] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if not attr.startswith("test_") or not callable(value):
                continue
            if "memory" in inspect.signature(value).parameters:
                found[f"{attr}__{name.removeprefix('test_')}"] = value
    return found


globals().update(_engine_tests())


@pytest.fixture
def memory(postgres_url: str, embedder: OnnxMiniLMEmbedder) -> Iterator[Memory]:
    """A ``Memory`` on a fresh PostgreSQL database, closed after the test."""
    mem = Memory(database_url(postgres_url, f"e_{uuid.uuid4().hex[:16]}"), embedder=embedder)
    yield mem
    mem.close()
