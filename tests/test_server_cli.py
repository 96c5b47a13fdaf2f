"""``remem keys`` and ``remem serve`` as a user runs them: real processes, real sockets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from remem.cli.main import main
from remem.cli.serve import is_loopback
from remem.server.run import free_port
from remem.settings import ENV_VARS

REMEM = [sys.executable, "-c", "from remem.cli.main import main; main()"]


def _runner() -> CliRunner:
    return CliRunner(env={name: None for name in ENV_VARS})


def test_keys_create_prints_the_key_once_alone_on_its_last_line(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    made = _runner().invoke(main, ["keys", "create", "--db", db, "--tenant", "acme",
                                   "--name", "backend"])  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.output.splitlines()[-1]
    assert secret.startswith("rk_") and " " not in secret
    listed = _runner().invoke(main, ["--db", db, "keys", "list"])
    assert "acme" in listed.output and "backend" in listed.output and secret not in listed.output
    assert secret not in (tmp_path / "k.db").read_bytes().decode("latin-1")
    key_id = listed.output.split()[0]
    revoked = _runner().invoke(main, ["keys", "revoke", "--db", db, key_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert "revoked" in _runner().invoke(main, ["--db", db, "keys", "list"]).output
    again = _runner().invoke(main, ["--json", "keys", "create", "--db", db, "--tenant", "t2",
                                    "--admin"])  # fmt: skip
    assert '"admin": true' in again.output


def test_keys_errors_are_clear(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    missing = _runner().invoke(main, ["keys", "revoke", "--db", db, "nope"])
    assert missing.exit_code == 3 and "no API key 'nope'" in missing.output
    empty = _runner().invoke(main, ["keys", "create", "--db", db, "--tenant", " "])
    assert empty.exit_code == 2 and "tenant" in empty.output
    assert "Traceback" not in missing.output + empty.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("10.1.2.3", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_without_keys_refuses_a_public_address(tmp_path: Path) -> None:
    done = subprocess.run([*REMEM, "serve", "--db", str(tmp_path / "s.db"), "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "refusing to serve 0.0.0.0 without API keys" in done.stderr
    assert "Traceback" not in done.stderr


@contextmanager
def _serving(db: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    server = subprocess.Popen([*REMEM, "serve", "--db", str(db), "--port", str(port)],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr and server.stderr.read()
                time.sleep(0.2)
        yield server
    finally:
        server.kill()
        server.wait(30)


def test_serve_runs_open_on_loopback_and_says_so_loudly(tmp_path: Path) -> None:
    port = free_port()
    with _serving(tmp_path / "s.db", port) as server:
        added = httpx.post(f"http://127.0.0.1:{port}/v1/memories",
                           json={"messages": "hello", "user_id": "u"}, timeout=60)  # fmt: skip
        assert added.status_code == 201
    assert server.stderr is not None
    assert "WARNING: no API keys exist" in server.stderr.read()


def test_serve_with_a_key_needs_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    made = _runner().invoke(main, ["keys", "create", "--db", str(db), "--tenant", "acme"])
    secret = made.output.splitlines()[-1]
    port = free_port()
    with _serving(db, port) as server:
        url = f"http://127.0.0.1:{port}/v1/stats"
        assert httpx.get(url, timeout=30).status_code == 401
        ok = httpx.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert ok.status_code == 200 and ok.json()["memories"] == 0
    assert server.stderr is not None and "WARNING" not in server.stderr.read()


def test_subcommands_take_db_after_their_name(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    no_scope = _runner().invoke(main, ["mcp", "--db", db])
    assert no_scope.exit_code == 2 and "--user" in no_scope.output  # --db itself was taken
    assert "No such option" not in no_scope.output
    listed = _runner().invoke(main, ["keys", "list", "--db", db])
    assert listed.exit_code == 0
