"""Time expressions in chat text ("yesterday", "in May 2023") resolved to day ranges by regex."""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

__all__ = ["TimeSpan", "describe", "find_times", "month_day_match"]


@dataclass(frozen=True)
class TimeSpan:
    """One time expression of a text, resolved to the inclusive range of days `start`..`end`.

    `text` is the expression as written, found at `offset` in the input. `grain` is "day",
    "week", "weekend", "month", "season", "year" or "range"; `kind` is "date", "duration"
    (up to the reference: "for 3 years", "since 2016") or "vague" ("recently"). `relative`
    means it was resolved against the reference ("yesterday", "last May"); `recurring` means
    no year was written ("in May"): the range is then the occurrence nearest the reference,
    though any year may be meant (see `month_day_match`).
    """

    text: str
    offset: int
    start: date
    end: date
    grain: str
    kind: str
    relative: bool
    recurring: bool


@dataclass(frozen=True)
class _Val:
    start: date
    end: date
    grain: str
    kind: str = "date"
    relative: bool = False
    recurring: bool = False


@dataclass(frozen=True)
class _Hit:
    i: int
    j: int
    val: _Val


_Span = tuple[date, date]
_Handler = Callable[[re.Match[str], date], _Val | None]
_Modifier = Callable[[re.Match[str], _Val, date, bool], _Val | None]

# Patterns match a lowercased copy of the text (same length, so offsets carry over) because
# case-insensitive matching is much slower; "May" and "March" are checked for capitals apart.
_F = re.ASCII
_BLOCK = _Val(date.min, date.min, "block")  # an invalid date: reserves its text, yields nothing
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")  # fmt: skip
_ABBREVIATIONS = {"jan": 1, "feb": 2, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
                  "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12}  # fmt: skip
_MONTHS = {name.lower(): k for k, name in enumerate(_MONTH_NAMES, 1)} | _ABBREVIATIONS
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_SEASON_NAMES = {3: "spring", 6: "summer", 9: "autumn", 12: "winter"}
_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
              "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
              "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
              "nineteen": 19, "twenty": 20, "thirty": 30}  # fmt: skip
_DAY, _RANGE, _VAGUE = ("day", "date"), ("range", "date"), ("range", "vague")
_FIXED = {  # phrases at fixed distances from the reference: (first day, last day, grain, kind)
    "the day before yesterday": (-2, -2, *_DAY), "yesterday": (-1, -1, *_DAY),
    "last night": (-1, -1, *_DAY), "today": (0, 0, *_DAY), "tonight": (0, 0, *_DAY),
    "this morning": (0, 0, *_DAY), "this afternoon": (0, 0, *_DAY),
    "this evening": (0, 0, *_DAY), "tomorrow": (1, 1, *_DAY),
    "the day after tomorrow": (2, 2, *_DAY), "the other day": (-7, -1, *_RANGE),
    "recently": (-30, 0, *_VAGUE), "lately": (-30, 0, *_VAGUE),
    "not long ago": (-30, 0, *_VAGUE), "not so long ago": (-30, 0, *_VAGUE),
    "a while ago": (-365, -14, *_VAGUE), "quite a while ago": (-365, -14, *_VAGUE),
    "a while back": (-365, -14, *_VAGUE), "some time ago": (-365, -14, *_VAGUE),
    "for a while": (-365, 0, *_VAGUE), "for a little while": (-365, 0, *_VAGUE),
    "soon": (0, 30, *_VAGUE),
}  # fmt: skip
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
             "fourth": 4, "4th": 4, "last": 0, "final": 0}  # fmt: skip
_REL_NORM = {"last": "last", "past": "last", "this past": "last", "next": "next",
             "coming": "next", "this coming": "next", "this": "this"}  # fmt: skip
_THIRDS = {"beginning": 0, "start": 0, "early": 0, "middle": 1, "mid": 1, "end": 2, "late": 2}

# Regex pieces, all lowercase.
_WD_FULL = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_WD_ABBR = r"mon|tues|tue|wed|thurs|thur|thu|fri|sat|sun"
_WEEKDAYS = _WD_FULL.split("|")
_MON_WORDS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|(?:jan|feb|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_MON = rf"(?<![a-z])(?P<mon>{_MON_WORDS})(?![a-z])"
_YR = r"(?:19|20)\d\d(?!\d)"
_OPT_YEAR = rf"(?:\s*,?\s*(?:of\s+)?(?P<y>{_YR}))?"
_ORD = r"(?:st|nd|rd|th)?"
_DNUM = rf"(?<![\w.,:/$])(?P<d>\d{{1,2}}){_ORD}(?!\d)"
_WDP = rf"(?:(?<![a-z])(?:{_WD_FULL}|{_WD_ABBR}),?\s+(?:the\s+)?)?"  # "Friday, May 5"
_REL = r"(?P<rel>last|this\s+past|this\s+coming|coming|next|this)"
_NUM = r"\d{1,3}|a\s+couple(?:\s+of)?|couple\s+of|a\s+few|few|several|an?|" + "|".join(
    sorted(_NUM_WORDS, key=len, reverse=True)
)
_CTX = (
    r"in|on|of|since|until|till|by|early|mid|late|during|before|after|from|to|between|through"
    r"|around|last|next|this|coming|past|every|each|throughout"
)
_DASH = r"-|\u2013|\u2014"
_DR_C = rf"\s*(?P<c>{_DASH}|to|and|through|until|till)\s*"
_AMOUNT = (  # "of 2000 people" is a count, not a year
    r"(?![.,]\d)(?!\s*%)(?!\s+(?:people|persons|points|dollars|euros|pounds|miles|km|steps"
    r"|words|pages|calories|followers|views|likes|members|fans|times|copies|votes)\b)"
)
_TRIGGER_WORDS = (
    "yesterday|today|tonight|tomorrow|night|morning|afternoon|evening|day|days|week|weeks"
    "|weekend|weekends|month|months|year|years|ago|recently|lately|soon|while|christmas"
    "|halloween|valentine|valentines|thanksgiving|independence|fourth"
)


def _trie(words: Iterable[str]) -> str:
    """An alternation grouped by first letter, which the regex engine tries faster."""
    groups: dict[str, list[str]] = {}
    for w in sorted(set(words), key=len, reverse=True):
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "|".join(f"{c}(?:{'|'.join(rest)})" for c, rest in sorted(groups.items()))


# One cheap pass finds the words every time expression needs; they decide which rules run.
_ALL_WORDS = [*_TRIGGER_WORDS.split("|"), *_MONTHS, *_SEASONS, *_WEEKDAYS, *_WD_ABBR.split("|")]
_TRIGGER = re.compile(rf"(?<![a-z])(?:[0-9]|(?:{_trie(_ALL_WORDS)})(?![a-z]))", _F)
_OF = re.compile(r"\s+of(?![a-z])", _F)
_SEASON_CTX = re.compile(
    r"(?<![a-z])(?:in|during|this|last|next|early|late|mid|since|until|by|of|through)[\s-]+\Z", _F
)
_NAME_AFTER = re.compile(r"\s+(?:is|was|has|had|said|says|told|asked)\b|['\u2019]s\b", _F)


def _words(s: str | None) -> str:
    return " ".join((s or "").lower().split())


def _norm_rel(rel: str | None) -> str | None:
    return _REL_NORM.get(_words(rel))


def _day(d: date) -> _Span:
    return d, d


def _monday(d: date) -> date:
    return d - timedelta(d.weekday())


def _last_day(year: int, month: int) -> int:
    return 29 if month == 2 and calendar.isleap(year) else _MONTH_DAYS[month - 1]


def _month_span(year: int, month: int) -> _Span:
    return date(year, month, 1), date(year, month, _last_day(year, month))


def _add_months(d: date, n: int) -> date:
    y, m0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m0 + 1, min(d.day, _last_day(y, m0 + 1)))


def _season_span(year: int, first_month: int) -> _Span:
    start = date(year, first_month, 1)
    return start, _add_months(start, 3) - timedelta(1)


def _shift_years(s: date, e: date, k: int) -> _Span:
    """`s`..`e` moved by `k` years (29 February becomes the 28th in common years)."""
    return _add_months(s, 12 * k), _add_months(e, 12 * k)


def _unit_span(unit: str, ref: date, step: int) -> _Span:
    """The calendar week/weekend/month/year of `ref`, moved by `step` units."""
    if unit == "week":
        s = _monday(ref) + timedelta(7 * step)
        return s, s + timedelta(6)
    if unit == "weekend":  # the Saturday-Sunday of ref's Monday-Sunday week
        s = _monday(ref) + timedelta(5 + 7 * step)
        return s, s + timedelta(1)
    if unit == "month":
        first = _add_months(ref.replace(day=1), step)
        return _month_span(first.year, first.month)
    return date(ref.year + step, 1, 1), date(ref.year + step, 12, 31)


def _occurrence(occ: Callable[[int], _Span], ref: date, rel: str | None) -> _Span:
    """The yearly period `occ(year)` picked by `rel`: last, next, this, or None for nearest."""
    spans: list[_Span] = []
    for width in (1, 4):  # three years suffice unless the day is 29 February
        for year in range(ref.year - width, ref.year + width + 1):
            try:
                spans.append(occ(year))
            except ValueError:
                continue
        if spans:
            break
    if rel == "last":  # the latest that ended before ref
        found = [s for s in spans if s[1] < ref][-1:]
    elif rel == "next":  # the first that starts after ref
        found = [s for s in spans if s[0] > ref][:1]
    elif rel == "this":
        found = [s for s in spans if s[0] <= ref <= s[1] or s[0].year == ref.year][:1]
    else:  # the one whose middle is closest to ref
        twice = 2 * ref.toordinal()
        found = sorted(spans, key=lambda s: abs(s[0].toordinal() + s[1].toordinal() - twice))[:1]
    if not found:
        raise ValueError("no occurrence")
    return found[0]


def _pick(
    occ: Callable[[int], _Span], year: str | None, rel: str | None, ref: date, grain: str
) -> _Val:
    """The period in the written year, else the one `rel` picks (None: nearest, recurring)."""
    if year:
        s, e = occ(int(year))
        return _Val(s, e, grain)
    s, e = _occurrence(occ, ref, rel)
    return _Val(s, e, grain, relative=rel is not None, recurring=rel is None)


def _third(s: date, e: date, which: int) -> _Span | None:
    n = (e - s).days + 1
    if n < 3:
        return None
    k = n // 3
    if which == 0:
        return s, s + timedelta(k - 1)
    if which == 2:
        return e - timedelta(k - 1), e
    return s + timedelta(k), e - timedelta(k)


def _count(s: str) -> tuple[int, int]:
    """A written count as (low, high): "3" -> (3, 3), "a few" -> (2, 4), "several" -> (3, 7)."""
    w = _words(s)
    if w.isdigit():
        return int(w), int(w)
    if "couple" in w:
        return 2, 2
    if "few" in w:
        return 2, 4
    if w == "several":
        return 3, 7
    n = 1 if w in ("a", "an") else _NUM_WORDS[w]
    return n, n


def _period(unit: str, ref: date, k: int) -> _Span:
    """The day/week/weekend/month/year `k` units before `ref` (after it when k < 0)."""
    if unit == "day":
        return _day(ref - timedelta(k))
    if unit == "week":
        return _unit_span("week", ref - timedelta(7 * k), 0)
    return _unit_span(unit, ref, -k)


def _back(unit: str, ref: date, n: int) -> date:
    if unit == "day":
        return ref - timedelta(n)
    if unit in ("week", "weekend"):
        return ref - timedelta(7 * n)
    return _add_months(ref, -n * (12 if unit == "year" else 1))


def _holiday(name: str, year: int) -> date:
    if "christmas" in name:
        return date(year, 12, 24 if "eve" in name else 25)
    if "new year" in name:
        return date(year, 12, 31) if "eve" in name else date(year, 1, 1)
    if "thanksgiving" in name:  # US: the fourth Thursday of November
        first = date(year, 11, 1)
        return first + timedelta((3 - first.weekday()) % 7 + 21)
    fixed = {"halloween": (10, 31), "valentine": (2, 14)}
    month, day = next((v for k, v in fixed.items() if k in name), (7, 4))
    return date(year, month, day)


# Handlers, one per rule: a match to a value, or None when it is not a time after all.


def _h_fixed(m: re.Match[str], ref: date) -> _Val:
    lo, hi, grain, kind = _FIXED[_words(m[0])]
    return _Val(ref + timedelta(lo), ref + timedelta(hi), grain, kind, relative=True)


def _h_weekday(m: re.Match[str], ref: date) -> _Val | None:
    wd, rel = m["wd"], _norm_rel(m["rel"])
    if len(wd) < 6 and m["rel"] is None and m["on"] is None:  # "Sat down", "Sun was shining"
        return None
    target = [w[:3] for w in _WEEKDAYS].index(wd[:3])
    back = (ref.weekday() - target) % 7
    if rel == "last":
        d = ref - timedelta(back or 7)
    elif rel == "next":
        d = ref + timedelta((target - ref.weekday()) % 7 or 7)
    elif rel == "this":
        d = _monday(ref) + timedelta(target)
    else:  # bare or "on": on or before the reference
        d = ref - timedelta(back)
    return _Val(d, d, "day", relative=True)


def _h_rel_unit(m: re.Match[str], ref: date) -> _Val:
    rel, unit = _norm_rel(m["rel"]), m["u"]
    if unit == "week" and rel == "last":  # both the calendar week before and the 7 days before
        return _Val(_monday(ref) - timedelta(7), ref - timedelta(1), "week", relative=True)
    step = {"last": -1, "this": 0, "next": 1}[rel or "this"]
    if unit == "weekend" and rel == "next" and m["rel"] != "next":  # "this coming weekend"
        step = 0 if _unit_span("weekend", ref, 0)[0] > ref else 1
    s, e = _unit_span(unit, ref, step)
    return _Val(s, e, unit, relative=True)


def _h_count(m: re.Match[str], ref: date) -> _Val | None:
    unit, tail, prep = m["u"], _words(m["tail"]), m["prep"]
    if m["n"] is None:  # only "the past week/month/year" may omit the count
        if not m["past"] or unit in ("day", "weekend") or _OF.match(m.string, m.end()):
            return None
        lo = hi = 1
    else:
        lo, hi = _count(m["n"])
    if m["past"]:
        kind = "duration" if lo == hi else "vague"
        return _Val(_back(unit, ref, hi), ref, "range", kind, relative=True)
    if tail in ("ago", "back", "from now") or (prep == "in" and not tail):
        sign = 1 if tail in ("ago", "back") else -1
        a, b = _period(unit, ref, sign * lo), _period(unit, ref, sign * hi)
        grain = unit if lo == hi else "range"
        return _Val(min(a[0], b[0]), max(a[1], b[1]), grain, relative=True)
    if (prep == "for" or tail == "now") and unit != "weekend":
        return _Val(_back(unit, ref, hi), ref, "range", "duration", relative=True)
    return None


def _h_season(m: re.Match[str], ref: date) -> _Val | None:
    name, rel = m["s"], _norm_rel(m["rel"])
    if not m["y"] and rel is None:
        if m["the"] and _OF.match(m.string, m.end()):  # "the summer of love"
            return None
        ctx = _SEASON_CTX.search(m.string, max(0, m.start() - 20), m.start())
        if name in ("fall", "spring") and ctx is None:  # "a bad fall", "a hot spring"
            return None
    first = _SEASONS[name]
    return _pick(lambda y: _season_span(y, first), m["y"], rel, ref, "season")


def _h_holiday(m: re.Match[str], ref: date) -> _Val:
    name = _words(m["h"])
    return _pick(lambda y: _day(_holiday(name, y)), m["y"], _norm_rel(m["rel"]), ref, "day")


def _h_day_month(m: re.Match[str], ref: date) -> _Val | None:
    month, last = _MONTHS[m["mon"].rstrip(".")], int(m["d"])
    first = int(m.groupdict().get("d1") or last)  # day ranges: "3-5 June", "August 11-15"
    if first != last and (first > last or (m["c"] == "and") != (m["pre"] == "between")):
        return None
    grain = "day" if first == last else "range"
    return _pick(lambda y: (date(y, month, first), date(y, month, last)), m["y"], None, ref, grain)


def _h_month(m: re.Match[str], ref: date) -> _Val | None:
    key, rel = m["mon"].rstrip("."), _norm_rel(m.groupdict().get("rel"))
    if m["ctx"] is None and not m["y"]:
        if key in ("may", "march") or key in _ABBREVIATIONS:
            return None  # common words ("may") or names ("Jan") unless in a date context
        if _NAME_AFTER.match(m.string, m.end()):
            return None  # "June is my sister's name"
    return _pick(lambda y: _month_span(y, _MONTHS[key]), m["y"], rel, ref, "month")


def _h_numeric(m: re.Match[str], ref: date) -> _Val:
    if m["y"]:  # ISO: 2023-05-08
        d = date(int(m["y"]), int(m["m"]), int(m["d"]))
    else:  # US: 5/8/2023 is 8 May; 25/12/2023 can only be day/month
        a, b = int(m["a"]), int(m["b"])
        d = date(int(m["yy"]), *((b, a) if a > 12 else (a, b)))
    return _Val(d, d, "day")


def _h_year(m: re.Match[str], ref: date) -> _Val | None:
    y1, y2 = int(m["y1"]), int(m["y"] or m["y1"])
    grain = "year" if y1 == y2 else "range"
    return _Val(date(y1, 1, 1), date(y2, 12, 31), grain) if y1 <= y2 else None


def _h_decade(m: re.Match[str], ref: date) -> _Val:
    c, d = m["c"] or "", int(m["d"])
    first = (int(c) * 100 if c.isdigit() else 1900 if d >= 3 else 2000) + 10 * d
    s, e = date(first, 1, 1), date(first + 9, 12, 31)
    s, e = (_third(s, e, _THIRDS[m["mod"]]) if m["mod"] else None) or (s, e)
    return _Val(s, e, "range")


def _h_ordinal(m: re.Match[str], ref: date) -> _Val:
    day = int(m["d"])
    first = ref.replace(day=1) if day <= ref.day else _add_months(ref.replace(day=1), -1)
    d = first.replace(day=day)
    return _Val(d, d, "day", relative=True)


_FIXED_RE = "|".join(k.replace(" ", r"\s+") for k in sorted(_FIXED, key=len, reverse=True))
# A rule is a regex, its handler, and sets of trigger words: the rule runs only if the text
# has a word of each set.
_DIGITS = (frozenset("0123456789"),)
_MONTH_WORDS = (frozenset(_MONTHS),)
_MONTH_DIGITS = (frozenset(_MONTHS), _DIGITS[0])
_UNITS = frozenset(["day", "week", "weekend", "month", "year"])
_RULES: list[tuple[re.Pattern[str], _Handler, tuple[frozenset[str], ...]]] = [
    (re.compile(rf"(?<![a-z])(?:{_FIXED_RE})(?![\w-])", _F),
     _h_fixed, (frozenset(w for k in _FIXED for w in k.split()),)),
    (re.compile(r"(?:(?<![a-z])(?P<on>on)\s+)?(?P<x>(?:(?<![a-z])(?P<rel>last|this\s+past|past"
                rf"|next|this\s+coming|coming|this)\s+)?(?<!the\s)(?<![a-z])"
                rf"(?P<wd>{_WD_FULL}|{_WD_ABBR})(?![a-z])"
                r"(?:\s+(?:night|morning|afternoon|evening)(?![a-z]))?)", _F),
     _h_weekday, (frozenset(_WEEKDAYS + _WD_ABBR.split("|")),)),
    (re.compile(rf"(?<![a-z]){_REL}\s+(?P<u>weekend|week|month|year)(?![a-z])"
                r"(?!\s+of(?![a-z]))", _F),
     _h_rel_unit, (_UNITS,)),
    (re.compile(r"(?:(?<![a-z])(?P<prep>for|over|in|during|within)\s+)?"
                r"(?:(?<![a-z])(?P<past>the\s+(?:past|last))\s+)?"
                r"(?:(?:about|around|almost|nearly|over|roughly)\s+)?"
                rf"(?:(?<![\w.,$])(?P<n>{_NUM})\s+)?(?<![a-z])(?P<u>day|weekend|week|month"
                r"|year)s?(?![a-z])(?P<tail>\s+(?:ago|back|now|from\s+now))?", _F),
     _h_count, (_UNITS | {unit + "s" for unit in _UNITS},)),
    (re.compile(rf"(?:(?<![a-z]){_REL}\s+|(?<![a-z])(?P<the>the)\s+)?(?<![a-z])"
                rf"(?P<s>spring|summer|autumn|fall|winter)(?![a-z]){_OPT_YEAR}", _F),
     _h_season, (frozenset(_SEASONS),)),
    (re.compile(r"(?:(?<![a-z])(?P<rel>last|next|this)\s+)?(?<![a-z])(?P<h>christmas\s+eve"
                r"|christmas(?:\s+day)?|new\s+year(?:['\u2019]?s)?\s+eve"
                r"|new\s+year(?:['\u2019]?s\s+day|['\u2019]s|s|\s+day)|halloween"
                r"|valentine(?:['\u2019]?s(?:\s+day)?|\s+day)|independence\s+day"
                rf"|(?:the\s+)?(?:fourth|4th)\s+of\s+july|thanksgiving)(?![a-z]){_OPT_YEAR}", _F),
     _h_holiday, (frozenset(["christmas", "year", "years", "halloween", "valentine",
                             "valentines", "independence", "fourth", "july", "thanksgiving"]),)),
    # Months: "5 May 2023", "May 5th", "May 2023", "in May", "last May", "3-5 June".
    (re.compile(rf"{_WDP}(?:(?<![a-z])the\s+)?{_DNUM}\s*(?:of\s+)?{_MON}{_OPT_YEAR}", _F),
     _h_day_month, _MONTH_DIGITS),
    (re.compile(rf"{_WDP}{_MON}\s*(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}(?![\d:])"
                rf"(?:(?:\s*,\s*|\s+)(?P<y>{_YR}))?", _F),
     _h_day_month, _MONTH_DIGITS),
    (re.compile(rf"(?P<ctx>){_MON},?\s*(?:of\s+)?(?P<y>{_YR})", _F), _h_month, _MONTH_DIGITS),
    (re.compile(rf"(?:(?<![a-z])(?P<ctx>(?:{_CTX})[\s-]+|(?:{_MON_WORDS})\s*"
                rf"(?:,|and|or|to|through|until|till|{_DASH})\s*)(?:the\s+)?"
                rf"(?:month\s+of\s+)?)?(?P<x>{_MON})(?P<y>)", _F),
     _h_month, _MONTH_WORDS),
    (re.compile(rf"(?P<ctx>)(?<![a-z]){_REL}\s+{_MON}(?!\s*\d)(?P<y>)", _F),
     _h_month, _MONTH_WORDS),
    (re.compile(r"(?:(?<![a-z])(?P<pre>between|from)\s+)?(?<![\w.,:/$])(?P<d1>\d{1,2})"
                rf"{_ORD}{_DR_C}{_DNUM}\s*(?:of\s+)?{_MON}{_OPT_YEAR}", _F),
     _h_day_month, _MONTH_DIGITS),
    (re.compile(rf"(?:(?<![a-z])(?P<pre>between|from)\s+)?{_MON}\s*(?P<d1>\d{{1,2}}){_ORD}"
                rf"{_DR_C}(?P<d>\d{{1,2}}){_ORD}(?![\d:])(?!\s*(?:of\s+)?(?:{_MON_WORDS})"
                rf"(?![a-z])){_OPT_YEAR}", _F),
     _h_day_month, _MONTH_DIGITS),
    # Numbers: "2023-05-08", "5/8/2023", "in 2019", "the 90s", "the 15th".
    (re.compile(r"(?<![\w.,/-])(?:(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)"
                r"(?P<d>\d{1,2})|(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<yy>\d{4}))(?!\d)", _F),
     _h_numeric, _DIGITS),
    (re.compile(r"(?<![a-z])(?:in|since|of|from|until|till|by|during|around|before|after"
                rf"|between|the\s+year|early|mid|late|circa)[\s-]+(?P<x>(?P<y1>{_YR})"
                rf"(?:\s*(?:and|to|until|till|through|{_DASH})\s*(?P<y>{_YR}))?){_AMOUNT}", _F),
     _h_year, _DIGITS),
    (re.compile(r"(?<![a-z])the\s+(?:(?P<mod>early|mid|late)[\s-]*)?(?P<c>19|20|['\u2019])?"
                r"(?P<d>\d)0['\u2019]?s(?![a-z0-9])", _F),
     _h_decade, _DIGITS),
    (re.compile(r"(?<![a-z])(?P<x>the\s+(?P<d>\d{1,2})(?:st|nd|rd|th))(?![a-z0-9])"
                r"(?=\s*(?:$|[^\w\s]|(?:after|before|and|but|when|at|in|for|so|because|then"
                r"|with|i|we|this|too)(?![a-z])))", _F),
     _h_ordinal, _DIGITS),
]  # fmt: skip


_Match = tuple[int, int, re.Match[str], _Handler]


def _matches(text: str, low: str, present: set[str]) -> list[_Match]:
    """Every match of every rule whose trigger words occur, with the text range it claims."""
    found: list[_Match] = []
    for regex, handler, needs in _RULES:
        if any(words.isdisjoint(present) for words in needs):
            continue
        use_x, use_mon = "x" in regex.groupindex, "mon" in regex.groupindex
        for m in regex.finditer(low):
            if use_mon and m["mon"] in ("may", "march") and text[m.start("mon")] != "M":
                continue  # "I may go", "let's march on"
            i, j = m.span("x") if use_x and m["x"] else m.span()
            found.append((i, j, m, handler))
    return found


def _select(found: list[_Match], ref: date) -> list[_Hit]:
    """Longest matches first, then leftmost, each kept unless it overlaps one kept before or
    is not a time after all; only matches that can still be kept are resolved."""
    starts: list[int] = []
    kept: list[_Hit] = []
    for i, j, m, handler in sorted(found, key=lambda c: (c[0] - c[1], c[0])):
        k = bisect.bisect_left(starts, i)
        if (k > 0 and kept[k - 1].j > i) or (k < len(kept) and kept[k].i < j):
            continue
        try:
            val = handler(m, ref)
        except (ValueError, OverflowError):  # "February 30 2023", years beyond 9999
            val = _BLOCK
        if val is not None and val.start <= val.end:
            starts.insert(k, i)
            kept.insert(k, _Hit(i, j, val))
    return [hit for hit in kept if hit.val is not _BLOCK]


def _m_since(m: re.Match[str], v: _Val, ref: date, has_ref: bool) -> _Val | None:
    if not has_ref:
        return None
    start = v.start
    if v.recurring:  # "since May": the last May that began before the reference
        starts = [_shift_years(v.start, v.end, k)[0] for k in (0, -1, -2)]
        start = next((s for s in starts if s <= ref), start)
    if start > ref:
        return None
    return _Val(start, ref, "range", "duration", relative=True)


def _m_relative(m: re.Match[str], v: _Val, ref: date, has_ref: bool) -> _Val | None:
    """ "the week before X", "two days after X", "the Friday before X"."""
    unit, after = m["u"], m["dir"] in ("after", "following")
    n, high = (1, 1) if m["the"] else _count(m["n"])
    if n != high:
        return None
    if unit in _WEEKDAYS:
        if not m["the"]:
            return None
        t = _WEEKDAYS.index(unit)
        fwd, bwd = (t - v.end.weekday()) % 7 or 7, (v.start.weekday() - t) % 7 or 7
        d = v.end + timedelta(fwd) if after else v.start - timedelta(bwd)
        return replace(v, start=d, end=d, grain="day")
    if unit == "day":
        d = v.end + timedelta(n) if after else v.start - timedelta(n)
        return replace(v, start=d, end=d, grain="day")
    if unit == "week":  # the 7 days before/after, not the calendar week
        s = v.end + timedelta(7 * n - 6) if after else v.start - timedelta(7 * n)
        return replace(v, start=s, end=s + timedelta(6), grain="week")
    if unit == "weekend":  # a Saturday-Sunday strictly before/after X
        if after:
            s = v.end + timedelta((5 - v.end.weekday()) % 7 or 7) + timedelta(7 * (n - 1))
        else:
            s = v.start - timedelta(((v.start.weekday() - 6) % 7 or 7) + 7 * (n - 1) + 1)
        return replace(v, start=s, end=s + timedelta(1), grain="weekend")
    s, e = _unit_span(unit, v.end if after else v.start, n if after else -n)
    return replace(v, start=s, end=e, grain=unit)


def _m_ordinal(m: re.Match[str], v: _Val, ref: date, has_ref: bool) -> _Val | None:
    """ "the second week of November": days 8-14; "the last week": the month's last 7 days."""
    if v.grain != "month":
        return None
    k = _ORDINALS[m["o"]]
    if m["u"] == "week":
        s = v.end - timedelta(6) if k == 0 else v.start + timedelta(7 * (k - 1))
        return replace(v, start=s, end=s + timedelta(6), grain="week")
    first_saturday = v.start + timedelta((5 - v.start.weekday()) % 7)
    last_saturday = v.end - timedelta((v.end.weekday() - 5) % 7)
    s = last_saturday if k == 0 else first_saturday + timedelta(7 * (k - 1))
    return replace(v, start=s, end=s + timedelta(1), grain="weekend")


def _m_third(m: re.Match[str], v: _Val, ref: date, has_ref: bool) -> _Val | None:
    part = _third(v.start, v.end, _THIRDS[m["a"] or m["b"]])
    return replace(v, start=part[0], end=part[1], grain="range") if part else None


_PREFIXES: list[tuple[re.Pattern[str], _Modifier, tuple[str, ...]]] = [
    (re.compile(r"(?<![a-z])(?:ever\s+)?since\s*\Z", _F), _m_since, ("since",)),
    (re.compile(rf"(?<![a-z])(?:(?P<the>the)|(?P<n>{_NUM}))\s+(?P<u>day|weekend|week|month|year"
                rf"|{_WD_FULL})s?\s+(?P<dir>before|after|prior\s+to|following)\s*\Z", _F),
     _m_relative, ("before", "after", "prior", "following")),
    (re.compile(r"(?<![a-z])(?:the\s+)?(?P<o>first|second|third|fourth|1st|2nd|3rd|4th|last|final)"
                r"\s+(?P<u>weekend|week)\s+(?:of|in)\s+\Z", _F), _m_ordinal, ("week",)),
    (re.compile(r"(?<![a-z])(?:(?:the\s+)?(?:very\s+)?(?P<a>beginning|start|middle|end)\s+of"
                r"|(?P<b>early|mid|late))[\s-]*(?:in\s+)?\Z", _F),
     _m_third, ("beginning", "start", "middle", "end", "early", "mid", "late")),
]  # fmt: skip


def _grow(text: str, lo: int, hit: _Hit, ref: date, has_ref: bool) -> _Hit | None:
    """`hit` widened by one modifier written just before it, if any applies."""
    if hit.val.kind != "date":
        return None
    window = text[lo : hit.i]
    for regex, modify, needles in _PREFIXES:
        m = regex.search(text, lo, hit.i) if any(n in window for n in needles) else None
        if m is None:
            continue
        try:
            val = modify(m, hit.val, ref, has_ref)
        except (ValueError, OverflowError):
            val = None
        if val is not None and val.start <= val.end:
            return _Hit(m.start(), hit.j, val)
    return None


def _with_prefixes(text: str, hits: list[_Hit], ref: date, has_ref: bool) -> list[_Hit]:
    out: list[_Hit] = []
    for hit in hits:
        lo = max(out[-1].j if out else 0, hit.i - 60)
        for _ in range(3):  # modifiers stack: "since the beginning of 2020"
            grown = _grow(text, lo, hit, ref, has_ref)
            if grown is None:
                break
            hit = grown
        out.append(hit)
    return out


_GAP = re.compile(rf"\s*(?P<c>{_DASH}|to|until|till|through|thru|and)\s*", _F)
_RANGE_PRE = re.compile(r"(?<![a-z])(?P<p>between|from)\s+\Z", _F)


def _align(a: _Val, b: _Val) -> tuple[_Val, _Val]:
    """Give a yearless end of a range the year of the other end ("August 11 and 15 2023")."""
    if a.recurring and not b.recurring:
        k0 = b.start.year - a.start.year
        for k in (k0 + 1, k0, k0 - 1):
            s, e = _shift_years(a.start, a.end, k)
            if s <= b.start:
                return replace(a, start=s, end=e, recurring=False), b
    elif b.recurring:
        k0 = a.start.year - b.start.year
        for k in (k0 - 1, k0, k0 + 1):
            s, e = _shift_years(b.start, b.end, k)
            if s >= a.start:
                return a, replace(b, start=s, end=e, recurring=a.recurring)
    return a, b


def _join(text: str, lo: int, a: _Hit, b: _Hit) -> _Hit | None:
    """One range from "between X and Y", "from X to Y", "X - Y", "X until Y"."""
    gap = _GAP.fullmatch(text, a.j, b.i)
    if gap is None or a.val.kind != "date" or b.val.kind != "date":
        return None
    pre = _RANGE_PRE.search(text, max(lo, a.i - 12), a.i)
    if (gap["c"] == "and") != (pre is not None and pre["p"] == "between"):
        return None
    try:
        x, y = _align(a.val, b.val)
    except ValueError:
        return None
    if x.start > y.end:
        return None
    recurring = x.recurring and y.recurring
    val = _Val(x.start, y.end, "range", "date", x.relative or y.relative, recurring)
    return _Hit(pre.start() if pre else a.i, b.j, val)


def _join_ranges(text: str, hits: list[_Hit]) -> list[_Hit]:
    out: list[_Hit] = []
    k = 0
    while k < len(hits):
        lo = out[-1].j if out else 0
        joined = _join(text, lo, hits[k], hits[k + 1]) if k + 1 < len(hits) else None
        out.append(joined or hits[k])
        k += 2 if joined else 1
    return out


def find_times(text: str, reference: date | datetime | None = None) -> list[TimeSpan]:
    """Every time expression in `text`, left to right, non-overlapping (longest match wins).

    Expressions are resolved against `reference`, the moment the text was written. Without
    one, relative expressions ("yesterday", "last May") are skipped and yearless ones ("in
    May") resolve as recurring around today. Conventions: weeks run Monday to Sunday; seasons
    are northern meteorological ones (winter 2022 is December 2022 to February 2023); a bare
    weekday ("on Friday") is the latest on or before the reference, "last Friday" the latest
    strictly before, "next Friday" the first strictly after; "last week" is the Monday a week
    before the reference's week up to the day before the reference. "may" and "march" count
    only capitalised and in a date context, and a bare month name followed by "is", "was",
    "said" or "'s" is taken for a name. Invalid dates ("February 30") yield nothing.
    """
    low = text.lower()
    if len(low) != len(text):  # only "\u0130" grows when lowercased; keep offsets aligned
        low = text.replace("\u0130", "I").lower()
    present = set(_TRIGGER.findall(low))
    if not present:
        return []
    has_ref = reference is not None
    ref = reference.date() if isinstance(reference, datetime) else reference or date.today()
    hits = [h for h in _select(_matches(text, low, present), ref) if has_ref or not h.val.relative]
    hits = _join_ranges(low, _with_prefixes(low, hits, ref, has_ref))
    return [
        TimeSpan(text[h.i : h.j], h.i, h.val.start, h.val.end, h.val.grain, h.val.kind,
                 h.val.relative, h.val.recurring)
        for h in hits
    ]  # fmt: skip


def _month_year(d: date) -> str:
    return f"{_MONTH_NAMES[d.month - 1]} {d.year}"


def describe(span: TimeSpan) -> str:
    """Words a keyword index can match: "7 May 2023", "May 2023", "summer 2022", "2022".

    Weeks and ranges give the months they cover ("May 2023 June 2023"), ranges over a year
    give the years; vague spans ("recently") give "" since their range is only a guess.
    """
    s, e = span.start, span.end
    if span.kind == "vague":
        return ""
    if span.grain == "day":
        return f"{s.day} {_month_year(s)}"
    if span.grain == "year":
        return str(s.year)
    if span.grain == "season" and s.month in _SEASON_NAMES:
        return f"{_SEASON_NAMES[s.month]} {s.year}"
    n_months = (e.year - s.year) * 12 + e.month - s.month + 1
    if n_months <= 12:
        return " ".join(_month_year(_add_months(s.replace(day=1), k)) for k in range(n_months))
    if e.year - s.year >= 20:
        return f"{s.year} {e.year}"
    return " ".join(str(y) for y in range(s.year, e.year + 1))


def month_day_match(span: TimeSpan, day: date) -> bool:
    """Whether `day` falls in `span`; for a recurring span, in the same month/day range of any
    year (a span for "in May" matches every May day, "winter" every December to February day).
    """
    if not span.recurring:
        return span.start <= day <= span.end
    if (span.end - span.start).days >= 365:
        return True
    lo, hi = (span.start.month, span.start.day), (span.end.month, span.end.day)
    if hi == (2, 28):  # a February-end pattern also covers leap days
        hi = (2, 29)
    md = (day.month, day.day)
    if span.start.year == span.end.year:
        return lo <= md <= hi
    return md >= lo or md <= hi
