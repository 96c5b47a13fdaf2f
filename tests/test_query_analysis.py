"""Query analysis: question types, time windows and the known entities a question names."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from remem.retrieval.query import analyze, intent


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When did Caroline go to the LGBTQ support group?", "when"),
        ("What year did Nate get his turtles?", "when"),
        ("How long ago was Caroline's 18th birthday?", "when"),
        ("How long has Caroline had her current group of friends for?", "duration"),
        ("How many children does Melanie have?", "count"),
        ("What activities does Melanie partake in?", "list"),
        ("What books has Melanie read?", "list"),
        ("What kinds of food does Nate cook?", "list"),
        ("What LGBTQ+ events has Caroline participated in?", "list"),
        ("In what ways is Caroline participating?", "list"),
        ("Who supports Caroline when she has a negative experience?", "who"),
        ("Where has Melanie camped?", "where"),
        ("Would Caroline pursue writing as a career option?", "yesno"),
        ("Did John go to Chicago?", "yesno"),
        ("What is Caroline's identity?", None),
        ("What did Caroline research?", None),
        ("What is this series about?", None),
    ],
)
def test_intent(question: str, expected: str | None) -> None:
    assert intent(question) == expected


def test_analyze_resolves_windows_against_the_reference_and_finds_known_entities() -> None:
    known = {"nate": "speaker", "lord of the rings": "title", "porto": "name"}
    got = analyze("What did Nate watch last week, lord of the rings?", datetime(2022, 5, 11),
                  known)  # fmt: skip
    assert got.terms == ("nate", "watch", "last", "week", "lord", "rings")
    assert got.entities == ("nate", "lord of the rings")
    (window,) = got.windows
    assert (window.start, window.end) == (date(2022, 5, 2), date(2022, 5, 10))
    as_dict = got.as_dict()
    assert as_dict["time_windows"][0]["any_year"] is False
    assert as_dict["reference_time"] == "2022-05-11T00:00:00"


def test_vague_times_do_not_become_windows() -> None:
    assert analyze("What did Ana do recently?", datetime(2024, 1, 1), {}).windows == ()


def test_events_a_question_is_placed_before_or_after_become_anchors() -> None:
    got = analyze("What did Caroline realize after her charity race?", datetime(2024, 1, 1), {})
    assert [(a.relation, a.event) for a in got.anchors] == [("after", "charity race")]
    both = analyze("What did Ana eat before the concert and after the show?",
                   datetime(2024, 1, 1), {})  # fmt: skip
    assert [(a.relation, a.event) for a in both.anchors] == [("before", "concert"),
                                                             ("after", "show")]  # fmt: skip
    dated = analyze("What happened after May 2023?", datetime(2024, 1, 1), {})
    assert dated.anchors == () and dated.windows  # a date is a window, not an event
