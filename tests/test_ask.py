"""``Memory.ask`` (``remem.answer``): a token-budgeted context, one LLM call, an answer that
cites the memories it used. Unit tests script the LLM (``ScriptedLLM`` through the real
registry) on a real SQLite file with the default embedder; the REST route runs on a real
HTTP server; one integration test asks the real local model."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from llm_server import KEY, MODEL

from remem import AsyncMemory, Memory, MemoryConfig
from remem.answer import ANSWER_VERSION, NO_ANSWER, Answer, answer_messages
from remem.config import DeriveConfig, LLMConfig
from remem.embedders.base import Embedder
from remem.errors import ConfigError, InvalidInputError, LLMError
from remem.llms.base import LLM
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.registry import create_llm, register_llm, store_config
from remem.server.app import ServerConfig, create_app
from remem.server.run import running
from remem.settings import ENV_VARS

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

CONVERSATION = [
    {"role": "user", "speaker": "Ana", "timestamp": "2023-05-08T13:56:00",
     "content": "I moved to Lisbon in May"},
    {"role": "assistant", "speaker": "Bruno", "timestamp": "2023-05-08T13:57:00",
     "content": "Nice! Is your beagle Oscar happy there?"},
    {"role": "user", "speaker": "Ana", "timestamp": "2023-06-10T09:00:00",
     "content": "Oscar loves the beach at Cascais"},
]  # fmt: skip
NUMBERED = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)


def _open(path: Path, embedder: Embedder, llm: LLM | None) -> Memory:
    """A memory on ``path`` asking ``llm``; no extraction at add (these tests script only
    the answering call)."""
    config = MemoryConfig(store_config(str(path)), derive=DeriveConfig(enabled=False))
    return Memory(config, embedder=embedder, llm=llm)


def _scripted(*replies: Any) -> ScriptedLLM:
    llm = create_llm(LLMConfig(name="scripted", model="answers", options={"replies": replies}))
    assert isinstance(llm, ScriptedLLM)
    return llm


@pytest.fixture
def scripted() -> ScriptedLLM:
    return _scripted()


@pytest.fixture
def asking(tmp_path: Path, embedder: Embedder, scripted: ScriptedLLM) -> Iterator[Memory]:
    """A memory holding ``CONVERSATION`` for user ana, answering with ``scripted``."""
    with _open(tmp_path / "m.db", embedder, scripted) as memory:
        memory.add(CONVERSATION, user_id="ana", session_id="s1")
        memory.add("My vault code is 4417", user_id="bob")
        yield memory


def _memories_shown(request: ScriptedRequest) -> dict[int, str]:
    """The numbered memory lines of an answering prompt: number -> text."""
    return {int(n): text for n, text in NUMBERED.findall(request.messages[-1]["content"])}


# ---------------------------------------------------------------------------- prompt


def test_the_prompt_is_a_versioned_pure_function() -> None:
    from datetime import datetime

    when = datetime(2023, 7, 1, 12, 0)
    messages = answer_messages("Where does Ana live?", "[1] 13:56 Ana: I moved", when)
    assert messages == answer_messages("Where does Ana live?", "[1] 13:56 Ana: I moved", when)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert NO_ANSWER in messages[0]["content"] and '"citations"' in messages[0]["content"]
    assert messages[1]["content"] == (
        "Memories:\n[1] 13:56 Ana: I moved\n\nToday is 1 July 2023.\nQuestion: Where does Ana live?"
    )
    assert "(none)" in answer_messages("Where?", "", when)[1]["content"]
    assert ANSWER_VERSION == "answer/1"


# ------------------------------------------------------------------------------- ask


def test_ask_answers_from_numbered_memories_and_cites_them(
    asking: Memory, scripted: ScriptedLLM
) -> None:
    def reply(request: ScriptedRequest) -> dict[str, Any]:
        shown = _memories_shown(request)
        lisbon = next(n for n, text in shown.items() if "Lisbon" in text)
        return {"answer": " Lisbon ", "citations": [lisbon, 99, 0, lisbon]}

    scripted.add(reply)
    found = asking.ask("Where does Ana live?", user_id="ana", budget_tokens=200,
                       reference_time="2023-07-01")  # fmt: skip
    assert isinstance(found, Answer)
    assert found.text == "Lisbon" and found.question == "Where does Ana live?"
    (citation,) = found.citations  # 99 and 0 named no memory; the repeat is dropped
    lisbon = next(m for m in asking.list(user_id="ana") if "Lisbon" in m.text)
    assert (citation.memory_id, citation.text) == (lisbon.id, lisbon.text)
    assert citation.source_ids == lisbon.source_ids == found.source_ids
    assert found.model == "scripted:answers" and found.prompt_version == ANSWER_VERSION
    assert found.usage.calls == 1 and found.usage.total_tokens > 0

    (request,) = scripted.requests
    shown = _memories_shown(request)
    assert sorted(shown) == list(range(1, len(shown) + 1)) and len(shown) == 3
    assert "code is 4417" not in request.messages[-1]["content"]  # not bob's memory
    assert lisbon.source_ids[0] not in request.messages[-1]["content"]  # numbers, not ids
    assert "Today is 1 July 2023." in request.messages[-1]["content"]
    assert "## 8 May 2023 (session s1)" in request.messages[-1]["content"]
    assert 0 < found.context_tokens <= 200
    assert request.params["max_tokens"] == 300


def test_the_budget_limits_what_the_llm_sees(asking: Memory, scripted: ScriptedLLM) -> None:
    scripted.add({"answer": NO_ANSWER, "citations": []})
    found = asking.ask("Where does Ana live?", user_id="ana", budget_tokens=80)
    assert len(_memories_shown(scripted.requests[0])) == 1
    assert found.citations == () and found.text == NO_ANSWER
    assert 0 < found.context_tokens <= 80


def test_an_empty_answer_is_asked_again(asking: Memory, scripted: ScriptedLLM) -> None:
    scripted.add({"answer": "", "citations": []}, "not json at all",
                 {"answer": "Cascais", "citations": [1]})  # fmt: skip
    found = asking.ask("Which beach does Oscar love?", user_id="ana")
    assert found.text == "Cascais" and len(found.citations) == 1
    assert len(scripted.requests) == 3 and found.usage.requests == 3
    assert "That answer is invalid" in scripted.requests[1].messages[-1]["content"]


def test_an_answer_that_stays_invalid_is_an_llm_error_and_writes_nothing(
    asking: Memory, scripted: ScriptedLLM
) -> None:
    before = asking.stats()
    scripted.add(*[{"answer": "Lisbon"}] * 3)  # citations missing, every time
    with pytest.raises(LLMError) as raised:
        asking.ask("Where does Ana live?", user_id="ana")
    assert "citations" in raised.value.reason and raised.value.raw == '{"answer": "Lisbon"}'
    asking.flush()  # the recalls the context counted are the only writes an ask makes
    after = asking.stats()
    assert (after.messages, after.memories) == (before.messages, before.memories)


def test_bad_questions_are_refused_before_the_llm_is_called(
    asking: Memory, scripted: ScriptedLLM
) -> None:
    for bad, words in (("", "question"), (" \n", "question"), (42, "question")):
        with pytest.raises(InvalidInputError, match=words):
            asking.ask(bad, user_id="ana")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="budget_tokens"):
        asking.ask("Where?", user_id="ana", budget_tokens=0)
    assert scripted.requests == []


def test_without_an_llm_ask_says_how_to_configure_one(tmp_path: Path, embedder: Embedder) -> None:
    with (
        _open(tmp_path / "m.db", embedder, None) as memory,
        pytest.raises(ConfigError, match="REMEM_LLM_BASE_URL and REMEM_LLM_MODEL"),
    ):
        memory.ask("Where does Ana live?", user_id="ana")


def test_async_memory_asks_too(tmp_path: Path, embedder: Embedder) -> None:
    llm = _scripted({"answer": "Lisbon", "citations": [1]})

    async def main() -> Answer:
        config = MemoryConfig(
            store_config(str(tmp_path / "m.db")), derive=DeriveConfig(enabled=False)
        )
        memory = AsyncMemory(config, embedder=embedder, llm=llm)
        try:
            await memory.add("I moved to Lisbon in May", user_id="ana")
            return await memory.ask("Where does Ana live?", user_id="ana")
        finally:
            await memory.close()

    found = asyncio.run(main())
    assert found.text == "Lisbon" and "Lisbon" in found.citations[0].text


# ------------------------------------------------------------------------ CLI, REST


def test_cli_without_an_llm_is_a_clear_error(tmp_path: Path) -> None:
    from remem.cli.main import main

    runner = CliRunner(env={name: None for name in ENV_VARS})
    result = runner.invoke(main, ["--db", str(tmp_path / "m.db"), "ask", "-u", "ana", "Where?"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ask needs an LLM")
    assert "Traceback" not in result.output


def test_rest_ask_answers_and_refuses_bad_bodies(asking: Memory, scripted: ScriptedLLM) -> None:
    scripted.add({"answer": "Lisbon", "citations": [2]})
    with running(create_app(asking, ServerConfig(open=True))) as url:
        good = httpx.post(
            f"{url}/v1/ask",
            json={"question": "Where does Ana live?", "user_id": "ana", "budget_tokens": 200},
        )
        bad = [
            httpx.post(f"{url}/v1/ask", json=body)
            for body in ({"question": "Where?", "mood": "curious"}, {"question": 42},
                         {"question": "Where?", "budget_tokens": "many"}, {})
        ]  # fmt: skip
        empty = httpx.post(f"{url}/v1/ask", json={"question": "", "user_id": "ana"})
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["text"] == "Lisbon" and body["prompt_version"] == ANSWER_VERSION
    assert set(body["citations"][0]) == {"number", "memory_id", "source_ids", "text"}
    assert body["usage"]["calls"] == 1
    assert [answer.status_code for answer in bad] == [422] * 4
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_input"
    assert len(scripted.requests) == 1


def test_rest_ask_without_an_llm_is_not_served(tmp_path: Path, embedder: Embedder) -> None:
    with (
        _open(tmp_path / "m.db", embedder, None) as memory,
        running(create_app(memory, ServerConfig(open=True))) as url,
    ):
        answer = httpx.post(f"{url}/v1/ask", json={"question": "Where?", "user_id": "ana"})
        paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert "needs an LLM" in answer.json()["error"]["message"]
    assert "/v1/ask" not in paths  # the document says what this server can do


# ------------------------------------------------------------------------ real model


@pytest.mark.llm_integration
def test_the_real_model_answers_with_valid_citations(
    llm_server_url: str, tmp_path: Path, embedder: Embedder
) -> None:
    options = {"temperature": 0.0, "timeout": 120.0, "max_retries": 1}
    config = LLMConfig(base_url=llm_server_url, model=MODEL, api_key=KEY, options=options)
    db = tmp_path / "m.db"
    with _open(db, embedder, create_llm(config)) as memory:
        memory.add(CONVERSATION, user_id="ana", session_id="s1")
        found = memory.ask("Where does Ana live?", user_id="ana", budget_tokens=300)
        ids = {m.id for m in memory.list(user_id="ana")}
    assert found.text and found.model == f"openai:{MODEL}"
    assert {c.memory_id for c in found.citations} <= ids  # whatever it cites exists
    assert all(1 <= c.number <= 3 for c in found.citations)
    assert found.usage.prompt_tokens > 0 and 0 < found.context_tokens <= 300

    env = {name: None for name in ENV_VARS} | {
        "REMEM_LLM_BASE_URL": llm_server_url, "REMEM_LLM_MODEL": MODEL,
        "REMEM_LLM_API_KEY": KEY, "REMEM_LLM_OPTIONS": json.dumps({"temperature": 0.0}),
    }  # fmt: skip
    result = CliRunner(env=env).invoke(
        _cli(), ["--db", str(db), "--json", "ask", "-u", "ana", "--budget", "300",
                 "Which beach does Oscar love?"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["text"] and shown["model"] == f"openai:{MODEL}"


def _cli() -> Any:
    from remem.cli.main import main

    return main
