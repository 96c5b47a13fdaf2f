"""LLM extraction (``formation/extract.py``) and the derive pipeline (``evolution/derive.py``)
with a scripted LLM: the prompt, citations, batching, event times, caps, failures and usage."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from remem import Memory
from remem.config import DeriveConfig, LLMConfig, MemoryConfig, StoreConfig
from remem.embedders.onnx import OnnxMiniLMEmbedder
from remem.errors import ConfigError, InvalidInputError, LLMError
from remem.evolution.derive import Derivation, derive
from remem.formation.entities import extract_entities
from remem.formation.extract import (
    EXTRACT_VERSION,
    MAX_PER_LIST,
    MAX_TEXT_CHARS,
    MIN_PER_LIST,
    EventItem,
    Extraction,
    FactItem,
    LLMExtractor,
    ProcedureItem,
    ProfileItem,
    absolute_dates,
    candidates_from,
    extract_messages,
    extraction_schema,
    per_list,
)
from remem.formation.extractors import (
    EntityExtractor,
    ExtractResult,
    MemoryExtractor,
    RuleEntities,
    RuleTimes,
    TimeParser,
)
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.llms.structured import schema_dict
from remem.models import Message, Scope
from remem.registry import register_llm
from remem.settings import load_settings
from remem.times import find_times

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

MAY_8 = datetime(2023, 5, 8, 13, 56)
SCOPE = Scope(user_id="ana", session_id="s1")
NO_JOBS = DeriveConfig(enabled=False)


def _messages(mem: Memory, texts: Sequence[str], *, when: datetime = MAY_8,
              user_id: str = "ana", session_id: str = "s1") -> list[Message]:  # fmt: skip
    """Real messages, logged by ``add`` and read back from the store, in order."""
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": t,
              "speaker": "Ana" if i % 2 == 0 else "Bot"} for i, t in enumerate(texts)]  # fmt: skip
    ids = mem.add(turns, user_id=user_id, session_id=session_id, timestamp=when).message_ids
    scope = Scope(user_id=user_id, session_id=session_id, namespace=mem.namespace)
    found = {m.id: m for m in mem.store.get_messages(mem.namespace, scope, list(ids))}
    return [found[i] for i in ids]


def _message(number: int, text: str, *, role: str = "user", speaker: str | None = "Ana",
             when: datetime | None = MAY_8) -> Message:  # fmt: skip
    return Message(id=f"m{number}", scope=SCOPE, role=role, content=text, speaker=speaker,
                   occurred_at=when, recorded_at=MAY_8)  # fmt: skip


def _answer(
    facts: Sequence[FactItem] = (),
    events: Sequence[EventItem] = (),
    profile: Sequence[ProfileItem] = (),
    procedures: Sequence[ProcedureItem] = (),
) -> Extraction:
    return Extraction(facts=list(facts), events=list(events), profile=list(profile),
                      procedures=list(procedures))  # fmt: skip


def _fact(text: str, *turns: int) -> FactItem:
    return FactItem(text=text, turns=list(turns))


def _event(
    text: str, when: str, *turns: int, where: str = "", who: Sequence[str] = ()
) -> EventItem:
    return EventItem(text=text, when=when, where=where, who=list(who), turns=list(turns))


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def mem(tmp_path: Path, embedder: OnnxMiniLMEmbedder, llm: ScriptedLLM) -> Iterator[Memory]:
    """A memory with the scripted LLM whose ``add`` derives nothing itself (no job runs),
    so each test calls ``derive`` as the job queue would."""
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "m.db")), derive=NO_JOBS)
    m = Memory(config, embedder=embedder, llm=llm)
    yield m
    m.close()


# -- consolidation's LLM, scripted ----------------------------------------------------

_CANDIDATE = re.compile(r"^C(\d+):", re.MULTILINE)


def _add_all(request: ScriptedRequest) -> dict[str, Any]:
    """Consolidation's answer: ADD every candidate shown."""
    numbers = [int(n) for n in _CANDIDATE.findall(request.messages[-1]["content"])]
    return {"decisions": [{"candidate": n, "action": "ADD", "targets": [], "links": [],
                           "text": "", "reason": "new"} for n in numbers]}  # fmt: skip


def _schema_of(request: ScriptedRequest) -> str:
    return str((request.response_format or {}).get("json_schema", {}).get("name"))


# -- the prompt and its schema ---------------------------------------------------------


def test_the_prompt_numbers_the_turns_with_their_dates_and_speakers() -> None:
    turns = [
        _message(1, "I went hiking   yesterday.\nIt was great"),
        _message(2, "Nice!", role="assistant", speaker=None),
        _message(3, "No date on this one", when=None),
    ]
    messages = extract_messages(turns)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == (
        "Turns:\n"
        "[1] (8 May 2023) Ana: I went hiking yesterday. It was great\n"
        "[2] (8 May 2023) assistant: Nice!\n"
        "[3] Ana: No date on this one"
    )
    system = messages[0]["content"]
    for word in ("facts", "events", "profile", "procedures", "turns", "explicit", "JSON"):
        assert word in system
    assert extract_messages(turns) == messages  # pure: same turns, same messages
    assert EXTRACT_VERSION == "extract/1"


def test_a_turn_shown_to_the_model_is_capped() -> None:
    content = extract_messages([_message(1, "word " * 2000)])[1]["content"]
    assert len(content) < 2100 and content.endswith("…")


def test_the_schema_is_strict_and_small_and_declares_its_bounds() -> None:
    tree, strict = schema_dict(extraction_schema(7))
    assert strict  # every field required, additionalProperties false: strict json_schema
    assert tree["title"] == "Extraction"
    assert {name: d["maxItems"] for name, d in tree["properties"].items()} == {
        "facts": 7, "events": 7, "profile": 7, "procedures": 7,
    }  # fmt: skip
    items = {name: set(d["properties"]) for name, d in tree["$defs"].items()}
    assert items == {
        "FactItem": {"text", "turns"},
        "EventItem": {"text", "when", "where", "who", "turns"},
        "ProfileItem": {"text", "category", "explicit", "turns"},
        "ProcedureItem": {"text", "task", "turns"},
    }
    event = tree["$defs"]["EventItem"]["properties"]
    assert event["text"]["maxLength"] == MAX_TEXT_CHARS and event["where"]["maxLength"] == 120
    assert event["who"]["maxItems"] == 8 and event["who"]["items"]["maxLength"] == 120
    assert event["turns"]["maxItems"] == 8
    with pytest.raises(ValueError, match="Extra inputs"):
        Extraction.model_validate({"facts": [], "events": [], "profile": [], "procedures": [],
                                   "notes": []})  # fmt: skip


def test_the_bounds_are_declared_not_validated() -> None:
    """A server that ignores the schema's bounds gets its answer capped, not re-asked."""
    answer = {"facts": [{"text": "x" * 1000, "turns": list(range(50))}] * 30, "events": [],
              "profile": [], "procedures": []}  # fmt: skip
    assert len(extraction_schema(3).model_validate(answer).facts) == 30


def test_each_kind_is_bounded_by_the_batch_size() -> None:
    assert [per_list(n) for n in (1, 3, 4, 15, 20)] == [MIN_PER_LIST, 3, 4, 15, MAX_PER_LIST]
    assert (MIN_PER_LIST, MAX_PER_LIST) == (3, 15)


# -- from an answer to candidates ------------------------------------------------------


def test_citations_map_to_message_ids_and_bad_ones_are_dropped() -> None:
    turns = [_message(i, f"turn {i}") for i in (1, 2, 3)]
    answer = _answer(facts=[
        _fact("Ana has a dog named Rex", 2),
        _fact("Ana lives in Lisbon", 3, 1, 3, 7),  # 7 is no turn: ignored, the rest kept
        _fact("Ana likes tea", 0, 4, -1),  # no valid number: dropped
        _fact("Ana cites nothing"),  # dropped
    ])  # fmt: skip
    converted = candidates_from(answer, turns)
    assert [(c.text, c.source_ids) for c in converted.candidates] == [
        ("Ana has a dog named Rex", ("m2",)),
        ("Ana lives in Lisbon", ("m1", "m3")),
    ]
    assert converted.dropped == 2
    assert all(c.kind == "fact" and c.occurred_at == MAY_8 for c in converted.candidates)


def test_empty_and_duplicate_items_are_dropped_and_long_texts_cut() -> None:
    turns = [_message(i, f"turn {i}") for i in (1, 2, 3, 4)]  # up to 4 of a kind
    answer = _answer(facts=[
        _fact("  Ana   plays chess ", 1),
        _fact("   ", 1),  # empty: dropped
        _fact("ana plays CHESS", 2),  # a duplicate: its citation joins the first
        _fact("long " * 200, 2),
    ], profile=[
        ProfileItem(text="Ana plays chess", category="trait", explicit=True, turns=[2]),
    ])  # fmt: skip
    converted = candidates_from(answer, turns)
    texts = [(c.kind, c.text, c.source_ids) for c in converted.candidates]
    assert texts[0] == ("fact", "Ana plays chess", ("m1", "m2"))
    assert texts[2] == ("profile", "Ana plays chess", ("m2",))  # another kind: kept
    long = converted.candidates[1].text
    assert len(long) <= MAX_TEXT_CHARS and long.endswith("…") and "  " not in long
    assert converted.dropped == 2


def test_items_beyond_the_cap_are_dropped_and_counted() -> None:
    answer = _answer(facts=[_fact(f"fact number {i}", 1) for i in range(MIN_PER_LIST + 5)],
                     events=[_event("Ana ran", "", 1)])  # fmt: skip
    converted = candidates_from(answer, [_message(1, "x")])
    assert [c.kind for c in converted.candidates] == ["fact"] * MIN_PER_LIST + ["event"]
    assert converted.dropped == 5


def test_event_times_are_resolved_against_the_date_the_turn_was_said() -> None:
    turns = [
        _message(1, "I climbed Mount Hood yesterday with Bo", when=datetime(2023, 5, 8, 9)),
        _message(2, "Next Friday I fly to Rome", when=datetime(2023, 6, 20, 18)),
    ]
    answer = _answer(events=[
        _event("Ana climbed Mount Hood yesterday", "yesterday", 1, where="Mount Hood",
               who=["Ana", "Bo", "Bo", " "]),
        _event("Ana flies to Rome next Friday", "", 2),  # the time taken from the text
        _event("Ana went to a concert", "", 1),  # no time at all: when it was said
    ])  # fmt: skip
    hood, rome, concert = candidates_from(answer, turns).candidates
    assert hood.text == "Ana climbed Mount Hood 7 May 2023"
    assert hood.occurred_at == datetime(2023, 5, 7)
    assert dict(hood.attributes) == {
        "who": ["Ana", "Bo"], "where": "Mount Hood",
        "when": {"text": "yesterday", "start": "2023-05-07", "end": "2023-05-07", "grain": "day"},
    }  # fmt: skip
    assert rome.occurred_at == datetime(2023, 6, 23)  # the Friday after 20 June 2023
    assert rome.text == "Ana flies to Rome 23 June 2023"
    assert rome.attributes["when"]["text"] == "next Friday"
    assert (concert.occurred_at, dict(concert.attributes)) == (datetime(2023, 5, 8, 9), {})


def test_an_event_cited_from_turns_of_two_days_resolves_against_the_later() -> None:
    turns = [_message(1, "a", when=datetime(2023, 5, 1)), _message(2, "b", when=MAY_8)]
    (event,) = candidates_from(_answer(events=[_event("Ana moved", "last week", 1, 2)]),
                               turns).candidates  # fmt: skip
    assert event.occurred_at == datetime(2023, 5, 1)  # the week before 8 May starts 1 May
    assert event.attributes["when"]["end"] == "2023-05-07"


def test_relative_dates_are_written_out_and_others_kept() -> None:
    def written(text: str) -> str:
        return absolute_dates(text, find_times(text, MAY_8))

    assert written("Ana ran yesterday") == "Ana ran 7 May 2023"
    assert written("Ana moved last month") == "Ana moved April 2023"
    assert written("Ana hiked last summer") == "Ana hiked summer 2022"
    assert written("Ana was ill last week") == "Ana was ill the week of 1 May 2023"
    assert written("Ana swims every Friday") == "Ana swims every Friday"
    assert written("Ana has run since 2016") == "Ana has run since 2016"  # a duration
    assert written("Ana ran recently") == "Ana ran recently"  # vague
    assert written("Ana ran on 2 May 2023") == "Ana ran on 2 May 2023"  # already absolute
    assert absolute_dates("Ana ran yesterday", find_times("Ana ran yesterday")) == (
        "Ana ran yesterday"  # no reference: nothing to resolve against
    )


def test_profile_and_procedure_attributes() -> None:
    turns = [_message(1, "I hate mornings"), _message(2, "Done, it failed twice", role="tool",
                                                      speaker=None)]  # fmt: skip
    answer = _answer(
        profile=[ProfileItem(text="Ana dislikes mornings", category="preference", explicit=True,
                             turns=[1])],
        procedures=[ProcedureItem(text="Book meetings after 10am for Ana", task="scheduling",
                                  turns=[1]),
                    ProcedureItem(text="Retry the upload with smaller files", task=" ",
                                  turns=[2])],
    )  # fmt: skip
    profile, instruction, lesson = candidates_from(answer, turns).candidates
    assert dict(profile.attributes) == {"category": "preference", "explicit": True}
    assert dict(instruction.attributes) == {"origin": "instruction", "task": "scheduling"}
    assert dict(lesson.attributes) == {"origin": "experience"}
    assert [c.kind for c in (profile, instruction, lesson)] == ["profile", "procedure", "procedure"]


# -- the extractor: batching, usage, failures ------------------------------------------


def test_one_call_per_batch_and_citations_per_batch(llm: ScriptedLLM) -> None:
    turns = [_message(i, f"turn {i}") for i in range(1, 46)]
    for _ in range(3):  # each batch cites its own turn [2]
        llm.add(_answer(facts=[_fact("Ana has a dog", 2)]).model_dump())
    result = LLMExtractor(llm, batch_turns=20).extract(turns)
    assert result.llm_calls == len(llm.requests) == math.ceil(45 / 20) == 3
    bounds = [r.response_format["json_schema"]["schema"]["properties"]["facts"]["maxItems"]
              for r in llm.requests if r.response_format]  # fmt: skip
    assert bounds == [15, 15, 5]  # one memory of a kind per turn, at most 15
    assert all("max_tokens" not in r.params for r in llm.requests)  # the client's default
    shown = [r.messages[1]["content"].count("\n[") for r in llm.requests]
    assert shown == [20, 20, 5]
    assert (
        llm.requests[1].messages[1]["content"].startswith("Turns:\n[1] (8 May 2023) Ana: turn 21")
    )
    # the same text in three batches: one candidate citing the three turns [2]
    (fact,) = result.candidates
    assert fact.source_ids == ("m2", "m22", "m42") and result.dropped == 2
    assert dict(fact.metadata) == {"prompt": EXTRACT_VERSION, "model": "scripted:scripted"}


def test_usage_is_counted(llm: ScriptedLLM) -> None:
    llm.add(_answer(facts=[_fact("Ana has a cat", 1)]), _answer())
    result = LLMExtractor(llm, batch_turns=1).extract([_message(1, "a"), _message(2, "b")])
    assert result.usage.calls == result.llm_calls == 2
    assert result.usage.total_tokens == llm.usage().total_tokens > 0
    assert result.usage.requests == 2


def test_an_invalid_answer_is_reasked_then_used(llm: ScriptedLLM) -> None:
    llm.add("not json at all, sorry", {"facts": []}, _answer(facts=[_fact("Ana sings", 1)]))
    result = LLMExtractor(llm).extract([_message(1, "I sing")])
    assert [c.text for c in result.candidates] == ["Ana sings"]
    assert result.llm_calls == 1 and result.usage.requests == len(llm.requests) == 3


def test_no_turns_no_call(llm: ScriptedLLM) -> None:
    assert LLMExtractor(llm).extract([]) == ExtractResult(())
    assert llm.requests == []


def test_batch_turns_must_be_positive(llm: ScriptedLLM) -> None:
    with pytest.raises(ConfigError, match="batch_turns"):
        LLMExtractor(llm, batch_turns=0)


def test_the_rule_implementations_fit_the_small_interfaces(llm: ScriptedLLM) -> None:
    assert isinstance(RuleEntities(), EntityExtractor)
    assert isinstance(RuleTimes(), TimeParser)
    assert isinstance(LLMExtractor(llm), MemoryExtractor)
    text = "Ana met Bruno in Lisbon yesterday"
    assert RuleEntities().entities(text) == extract_entities(text)
    assert [s.start for s in RuleTimes().times(text, MAY_8)] == [date(2023, 5, 7)]


def test_a_time_parser_can_be_swapped(llm: ScriptedLLM) -> None:
    class Always2020:
        def times(self, text: str, reference: Any = None) -> list[Any]:
            return [s for s in find_times("on 1 March 2020") if text]

    llm.add(_answer(events=[_event("Ana ran", "at some point", 1)]))
    (event,) = LLMExtractor(llm, times=Always2020()).extract([_message(1, "x")]).candidates
    assert event.occurred_at == datetime(2020, 3, 1)


# -- derive ----------------------------------------------------------------------------


def test_derive_returns_a_batch_to_write_and_writes_nothing(mem: Memory, llm: ScriptedLLM) -> None:
    turns = _messages(mem, ["I adopted a puppy called Rex yesterday", "Congrats!",
                            "I always want meetings after 10am"])  # fmt: skip
    llm.add(_answer(
        facts=[_fact("Ana has a puppy called Rex", 1)],
        events=[_event("Ana adopted Rex yesterday", "yesterday", 1, who=["Ana"])],
        procedures=[ProcedureItem(text="Schedule Ana's meetings after 10am", task="scheduling",
                                  turns=[3])],
    ))  # fmt: skip
    before = mem.list(user_id="ana", limit=1000)
    derivation = derive(mem, SCOPE, turns, now=datetime(2023, 5, 8, 14))
    assert isinstance(derivation, Derivation)
    assert mem.list(user_id="ana", limit=1000) == before  # nothing written
    # nothing stored is close to these: consolidation adds them by rule, without a call
    assert [_schema_of(r) for r in llm.requests] == ["Extraction"]
    assert (derivation.candidates, derivation.dropped, derivation.llm_calls) == (3, 0, 1)
    assert derivation.usage == llm.usage() and derivation.usage.calls == 1
    assert {d.by for d in derivation.decisions} == {"rule"}
    assert derivation.seconds > 0
    batch = derivation.batch
    assert batch.actor == "remem" and EXTRACT_VERSION in batch.reason
    assert "consolidate/" in batch.reason and batch.messages == ()
    records = {n.record.kind: n.record for n in batch.memories}
    assert set(records) == {"fact", "event", "procedure"}
    assert records["event"].source_ids == (turns[0].id,)
    assert records["event"].occurred_at == datetime(2023, 5, 7)
    assert records["event"].text == "Ana adopted Rex 7 May 2023"
    assert records["event"].attributes["who"] == ["Ana"]
    assert records["procedure"].source_ids == (turns[2].id,)
    assert records["procedure"].attributes["origin"] == "instruction"
    assert all(r.scope.user_id == "ana" and r.scope.session_id == "s1" for r in records.values())
    assert all(n.vector is not None for n in batch.memories)
    assert [d.action for d in derivation.decisions] == ["ADD"] * 3
    mem.store.write(batch)  # the batch is writable as it is, and then found
    assert mem.get(records["fact"].id).text == "Ana has a puppy called Rex"


def test_a_second_derivation_of_the_same_fact_adds_nothing(mem: Memory, llm: ScriptedLLM) -> None:
    turns = _messages(mem, ["My dog is called Rex"])
    again = _messages(mem, ["Rex is my dog, did I say?"])
    llm.add(_answer(facts=[_fact("Ana has a dog called Rex", 1)]), _add_all)
    first = derive(mem, SCOPE, turns)
    mem.store.write(first.batch)
    llm.add(_answer(facts=[_fact("Ana has a dog called Rex", 1)]))  # no consolidation call
    second = derive(mem, SCOPE, again)
    assert second.llm_calls == 1 and second.batch.memories == ()
    (decision,) = second.decisions
    assert decision.action == "NOOP" and decision.targets == (first.batch.memories[0].record.id,)
    assert decision.candidate.source_ids == (again[0].id,)


def test_derive_batches_by_the_configured_size(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    config = MemoryConfig(
        StoreConfig(path=str(tmp_path / "m.db")),
        llm=LLMConfig(name="scripted", options={"replies": [_answer().model_dump()] * 4}),
        derive=DeriveConfig(batch_turns=3, enabled=False),
    )  # the LLM built by the real registry from the config
    with Memory(config, embedder=embedder) as m:
        turns = _messages(m, [f"turn {i}" for i in range(10)])
        derivation = derive(m, SCOPE, turns)
        assert derivation.llm_calls == 4 == math.ceil(10 / 3)
        assert derivation.batch.memories == () and derivation.candidates == 0


@pytest.mark.parametrize(
    "reply",
    [
        "{not json",  # invalid JSON
        {"facts": [{"text": "Ana sings"}], "events": [], "profile": [], "procedures": []},
        "",  # an empty answer
    ],
    ids=["invalid-json", "wrong-schema", "empty"],
)
def test_an_answer_that_stays_invalid_raises_and_nothing_is_written(
    mem: Memory, llm: ScriptedLLM, reply: Any
) -> None:
    turns = _messages(mem, ["I sing in a choir"])
    llm.add(*[reply] * 6)  # the first answer and every re-ask and fallback
    before = mem.list(user_id="ana", limit=1000)
    with pytest.raises(LLMError) as raised:
        derive(mem, SCOPE, turns)
    assert raised.value.reason
    assert mem.list(user_id="ana", limit=1000) == before
    assert llm.usage().failures == 1 and llm.usage().requests >= 3  # re-asked first


def test_a_failure_in_a_later_batch_loses_the_earlier_ones_too(
    tmp_path: Path, embedder: OnnxMiniLMEmbedder
) -> None:
    def broken(request: ScriptedRequest) -> str:
        raise LLMError("the endpoint is down", reason="connection refused", transient=True)

    llm = ScriptedLLM([_answer(facts=[_fact("Ana sings", 1)]), broken])
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "m.db")),
                          derive=DeriveConfig(batch_turns=2, enabled=False))  # fmt: skip
    with Memory(config, embedder=embedder, llm=llm) as m:
        turns = _messages(m, ["I sing", "ok", "and dance"])
        with pytest.raises(LLMError, match="down") as raised:
            derive(m, SCOPE, turns)
        assert raised.value.transient
        assert [r.kind for r in m.list(user_id="ana", limit=1000)] == ["turn"] * 3


def test_derive_needs_an_llm(memory: Memory) -> None:
    with pytest.raises(ConfigError, match="needs an LLM"):
        derive(memory, SCOPE, [])


def test_derive_refuses_messages_of_another_scope(mem: Memory, llm: ScriptedLLM) -> None:
    turns = _messages(mem, ["I sing"], user_id="bo")
    with pytest.raises(InvalidInputError, match="another scope"):
        derive(mem, SCOPE, turns)
    other_session = _messages(mem, ["I dance"], session_id="s2")
    with pytest.raises(InvalidInputError, match="another scope"):
        derive(mem, SCOPE, other_session)
    assert llm.requests == []


def test_derive_of_no_messages_costs_nothing(mem: Memory, llm: ScriptedLLM) -> None:
    derivation = derive(mem, SCOPE, [])
    assert (derivation.llm_calls, derivation.candidates, derivation.batch.memories) == (0, 0, ())


# -- settings --------------------------------------------------------------------------


def test_batch_turns_from_the_environment() -> None:
    assert load_settings(env={}).derive.batch_turns == 20
    assert load_settings(env={"REMEM_DERIVE_BATCH_TURNS": "8"}).derive.batch_turns == 8
    for bad in ("0", "-3", "many"):
        with pytest.raises(ConfigError, match="REMEM_DERIVE_BATCH_TURNS"):
            load_settings(env={"REMEM_DERIVE_BATCH_TURNS": bad})
