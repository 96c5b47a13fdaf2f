"""Derivation against a misbehaving LLM endpoint, end to end: a real OpenAI-compatible
HTTP server (the fake of ``test_llm_client``) answering 429, 500, nothing in time,
invalid JSON, the wrong schema or an empty answer, or no server at all. Whatever it does,
``add`` returns, the verbatim log and turn memories are stored, nothing derived is
written, the job stays visible with the reason, and once the endpoint answers properly a
retry derives the facts."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_llm_client import Answer, FakeServer, chat, server  # noqa: F401 (a fixture)

from remem import DeriveConfig, LLMConfig, Memory, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder
from remem.registry import create_llm

FAULTS: dict[str, tuple[Answer | None, dict[str, Any], str]] = {
    # name: (the server's answer, None for no server; client options; words of the reason)
    "429": (Answer(429, {"error": "quota"}, {"Retry-After": "3600"}), {"deadline": 5}, "HTTP 429"),
    "500": (Answer(500, {"error": "boom"}), {"max_retries": 1}, "HTTP 500"),
    "timeout": (
        Answer(body=chat("{}").body, delay=3.0),
        {"timeout": 0.3, "max_retries": 0},
        "time",
    ),
    "invalid json": (chat("Sure! facts: Ana lives in Lisbon"), {"max_reasks": 1}, "JSON"),
    "wrong schema": (chat('{"facts": "Ana lives in Lisbon"}'), {"max_reasks": 1}, "schema"),
    "empty answer": (chat(""), {"max_reasks": 1}, "empty"),
    "down": (None, {"max_retries": 1}, "connection"),
}
GOOD = chat(json.dumps({
    "facts": [{"text": "Ana lives in Lisbon", "turns": [1]}],
    "events": [], "profile": [], "procedures": [],
}))  # fmt: skip


def _closed_port() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def opened(tmp_path: Path, embedder: Embedder) -> Iterator[Any]:
    memories: list[Memory] = []

    def open_memory(url: str, **options: Any) -> Memory:
        options = {"backoff": 0.01, "max_backoff": 0.05, "start_mode": "json_object",
                   **options}  # fmt: skip
        llm = create_llm(LLMConfig(base_url=url, model="tiny", options=options))
        config = MemoryConfig(StoreConfig(path=str(tmp_path / "m.db")),
                              derive=DeriveConfig(max_attempts=1, background=False))  # fmt: skip
        memory = Memory(config, embedder=embedder, llm=llm)
        memories.append(memory)
        return memory

    yield open_memory
    for memory in memories:
        memory.close()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_endpoint_fails_the_job_with_its_reason_and_loses_nothing(
    fault: str,
    server: FakeServer,  # noqa: F811 (the fixture imported above)
    opened: Any,
) -> None:
    answer, options, reason = FAULTS[fault]
    url = server.url
    if answer is None:
        url = _closed_port()
    else:
        server.default = answer
    memory = opened(url, **options)
    added = memory.add([{"role": "user", "content": "I live in Lisbon", "name": "Ana"},
                        {"role": "assistant", "content": "Nice city!"}],
                       user_id="ana", session_id="s1", timestamp="2023-05-08")  # fmt: skip
    # the add itself succeeded: messages and turns are stored, the job says why it failed
    assert len(added.message_ids) == 2 and len(added.memories) == 2
    assert added.job is not None and added.job.status == "failed"
    assert reason.lower() in (added.job.error or "").lower(), added.job.error
    assert memory.list(user_id="ana", kinds=["fact", "event", "profile", "procedure"]) == []
    assert [m.content for m in memory.store.get_messages("default", added.memories[0].scope,
                                                         added.message_ids)] != []  # fmt: skip
    assert memory.stats().jobs.get("failed") == 1
    (job,) = memory.jobs(status="failed")
    assert job.error == added.job.error
    if answer is None:
        return  # nothing listens there to recover
    server.default = GOOD  # the endpoint recovers: a retry derives the fact
    memory.retry_job(job.id)
    (run,) = memory.run_jobs().runs
    assert run.status == "done", run.error
    (fact,) = memory.list(user_id="ana", kinds="fact")
    assert fact.text == "Ana lives in Lisbon" and fact.source_ids == (added.message_ids[0],)
    assert len(memory.list(user_id="ana", kinds="turn")) == 2  # the turns untouched
