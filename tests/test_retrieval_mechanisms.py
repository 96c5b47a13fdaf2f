"""Each retrieval mechanism, on a small hand-made conversation, finds what plain BM25 misses.

Every test compares the ``bm25`` recipe with BM25 plus one mechanism (so the gain is that
mechanism's), then checks the ``default`` recipe finds the evidence too. Real SQLite, the
real default embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from remem import Memory, Recipe
from remem.embedders.base import Embedder

BM25 = Recipe("bm25", {"bm25": 1.0})


def only(name: str, **mechanism: float) -> Recipe:
    """BM25 plus one mechanism."""
    return Recipe(f"bm25+{name}", {"bm25": 1.0}, **mechanism)  # type: ignore[arg-type]


def turns(memory: Memory, query: str, recipe: Recipe | str, limit: int = 10) -> list[str]:
    """Source message ids of the hits, best first."""
    hits = memory.search(query, user_id="ana", recipe=recipe, limit=limit,
                         reference_time="2023-09-01T12:00:00")  # fmt: skip
    return [h.source_ids[0] for h in hits]


def add(memory: Memory, session: str, day: str, lines: Sequence[tuple[str, str, str]]) -> None:
    memory.add(
        [{"id": mid, "name": who, "content": text} for mid, who, text in lines],
        user_id="ana", session_id=session, timestamp=f"{day}T10:00:00",
    )  # fmt: skip


@pytest.fixture()
def chat(tmp_path: Path, embedder: Embedder) -> Memory:
    """Ana and Bo over five sessions, with distractors for every mechanism below."""
    m = Memory(tmp_path / "chat.db", embedder=embedder)
    add(m, "s1", "2023-05-08", [
        ("1:1", "Bo", "Hi Ana! How was your weekend?"),
        ("1:2", "Ana", "Lovely. My sister Maria just started a new job, she is so happy."),
        ("1:3", "Bo", "That is great news, I went to a pottery class yesterday and made a "
                      "lopsided bowl that I will keep forever anyway"),
        ("1:4", "Bo", "My sister loves jazz and she plays the saxophone."),
    ])  # fmt: skip
    add(m, "s2", "2023-06-10", [
        ("2:1", "Bo", "I love pottery, it calms me."),
        ("2:2", "Ana", "We adopted a dog, and the dog loves the park, the dog toys, the dog bed."),
        ("2:3", "Bo", "Where did you go for your birthday?"),
        ("2:4", "Ana", "Lisbon! It was wonderful."),
    ])  # fmt: skip
    add(m, "s3", "2023-07-02", [
        ("3:1", "Bo", "Pottery again today."),
        ("3:2", "Ana", "We adopted the dog last week, his name is Rex."),
        ("3:3", "Bo", "Maria told me the hospital in Porto is huge."),
        ("3:4", "Ana", "Yes, she likes it there."),
    ])  # fmt: skip
    add(m, "s4", "2023-07-20", [
        ("4:1", "Bo", "I visited my sister yesterday."),
        ("4:2", "Ana", "How is she?"),
        ("4:3", "Bo", "Fine. Pottery is still my thing."),
        ("4:4", "Ana", "Good to hear."),
    ])  # fmt: skip
    yield m
    m.close()


def test_a_relative_date_is_found_by_its_resolved_day(chat: Memory) -> None:
    # "yesterday" said on 8 May 2023 is 7 May 2023; the question never says "yesterday"
    query = "What did Bo do on May 7th?"
    assert turns(chat, query, BM25)[0] != "1:3"  # no informative word in common
    assert turns(chat, query, only("time", time=2.0))[0] == "1:3"
    assert turns(chat, query, "default")[0] == "1:3"


def test_a_time_relative_to_an_event_is_found_after_that_event(
    tmp_path: Path, embedder: Embedder
) -> None:
    m = Memory(tmp_path / "anchor.db", embedder=embedder)
    add(m, "s1", "2023-03-01", [("1:1", "Ana", "I went to a Coldplay concert yesterday!")])
    add(
        m,
        "s2",
        "2023-03-10",
        [
            (
                "2:1",
                "Ana",
                "So I started taking guitar lessons with a teacher down the road, twice a week.",
            )
        ],
    )
    add(m, "s3", "2023-01-10", [("3:1", "Ana", "I started a pottery class.")])
    add(m, "s4", "2023-06-01", [("4:1", "Ana", "I started learning French.")])
    query = "What did Ana start after the concert?"
    plain = turns(m, query, BM25)
    assert plain.index("2:1") > min(plain.index("3:1"), plain.index("4:1"))
    anchored = turns(m, query, only("time", time=1.0))
    assert anchored.index("2:1") < min(anchored.index("3:1"), anchored.index("4:1"))
    hits = m.search(query, user_id="ana", explain=True)
    assert hits.explain is not None
    (window,) = hits.explain["query"]["time_windows"]
    assert (window["text"], window["start"], window["end"]) == (
        "after the concert", "2023-02-28", "2023-03-30"
    )  # fmt: skip
    m.close()


def test_when_questions_prefer_turns_that_say_when(chat: Memory) -> None:
    query = "When did Ana adopt the dog?"
    plain = turns(chat, query, BM25)
    assert plain.index("2:2") < plain.index("3:2")  # more dog words, but no time
    boosted = turns(chat, query, only("temporal", temporal=1.0))
    assert boosted.index("3:2") < boosted.index("2:2")
    assert "3:2" in turns(chat, query, "default", limit=2)


def test_an_entity_two_hops_away_is_reached_through_the_graph(chat: Memory) -> None:
    # Ana's sister -> Maria (1:2) -> Maria's hospital in Porto (3:3): no shared words
    query = "Where does Ana's sister work?"
    assert "3:3" not in turns(chat, query, BM25, limit=20)
    assert "3:3" in turns(chat, query, only("graph", graph=0.5), limit=5)
    hybrid = Recipe("hybrid", {"bm25": 0.6, "dense": 0.4})
    with_graph = Recipe("hybrid+graph", {"bm25": 0.6, "dense": 0.4}, graph=0.5)
    assert turns(chat, query, with_graph, 16).index("3:3") < turns(chat, query, hybrid, 16).index(
        "3:3"
    )
    # the named recipe: default plus the walk, which lifts the two-hop answer
    walked, plain = turns(chat, query, "entity-graph", 16), turns(chat, query, "default", 16)
    assert walked.index("3:3") < plain.index("3:3")


def test_a_second_round_follows_the_entities_of_the_first(chat: Memory) -> None:
    query = "Where does Ana's sister work?"
    found = turns(chat, query, only("multihop", multihop=0.5), limit=5)
    assert "3:3" in found
    hits = chat.search(query, user_id="ana", recipe=only("multihop", multihop=0.5),
                       explain=True)  # fmt: skip
    assert hits.explain is not None and "maria" in hits.explain["multihop_terms"]


def test_an_answer_without_the_question_words_is_found_through_its_neighbour(
    chat: Memory,
) -> None:
    query = "Where did Ana go for her birthday?"
    assert "2:4" not in turns(chat, query, BM25, limit=3)
    assert {"2:3", "2:4"} <= set(turns(chat, query, only("neighbours", neighbours=0.5), limit=3))
    assert "2:4" in turns(chat, query, "default", limit=3)


def test_a_list_question_gathers_its_parts_from_several_sessions(
    tmp_path: Path, embedder: Embedder
) -> None:
    m = Memory(tmp_path / "pets.db", embedder=embedder)
    small_talk = [
        "The weather was grey all week.",
        "Work has been busy lately.",
        "I finally fixed the kitchen tap.",
        "Traffic was terrible this morning.",
    ]
    for n, (day, line) in enumerate([
        ("2023-01-05", "We got a puppy named Rex, he chews shoes."),
        ("2023-02-05", "My cat Luna sleeps all day on the sofa."),
        ("2023-03-05", "We also have a parrot called Kiwi."),
    ], start=1):  # fmt: skip
        add(
            m,
            f"s{n}",
            day,
            [
                (f"{n}:1", "Ana", line),
                *((f"{n}:{k + 2}", "Ana", t) for k, t in enumerate(small_talk)),
            ],
        )
    add(m, "s4", "2023-04-05", [
        ("4:1", "Ana", "Pets are such good company, I love our pets."),
        ("4:2", "Ana", "Pets need a lot of care and pets cost money."),
        ("4:3", "Ana", "Do your pets like the vet? Our pets hate it."),
        ("4:4", "Ana", "Pet food for pets is expensive now."),
    ])  # fmt: skip
    query = "What pets does Ana have?"
    hybrid = Recipe("hybrid", {"bm25": 0.6, "dense": 0.4})
    diverse = Recipe("hybrid+diversify", {"bm25": 0.6, "dense": 0.4}, diversify=0.7)
    evidence = {"1:1", "2:1", "3:1"}
    assert not evidence <= set(turns(m, query, hybrid, limit=5))
    assert evidence <= set(turns(m, query, diverse, limit=5))
    m.close()


def test_session_boost_lifts_turns_of_the_session_that_matches_in_several_places(
    chat: Memory,
) -> None:
    query = "pottery bowl"
    boosted = turns(chat, query, only("session", session=1.0), limit=4)
    assert boosted[0] == "1:3"


def test_summaries_are_memories_of_their_session(chat: Memory) -> None:
    summaries = chat.list(user_id="ana", kinds=["summary"])
    assert len(summaries) == 4  # every session has four turns
    hits = chat.search("Porto hospital", user_id="ana", kinds=["summary"])
    assert hits[0].memory.scope.session_id == "s3"


def test_a_session_that_matches_as_a_whole_lifts_its_turns(
    tmp_path: Path, embedder: Embedder
) -> None:
    m = Memory(tmp_path / "trip.db", embedder=embedder)
    add(m, "s1", "2023-03-01", [
        ("1:1", "Ana", "The trip to Kyoto was long."),
        ("1:2", "Bo", "And the temples?"),
        ("1:3", "Ana", "Beautiful. The street food there was the best part."),
    ])  # fmt: skip
    add(m, "s2", "2023-04-01", [
        ("2:1", "Ana", "Food, food, food: I want food when I am hungry."),
        ("2:2", "Bo", "Same here."),
    ])  # fmt: skip
    for n in range(3, 7):
        add(m, f"s{n}", f"2023-0{n + 2}-01", [(f"{n}:1", "Bo", "Nothing much happened."),
                                              (f"{n}:2", "Ana", "Work was busy.")])  # fmt: skip
    query = "What did Ana think of the food in Kyoto?"
    assert turns(m, query, BM25, limit=1) == ["2:1"]  # most "food", one word of the two
    assert turns(m, query, only("sessions", sessions=3.0), limit=1)[0] in {"1:1", "1:3"}
    m.close()


def test_explain_shows_the_analysis_and_what_found_each_hit(chat: Memory) -> None:
    result = chat.search("When did Ana adopt the dog in July 2023?", user_id="ana", explain=True)
    assert result.explain is not None
    query = result.explain["query"]
    assert query["intent"] == "when"
    assert query["time_windows"][0]["start"] == "2023-07-01"
    assert "ana" in query["entities"]
    top = result.hits[0]
    assert top.source_ids == ("3:2",)
    assert {"bm25", "dense", "time"} <= set(top.channels)
    assert {"bm25", "dense", "time", "temporal"} <= set(top.scores)
