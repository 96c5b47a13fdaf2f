"""Consolidation (``remem.evolution.consolidate``): deterministic dedupe, entity resolution,
each LLM decision applied with its history, the rules for answers that cannot be trusted,
failures that leave everything as it was, and writers racing on one scope.

Real SQLite files, the real default embedder; the LLM is the scripted fake, registered
through the real registry and configured by name as a user would configure any LLM."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import database_url
from llm_server import KEY, MODEL

from remem import Memory, MemoryConfig
from remem.config import DeriveConfig, LLMConfig
from remem.embedders.base import Embedder
from remem.errors import InvalidInputError, LLMError
from remem.evolution.consolidate import (
    ACTIONS,
    LINKS,
    PROVENANCE,
    Plan,
    consolidate,
    consolidate_and_write,
    normalise,
    same_key_tokens,
    text_hash,
)
from remem.evolution.consolidate_prompt import CONSOLIDATE_VERSION
from remem.formation.derived import Candidate
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.models import MemoryRecord, Scope
from remem.registry import register_llm, store_config
from remem.stores.consolidation import TEXT_HASH
from remem.util import utcnow

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

ANA = Scope(user_id="ana", session_id="s1")
MAY, JUNE = datetime(2024, 5, 1), datetime(2024, 6, 1)
Opener = Callable[..., Memory]


@pytest.fixture
def open_memory(tmp_path: Path, embedder: Embedder) -> Iterator[Opener]:
    """``open_memory(replies=None, name="c.db", **derive)``: a ``Memory`` on a SQLite file,
    with the scripted LLM answering ``replies`` when given (else no LLM)."""
    opened: list[Memory] = []

    def build(replies: Sequence[Any] | None = None, name: str = "c.db", **derive: Any) -> Memory:
        llm = None if replies is None else LLMConfig("scripted", options={"replies": replies})
        # ``add`` derives nothing itself here: the tests consolidate what they give
        options = {"enabled": False, **derive}
        config = MemoryConfig(
            store_config(str(tmp_path / name)), llm=llm, derive=DeriveConfig(**options)
        )
        memory = Memory(config, embedder=embedder)
        opened.append(memory)
        return memory

    yield build
    for memory in opened:
        memory.close()


def said(memory: Memory, *texts: str, speaker: str | None = None) -> tuple[str, ...]:
    """Log messages of Ana's session; returns their ids (what candidates cite)."""
    turns = [
        {"role": "user", "content": t, **({"name": speaker} if speaker else {})} for t in texts
    ]
    return memory.add(turns, user_id="ana", session_id="s1").message_ids


def fact(text: str, sources: Sequence[str], when: datetime | None = None, **kw: Any) -> Candidate:
    return Candidate("fact", text, tuple(sources), occurred_at=when, **kw)


def stored(memory: Memory, *facts: Candidate) -> list[MemoryRecord]:
    """Facts written as a user asserts them (``remember_many``: no consolidation)."""
    return memory.remember_many(list(facts), user_id="ana", session_id="s1")


def decision(
    candidate: int,
    action: str,
    targets: Sequence[int] = (),
    *,
    links: Sequence[int] = (),
    text: str = "",
    reason: str = "why",
) -> dict[str, Any]:
    return {
        "candidate": candidate,
        "action": action,
        "targets": list(targets),
        "links": list(links),
        "text": text,
        "reason": reason,
    }


def answer(*decisions: dict[str, Any]) -> dict[str, Any]:
    return {"decisions": list(decisions)}


def facts(memory: Memory, **read: Any) -> dict[str, MemoryRecord]:
    """Ana's fact memories by text (current ones unless ``read`` says otherwise)."""
    return {r.text: r for r in memory.list(user_id="ana", kinds="fact", **read)}


def requests(memory: Memory) -> list[ScriptedRequest]:
    llm = memory.llm
    assert isinstance(llm, ScriptedLLM)
    return llm.requests


def everything(memory: Memory) -> tuple[Any, ...]:
    """What the store holds: counts, every memory in every state, every event."""
    records = memory.list(user_id="ana", mode="history", limit=1000)
    events = [e for r in records for e in memory.history(r.id)]
    return memory.stats(), records, events


# -- text rules --------------------------------------------------------------------------


def test_normalised_text_ignores_case_punctuation_spacing_and_unicode_form() -> None:
    assert (
        normalise("  Melanie\u2019s  dog,   MAX!")
        == normalise("melanie's dog max")
        == ("melanie's dog max")
    )
    assert text_hash("Ana likes tea.") == text_hash("ana  LIKES tea")
    assert text_hash("Ana likes tea") != text_hash("Ana likes green tea")


def test_key_tokens_keep_numbers_negations_and_names_apart() -> None:
    assert same_key_tokens("Melanie likes pottery", "Melanie enjoys pottery")
    assert same_key_tokens("Melanie likes pottery", "melanie's hobby is pottery")
    assert not same_key_tokens("Melanie has 2 kids", "Melanie has 3 kids")
    assert not same_key_tokens("Ana moved to Lisbon in May", "Ana moved to Lisbon in June")
    assert not same_key_tokens("Ana has a dog", "Ana doesn't have a dog")
    assert not same_key_tokens("Ana has two kids", "Ana has three kids")


# -- deterministic steps ---------------------------------------------------------------


def test_same_text_is_a_noop_logged_on_the_memory_it_restates(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "I love tea")
    (tea,) = stored(memory, fact("Ana likes tea", src))
    plan = consolidate_and_write(memory, ANA, [fact("ana likes TEA!", src)])
    (made,) = plan.decisions
    assert (made.action, made.by, made.targets, made.memory_id) == ("NOOP", "hash", (tea.id,), None)
    assert plan.memories == () and plan.retire == () and plan.llm_calls == 0
    assert list(facts(memory)) == ["Ana likes tea"]
    events = memory.history(tea.id)
    assert [e.action for e in events] == ["ADD", "NOOP"]
    assert "same text" in events[1].reason and "ana likes TEA!" in events[1].reason


def test_near_duplicates_are_noops_but_other_numbers_are_new(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "I like pottery and I have two kids")
    pottery, kids = stored(
        memory, fact("Melanie likes pottery", src), fact("Melanie has 2 kids", src)
    )
    plan = consolidate_and_write(
        memory, ANA, [fact("Melanie enjoys pottery", src), fact("Melanie has 3 kids", src)]
    )
    near, other = plan.decisions
    assert (near.action, near.by, near.targets) == ("NOOP", "vector", (pottery.id,))
    assert "cosine" in near.reason
    assert (other.action, other.by) == ("ADD", "rule")  # no LLM: what is left is added
    assert other.memory_id is not None and kids.id not in other.targets
    assert set(facts(memory)) == {
        "Melanie likes pottery",
        "Melanie has 2 kids",
        "Melanie has 3 kids",
    }


def test_repeats_within_a_batch_become_one_memory(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "I like tea, green tea in fact")
    plan = consolidate_and_write(
        memory,
        ANA,
        [
            fact("Ana likes green tea", src),
            fact("ana likes green tea.", src),
            fact("Ana enjoys green tea", src),
        ],
    )
    first, same, near = plan.decisions
    assert first.action == "ADD" and first.memory_id is not None
    assert (same.action, same.by, same.targets) == ("NOOP", "hash", (first.memory_id,))
    assert (near.action, near.by, near.targets) == ("NOOP", "vector", (first.memory_id,))
    assert list(facts(memory)) == ["Ana likes green tea"]
    assert [e.action for e in memory.history(first.memory_id)] == ["ADD", "NOOP", "NOOP"]


def test_without_an_llm_new_memories_link_related_ones_and_say_why(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "I live in Paris")
    (paris,) = stored(memory, fact("Melanie lives in Paris", src))
    plan = consolidate_and_write(memory, ANA, [fact("Melanie lives in Berlin", src)])
    (new,) = plan.memories
    attributes = new.record.attributes
    assert attributes[LINKS] == [paris.id]  # related (cosine 0.8), not replaced
    assert attributes[TEXT_HASH] == text_hash("Melanie lives in Berlin")
    assert attributes[PROVENANCE] == {
        "action": "ADD",
        "by": "rule",
        "reason": "no LLM configured: kept as new",
    }
    assert memory.get(new.record.id).attributes == attributes
    assert memory.get(paris.id).superseded_by is None


def test_one_person_is_one_entity_whatever_the_spelling(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "I started pottery", speaker="Melanie")
    consolidate_and_write(
        memory,
        ANA,
        [
            fact("Melanie likes pottery", src),
            fact("melanie paints on weekends", src),
            fact("Melanie's dog is called Max", src),
        ],
    )
    keys = {r.text: {e["key"] for e in r.attributes["entities"]} for r in facts(memory).values()}
    assert all("melanie" in found for found in keys.values()), keys
    (melanie,) = [e for e in memory.entities(user_id="ana") if e.key == "melanie"]
    assert melanie.kind == "speaker" and len(melanie.memory_ids) == 4  # the turn and 3 facts


def test_declared_people_link_even_when_the_text_does_not_show_them(open_memory: Opener) -> None:
    memory = open_memory()
    src = said(memory, "my friend runs")
    plan = consolidate_and_write(
        memory,
        ANA,
        [
            fact("melanie runs marathons", src, attributes={"who": ["Melanie's"]}),
            fact("Jon cooks", src, attributes={"entities": [{"name": "Jon"}, "Jon"]}),
            fact("Melanie swims", src),
        ],
    )
    entities = [{e["key"] for e in n.record.attributes["entities"]} for n in plan.memories]
    assert entities[0] >= {"melanie"} and entities[1] == {"jon"} and "melanie" in entities[2]
    assert plan.memories[0].record.attributes["who"] == ["Melanie's"]  # kept as given


def test_only_derived_kinds_are_consolidated(open_memory: Opener) -> None:
    memory = open_memory()
    with pytest.raises(InvalidInputError):
        consolidate(memory, ANA, [Candidate("turn", "hello", ())], utcnow())


# -- LLM decisions -----------------------------------------------------------------------


def test_update_supersedes_the_old_memory_without_overwriting_it(open_memory: Opener) -> None:
    memory = open_memory([answer(decision(1, "UPDATE", [1], reason="she moved"))])
    src = said(memory, "I moved to Berlin")
    (paris,) = stored(memory, fact("Ana lives in Paris", src, MAY))
    plan = consolidate_and_write(memory, ANA, [fact("Ana lives in Berlin now", src, JUNE)])
    (made,) = plan.decisions
    assert (made.action, made.by, made.targets) == ("UPDATE", "llm", (paris.id,))
    assert plan.llm_calls == 1 and plan.usage.calls == 1 and plan.usage.total_tokens > 0
    old = memory.get(paris.id)
    assert (old.text, old.superseded_by, old.valid_to) == (
        "Ana lives in Paris",
        made.memory_id,
        JUNE,
    )
    assert list(facts(memory)) == ["Ana lives in Berlin now"]
    assert set(facts(memory, mode="history")) == {"Ana lives in Paris", "Ana lives in Berlin now"}
    steps = [(e.action, e.reason) for e in memory.history(paris.id)]
    assert steps[0][0] == "ADD" and steps[1][0] == "SUPERSEDE" and "she moved" in steps[1][1]
    new = memory.get(made.memory_id or "")
    assert new.attributes[PROVENANCE] == {
        "action": "UPDATE",
        "by": "llm",
        "reason": "she moved",
        "replaces": [paris.id],
        "prompt": CONSOLIDATE_VERSION,
    }
    assert new.valid_from == JUNE and [e.action for e in memory.history(new.id)] == ["ADD"]


def test_the_model_sees_local_numbers_never_ids(open_memory: Opener) -> None:
    memory = open_memory([answer(decision(1, "ADD"), decision(2, "ADD"))])
    src = said(memory, "I live in Paris and like tea")
    old = stored(memory, fact("Ana lives in Paris", src), fact("Ana likes tea", src))
    consolidate_and_write(
        memory, ANA, [fact("Ana lives in Paris, France", src), fact("Ana drinks tea daily", src)]
    )
    (request,) = requests(memory)
    prompt = "\n".join(m["content"] for m in request.messages)
    assert "M1:" in prompt and "M2:" in prompt and "C1:" in prompt and "C2:" in prompt
    assert "Ana lives in Paris, France" in prompt and "(nearest: M" in prompt
    assert not any(r.id in prompt for r in old) and not any(s in prompt for s in src)
    assert request.mode == "json_schema"


def test_merge_replaces_several_with_one_memory_citing_all(open_memory: Opener) -> None:
    merged = "Ana has a beagle called Oscar who is three"
    memory = open_memory([answer(decision(1, "MERGE", [1, 2], text=merged, reason="one dog"))])
    first, second, third = (said(memory, t) for t in ("a dog", "named Oscar", "he is 3"))
    dog, name = stored(memory, fact("Ana has a beagle", first), fact("Ana's dog is Oscar", second))
    plan = consolidate_and_write(memory, ANA, [fact("Oscar is three years old", third)])
    (made,) = plan.decisions
    assert made.action == "MERGE" and set(made.targets) == {dog.id, name.id}
    new = memory.get(made.memory_id or "")
    assert new.text == merged and set(new.source_ids) == {*first, *second, *third}
    assert new.attributes[TEXT_HASH] == text_hash(merged)
    for old in (dog, name):
        assert memory.get(old.id).superseded_by == new.id
        assert [e.action for e in memory.history(old.id)] == ["ADD", "MERGE"]
    assert list(facts(memory)) == [merged]


def test_invalidate_ends_a_memory_and_writes_nothing_new(open_memory: Opener) -> None:
    memory = open_memory([answer(decision(1, "INVALIDATE", [1], reason="sold it"))])
    src = said(memory, "I sold my car")
    car, _ = stored(memory, fact("Ana has a car", src, MAY), fact("Ana likes tea", src, MAY))
    plan = consolidate_and_write(memory, ANA, [fact("Ana sold her car", src, JUNE)])
    (made,) = plan.decisions
    assert (made.action, made.targets, made.memory_id) == ("INVALIDATE", (car.id,), None)
    ended = memory.get(car.id)
    assert ended.valid_to == JUNE and ended.expired_at is not None and ended.superseded_by is None
    assert list(facts(memory)) == ["Ana likes tea"]
    assert [e.action for e in memory.history(car.id)] == ["ADD", "INVALIDATE"]


def test_noop_and_add_with_links_from_the_model(open_memory: Opener) -> None:
    memory = open_memory(
        [
            answer(
                decision(1, "NOOP", [1], reason="known"),
                decision(2, "ADD", links=[1, 2, 9], reason="new detail"),
                decision(3, "NOOP", reason="small talk"),
            )
        ]
    )
    src = said(memory, "I like tea a lot")
    (tea,) = stored(memory, fact("Ana likes tea", src))
    plan = consolidate_and_write(
        memory,
        ANA,
        [
            fact("Tea is what Ana likes", src),
            fact("Ana drinks Earl Grey tea", src),
            fact("Ana said hello", src),
        ],
    )
    noop, add, nothing = plan.decisions
    assert (noop.action, noop.targets, noop.by) == ("NOOP", (tea.id,), "llm")
    assert add.action == "ADD" and add.memory_id is not None
    assert memory.get(add.memory_id).attributes[LINKS] == [tea.id]  # 2 and 9: not shown
    assert (nothing.action, nothing.targets, nothing.memory_id) == ("NOOP", (), None)
    assert [e.action for e in memory.history(tea.id)] == ["ADD", "NOOP"]
    assert set(facts(memory)) == {"Ana likes tea", "Ana drinks Earl Grey tea"}


def test_candidates_are_decided_in_batches(open_memory: Opener) -> None:
    memory = open_memory(
        [answer(decision(1, "ADD"), decision(2, "ADD")), answer(decision(1, "ADD"))],
        consolidate_batch=2,
    )
    src = said(memory, "lots of news")
    for text in ("Ana adopted a dog", "Ana bought a car", "Ana learns Spanish"):
        memory.remember(text, user_id="ana")  # close enough to ask the model about
    plan = consolidate_and_write(
        memory,
        ANA,
        [
            fact("Ana adopted a cat", src),
            fact("Ana bought a bike", src),
            fact("Ana learns Italian", src),
        ],
    )
    assert plan.llm_calls == 2 and len(requests(memory)) == 2
    assert [(d.action, d.by) for d in plan.decisions] == [("ADD", "llm")] * 3
    assert "C3" not in requests(memory)[0].messages[1]["content"]


def test_answers_that_cannot_be_trusted_fall_back_to_add(open_memory: Opener) -> None:
    memory = open_memory(
        [
            answer(
                decision(1, "UPDATE", [7], reason="invented"),  # a number it was not shown
                decision(2, "INVALIDATE", [], reason="names nothing"),
                decision(3, "UPDATE", [1], reason="first"),
                decision(4, "INVALIDATE", [1], reason="second"),  # retires what 3 retires
                decision(9, "INVALIDATE", [1], reason="no candidate 9"),
                decision(3, "INVALIDATE", [1], reason="a second decision for 3"),
            )
        ]
    )  # 5 gets no decision
    src = said(memory, "news")
    (paris,) = stored(memory, fact("Ana lives in Paris", src))
    plan = consolidate_and_write(
        memory,
        ANA,
        [
            fact("Ana lives in Rome", src),
            fact("Ana is no longer a student", src),
            fact("Ana lives in Berlin", src),
            fact("Ana left Paris", src),
            fact("Ana has a new job", src),
        ],
    )
    actions = [(d.action, d.by) for d in plan.decisions]
    assert actions == [
        ("ADD", "rule"),
        ("ADD", "rule"),
        ("UPDATE", "llm"),
        ("ADD", "rule"),
        ("ADD", "rule"),
    ]
    assert "M7" in plan.decisions[0].reason and "already retired" in plan.decisions[3].reason
    assert "no decision" in plan.decisions[4].reason
    assert [r.memory_id for r in plan.retire] == [paris.id]
    assert memory.get(paris.id).superseded_by == plan.decisions[2].memory_id
    assert len(facts(memory)) == 5


@pytest.mark.parametrize(
    "bad",
    [
        "this is not JSON at all",
        '{"decisions": [{"candidate": 1, "action": "DESTROY", "targets": [1], "links": [],'
        ' "text": "", "reason": "x"}]}',
        '{"decisions": [{"candidate": 1, "action": "UPDATE"}]}',
        '{"answer": "UPDATE 1"}',
        "",
    ],
    ids=["not-json", "unknown-action", "missing-fields", "wrong-schema", "empty"],
)
def test_invalid_model_output_changes_nothing(open_memory: Opener, bad: str) -> None:
    memory = open_memory([lambda _: bad] * 20)
    src = said(memory, "I moved to Berlin")
    stored(memory, fact("Ana lives in Paris", src, MAY))
    before = everything(memory)
    with pytest.raises(LLMError):
        consolidate_and_write(
            memory, ANA, [fact("Ana lives in Berlin", src, JUNE), fact("Ana likes tea", src)]
        )
    assert everything(memory) == before
    assert [m.content for m in memory.store.get_messages("default", ANA, src)] == [
        "I moved to Berlin"
    ]
    assert len(requests(memory)) >= 2  # it re-asked before giving up


def test_an_llm_that_fails_changes_nothing(open_memory: Opener) -> None:
    memory = open_memory([LLMError("HTTP 500", transient=True)])
    src = said(memory, "I moved")
    stored(memory, fact("Ana lives in Paris", src))
    before = everything(memory)
    with pytest.raises(LLMError):
        consolidate_and_write(memory, ANA, [fact("Ana lives in Berlin", src)])
    assert everything(memory) == before


# -- several writers ---------------------------------------------------------------------


def _race(memories: Sequence[Memory], work: Callable[[Memory], Plan]) -> list[Plan]:
    """Run ``work`` on each memory in its own thread; re-raise the first failure."""
    plans: list[Plan | None] = [None] * len(memories)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            plans[i] = work(memories[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(memories))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return [p for p in plans if p is not None]


def _write_together(memories: Sequence[Memory]) -> list[int]:
    """Make each memory's first write wait until every thread is about to write, so all
    plans were made on the same state; returns the count of writes per memory."""
    barrier = threading.Barrier(len(memories), timeout=60)
    written = [0] * len(memories)
    for i, memory in enumerate(memories):
        real = memory.store.write

        def write(batch: Any, real: Any = real, i: int = i) -> Any:
            if written[i] == 0:
                barrier.wait()
            written[i] += 1
            return real(batch)

        memory.store.write = write  # type: ignore[method-assign]
    return written


def _same_facts_at_once(memories: Sequence[Memory]) -> None:
    """Three writers, each its own ``Memory`` on one database, consolidate the same two
    facts, every plan made before any write: one copy of each fact stays current."""
    src = said(memories[0], "I like tea and chess")
    candidates = [fact("Ana likes tea", src), fact("Ana plays chess", src)]
    written = _write_together(memories)
    plans = _race(memories, lambda m: consolidate_and_write(m, ANA, candidates))
    assert sorted(facts(memories[0], mode="history")) == ["Ana likes tea", "Ana plays chess"]
    adds = [d for plan in plans for d in plan.decisions if d.action == "ADD"]
    assert len(adds) == 2 and sum(written) == 5  # the losers planned again and wrote NOOPs
    for record in facts(memories[0]).values():
        actions = [e.action for e in memories[0].history(record.id)]
        assert actions.count("ADD") == 1 and actions.count("NOOP") == 2


def test_writers_adding_the_same_facts_leave_one_copy(open_memory: Opener) -> None:
    _same_facts_at_once([open_memory(name="shared.db") for _ in range(3)])


@pytest.mark.postgres
def test_writers_on_postgres_leave_one_copy(postgres_url: str, embedder: Embedder) -> None:
    url = database_url(postgres_url, f"t_{uuid.uuid4().hex[:16]}")
    config = MemoryConfig(store_config(url), derive=DeriveConfig(enabled=False))
    memories = [Memory(config, embedder=embedder) for _ in range(3)]
    try:
        _same_facts_at_once(memories)
    finally:
        for memory in memories:
            memory.close()


def test_two_writers_updating_one_memory_supersede_it_once(open_memory: Opener) -> None:
    gate = threading.Barrier(2, timeout=60)

    def model(request: ScriptedRequest) -> dict[str, Any]:
        gate.wait()  # both plans are made on the same state
        return answer(decision(1, "UPDATE", [1], reason="moved"))

    memories = [open_memory([model], name="shared.db") for _ in range(2)]
    src = said(memories[0], "I moved to Berlin")
    (paris,) = stored(memories[0], fact("Ana lives in Paris", src, MAY))
    berlin = [fact("Ana lives in Berlin", src, JUNE)]
    plans = _race(memories, lambda m: consolidate_and_write(m, ANA, berlin))
    actions = sorted(p.decisions[0].action for p in plans)
    assert actions == ["NOOP", "UPDATE"]  # the loser planned again and found it stored
    assert list(facts(memories[0])) == ["Ana lives in Berlin"]
    assert [e.action for e in memories[0].history(paris.id)] == ["ADD", "SUPERSEDE"]
    assert sum(p.llm_calls for p in plans) == 2  # the second plan needed no LLM


# -- a real model ----------------------------------------------------------------------


@pytest.mark.llm_integration
def test_a_real_model_decides_within_the_protocol(
    llm_server_url: str, tmp_path: Path, embedder: Embedder
) -> None:
    """SmolLM2-135M decides poorly; what is checked is that whatever it answers is
    applied by the rules: every decision valid, nothing retired twice or on a guess, and
    on a failure nothing written."""
    options = {"temperature": 0.0, "timeout": 120.0, "max_retries": 1}
    llm = LLMConfig(base_url=llm_server_url, model=MODEL, api_key=KEY, options=options)
    config = MemoryConfig(store_config(str(tmp_path / "real.db")), llm=llm,
                          derive=DeriveConfig(enabled=False))  # fmt: skip
    with Memory(config, embedder=embedder) as memory:
        src = said(memory, "I moved from Paris to Berlin, and I sold my car")
        old = stored(memory, fact("Ana lives in Paris", src, MAY), fact("Ana has a car", src))
        before = everything(memory)
        candidates = [fact("Ana lives in Berlin", src, JUNE), fact("Ana sold her car", src)]
        try:
            plan = consolidate_and_write(memory, ANA, candidates)
        except LLMError:
            assert everything(memory) == before
            return
        assert plan.llm_calls == 1 and plan.usage.prompt_tokens > 0
        assert [d.candidate for d in plan.decisions] == candidates
        assert all(d.action in ACTIONS and d.by in ("llm", "rule") for d in plan.decisions)
        retired = [r.memory_id for r in plan.retire]
        assert len(retired) == len(set(retired)) and set(retired) <= {r.id for r in old}
        current = facts(memory)
        assert len(current) == len({normalise(t) for t in current})
        for record in old:
            state = memory.get(record.id)
            assert (state.superseded_by is None and state.expired_at is None) == (
                record.id not in retired
            )


def test_a_candidate_close_to_nothing_stored_is_added_without_asking(
    open_memory: Opener,
) -> None:
    memory = open_memory([])
    src = said(memory, "news")
    memory.remember("Ana lives in Lisbon", user_id="ana")
    plan = consolidate_and_write(memory, ANA, [fact("The quarterly report is due Friday", src)])
    (only,) = plan.decisions
    assert (only.action, only.by, plan.llm_calls) == ("ADD", "rule", 0)
    assert "nothing close" in only.reason and requests(memory) == []
