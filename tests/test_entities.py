"""Rule-based entity extraction on real chat lines and questions, plus invariants on any text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remem.formation.entities import (
    COMMON,
    NAME_WORDS,
    EntityMention,
    entity_key,
    extract_entities,
    query_entities,
)

Known = dict[str, str] | None

# (text, known, expected keys in order)
CASES: list[tuple[str, Known, list[str]]] = [
    # The brief's chat lines
    (
        "Hey Caroline, since we last chatted, I've had a lot of things happening to me.",
        None,
        ["caroline"],
    ),
    (
        "I went to a place in London a few years ago - it was like walking into a Harry Potter"
        " movie!",
        None,
        ["london", "harry potter"],
    ),
    (
        "Thanks! That picture is from MinaLima. They created all the props for the Harry Potter"
        " films",
        None,
        ["minalima", "harry potter"],
    ),
    (
        'I took your reccomendation and watched "The Lord of the Rings" Trilogy last night!',
        None,
        ["lord of the rings"],
    ),
    ('I loved reading "Charlotte\'s Web" as a kid.', None, ["charlotte's web"]),
    (
        'Yep! I\'m currently playing this awesome fantasy RPG called "Xeonoblade Chronicles"',
        None,
        ["rpg", "xeonoblade chronicles"],
    ),
    ("I went to a LGBTQ support group yesterday and it was so powerful.", None, ["lgbtq"]),
    ("Nate's turtles are cute", {"nate": "name"}, ["nate"]),
    ("Wow Jon, same here! Dance is pretty much my go-to for stress relief.", None, ["jon"]),
    (
        "I just signed up Nike for a basketball shoe and gear deal. I'm also in talks with"
        " Gatorade",
        None,
        ["nike", "gatorade"],
    ),
    ("My wife and I were road tripping out on the European coastline", None, ["european"]),
    ("I went to Woodhaven, a small town in the Midwest.", None, ["woodhaven", "midwest"]),
    ("Last Friday I went to a council meeting", None, []),
    ('I\'m reading "Dune" by Frank Herbert.', None, ["dune", "frank herbert"]),
    ("We had a blast last year at the Pride fest.", None, ["pride"]),
    ("Great catching up! Take care, talk soon.", None, []),
    ("It was AMAZING and I loved it", None, []),
    # "The" is COMMON at a sentence start: dropped, and "UK" stands alone mid-sentence.
    ("The UK trip was great", None, ["uk"]),
    # More lines from LoCoMo-style chats
    ("Hey Mel! Good to see you! How have you been?", None, ["mel"]),
    ("Wow, that's cool, Caroline! What happened that was so awesome?", None, ["caroline"]),
    ("Thanks, Melanie! That's really sweet. Is this your own painting?", None, ["melanie"]),
    ("Yeah, I painted that lake sunrise last year! It's special to me.", None, []),
    ("Caroline, so glad you got the support!", None, ["caroline"]),
    ("Harry Potter is great", None, ["harry potter"]),
    ("Thanks Nate! Appreciate your kind words.", None, ["nate"]),
    ("Oscar and I will be walking every evening.", None, []),
    ("Oscar and I will be walking every evening.", {"oscar": "name"}, ["oscar"]),
    ("His name is Oscar. Look at him.", None, ["oscar"]),
    ("I'm a fan of both classical like Bach and Mozart.", None, ["bach", "mozart"]),
    (
        'I loved "Becoming Nicole" by Amy Ellis Nutt. It\'s a real inspiring true story.',
        None,
        ["becoming nicole", "amy ellis nutt"],
    ),
    (
        "Here's one- 'Embracing Identity' is all about finding comfort.",
        None,
        ["embracing identity"],
    ),
    (
        'Yeah, "Harry Potter and the Philosopher\'s Stone" is special to me.',
        None,
        ["harry potter and the philosopher's stone"],
    ),
    ("The Minnesota Wolves! I can't wait to play with them!", None, ["minnesota wolves"]),
    ("Have you read all of George R. R. Martin's books?", None, ["george r r martin"]),
    ("I want to visit The Cliffs of Moher.", None, ["cliffs of moher"]),
    ("It's a map of Middle-earth from LOTR - it's really cool.", None, ["middle-earth", "lotr"]),
    (
        "I went to the Bank of America and the University of Texas",
        None,
        ["bank of america", "university of texas"],
    ),
    ("We shop at AT&T and Barnes & Noble", None, ["at&t", "barnes & noble"]),
    ("I met Dr. Seuss once. Dr Seuss was nice.", None, ["dr seuss", "dr seuss"]),
    ("Mr is not a name, nor is OK or Okay, and I'm sure I'd know", None, []),
    ("Happy Birthday Caroline!", None, ["caroline"]),
    ("lol Thanks Mel, see you in May", None, ["mel"]),
    ("I LOVE IT SO MUCH", None, []),
    ("The game was INTENSE but the NBA finals were better", None, ["nba"]),
    ("My dog Max loves Hope", None, ["max", "hope"]),
    ("Will you come? Hope so.", None, []),
    ('She said "You can do it" and I cried', None, []),
    ('"Wow!" she said', None, []),
    ("Visiting Paris was a dream", None, ["paris"]),
    ("Unfortunately, we missed it.", None, []),
    ("my new iPhone from eBay", None, ["iphone", "ebay"]),
    (
        "we watched \u2018Charlotte\u2019s Web\u2019 and \u201cDune\u201d today",
        None,
        ["charlotte's web", "dune"],
    ),
    ("[shares a photo: a Harry Potter book] Look!", None, ["harry potter"]),
    ("Nate\u2019s turtles", {"nate": "name"}, ["nate"]),
    (
        "we watched lord of the rings again",
        {"lord of the rings": "title"},
        ["lord of the rings"],
    ),
    ("hope you're well, nate", {"hope": "name", "nate": "name"}, ["nate"]),
    ("", None, []),
    ("   \n\n  ", None, []),
]


def keys(mentions: list[EntityMention]) -> list[str]:
    return [m.key for m in mentions]


@pytest.mark.parametrize(("text", "known", "expected"), CASES)
def test_extract_entities(text: str, known: Known, expected: list[str]) -> None:
    assert keys(extract_entities(text, known)) == expected


def test_enough_cases() -> None:
    assert len(CASES) >= 40


def test_mention_fields_and_kinds() -> None:
    text = 'I took your reccomendation and watched "The Lord of the Rings" Trilogy last night!'
    [title] = extract_entities(text)
    assert title.kind == "title"
    assert title.name == "The Lord of the Rings"
    assert text[title.start : title.end] == title.name
    [nate] = extract_entities("Nate's turtles are cute", {"nate": "speaker"})
    assert (nate.name, nate.kind, nate.start, nate.end) == ("Nate", "speaker", 0, 4)
    [mina] = extract_entities("That picture is from MinaLima.")
    assert (mina.key, mina.name, mina.kind) == ("minalima", "MinaLima", "name")


def test_known_kind_wins_for_rule_matches_and_empty_kind_reads_known() -> None:
    [potter] = extract_entities("a Harry Potter movie", {"harry potter": "title"})
    assert potter.kind == "title"
    [rpg] = extract_entities("i love rpg games", {"rpg": ""})
    assert rpg.kind == "known"


def test_longest_wins() -> None:
    found = extract_entities("I met Harry Potter", {"harry": "name"})
    assert keys(found) == ["harry potter"]
    known = {"lord of the rings": "title", "lord": "x", "rings": "x"}
    assert keys(extract_entities("we saw the lord of the rings", known)) == ["lord of the rings"]
    # At ingest a known phrase is looked for only from a capitalised or uncommon word.
    known = {"game of thrones": "title", "game": "x"}
    assert keys(extract_entities("we saw game of thrones", known)) == []
    assert keys(extract_entities("we saw Game of Thrones", known)) == ["game of thrones"]
    assert keys(query_entities("did she see game of thrones", known)) == ["game of thrones"]


def test_one_per_occurrence_but_query_dedupes() -> None:
    text = "Caroline said hi. Then Caroline left with Mel."
    assert keys(extract_entities(text)) == ["caroline", "mel"]  # sentence start needs `known`
    known = {"caroline": "name", "mel": "name"}
    assert keys(extract_entities(text, known)) == ["caroline", "caroline", "mel"]
    assert keys(query_entities(text, known)) == ["caroline", "mel"]


@pytest.mark.parametrize(
    ("question", "known", "expected"),
    [
        ("What did Caroline research?", {"caroline": "name"}, ["caroline"]),
        (
            "what is nate's favorite video game",
            {"nate": "name", "video game": "known"},
            ["nate", "video game"],
        ),
        (
            "Would Melanie like lord of the rings?",
            {"lord of the rings": "title"},
            ["melanie", "lord of the rings"],
        ),
        (
            "what did nate say about lord of the rings",
            {"nate": "name", "lord of the rings": "title"},
            ["nate", "lord of the rings"],
        ),
        # Lower-case single words count only when they are not everyday words.
        ("did will like hope?", {"will": "name", "hope": "name"}, []),
        # Questions look for known phrases from every word, even a common one.
        ("did she like little women?", {"little women": "title"}, ["little women"]),
        ("when did jon visit paris?", {"jon": "name", "paris": "name"}, ["jon", "paris"]),
        ("When did Gina mention Shia Labeouf?", {}, ["gina", "shia labeouf"]),
    ],
)
def test_query_entities(question: str, known: dict[str, str], expected: list[str]) -> None:
    assert keys(query_entities(question, known)) == expected


def test_query_kinds_come_from_known() -> None:
    found = query_entities("Would Melanie like lord of the rings?", {"lord of the rings": "title"})
    assert [(m.key, m.kind) for m in found] == [("melanie", "name"), ("lord of the rings", "title")]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("The Lord of the Rings", "lord of the rings"),
        ("Nate's", "nate"),
        ("Nate\u2019s", "nate"),
        ("the UK", "uk"),
        ("  Harry   Potter!! ", "harry potter"),
        ("Charlotte's Web", "charlotte's web"),
        ("McDonald's", "mcdonald"),
        ("Dr. Seuss", "dr seuss"),
        ("Jones'", "jones"),
        ('"Dune"', "dune"),
        ("The", "the"),
        ("...", ""),
    ],
)
def test_entity_key(name: str, key: str) -> None:
    assert entity_key(name) == key


def test_common_word_list() -> None:
    assert 300 <= len(COMMON) <= 600
    assert all(word == word.lower() and word.strip() == word for word in COMMON)
    assert NAME_WORDS <= COMMON
    first_names = {"caroline", "melanie", "nate", "jon", "gina", "john", "maria", "oscar"}
    assert not first_names & COMMON


def test_known_lookup_needs_no_index() -> None:
    """A large table costs nothing per call: only windows of the text are looked up."""

    asked: list[str] = []

    class Spy(dict[str, str]):
        def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
            asked.append(key)
            return super().get(key, default)

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("the known table must not be iterated")

    known = Spy({f"entity {i}": "name" for i in range(1000)} | {"nate": "name"})
    assert keys(extract_entities("I saw nate and entity 7 today", known)) == ["nate", "entity 7"]
    assert len(asked) < 40


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_gives_consistent_mentions(text: str) -> None:
    check(text, extract_entities(text))
    check(text, query_entities(text, {"nate": "name", "a b": "known"}))


CHATTY = st.lists(
    st.sampled_from(
        [
            "Caroline", "Nate's", "the", "Lord", "of", "Rings", "and", "I", "OK", "\"", "'",
            "\u2019s", "Dr.", "J.", "&", ",", "!", "?", ".", "\n", "[", "]", "Hey", "WOW",
            "LGBTQ", "iPhone", "May", "Friday", "nate", "lord", "rings", "x" * 60, "\U0001f600",
            "\u0130stanbul", "Jean-Luc", "O'Brien", "-", ":", " ", "\u201c", "\u201d",
        ]
    ),
    max_size=40,
).map(" ".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(CHATTY)
def test_chatty_text_gives_consistent_mentions(text: str) -> None:
    known = {"nate": "name", "lord of the rings": "title", "caroline": "", "i": "name"}
    check(text, extract_entities(text, known))
    check(text, query_entities(text, known))


def check(text: str, mentions: list[EntityMention]) -> None:
    previous_end = 0
    for m in mentions:
        assert text[m.start : m.end] == m.name
        assert entity_key(m.name) == m.key
        assert m.key and m.key == m.key.lower()
        assert m.start >= previous_end  # in order, no overlaps
        assert m.end - m.start <= 100
        assert m.kind
        previous_end = m.end
