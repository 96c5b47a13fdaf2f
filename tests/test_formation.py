"""Deterministic enrichment: key phrases (surprisal, decay), summaries, entity strength."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import pytest

from remem.config import EnrichConfig
from remem.formation import keyphrases
from remem.formation.enrich import enrich, index_suffix
from remem.formation.salience import entity_table
from remem.formation.summaries import needs_refresh, salience, summarize
from remem.index.live import LiveScope
from remem.models import MemoryRecord, Message, Scope
from remem.stores.base import Changes, EntityRow, IndexRow

T = datetime(2023, 5, 8, 14, 0)


def test_candidates_are_content_words_and_adjacent_pairs() -> None:
    got = keyphrases.candidates("Wow! I finished my screenplay draft, and printed it.")
    assert got == ["finished", "screenplay", "draft", "screenplay draft", "printed"]
    assert keyphrases.candidates("Thanks, that's great!") == []


def test_surprisal_reference_values() -> None:
    assert keyphrases.surprisal(0, 6) == pytest.approx(3.0)
    assert keyphrases.surprisal(3, 6) == pytest.approx(1.0)
    assert keyphrases.surprisal(9, 6) == pytest.approx(-math.log2(10 / 11))  # df > docs


def test_score_ranks_rare_phrases_and_drops_words_a_phrase_covers() -> None:
    df = {"dairy": 0, "tart": 1, "cake": 30}
    phrases = ["dairy", "tart", "dairy tart", "cake"]
    got = keyphrases.score(phrases, df, docs=62, top=3, min_bits=2.0)
    bits = keyphrases.surprisal
    assert got[0].key == "dairy tart"
    assert got[0].score == pytest.approx((bits(0, 62) + bits(1, 62)) / 2 + 1.0, abs=1e-3)
    assert "dairy" not in [k.key for k in got]  # covered by the better phrase
    assert "cake" not in [k.key for k in got]  # below min_bits


def test_decay_per_session() -> None:
    assert keyphrases.decayed(1.0, 0, 0.9) == 1.0
    assert keyphrases.decayed(2.0, 3, 0.5) == 0.25


def message(content: str, speaker: str = "Ana", when: datetime = T) -> Message:
    return Message("m", Scope("ana", session_id="s1"), "user", content, speaker, when, when, {})


def test_enrich_finds_entities_times_and_keyphrases() -> None:
    msgs = [message("I went to Porto with Maria yesterday to buy a ukulele."),
            message("We ate pastries.", speaker="Bo")]  # fmt: skip
    counts = {"ukulele": 0, "buy": 6, "pastries": 1}
    asked: list[str] = []

    def known(keys: Sequence[str]) -> dict[str, str]:  # the store answers only what is asked
        asked.extend(keys)
        return {k: "name" for k in keys if k == "maria"}

    out = enrich(msgs, known, lambda words: (10, counts), EnrichConfig())
    assert "maria" in asked and len(asked) < 60  # words of these messages, not a table
    first = out[0].attributes
    assert [e["key"] for e in first["entities"]] == ["ana", "porto", "maria"]
    assert first["entities"][0]["kind"] == "speaker"
    assert first["times"] == [{"text": "yesterday", "start": "2023-05-07",
                               "end": "2023-05-07", "grain": "day", "kind": "date"}]  # fmt: skip
    assert next(k["key"] for k in first["keyphrases"]) == "ukulele"
    assert "porto" not in [k["key"] for k in first["keyphrases"]]  # names are entities
    assert index_suffix(out[0].times) == "7 May 2023"
    assert out[1].attributes["entities"] == [{"key": "bo", "name": "Bo", "kind": "speaker"}]
    bare = enrich(msgs, known, lambda words: (10, counts), EnrichConfig.none())
    assert [e.attributes for e in bare] == [{}, {}]


def turn(text: str, entities: list[tuple[str, str]], phrases: list[tuple[str, float]] = (),
         source: str = "m") -> MemoryRecord:  # fmt: skip
    attrs = {"entities": [{"key": k.lower(), "name": k, "kind": kind} for k, kind in entities],
             "keyphrases": [{"key": k, "score": s} for k, s in phrases]}  # fmt: skip
    return MemoryRecord(source, "turn", text, Scope("ana"), (source,), T, T, T, attributes=attrs)


def test_summary_picks_salient_turns_in_order_and_cites_them() -> None:
    turns = [
        turn("Ana: Hi!", [("Ana", "speaker")], source="1"),
        turn("Ana: I moved to Lisbon and adopted Oscar, a beagle.",
             [("Ana", "speaker"), ("Lisbon", "name"), ("Oscar", "name")],
             [("beagle", 8.0)], source="2"),
        *(turn(f"Bo: ok {n}", [("Bo", "speaker")], source=f"x{n}") for n in range(10)),
    ]  # fmt: skip
    draft = summarize(turns)
    assert draft is not None
    assert draft.source_ids == ("2",)  # the other turns name nothing
    assert draft.text.startswith("Topics: beagle, Lisbon, Oscar. Ana: I moved to Lisbon")
    assert draft.attributes == {"turns": 12, "topics": ["beagle", "Lisbon", "Oscar"]}
    assert salience(turns[1]) > salience(turns[0]) == 0
    assert summarize([]) is None


def test_summaries_refresh_as_a_session_grows() -> None:
    assert not needs_refresh(3, None)
    assert needs_refresh(4, None)
    assert not needs_refresh(7, 4) and needs_refresh(8, 4)
    assert not needs_refresh(44, 40) and needs_refresh(50, 40)


def test_entity_strength_decays_over_later_sessions() -> None:
    def row(memory_id: str, session: str, attributes: dict[str, object]) -> IndexRow:
        return IndexRow(memory_id, "turn", "u", "", session, 1, T, T, None, True, {},
                        attributes, "text", "text", None)  # fmt: skip

    index = LiveScope()
    index.apply(Changes(1, (
        row("a", "s1", {"keyphrases": [{"key": "jazz", "score": 8.0},
                                       {"key": "rex", "score": 4.0}]}),
        row("b", "s2", {}),
        row("c", "s3", {"entities": [{"key": "rex", "name": "Rex", "kind": "name"}]}),
    )))  # fmt: skip
    assert index.entities == [EntityRow("jazz", "jazz", "keyphrase"),
                              EntityRow("rex", "rex", "keyphrase")]  # fmt: skip
    table = {e.key: e for e in entity_table(index, decay=0.5)}
    assert table["jazz"].strength == 0.25  # said in s1, two sessions ago
    assert table["rex"].strength == pytest.approx(1.0 + 0.5 * 0.25)
    assert (table["rex"].mentions, table["rex"].sessions) == (2, 2)
    assert table["rex"].memory_ids == ("a", "c")
