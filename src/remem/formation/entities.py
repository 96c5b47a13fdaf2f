"""Named entities of a chat message or question, found by rules (no LLM, no NLP model)."""

# The rules, and why:
#
# - Capitalised runs (kind "name"): Title-case words ("Harry"), acronyms of 2+ letters
#   ("LGBTQ"), camel case ("MinaLima", "iPhone"), joined into one entity by single spaces,
#   by "&" ("AT&T", "Barnes & Noble"), by an abbreviation's dot ("Dr. Seuss", "J. K.
#   Rowling") and by up to two lower-case connectors before another capitalised word ("Lord
#   of the Rings", "Bank of America"). "and" connects only as "and the", after a run with no
#   connector yet ("Harry Potter and the Goblet of Fire", not "Bank of America and the
#   University of Texas"): in chat "Mel and Caroline" or "Nike and Gatorade" are two
#   entities far more often than one. A possessive ends a run ("Caroline's Mom" -> "Caroline").
#   Hyphens and inner apostrophes stay inside a word ("Jean-Luc", "O'Brien").
# - Sentence starts are capitalised by grammar. A lone sentence-initial word counts only if
#   known, or if it is not in COMMON and is followed by a comma or colon (a vocative or a
#   speaker label: "Caroline, so glad...", not "Unfortunately," by its adverb ending) or by
#   another capitalised word. A sentence-initial run loses its leading COMMON words and a
#   leading -ing word ("Hey Caroline" -> "Caroline", "Visiting Paris" -> "Paris", so
#   "Finding Nemo" -> "Nemo"); greetings and thanks are dropped anywhere ("lol Thanks Mel").
# - Quoted titles (kind "title"): straight or curly double quotes, or single quotes where
#   they cannot be apostrophes, around 1-8 words whose first is capitalised. Quoted speech
#   is told apart by shape: ending in "!" or "?", a lone COMMON word, or no capital after
#   the first word when that word is COMMON or the span is over three words. The title is
#   what is inside the quotes: '"The Lord of the Rings" Trilogy' -> "The Lord of the Rings"
#   ("Trilogy" alone is COMMON), and the name keeps its "The" (the key drops it).
# - Known entities: a 1-4 word window of the text whose key is in `known`, in any case, is
#   emitted with the kind `known` gives it ("" becomes "known"); a lone lower-case or
#   all-caps word only if it is not COMMON ("hope" stays a verb). A capitalised run whose
#   key is known takes the known kind too, so a stored title stays a title. At ingest a
#   known phrase is looked for only from a capitalised or uncommon word (the lookups are
#   most of the cost); query_entities looks from every word.
# - Never entities on their own: "I" and its contractions, "OK", honorifics ("Dr"), single
#   letters, months and weekdays (these also break runs: "Last Friday" is nothing), all-caps
#   COMMON words ("AMAZING", "SO"; "US" stays the country), all-caps words over 5 letters
#   ("INTENSE": acronyms are short), every all-caps word of a shouting text, and COMMON words
#   capitalised mid-sentence except NAME_WORDS ("Will", "Hope", "Max", "Joy"...): those are
#   first names too, so they count capitalised mid-sentence or known, never at a sentence
#   start. Seasons ("Summer", "Autumn") are COMMON only: chat capitalises them more often
#   than it names someone Summer.
# - Keys (entity_key): lower case, curly apostrophes read as ', single spaces, no
#   surrounding punctuation, no trailing possessive ("Nate's" -> "nate"; "McDonald's" ->
#   "mcdonald": a possessive and a brand ending in 's cannot be told apart, so both reduce
#   to one key), an abbreviation's dot dropped ("Dr. Seuss" -> "dr seuss", as "Dr Seuss")
#   and a leading "the " dropped ("The Lord of the Rings" -> "lord of the rings").
#
# Known misses: numbers never join a run ("Cyberpunk 2077" only in quotes); "and" names
# outside quotes ("Pride and Prejudice" -> "pride", "prejudice"); a name alone at a sentence
# start before it is known ("Oscar is sleeping"); COMMON-word starts of sentence-initial
# names ("Game of Thrones is" -> "thrones", "Will Smith said" -> "smith"); runs over 8 words
# (dropped); lower-case names not yet known; at ingest, lower-case known phrases starting
# with a COMMON word ("little women" in lower case).

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate, compress

MAX_TOKENS = 8
MAX_CHARS = 100

# Words that start sentences or get capitalised in chat without naming anything: discourse
# words, pronouns and determiners, stopwords, sentence-starting verbs, adjectives and
# adverbs, time words, kin terms and kinds of works. First names stay out, except the few in
# NAME_WORDS that are everyday words too.
COMMON = frozenset(
    """
    a about after again all also although always am an and another any anybody anyone
    anything anyway anyways are aren't around as at away be because been before being best
    better both but by can can't could couldn't did didn't do does doesn't doing don't done
    down during each either else enough even ever every everybody everyone everything few for
    from get gets getting got had hadn't has hasn't have haven't having he he's her here hers
    him his how however i i'd i'll i'm i've if in inside instead into is isn't it it'll its
    just least less let many me might more most much must my neither never no nobody none nor
    not nothing now of off often on once one only or other others our out over own perhaps
    quite rather same she should shouldn't since so some somebody someone something sometimes
    still such than that the their them then there these they they'll they're they've this
    those though through to together too under until up us very was wasn't we we'll we're
    we've were weren't what whatever when where whether which while who whole why will with
    without won't would wouldn't yet you you'd you'll you're you've your ain't y'all
    hey hi hello heya hiya howdy yo sup wow whoa woah yeah yea yep yup yes yess no nope nah
    oh ohh ooh ah ahh aw aww awww ok okay alright sure thanks thank thx ty tysm congrats
    congratulations awesome cool great nice sounds glad sorry well btw haha hahaha hehe lol
    lmao omg yay woohoo woo hooray hmm um uh ugh oops whoops wait please pls bye goodbye
    cheers welcome sweet wonderful amazing incredible fantastic brilliant beautiful lovely
    cute gorgeous perfect exactly absolutely totally definitely certainly indeed true right
    agreed agree seriously honestly actually basically literally obviously clearly probably
    maybe possibly hopefully luckily unfortunately fortunately sadly thankfully apparently
    plus meanwhile really truly super pretty kinda sorta gonna wanna gotta lemme dunno yikes
    yum yummy phew meh dang damn gosh geez jeez god goodness xoxo ps fyi tbh imo idk ikr brb
    smh np nvm jk asap diy tv bbq dm pm wifi email internet bummer gotcha man ouch overall
    anytime
    love loved loving like liked looking look looks hope hoping good happy excited proud
    grateful thankful feel feeling felt think thinking thought guess know knew seems seem
    went going go take took make made see saw tell told say said keep try trying tried
    remember wish start started check enjoy enjoyed imagine need needed want wanted give gave
    bring come came believe stay call called find found learn learned mean hear heard listen
    talk ask asked fun funny interesting exciting sad bad hard tough easy crazy wild stunning
    impressive excellent delicious lucky busy tired important special new old big small
    little huge long whole real fine different ready
    first second third next last final finally eventually lately recently currently soon
    later earlier today tonight tomorrow yesterday morning afternoon evening night day days
    week weeks weekend month months year years time times moment spring summer autumn fall
    winter season birthday luck
    mom mum dad mother father mama papa mommy daddy grandma grandpa granny sis bro bestie
    babe baby honey sweetie dear darling buddy dude guys folks friend kids kid family people
    movie movies film films book books novel series show shows trilogy saga franchise song
    songs album game games episode episodes sequel soundtrack chapter picture pictures photo
    photos pic pics image video videos lots tons bunch note update edit reminder question
    answer tip tips
    joy grace faith mark rose max
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# COMMON words that are first names too: capitalised mid-sentence they name someone.
NAME_WORDS = frozenset({"will", "hope", "joy", "grace", "faith", "mark", "rose", "max"})

# Greetings, thanks and interjections: never the first word of a name, even mid-sentence.
_GREETINGS = frozenset(
    """
    hey hi hello heya hiya howdy yo sup thanks thank thx ty tysm congrats congratulations wow
    whoa woah oh ohh ooh ah ahh aw aww awww yeah yea yep yup yes no nope nah ok okay alright
    haha hahaha hehe lol lmao omg yay woohoo hooray bye goodbye cheers dear
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_STOP_TOKENS = frozenset({"i", "i'm", "i've", "i'll", "i'd", "im", "ok", "okay", "okey"})
_CALENDAR = frozenset(
    """
    january february march april may june july august september october november december
    feb apr aug sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
    tues thurs tue thu fri
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_HONORIFICS = frozenset(
    "mr mrs ms mx dr prof st mt ft jr sr sgt capt gen col lt rev fr sen rep gov pres".split()  # noqa: SIM905
)
_CONNECTORS = frozenset("of the and de da van von der den la le du del di".split())  # noqa: SIM905
# Function words: keys do not end with these.
_NEVER_LAST = frozenset(
    "the a an of and or to in on at for with from by my your our their i i'm i've".split()  # noqa: SIM905
)
_ACRONYM_WORDS = frozenset({"us"})  # all-caps "US" is the country, not shouting
# A lone sentence-initial word before a comma is an adverb, not a vocative, with these.
_ADVERB_ENDINGS = (
    "ally", "ately", "ously", "fully", "ingly", "edly", "ively", "ably", "ibly", "ntly",
    "stly", "dly", "ely", "ing", "wise",
)  # fmt: skip

# Splitting on a captured token gives gaps and tokens in one flat list; offsets are sums of
# lengths, far cheaper than one match object per token.
_SPLIT = re.compile(r"([^\W_]+(?:['\u2019.\-][^\W_]+)*)")
_QUOTED = re.compile(
    r'"([^"\n]{1,102})"|\u201c([^\u201d\n]{1,102})\u201d'
    r"|\u2018((?:[^\u2019\n]|\u2019(?=[^\W_])){1,102}?)\u2019(?![^\W_])"
    r"|(?<![^\W_])'((?:[^'\n]|'(?=[^\W_])){1,102}?)'(?![^\W_])"
)
_LSQUO, _RSQUO, _LDQUO = "\u2018", "\u2019", "\u201c"
# A double quote starts or ends quoted speech, so the word after it starts a sentence.
_BREAK_CHARS = frozenset('.!?\n\r[]…"\u201c\u201d')
_INITIALS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # "J.K", "U.S"
# Laughter, hums and stretched interjections that no word list can enumerate ("ahhahha").
_FILLER = re.compile(r"[ah]*ha[ah]*|(?:he)+h?|m+|h+m+|o+f+|u+g+h+|a+w+|o+h+|y+a+y+|w+o+w+|l+o+l+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")


@dataclass(frozen=True)
class EntityMention:
    """One mention of an entity: its key, surface form, kind and offsets in the text."""

    key: str
    name: str
    kind: str
    start: int
    end: int


def entity_key(name: str) -> str:
    """The normalised key of a surface form (the rule used for ``EntityMention.key``)."""
    text = _EDGE.sub("", name.replace(_RSQUO, "'").replace(_LSQUO, "'"))
    if len(text) > 2 and text[-2:].lower() == "'s":
        text = _EDGE.sub("", text[:-2])
    key = " ".join(text.lower().split()).replace(". ", " ")
    if key.startswith("the ") and len(key) > 4:
        key = key[4:]
    return key


class _Scan:
    """The tokens of a text as parallel lists, built by comprehensions (this runs on every
    message, and per-token objects or appends cost more than the rest of the extraction)."""

    __slots__ = (
        "brk", "caps", "ends", "joins", "keys", "lows", "n", "odd", "shout", "starts", "toks",
    )  # fmt: skip

    def __init__(self, text: str) -> None:
        parts = _SPLIT.split(text)  # gap, token, gap, token, ..., gap
        cum = list(accumulate(map(len, parts)))
        gaps = parts[0:-1:2]
        self.toks = toks = parts[1::2]
        self.n = len(toks)
        self.starts: list[int] = cum[0:-1:2]
        self.ends: list[int] = cum[1::2]
        lows = [tok.lower() for tok in toks]
        if _RSQUO in text:
            lows = [low.replace(_RSQUO, "'") for low in lows]
        self.lows = lows  # lower case, curly apostrophe read as '
        self.keys = [low[:-2] if low.endswith("'s") and len(low) > 2 else low for low in lows]
        # Capitalised: Title case, acronym, or camel case starting lower ("iPhone").
        self.caps = [not t.islower() and (t[0].isupper() or t[0].islower()) for t in toks]
        self.brk = [False] * self.n  # first word of a sentence
        self.joins: list[str | None] = [" "] * self.n  # joiner to the previous token in a key
        # Tokens after a gap other than one space: the only ones whose gap needs a look.
        self.odd = [i for i, gap in enumerate(gaps) if gap != " " or not i]
        for i in self.odd:
            self.brk[i], self.joins[i] = _gap(gaps[i], toks[i - 1] if i else "", lows[i])
        self.shout: bool | None = None

    def shouting(self) -> bool:
        """Whether the text shouts (3+ everyday words in capitals): its all-caps words are
        then emphasis, not acronyms. Computed once, and only when a run is all-caps."""
        if self.shout is None:
            common = [tok for tok in self.toks if len(tok) > 1 and tok.isupper()]
            self.shout = sum(tok.lower() in COMMON for tok in common) >= 3
        return self.shout

    def allcaps(self, i: int) -> bool:
        """Whether token ``i`` is all capitals (2+ letters)."""
        tok = self.toks[i]
        return len(tok) > 1 and tok.isupper()


def _gap(gap: str, prev: str, nxt: str) -> tuple[bool, str | None]:
    """Whether ``gap`` (between tokens ``prev`` and lower-cased ``nxt``) starts a sentence,
    and the key's joiner across it (None: no join)."""
    if not prev or not gap:
        return True, None
    if not _BREAK_CHARS.isdisjoint(gap) or max(gap) >= "\u2600":  # emoji end sentences too
        # "Dr. Seuss", "J. K. Rowling": an abbreviation's dot neither ends a sentence nor a name.
        if gap.strip() != "." or "\n" in gap or prev == "I":
            return True, None
        initials = prev.isupper() and (len(prev) == 1 or _INITIALS.fullmatch(prev) is not None)
        if initials and nxt in COMMON:
            return True, None  # "in the U.S. Last year": a sentence ends after all
        return (False, " ") if initials or prev.lower() in _HONORIFICS else (True, None)
    stripped = gap.strip()
    if not stripped:
        return False, " "
    if stripped == "&":
        return False, (" " if gap[0].isspace() else "") + "&" + (" " if gap[-1].isspace() else "")
    return False, None


def _common(key: str) -> bool:
    """Whether ``key`` is an everyday chat word rather than a name."""
    return key in COMMON or _FILLER.fullmatch(key) is not None


def _usable(scan: _Scan, i: int) -> bool:
    """Whether token ``i`` may be a capitalised word of a name."""
    if not scan.caps[i]:
        return False
    key = scan.keys[i]
    if scan.lows[i] in _STOP_TOKENS or key in _CALENDAR:
        return False
    if scan.allcaps(i) and key in COMMON and key not in _ACRONYM_WORDS:
        # Shouting ("SO", "AMAZING"), unless glued by "&" into a brand ("AT&T").
        return scan.joins[i] == "&" or (i + 1 < scan.n and scan.joins[i + 1] == "&")
    return True


def _titles(text: str, scan: _Scan) -> list[tuple[int, int, int, int]]:
    """Quoted titles as (start, end, first token, end token)."""
    found: list[tuple[int, int, int, int]] = []
    for match in _QUOTED.finditer(text):
        group = next(g for g in range(1, 5) if match.group(g) is not None)
        start, end = match.span(group)
        raw = text[start:end].rstrip()
        if not raw or raw[-1] in "!?":
            continue  # quoted speech, not a title
        while start < end and not text[start].isalnum():
            start += 1
        while end > start and not text[end - 1].isalnum():
            end -= 1
        if end - start > 2 and text[end - 2 : end].lower() in ("'s", _RSQUO + "s"):
            end -= 2
        lo = bisect_left(scan.starts, start)
        hi = bisect_left(scan.starts, end)
        if _is_title(scan, lo, hi) and end - start <= MAX_CHARS:
            found.append((start, end, lo, hi))
    return found


def _is_title(scan: _Scan, lo: int, hi: int) -> bool:
    """Whether tokens ``lo:hi`` of a quoted span look like a title rather than speech."""
    count = hi - lo
    if not 1 <= count <= MAX_TOKENS or not scan.caps[lo]:
        return False
    first_common = _common(scan.keys[lo])
    if count == 1:
        return not first_common and scan.keys[lo] not in _CALENDAR and len(scan.keys[lo]) > 1
    if any(scan.caps[lo + 1 : hi]):
        return True
    return not first_common and count <= 3


def _extend(scan: _Scan, i: int) -> int:
    """The last token of the capitalised run that starts at token ``i``."""
    j = i
    n = scan.n
    while j + 1 < n and scan.keys[j] == scan.lows[j]:  # a possessive ends the run
        nxt = j + 1
        if scan.joins[nxt] is None:
            break
        if _usable(scan, nxt):
            j = nxt
            continue
        k = nxt
        while k < n and k - nxt < 2 and scan.lows[k] in _CONNECTORS and not _usable(scan, k):
            if k > nxt and scan.joins[k] is None:
                break
            k += 1
        # "and" links only as "and the" after a run with no connector yet: "Harry Potter
        # and the Goblet of Fire", but "Bank of America and the University of Texas".
        linked = k > nxt and (
            scan.lows[nxt] != "and"
            or (
                k - nxt == 2
                and scan.lows[k - 1] == "the"
                and scan.caps[i : j + 1].count(False) == 0
            )
        )
        if linked and k < n and scan.joins[k] is not None and _usable(scan, k):
            j = k
            continue
        break
    return j


def _accept(scan: _Scan, text: str, i: int, j: int, known: Mapping[str, str]) -> int | None:
    """The first token of the entity within run ``i..j``, or None when it is no entity."""
    initial = scan.brk[i] and text[scan.starts[i]].isupper()
    if i == j and initial:
        return i if _initial_single_ok(scan, text, i, known) else None
    i = _drop_leading(scan, i, j, initial, known)
    if i > j:
        return None
    if all(scan.allcaps(t) for t in range(i, j + 1)) and scan.shouting():
        return i if entity_key(text[scan.starts[i] : _end(scan, j)]) in known else None
    if i == j:
        return i if _single_ok(scan, i, known) else None
    if all(_common(scan.keys[t]) for t in range(i, j + 1)) and "&" not in scan.joins[i + 1 : j + 1]:
        return None  # "Happy Birthday", "THANK YOU SO MUCH"; but "AT&T"
    return i


def _drop_leading(scan: _Scan, i: int, j: int, initial: bool, known: Mapping[str, str]) -> int:
    """The run's first token after dropping the everyday words that start it ("Hey
    Caroline"): any at a sentence start, greetings and thanks anywhere."""
    dropped = False
    while i <= j:
        key = scan.keys[i]
        if key in known or (dropped and key in NAME_WORDS):
            break
        # A sentence-initial -ing word is a verb far more often than a name's start
        # ("Visiting Paris", "Adding NYC"); "Finding Nemo" becomes "Nemo".
        gerund = initial and not dropped and len(key) > 4 and key.endswith("ing")
        if not gerund and not ((initial or key in _GREETINGS) and _common(key)):
            break
        i += 1
        dropped = True
        while i <= j and scan.lows[i] in _CONNECTORS and not _usable(scan, i):
            i += 1
    return i


def _initial_single_ok(scan: _Scan, text: str, i: int, known: Mapping[str, str]) -> bool:
    """A lone capitalised first word of a sentence: known, or a vocative or name start."""
    key = scan.keys[i]
    if key in known:
        return True
    if _common(key) or key in _HONORIFICS or len(key) < 2:
        return False
    after = text[scan.ends[i] : scan.ends[i] + 1]
    if after in (",", ":"):
        return not key.endswith(_ADVERB_ENDINGS)
    nxt = i + 1
    return nxt < scan.n and scan.joins[nxt] is not None and _usable(scan, nxt)


def _single_ok(scan: _Scan, i: int, known: Mapping[str, str]) -> bool:
    """A lone capitalised word inside a sentence."""
    key = scan.keys[i]
    if key in known:
        return True
    if len(key) < 2 or key in _HONORIFICS:
        return False
    if scan.allcaps(i) and len(key) > 5:
        return False  # shouting ("INTENSE"); acronyms are short
    return not _common(key) or (key in NAME_WORDS and not scan.allcaps(i))


_Candidate = tuple[int, int, int, str]  # start, end, priority, kind


def _run_candidates(
    scan: _Scan, text: str, known: Mapping[str, str], taken: set[int]
) -> list[_Candidate]:
    """Capitalised runs that pass the sentence-start and common-word rules."""
    found: list[_Candidate] = []
    after = 0  # runs do not overlap
    for i in compress(range(scan.n), scan.caps):
        if i < after or i in taken or not _usable(scan, i):
            continue
        j = _extend(scan, i)
        first = _accept(scan, text, i, j, known) if j - i < MAX_TOKENS else None
        if first is not None:
            start = scan.starts[first]
            end = _end(scan, j)
            if end - start <= MAX_CHARS:
                kind = known.get(entity_key(text[start:end])) or "name"
                found.append((start, end, 1, kind))
        after = j + 1
    return found


def _end(scan: _Scan, i: int) -> int:
    """Where the name ending at token ``i`` ends: before a possessive 's."""
    return scan.ends[i] - (2 if scan.keys[i] != scan.lows[i] else 0)


def _known_words(scan: _Scan, known: Mapping[str, str]) -> list[_Candidate]:
    """Single words whose key is in ``known``."""
    found: list[_Candidate] = []
    keys = scan.keys
    for i, kind in enumerate(map(known.get, keys)):
        # A lone lower-case or all-caps word must not be an everyday word ("hope", "WILL").
        if kind is None or len(keys[i]) < 2:
            continue
        if (scan.caps[i] and not scan.allcaps(i)) or not _common(keys[i]):
            found.append((scan.starts[i], _end(scan, i), 0, kind or "known"))
    return found


def _known_phrases(
    scan: _Scan, text: str, known: Mapping[str, str], every: bool
) -> list[_Candidate]:
    """Windows of 2-4 words whose key is in ``known``: one dict lookup per window, nothing
    built from ``known``. These lookups are most of the extraction's cost, so unless
    ``every`` (questions) a window starts only at a capitalised or uncommon word."""
    found: list[_Candidate] = []
    n, keys, lows, ends, get = scan.n, scan.keys, scan.lows, scan.ends, known.get
    low = text.lower().replace(_RSQUO, "'")
    if len(low) != len(text):
        low = ""  # lower() changed some lengths: offsets no longer match, build every key
    if every:
        firsts = [i for i in range(n - 1) if keys[i] != "the"]  # keys never start with "the "
    else:
        firsts = [i for i in range(n - 1) if scan.caps[i] or keys[i] not in COMMON]
    odd = set(scan.odd)  # tokens after a gap other than one space
    for i in firsts:
        start = scan.starts[i]
        hi = min(n, i + 4)
        for m in range(i + 1, hi):
            if m in odd or not low:
                if scan.joins[m] is not None:  # "Dr. Seuss", "Barnes & Noble"
                    prefix = low[start : ends[m - 1]] if low else lows[i]
                    found += _joined_windows(scan, known, i, m, hi, prefix)
                break
            if keys[m] in _NEVER_LAST:
                continue  # keys do not end with "the", "of", "my"...
            # Single-spaced words: the key is a slice of the lower-cased text.
            kind = get(low[start : ends[m] if keys[m] is lows[m] else ends[m] - 2])
            if kind is not None:
                found.append((start, _end(scan, m), 0, kind or "known"))
    return found


def _joined_windows(
    scan: _Scan, known: Mapping[str, str], i: int, m: int, hi: int, prefix: str
) -> list[_Candidate]:
    """Known windows from token ``i`` ending at ``m`` or later, built word by word after
    ``prefix`` (the key of tokens ``i..m-1``), across any gap that joins a key."""
    found: list[_Candidate] = []
    for k in range(m, hi):
        join = scan.joins[k]
        if join is None:
            break
        kind = known.get(prefix + join + scan.keys[k])
        if kind is not None:
            found.append((scan.starts[i], _end(scan, k), 0, kind or "known"))
        prefix = prefix + join + scan.lows[k]
    return found


def _select(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping candidates in text order, taken longest (then highest priority)
    first; only the chosen neighbours are checked, so a huge text stays near-linear."""
    chosen: list[_Candidate] = []
    starts: list[int] = []
    ends: list[int] = []
    for cand in sorted(candidates, key=lambda c: (c[0] - c[1], -c[2], c[0])):
        start, end = cand[0], cand[1]
        pos = bisect_right(starts, start)
        if (pos and ends[pos - 1] > start) or (pos < len(starts) and starts[pos] < end):
            continue
        chosen.insert(pos, cand)
        starts.insert(pos, start)
        ends.insert(pos, end)
    return chosen


def extract_entities(text: str, known: Mapping[str, str] | None = None) -> list[EntityMention]:
    """Entities mentioned in ``text``, left to right, without overlaps (longest wins), one
    per occurrence. ``known`` maps keys of entities already in the store to their kind; it
    lets a sentence-initial or lower-cased mention of a known entity count."""
    return _extract(text, known or {}, every=False)


def query_entities(text: str, known: Mapping[str, str] | None = None) -> list[EntityMention]:
    """The entities a question mentions, first occurrence of each key: the rules of
    ``extract_entities`` plus every lower-case 1-4 word phrase that is a known key ("what
    did nate say about lord of the rings" -> "nate", "lord of the rings" when known)."""
    seen: set[str] = set()
    out = []
    for mention in _extract(text, known or {}, every=True):
        if mention.key not in seen:
            seen.add(mention.key)
            out.append(mention)
    return out


def _may_quote(text: str) -> bool:
    """A cheap test for quote marks: apostrophes are everywhere in chat, opening single
    quotes are not."""
    return (
        '"' in text
        or _LDQUO in text
        or _LSQUO in text
        or (text[0] == "'" or " '" in text or "\n'" in text or "('" in text)
    )


def _extract(text: str, known: Mapping[str, str], every: bool) -> list[EntityMention]:
    """Titles, capitalised runs and known words and phrases, overlaps resolved."""
    if not isinstance(text, str) or not text:
        return []
    scan = _Scan(text)
    candidates: list[_Candidate] = []
    taken: set[int] = set()
    if _may_quote(text):
        for start, end, lo, hi in _titles(text, scan):
            candidates.append((start, end, 2, "title"))
            taken.update(range(lo, hi))
    candidates += _run_candidates(scan, text, known, taken)
    if known:
        candidates += _known_words(scan, known)
        candidates += _known_phrases(scan, text, known, every)
    mentions = []
    for start, end, _, kind in _select(candidates):
        name = text[start:end]
        key = entity_key(name)
        if key and end - start <= MAX_CHARS:
            mentions.append(EntityMention(key, name, kind, start, end))
    return mentions
