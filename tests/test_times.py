"""``remem.times``: time expressions in chat text resolved to day ranges."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remem.times import TimeSpan, describe, find_times, month_day_match

W = "2023-07-12"  # a Wednesday: its week is Monday 10 to Sunday 16 July 2023
Q = "2024-01-01"  # the reference of the benchmark questions (a Monday)

# (text, reference, start, end, grain, kind, relative, recurring)
Row = tuple[str, str, str, str, str, str, bool, bool]
CASES: list[Row] = [
    # Real chat lines, resolved against the day they were said.
    ("I went to a LGBTQ support group yesterday and it was so powerful.", "2023-05-08",
     "2023-05-07", "2023-05-07", "day", "date", True, False),
    ("I ran a charity race last Saturday", "2023-05-25",
     "2023-05-20", "2023-05-20", "day", "date", True, False),
    ("Last Fri I finally took my kids to a pottery workshop.", "2023-07-15",
     "2023-07-14", "2023-07-14", "day", "date", True, False),
    ("I had a quiet weekend after we went camping with my fam two weekends ago.", "2023-07-17",
     "2023-07-08", "2023-07-09", "weekend", "date", True, False),
    ("I went to an LGBTQ conference two days ago", "2023-07-12",
     "2023-07-10", "2023-07-10", "day", "date", True, False),
    ("I'm going to a transgender conference this month.", "2023-07-03",
     "2023-07-01", "2023-07-31", "month", "date", True, False),
    ("I met back up with my teammates on the 15th after my trip", "2023-08-17",
     "2023-08-15", "2023-08-15", "day", "date", True, False),
    ("My colleagues and I went to a convention together last month.", "2023-04-18",
     "2023-03-01", "2023-03-31", "month", "date", True, False),
    ('watched "The Lord of the Rings" Trilogy last night!', "2022-05-02",
     "2022-05-01", "2022-05-01", "day", "date", True, False),
    ("I've had them for 3 years now", "2022-01-23",
     "2019-01-23", "2022-01-23", "range", "duration", True, False),
    ("I started playing acoustic guitar about five years ago", "2023-08-28",
     "2018-01-01", "2018-12-31", "year", "date", True, False),
    ("I won my fourth video game tournament on Friday!", "2022-07-10",
     "2022-07-08", "2022-07-08", "day", "date", True, False),
    ("I'll come over tomorrow if that's fine.", "2022-11-04",
     "2022-11-05", "2022-11-05", "day", "date", True, False),
    # Benchmark questions.
    ("What did John attend with his colleagues in March 2023?", Q,
     "2023-03-01", "2023-03-31", "month", "date", False, False),
    ("What movie did Joanna watch on 1 May, 2022?", Q,
     "2022-05-01", "2022-05-01", "day", "date", False, False),
    ("Which outdoor spot did Joanna visit in May?", Q,
     "2024-05-01", "2024-05-31", "month", "date", False, True),
    ("Where was John between August 11 and August 15 2023?", Q,
     "2023-08-11", "2023-08-15", "range", "date", False, False),
    ("Where was Tim in the week before 16 November 2023?", Q,
     "2023-11-09", "2023-11-15", "week", "date", False, False),
    ("Which country was Tim visiting in the second week of November?", Q,
     "2023-11-08", "2023-11-14", "week", "date", False, True),
    ("Which tournament did Nate win in the beginning of November 2022?", Q,
     "2022-11-01", "2022-11-10", "range", "date", False, False),
    ("What movie did Tim just finish watching on 8th December, 2023?", Q,
     "2023-12-08", "2023-12-08", "day", "date", False, False),
    ("When did Nate win his third tourney? The week before 3June, 2022", Q,
     "2022-05-27", "2022-06-02", "week", "date", False, False),
    # Days relative to the reference.
    ("I saw her yesterday.", W, "2023-07-11", "2023-07-11", "day", "date", True, False),
    ("We talked the day before yesterday", W,
     "2023-07-10", "2023-07-10", "day", "date", True, False),
    ("It is raining today", W, "2023-07-12", "2023-07-12", "day", "date", True, False),
    ("Are you free tonight?", W, "2023-07-12", "2023-07-12", "day", "date", True, False),
    ("I ran this morning", W, "2023-07-12", "2023-07-12", "day", "date", True, False),
    ("See you tomorrow", W, "2023-07-13", "2023-07-13", "day", "date", True, False),
    ("The party is the day after tomorrow", W,
     "2023-07-14", "2023-07-14", "day", "date", True, False),
    ("Last night was fun", W, "2023-07-11", "2023-07-11", "day", "date", True, False),
    # Weekdays: bare/"on" is on or before the reference, "last" strictly before.
    ("I called him last Friday", W, "2023-07-07", "2023-07-07", "day", "date", True, False),
    ("this past Monday was busy", W, "2023-07-10", "2023-07-10", "day", "date", True, False),
    ("I went there on Wednesday", W, "2023-07-12", "2023-07-12", "day", "date", True, False),
    ("Monday I went swimming", W, "2023-07-10", "2023-07-10", "day", "date", True, False),
    ("Let's meet next Friday", W, "2023-07-14", "2023-07-14", "day", "date", True, False),
    ("this coming Monday works", W, "2023-07-17", "2023-07-17", "day", "date", True, False),
    ("The show is this Friday", W, "2023-07-14", "2023-07-14", "day", "date", True, False),
    ("last Friday night was wild", W, "2023-07-07", "2023-07-07", "day", "date", True, False),
    ("on Sat we hiked", W, "2023-07-08", "2023-07-08", "day", "date", True, False),
    ("see you next Tues", W, "2023-07-18", "2023-07-18", "day", "date", True, False),
    ("I saw it last Thurs", W, "2023-07-06", "2023-07-06", "day", "date", True, False),
    # Weeks, weekends, months, years.
    ("I was sick last week", W, "2023-07-03", "2023-07-11", "week", "date", True, False),
    ("busy this week", W, "2023-07-10", "2023-07-16", "week", "date", True, False),
    ("free next week", W, "2023-07-17", "2023-07-23", "week", "date", True, False),
    ("what a last weekend", W, "2023-07-08", "2023-07-09", "weekend", "date", True, False),
    ("plans for this weekend", W, "2023-07-15", "2023-07-16", "weekend", "date", True, False),
    ("plans for next weekend", W, "2023-07-22", "2023-07-23", "weekend", "date", True, False),
    ("we met last weekend", "2023-07-15",
     "2023-07-08", "2023-07-09", "weekend", "date", True, False),
    ("this past weekend was great", "2023-07-17",
     "2023-07-15", "2023-07-16", "weekend", "date", True, False),
    ("I moved last month", W, "2023-06-01", "2023-06-30", "month", "date", True, False),
    ("I move next month", W, "2023-08-01", "2023-08-31", "month", "date", True, False),
    ("a great this year", W, "2023-01-01", "2023-12-31", "year", "date", True, False),
    ("I graduated last year", W, "2022-01-01", "2022-12-31", "year", "date", True, False),
    ("maybe next year", W, "2024-01-01", "2024-12-31", "year", "date", True, False),
    # Seasons: northern meteorological; winter 2022 is December 2022 to February 2023.
    ("I went to Spain last summer", W,
     "2022-06-01", "2022-08-31", "season", "date", True, False),
    ("We go this summer", W, "2023-06-01", "2023-08-31", "season", "date", True, False),
    ("We go next summer", W, "2024-06-01", "2024-08-31", "season", "date", True, False),
    ("It snowed a lot last winter", W,
     "2022-12-01", "2023-02-28", "season", "date", True, False),
    ("I interned in summer 2022", Q, "2022-06-01", "2022-08-31", "season", "date", False, False),
    ("during the summer of 2022", Q, "2022-06-01", "2022-08-31", "season", "date", False, False),
    ("skiing in winter 2022", Q, "2022-12-01", "2023-02-28", "season", "date", False, False),
    ("I start school in the fall", W, "2023-09-01", "2023-11-30", "season", "date", False, True),
    ("I love summer", W, "2023-06-01", "2023-08-31", "season", "date", False, True),
    # Counts: "N units ago", "in N units", fuzzy counts widen the span.
    ("I quit 3 weeks ago", W, "2023-06-19", "2023-06-25", "week", "date", True, False),
    ("I quit a month ago", W, "2023-06-01", "2023-06-30", "month", "date", True, False),
    ("a couple of days ago", W, "2023-07-10", "2023-07-10", "day", "date", True, False),
    ("I saw it a few days ago", W, "2023-07-08", "2023-07-10", "range", "date", True, False),
    ("a few weeks ago I ran", W, "2023-06-12", "2023-07-02", "range", "date", True, False),
    ("several days ago", W, "2023-07-05", "2023-07-09", "range", "date", True, False),
    ("I leave in 3 days", W, "2023-07-15", "2023-07-15", "day", "date", True, False),
    ("I leave in two weeks", W, "2023-07-24", "2023-07-30", "week", "date", True, False),
    ("I leave in a month", W, "2023-08-01", "2023-08-31", "month", "date", True, False),
    ("back 10 days from now", W, "2023-07-22", "2023-07-22", "day", "date", True, False),
    # Durations end at the reference.
    ("I've had them 3 years now", W,
     "2020-07-12", "2023-07-12", "range", "duration", True, False),
    ("for the past two weeks I trained", W,
     "2023-06-28", "2023-07-12", "range", "duration", True, False),
    ("I stayed for two months", W,
     "2023-05-12", "2023-07-12", "range", "duration", True, False),
    ("I've been vegan for about 5 years", W,
     "2018-07-12", "2023-07-12", "range", "duration", True, False),
    ("I have lived here since 2016", W,
     "2016-01-01", "2023-07-12", "range", "duration", True, False),
    ("I have been running since May", W,
     "2023-05-01", "2023-07-12", "range", "duration", True, False),
    ("We've been friends since last year", W,
     "2022-01-01", "2023-07-12", "range", "duration", True, False),
    ("ever since the beginning of 2020", W,
     "2020-01-01", "2023-07-12", "range", "duration", True, False),
    # Vague expressions.
    ("I've been painting for a while", W,
     "2022-07-12", "2023-07-12", "range", "vague", True, False),
    ("the past few days were hard", W,
     "2023-07-08", "2023-07-12", "range", "vague", True, False),
    ("I have been reading recently", W,
     "2023-06-12", "2023-07-12", "range", "vague", True, False),
    ("nothing much lately", W, "2023-06-12", "2023-07-12", "range", "vague", True, False),
    ("I went there a while ago", W,
     "2022-07-12", "2023-06-28", "range", "vague", True, False),
    ("Hope to see you soon", W, "2023-07-12", "2023-08-11", "range", "vague", True, False),
    ("I saw him the other day", W, "2023-07-05", "2023-07-11", "range", "date", True, False),
    # Absolute dates in their many spellings.
    ("It was May 5, 2023.", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("It was 5 May 2023.", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("It was 5 May, 2023.", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("on the 5th of May 2023", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("on Friday, May 5, 2023", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("logged 2023-05-05 at noon", Q, "2023-05-05", "2023-05-05", "day", "date", False, False),
    ("due 5/6/2023", Q, "2023-05-06", "2023-05-06", "day", "date", False, False),
    ("due 25/12/2023", Q, "2023-12-25", "2023-12-25", "day", "date", False, False),
    ("I started in May 2023", Q, "2023-05-01", "2023-05-31", "month", "date", False, False),
    ("I started in Jan 2022", Q, "2022-01-01", "2022-01-31", "month", "date", False, False),
    ("on Sept. 3, 2021", Q, "2021-09-03", "2021-09-03", "day", "date", False, False),
    ("Her birthday is May 5th", Q, "2024-05-05", "2024-05-05", "day", "date", False, True),
    ("It was the 5th of May", W, "2023-05-05", "2023-05-05", "day", "date", False, True),
    ("We left on 5 July", "2023-12-01", "2023-07-05", "2023-07-05", "day", "date", False, True),
    ("We go in August", W, "2023-08-01", "2023-08-31", "month", "date", False, True),
    ("We went in March", W, "2023-03-01", "2023-03-31", "month", "date", False, True),
    ("I visited last May", W, "2023-05-01", "2023-05-31", "month", "date", True, False),
    ("I visit next March", W, "2024-03-01", "2024-03-31", "month", "date", True, False),
    ("on the 20th.", "2023-08-17", "2023-07-20", "2023-07-20", "day", "date", True, False),
    # Years and decades.
    ("I moved in 2019", Q, "2019-01-01", "2019-12-31", "year", "date", False, False),
    ("back in 2015 we met", Q, "2015-01-01", "2015-12-31", "year", "date", False, False),
    ("in the year 2000", Q, "2000-01-01", "2000-12-31", "year", "date", False, False),
    ("music in the 90s", Q, "1990-01-01", "1999-12-31", "range", "date", False, False),
    ("cars in the 1980s", Q, "1980-01-01", "1989-12-31", "range", "date", False, False),
    ("between 2019 and 2021", Q, "2019-01-01", "2021-12-31", "range", "date", False, False),
    # Modifiers: thirds, ordinal weeks, before/after.
    ("I started early 2023", Q, "2023-01-01", "2023-05-01", "range", "date", False, False),
    ("around mid-May 2023", Q, "2023-05-11", "2023-05-21", "range", "date", False, False),
    ("in late June 2022", Q, "2022-06-21", "2022-06-30", "range", "date", False, False),
    ("at the end of last year", W, "2022-09-02", "2022-12-31", "range", "date", True, False),
    ("Last week of June I'm off", W, "2023-06-24", "2023-06-30", "week", "date", False, True),
    ("the first week of June 2023", Q, "2023-06-01", "2023-06-07", "week", "date", False, False),
    ("the last week of February 2023", Q,
     "2023-02-22", "2023-02-28", "week", "date", False, False),
    ("the day after 3 May 2023", Q, "2023-05-04", "2023-05-04", "day", "date", False, False),
    ("the weekend before 20 October 2023", Q,
     "2023-10-14", "2023-10-15", "weekend", "date", False, False),
    ("the Friday before 15 July 2023", Q, "2023-07-14", "2023-07-14", "day", "date", False, False),
    ("two days before Christmas 2022", Q, "2022-12-23", "2022-12-23", "day", "date", False, False),
    ("the week after 1 March 2023", Q, "2023-03-02", "2023-03-08", "week", "date", False, False),
    ("the month before June 2023", Q, "2023-05-01", "2023-05-31", "month", "date", False, False),
    # Ranges.
    ("from May 5 to May 9, 2023", Q, "2023-05-05", "2023-05-09", "range", "date", False, False),
    ("trip 3-5 June 2022", Q, "2022-06-03", "2022-06-05", "range", "date", False, False),
    ("trip August 11-15, 2023", Q, "2023-08-11", "2023-08-15", "range", "date", False, False),
    ("between 11 and 15 August 2023", Q,
     "2023-08-11", "2023-08-15", "range", "date", False, False),
    ("from March 2023 to June 2023", Q,
     "2023-03-01", "2023-06-30", "range", "date", False, False),
    ("between May and July 2023", Q, "2023-05-01", "2023-07-31", "range", "date", False, False),
    ("from Monday to Wednesday", W, "2023-07-10", "2023-07-12", "range", "date", True, False),
    # Holidays: the nearest occurrence unless a year is written.
    ("home at Christmas", W, "2023-12-25", "2023-12-25", "day", "date", False, True),
    ("home last Christmas", W, "2022-12-25", "2022-12-25", "day", "date", True, False),
    ("on Christmas Eve 2022", W, "2022-12-24", "2022-12-24", "day", "date", False, False),
    ("New Year\u2019s Eve party", W, "2023-12-31", "2023-12-31", "day", "date", False, True),
    ("on New Year's Day", W, "2024-01-01", "2024-01-01", "day", "date", False, True),
    ("a Halloween costume", W, "2023-10-31", "2023-10-31", "day", "date", False, True),
    ("on Valentine's Day", W, "2023-02-14", "2023-02-14", "day", "date", False, True),
    ("fireworks on the Fourth of July", W,
     "2023-07-04", "2023-07-04", "day", "date", False, True),
    ("dinner at Thanksgiving 2023", W, "2023-11-23", "2023-11-23", "day", "date", False, False),
    ("Independence Day parade", W, "2023-07-04", "2023-07-04", "day", "date", False, True),
]  # fmt: skip

NEGATIVES = [
    "I may go there",
    "Let's march on",
    "We are here",
    "Sat down and relaxed",
    "We had 2000 people at the event",
    "a crowd of 2000 people",
    "I scored 2022 points",
    "I paid $2022 for it",
    "Sun was shining",
    "I'm playing the second game",
    "Hope to see you soon-ish",  # "-ish" makes it no time: documented choice
    "Will you be there?",
    "June is my sister's name",  # a bare month followed by "is" reads as a name
    "Jan said hi",  # bare abbreviations need a date context
    "I had a bad fall",
    "February 30 2023",  # invalid dates are skipped, not read as "February"
    "the 31st, we left",  # 31 February does not exist (reference 15 March)
    "I live on the 3rd floor",
    "",
    "\U0001f600\U0001f389 ok",
]


def _ref(iso: str) -> date:
    return date.fromisoformat(iso)


@pytest.mark.parametrize("row", CASES, ids=[row[0][:50] for row in CASES])
def test_resolves(row: Row) -> None:
    text, ref, start, end, grain, kind, relative, recurring = row
    spans = find_times(text, _ref(ref))
    got = [(str(s.start), str(s.end), s.grain, s.kind, s.relative, s.recurring) for s in spans]
    assert got == [(start, end, grain, kind, relative, recurring)], [s.text for s in spans]
    assert text[spans[0].offset : spans[0].offset + len(spans[0].text)] == spans[0].text


def test_table_is_large() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize("text", NEGATIVES)
def test_finds_nothing(text: str) -> None:
    assert find_times(text, date(2023, 3, 15)) == []
    assert find_times(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I went there yesterday", "yesterday"),
        ("I won my tournament on Friday!", "Friday"),
        ("Where was Tim in the week before 16 November 2023?", "the week before 16 November 2023"),
        ("Where was John between August 11 and August 15 2023?",
         "between August 11 and August 15 2023"),
        ("I've had them for 3 years now", "for 3 years now"),
        ("went in the beginning of November 2022", "the beginning of November 2022"),
        ("I have lived here since 2016.", "since 2016"),
        ("It was last Friday night", "last Friday night"),
    ],
)  # fmt: skip
def test_text_is_the_expression(text: str, expected: str) -> None:
    (span,) = find_times(text, date(2023, 7, 12))
    assert span.text == expected
    assert text[span.offset : span.offset + len(span.text)] == expected


def test_several_expressions_in_order() -> None:
    text = "I was in Paris last week, and will go to Rome next month or in 2025."
    spans = find_times(text, date(2023, 7, 12))
    assert [s.text for s in spans] == ["last week", "next month", "2025"]
    assert [s.offset for s in spans] == [text.index(s.text) for s in spans]


def test_capitalisation_of_may_and_march() -> None:
    assert find_times("in may we trust", date(2023, 7, 12)) == []
    assert find_times("they march 5 miles", date(2023, 7, 12)) == []
    assert [s.text for s in find_times("in May we rest", date(2023, 7, 12))] == ["May"]
    assert [s.start for s in find_times("on March 3", date(2023, 7, 12))] == [date(2023, 3, 3)]


def test_without_reference_skips_relative_and_keeps_absolute() -> None:
    assert find_times("I saw her yesterday and last Friday") == []
    (span,) = find_times("I moved in May 2023")
    assert (span.start, span.end, span.recurring) == (date(2023, 5, 1), date(2023, 5, 31), False)
    (span,) = find_times("I like to travel in May")
    assert span.recurring and span.start.month == 5 and span.start.day == 1
    (span,) = find_times("I have lived here since 2016")  # no reference: just the year
    assert (span.text, span.grain, span.kind) == ("2016", "year", "date")


def test_datetime_reference() -> None:
    (span,) = find_times("see you tomorrow", datetime(2023, 7, 12, 23, 59))
    assert span.start == date(2023, 7, 13)


def test_offsets_index_the_original_text() -> None:
    text = "\u0130\u0130 \u00e9t\u00e9 \U0001f600 yesterday \u2019 ok"  # "İ" grows when lowercased
    (span,) = find_times(text, date(2023, 7, 12))
    assert text[span.offset : span.offset + len(span.text)] == "yesterday"


def test_dates_out_of_range_are_skipped() -> None:
    assert find_times("see you next year", date(9999, 6, 1)) == []
    assert find_times("see you yesterday", date(1, 1, 1)) == []
    assert find_times("in 2 months", date(9999, 12, 1)) == []


def test_huge_input() -> None:
    text = "We met on 5 May 2023 and again yesterday. " * 5000
    spans = find_times(text, date(2023, 7, 12))
    assert len(spans) == 10000
    assert spans[-1].offset == len(text) - len("yesterday. ")


def _span(start: str, end: str, grain: str, kind: str = "date", rec: bool = False) -> TimeSpan:
    return TimeSpan("x", 0, _ref(start), _ref(end), grain, kind, False, rec)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (_span("2023-05-07", "2023-05-07", "day"), "7 May 2023"),
        (_span("2023-05-01", "2023-05-31", "month"), "May 2023"),
        (_span("2023-05-08", "2023-05-14", "week"), "May 2023"),
        (_span("2023-05-29", "2023-06-04", "week"), "May 2023 June 2023"),
        (_span("2023-05-27", "2023-05-28", "weekend"), "May 2023"),
        (_span("2022-06-01", "2022-08-31", "season"), "summer 2022"),
        (_span("2022-12-01", "2023-02-28", "season"), "winter 2022"),
        (_span("2022-01-01", "2022-12-31", "year"), "2022"),
        (_span("2023-08-11", "2023-08-15", "range"), "August 2023"),
        (_span("2023-07-25", "2023-09-02", "range"), "July 2023 August 2023 September 2023"),
        (_span("2016-01-01", "2019-07-12", "range", "duration"), "2016 2017 2018 2019"),
        (_span("1990-01-01", "2023-12-31", "range"), "1990 2023"),
        (_span("2023-06-12", "2023-07-12", "range", "vague"), ""),
    ],
)
def test_describe(span: TimeSpan, words: str) -> None:
    assert describe(span) == words


def test_describe_found_spans() -> None:
    (span,) = find_times("I went to a support group yesterday", date(2023, 5, 8))
    assert describe(span) == "7 May 2023"
    assert "Friday" not in describe(find_times("on Friday", date(2023, 7, 12))[0])


def test_month_day_match() -> None:
    (may,) = find_times("Which outdoor spot did Joanna visit in May?", date(2024, 1, 1))
    assert month_day_match(may, date(2019, 5, 20))
    assert month_day_match(may, date(2023, 5, 31))
    assert not month_day_match(may, date(2023, 6, 1))
    (fixed,) = find_times("in May 2023", date(2024, 1, 1))
    assert month_day_match(fixed, date(2023, 5, 20))
    assert not month_day_match(fixed, date(2022, 5, 20))
    (winter,) = find_times("I love winter", date(2023, 7, 12))
    assert month_day_match(winter, date(2001, 1, 15))
    assert month_day_match(winter, date(2001, 12, 1))
    assert not month_day_match(winter, date(2001, 3, 1))
    feb = _span("2023-02-01", "2023-02-28", "month", rec=True)
    assert month_day_match(feb, date(2024, 2, 29))
    (week,) = find_times("the second week of November", date(2024, 1, 1))
    assert month_day_match(week, date(2010, 11, 8))
    assert not month_day_match(week, date(2010, 11, 15))


# Property tests.

PHRASES = [
    "yesterday", "last Friday", "May 5, 2023", "in May", "two weeks ago", "since 2016",
    "the week before", "between", "and", "from", "to", "-", "early", "the end of", "the 15th",
    "3June, 2022", "summer", "last summer", "Christmas", "a few days ago", "for 3 years now",
    "in 2019", "2023-05-05", "5/5/2023", "on", "the", "second week of", "November", "soon",
    "recently", "Sat", "Sun", "may", "March", "in the 90s", ",", ".", "?", "\u2019s", "\u0130",
]  # fmt: skip
FILLERS = ["okay", "hello there", "so anyway", "cool stuff"]


def _check_spans(text: str, spans: list[TimeSpan]) -> None:
    last_end = 0
    for s in spans:
        assert s.start <= s.end
        assert text[s.offset : s.offset + len(s.text)] == s.text
        assert s.offset >= last_end and s.text
        last_end = s.offset + len(s.text)
        assert s.grain in {"day", "week", "weekend", "month", "season", "year", "range"}
        assert s.kind in {"date", "duration", "vague"}


@settings(max_examples=300, deadline=None)
@given(st.text(), st.one_of(st.none(), st.dates()))
def test_never_raises_on_any_text(text: str, ref: date | None) -> None:
    _check_spans(text, find_times(text, ref))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(PHRASES), max_size=12),
    st.one_of(st.none(), st.dates()),
)
def test_invariants_on_time_like_text(words: list[str], ref: date | None) -> None:
    text = " ".join(words)
    spans = find_times(text, ref)
    _check_spans(text, spans)
    for s in spans:
        describe(s)
        month_day_match(s, date(2020, 2, 29))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(CASES),
    st.lists(st.sampled_from(FILLERS), min_size=1, max_size=3),
    st.lists(st.sampled_from(FILLERS), max_size=3),
)
def test_unrelated_words_shift_offsets_not_dates(
    row: Row, before: list[str], after: list[str]
) -> None:
    text, ref = row[0], _ref(row[1])
    prefix = " ".join(before) + ". "
    padded = prefix + text + (". " + " ".join(after) if after else "")
    plain, shifted = find_times(text, ref), find_times(padded, ref)
    assert [(s.start, s.end, s.grain) for s in shifted] == [
        (s.start, s.end, s.grain) for s in plain
    ]
    assert [s.offset for s in shifted] == [s.offset + len(prefix) for s in plain]
