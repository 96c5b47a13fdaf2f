"""``remem serve`` and ``remem`` commands as child processes, and a small HTTP client.

Every bench here drives the real command line: a server is ``remem serve`` in its own
process (so ``kill -9`` means what it says), keys come from ``remem keys create``. The
client is ``http.client`` over one keep-alive connection, so the benches need nothing the
server extra does not already bring.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from remem.errors import StoreError

START_TIMEOUT = 120.0  # seconds for a server to answer /v1/health (it loads the model)
STOP_TIMEOUT = 15.0  # seconds a server may take to exit after SIGTERM
REQUEST_TIMEOUT = 60.0  # seconds for one request (adds wait for SQLite's write lock)
# ``python -m remem.cli.main`` would only import the module: it has no __main__ guard
REMEM = (sys.executable, "-c", "from remem.cli.main import main; main()")
# what a request raises when the server is gone or the connection broke
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def remem_command(*args: str) -> list[str]:
    """The argv of ``remem ARGS...`` run by this interpreter."""
    return [*REMEM, *args]


def run_remem(*args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``remem ARGS...`` to completion; its output is captured, never raised on."""
    return subprocess.run(remem_command(*args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip


@dataclass(frozen=True)
class Key:
    """An API key made by ``remem keys create``: its id, tenant and the secret."""

    id: str
    tenant: str
    secret: str


def create_key(db: Path, tenant: str, admin: bool = False) -> Key:
    """A new key for ``tenant`` in ``db`` (creating the database if needed)."""
    args = ["--json", "--db", str(db), "keys", "create", "--tenant", tenant]
    done = run_remem(*args, *(["--admin"] if admin else []))
    if done.returncode != 0:
        raise StoreError(f"`remem keys create` failed ({done.returncode}): {done.stderr.strip()}")
    made = json.loads(done.stdout)
    return Key(made["id"], made["tenant"], made["key"])


def revoke_key(db: Path, key: Key) -> None:
    """Revoke ``key`` with ``remem keys revoke``."""
    done = run_remem("--db", str(db), "keys", "revoke", key.id)
    if done.returncode != 0:
        raise StoreError(f"`remem keys revoke` failed ({done.returncode}): {done.stderr.strip()}")


# ----------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Reply:
    """One HTTP response: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def error_code(self) -> str | None:
        """``error.code`` of an error body, else ``None``."""
        try:
            found = self.json()["error"]["code"]
        except (ValueError, TypeError, KeyError):
            return None
        return found if isinstance(found, str) else None


class Client:
    """JSON requests to one server over a keep-alive connection, with a bearer key.

    A request that fails to connect or loses its connection raises ``OSError`` or
    ``http.client.HTTPException`` (``CONNECTION_ERRORS``); the next request reconnects.
    """

    def __init__(self, base_url: str, key: str | None, timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.key = key
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> Reply:
        """Send ``body`` (JSON, if not ``None``) and read the whole answer."""
        headers = {"Authorization": f"Bearer {self.key}"} if self.key is not None else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request(method, path, body=data, headers=headers)
            answer = self._conn.getresponse()
            reply = Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                          answer.read())  # fmt: skip
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return reply

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- server


class Server:
    """``remem serve --db DB`` in a child process on a free loopback port.

    ``start`` waits until ``/v1/health`` answers; ``kill`` is SIGKILL, ``stop`` SIGTERM.
    Use it as a context manager so the process never outlives the bench.
    """

    def __init__(self, db: Path, log: Path, host: str = "127.0.0.1") -> None:
        self.db, self.log, self.host = db, log, host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait for it to answer (a few tries if the port was taken)."""
        from remem.server.run import free_port

        for _attempt in range(3):
            self.port = free_port(self.host)
            args = remem_command("--db", str(self.db), "serve", "--host", self.host,
                                 "--port", str(self.port), "--log-level", "warning")  # fmt: skip
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)  # fmt: skip
            if self._wait_ready(timeout):
                return
        raise StoreError(f"`remem serve` did not start; its log is {self.log}:\n{self.tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        """Whether the server answered /v1/health before ``timeout`` (``False``: it exited)."""
        due = time.monotonic() + timeout
        with Client(self.url, None, timeout=5) as probe:
            while time.monotonic() < due:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if probe.request("GET", "/v1/health").status == 200:
                        return True
                except CONNECTION_ERRORS:
                    time.sleep(0.05)
        self.kill()
        raise StoreError(f"`remem serve` did not answer within {timeout:g} s:\n{self.tail()}")

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit (SIGKILL after ``STOP_TIMEOUT``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        self.kill()

    def tail(self, lines: int = 20) -> str:
        """The end of the server's log."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])

    def internal_errors(self) -> int:
        """How many tracebacks the server logged (each is an internal error)."""
        if not self.log.exists():
            return 0
        return self.log.read_text("utf-8", "replace").count("Traceback (most recent call last)")

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
