"""Benchmark loaders: LoCoMo and LongMemEval files as neutral, typed, validated data."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from remem.errors import DataFormatError

T = TypeVar("T")

LOCOMO_LAYOUT = (
    "the LoCoMo layout (locomo10.json): a JSON list of {sample_id, conversation: {speaker_a, "
    "speaker_b, session_N_date_time: '1:56 pm on 8 May, 2023', session_N: [{speaker, dia_id, "
    "text}]}, qa: [{question, answer | adversarial_answer, evidence: [dia_id], category}]}"
)
LONGMEMEVAL_LAYOUT = (
    "the LongMemEval layout: a JSON list of {question_id, question_type, question, answer, "
    "question_date: '2023/05/20 (Sat) 02:21', haystack_session_ids, haystack_dates, "
    "haystack_sessions: [[{role, content, has_answer?}]], answer_session_ids}"
)
EITHER_LAYOUT = f"either {LOCOMO_LAYOUT}, or {LONGMEMEVAL_LAYOUT}"
OBSERVATION_LAYOUT = (
    "LoCoMo's observations: each item's observation: {session_N_observation: {speaker: "
    "[[text, dia_id or [dia_id, ...]], ...]}}"
)

_LOCOMO_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE_SPLIT = re.compile(r"[;,\s]+")
_LOCOMO_DATE_FORMATS = ("%I:%M %p on %d %B %Y", "%I:%M %p on %d %b %Y")
_LONGMEMEVAL_DATE_FORMATS = ("%Y/%m/%d (%a) %H:%M", "%Y/%m/%d %H:%M")
_ROLES = ("user", "assistant")
_KIND_NAMES: dict[type, str] = {str: "a string", list: "a list", dict: "an object", int: "an int"}


@dataclass(frozen=True)
class BenchTurn:
    """One message of a benchmark conversation."""

    id: str  # LoCoMo dia_id "D7:3"; LongMemEval f"{session_id}:{index}" (0-based)
    session: str  # LoCoMo "7" for session_7; LongMemEval the haystack session id
    role: str  # "user" or "assistant"
    speaker: str | None  # LoCoMo speaker name; LongMemEval None
    text: str  # LoCoMo turns with a blip_caption end in " [shares a photo: <caption>]"
    timestamp: datetime | None  # the session date (naive)


@dataclass(frozen=True)
class BenchQuestion:
    """One question with its gold answer and the turns/sessions that hold the evidence."""

    id: str
    text: str
    answer: str
    category: str  # LoCoMo "1".."5"; LongMemEval question_type
    evidence: tuple[str, ...]  # ids of evidence turns that exist in the conversation
    evidence_sessions: tuple[str, ...]
    asked_at: datetime | None  # LongMemEval question_date; LoCoMo None
    abstention: bool = False  # LongMemEval ids ending in "_abs"


@dataclass(frozen=True)
class BenchFact:
    """A fact the file states about its conversation (a LoCoMo observation), citing the
    turns it was drawn from."""

    text: str
    cites: tuple[str, ...]  # ids of turns of the conversation, in the file's order
    session: str  # the session of its first cited turn
    timestamp: datetime | None  # its latest cited turn's


@dataclass(frozen=True)
class BenchConversation:
    """A conversation (the haystack), the questions asked about it and, when asked for,
    the facts the file states about it."""

    id: str
    turns: tuple[BenchTurn, ...]
    questions: tuple[BenchQuestion, ...]
    facts: tuple[BenchFact, ...] = ()


@dataclass(frozen=True)
class BenchDataset:
    """A whole benchmark file, plus how many of its questions were left out."""

    name: str  # "locomo" or "longmemeval"
    path: str
    conversations: tuple[BenchConversation, ...]
    skipped_questions: int
    skipped_facts: int = 0  # observations none of whose citations names a turn
    dropped_citations: int = 0  # citations naming no turn of the conversation

    @property
    def question_count(self) -> int:
        """Number of questions kept (abstentions included)."""
        return sum(len(c.questions) for c in self.conversations)


@dataclass(frozen=True)
class _Source:
    """The file being read and the layout it should have; builds helpful errors."""

    path: str
    layout: str

    def error(self, where: str, what: str) -> DataFormatError:
        place = f"{self.path}: {where}: " if where else f"{self.path}: "
        return DataFormatError(f"{place}{what}. Expected {self.layout}.")

    def get(self, obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
        if key not in obj:
            raise self.error(where, f"missing key {key!r}")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = _KIND_NAMES.get(kind, kind.__name__)
            got = type(value).__name__
            raise self.error(where, f"{key!r} should be {expected}, got {got} {value!r:.60}")
        return value

    def item(self, value: Any, kind: type[T], where: str) -> T:
        if not isinstance(value, kind):
            expected = _KIND_NAMES.get(kind, kind.__name__)
            raise self.error(where, f"should be {expected}, got {type(value).__name__}")
        return value

    def date(self, text: str, formats: Sequence[str], where: str) -> datetime:
        cleaned = " ".join(text.replace(",", " ").split())
        for fmt in formats:
            try:
                return datetime.strptime(cleaned, fmt)
            except ValueError:
                continue
        raise self.error(where, f"cannot parse the date {text!r}")


def _read_json(path: str | Path, layout: str) -> tuple[Any, _Source]:
    """Read and parse the JSON file; wrap every failure in DataFormatError."""
    src = _Source(str(path), layout)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise src.error("", f"cannot read the file ({exc})") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise src.error("", f"not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise src.error("", f"the top level should be a JSON list, got {type(data).__name__}")
    return data, src


# ----------------------------------------------------------------------------- LoCoMo


def load_locomo(path: str | Path, observations: bool = False) -> BenchDataset:
    """Load a LoCoMo file (``locomo10.json`` layout) into a ``BenchDataset``.

    Speaker A's turns get role "user", speaker B's "assistant". Evidence ids are split on
    ``;``/``,``/whitespace and kept only if they name a turn of the conversation; questions
    left with no evidence are dropped and counted in ``skipped_questions``.
    ``observations``: also read each conversation's observation facts (``facts``); their
    citations are split and checked the same way, those naming no turn are counted in
    ``dropped_citations``, facts left with none in ``skipped_facts``. Raises
    ``DataFormatError`` if the file is not in that layout.
    """
    data, src = _read_json(path, LOCOMO_LAYOUT)
    return _parse_locomo(data, src, observations)


def _parse_locomo(data: list[Any], src: _Source, observations: bool = False) -> BenchDataset:
    conversations: list[BenchConversation] = []
    skipped, facts_skipped, dropped_citations = 0, 0, 0
    for index, item in enumerate(data):
        conversation, dropped = _locomo_conversation(item, index, src)
        if observations:
            facts = _locomo_facts(item, conversation, _Source(src.path, OBSERVATION_LAYOUT))
            conversation = replace(conversation, facts=facts.facts)
            facts_skipped += facts.skipped
            dropped_citations += facts.dropped
        conversations.append(conversation)
        skipped += dropped
    return BenchDataset("locomo", src.path, tuple(conversations), skipped, facts_skipped,
                        dropped_citations)  # fmt: skip


def _locomo_conversation(item: Any, index: int, src: _Source) -> tuple[BenchConversation, int]:
    where = f"item {index}"
    obj = src.item(item, dict, where)
    sample_id = src.get(obj, "sample_id", str, where)
    where = f"item {index} (sample_id {sample_id!r})"
    conv = src.get(obj, "conversation", dict, where)
    qa = src.get(obj, "qa", list, where)
    turns = _locomo_turns(conv, src, where)
    sessions = {t.id: t.session for t in turns}
    questions: list[BenchQuestion] = []
    for q_index, raw in enumerate(qa):
        question = _locomo_question(raw, f"{sample_id}:q{q_index}", sessions, src, where)
        if question is not None:
            questions.append(question)
    skipped = len(qa) - len(questions)
    return BenchConversation(sample_id, tuple(turns), tuple(questions)), skipped


def _locomo_turns(conv: Mapping[str, Any], src: _Source, where: str) -> list[BenchTurn]:
    where = f"{where}, conversation"
    roles = {
        src.get(conv, "speaker_a", str, where): "user",
        src.get(conv, "speaker_b", str, where): "assistant",
    }
    numbers = sorted(
        int(m.group(1)) for k in conv if (m := _LOCOMO_SESSION_KEY.fullmatch(k)) is not None
    )
    turns: list[BenchTurn] = []
    seen: set[str] = set()
    for number in numbers:
        session_where = f"{where}, session_{number}"
        raw_turns = src.get(conv, f"session_{number}", list, where)
        date_text = src.get(conv, f"session_{number}_date_time", str, where)
        when = src.date(date_text, _LOCOMO_DATE_FORMATS, f"{where}, session_{number}_date_time")
        for t_index, raw in enumerate(raw_turns):
            turn = _locomo_turn(raw, str(number), when, roles, src, f"{session_where}[{t_index}]")
            if turn.id in seen:
                raise src.error(session_where, f"dia_id {turn.id!r} appears twice")
            seen.add(turn.id)
            turns.append(turn)
    return turns


def _locomo_turn(
    raw: Any,
    session: str,
    when: datetime,
    roles: Mapping[str, str],
    src: _Source,
    where: str,
) -> BenchTurn:
    obj = src.item(raw, dict, where)
    speaker = src.get(obj, "speaker", str, where)
    dia_id = src.get(obj, "dia_id", str, where)
    text = src.get(obj, "text", str, where)
    if speaker not in roles:
        names = " or ".join(repr(n) for n in roles)
        raise src.error(where, f"speaker {speaker!r} is neither speaker_a nor speaker_b ({names})")
    caption = obj.get("blip_caption")
    if caption is not None:
        caption = src.get(obj, "blip_caption", str, where)
        text = f"{text} [shares a photo: {caption}]"
    return BenchTurn(dia_id, session, roles[speaker], speaker, text, when)


def _locomo_question(
    raw: Any, qid: str, sessions: Mapping[str, str], src: _Source, where: str
) -> BenchQuestion | None:
    where = f"{where}, question {qid!r}"
    obj = src.item(raw, dict, where)
    text = src.get(obj, "question", str, where)
    category = src.get(obj, "category", int, where)
    raw_evidence = src.get(obj, "evidence", list, where)
    pieces: list[str] = []
    for entry in raw_evidence:
        entry_text = src.item(entry, str, f"{where}, evidence entry")
        pieces.extend(p for p in _EVIDENCE_SPLIT.split(entry_text.strip()) if p)
    evidence = tuple(dict.fromkeys(p for p in pieces if p in sessions))
    if not evidence:
        return None
    answer = obj.get("answer", obj.get("adversarial_answer", ""))
    evidence_sessions = tuple(dict.fromkeys(sessions[e] for e in evidence))
    return BenchQuestion(qid, text, str(answer), str(category), evidence, evidence_sessions, None)


@dataclass(frozen=True)
class _Facts:
    facts: tuple[BenchFact, ...]
    skipped: int  # facts citing no turn of the conversation
    dropped: int  # citations naming no turn


def _locomo_facts(item: Mapping[str, Any], conv: BenchConversation, src: _Source) -> _Facts:
    """The observation facts of one conversation, each with the turns it cites."""
    where = f"sample_id {conv.id!r}"
    sessions = src.get(item, "observation", dict, where)
    turns = {t.id: t for t in conv.turns}
    facts: list[BenchFact] = []
    skipped = dropped = 0
    for key, by_speaker in sessions.items():
        place = f"{where}, observation, {key}"
        for speaker, entries in src.item(by_speaker, dict, place).items():
            for e_index, entry in enumerate(src.item(entries, list, f"{place}, {speaker}")):
                text, cites = _locomo_observation(entry, src, f"{place}, {speaker}[{e_index}]")
                found = tuple(dict.fromkeys(c for c in cites if c in turns))
                dropped += len(set(cites) - set(found))
                if not found:
                    skipped += 1
                    continue
                when = max((t for c in found if (t := turns[c].timestamp)), default=None)
                facts.append(BenchFact(text, found, turns[found[0]].session, when))
    return _Facts(tuple(facts), skipped, dropped)


def _locomo_observation(entry: Any, src: _Source, where: str) -> tuple[str, list[str]]:
    """``[text, "D1:3"]`` or ``[text, ["D1:3", "D1:5"]]`` (ids split like evidence)."""
    pair = src.item(entry, list, where)
    if len(pair) != 2:
        raise src.error(where, f"should be [text, dia_id], got {len(pair)} items")
    text = src.item(pair[0], str, f"{where} text")
    if not text.strip():
        raise src.error(where, "the observation's text is empty")
    raw = pair[1] if isinstance(pair[1], list) else [pair[1]]
    cites = [src.item(c, str, f"{where} dia_id") for c in raw]
    return text, [p for c in cites for p in _EVIDENCE_SPLIT.split(c.strip()) if p]


# ------------------------------------------------------------------------ LongMemEval


def load_longmemeval(path: str | Path) -> BenchDataset:
    """Load a LongMemEval file (official layout) into a ``BenchDataset``.

    Each question becomes its own conversation whose turns are its haystack. Evidence turns
    are those marked ``has_answer``; evidence sessions are the ``answer_session_ids`` present
    in the haystack. Abstention questions (ids ending in ``_abs``) are kept with
    ``abstention=True``; other questions with no answer session in their haystack are
    dropped and counted in ``skipped_questions``. Raises ``DataFormatError`` if the file is
    not in that layout.
    """
    data, src = _read_json(path, LONGMEMEVAL_LAYOUT)
    return _parse_longmemeval(data, src)


def _parse_longmemeval(data: list[Any], src: _Source) -> BenchDataset:
    conversations: list[BenchConversation] = []
    skipped = 0
    for index, item in enumerate(data):
        conversation = _longmemeval_conversation(item, index, src)
        if conversation is None:
            skipped += 1
        else:
            conversations.append(conversation)
    return BenchDataset("longmemeval", src.path, tuple(conversations), skipped)


def _longmemeval_conversation(item: Any, index: int, src: _Source) -> BenchConversation | None:
    where = f"item {index}"
    obj = src.item(item, dict, where)
    qid = src.get(obj, "question_id", str, where)
    where = f"item {index} (question_id {qid!r})"
    qtype = src.get(obj, "question_type", str, where)
    text = src.get(obj, "question", str, where)
    if "answer" not in obj:
        raise src.error(where, "missing key 'answer'")
    asked_at = None
    if obj.get("question_date") is not None:
        date_text = src.get(obj, "question_date", str, where)
        asked_at = src.date(date_text, _LONGMEMEVAL_DATE_FORMATS, f"{where}, question_date")
    haystack = _longmemeval_haystack(obj, src, where)
    answer_ids = src.get(obj, "answer_session_ids", list, where)
    wanted = (src.item(a, str, f"{where}, answer_session_ids entry") for a in answer_ids)
    evidence_sessions = tuple(dict.fromkeys(s for s in wanted if s in haystack.sessions))
    abstention = qid.endswith("_abs")
    if not evidence_sessions and not abstention:
        return None
    question = BenchQuestion(
        qid,
        text,
        str(obj["answer"]),
        qtype,
        haystack.evidence,
        evidence_sessions,
        asked_at,
        abstention,
    )
    return BenchConversation(qid, haystack.turns, (question,))


@dataclass(frozen=True)
class _Haystack:
    turns: tuple[BenchTurn, ...]
    sessions: frozenset[str]
    evidence: tuple[str, ...]  # ids of the turns marked has_answer


def _longmemeval_haystack(obj: Mapping[str, Any], src: _Source, where: str) -> _Haystack:
    ids = src.get(obj, "haystack_session_ids", list, where)
    dates = src.get(obj, "haystack_dates", list, where)
    sessions = src.get(obj, "haystack_sessions", list, where)
    if not len(ids) == len(dates) == len(sessions):
        raise src.error(
            where,
            f"haystack_session_ids, haystack_dates and haystack_sessions differ in length "
            f"({len(ids)}, {len(dates)}, {len(sessions)})",
        )
    turns: list[BenchTurn] = []
    evidence: list[str] = []
    seen: set[str] = set()
    for s_index, (raw_id, raw_date, raw_session) in enumerate(
        zip(ids, dates, sessions, strict=True)
    ):
        session_where = f"{where}, haystack session {s_index}"
        session_id = src.item(raw_id, str, f"{session_where} id")
        if session_id in seen:
            raise src.error(session_where, f"session id {session_id!r} appears twice")
        seen.add(session_id)
        date_text = src.item(raw_date, str, f"{session_where} date")
        when = src.date(date_text, _LONGMEMEVAL_DATE_FORMATS, f"{session_where} date")
        messages = src.item(raw_session, list, session_where)
        for m_index, raw in enumerate(messages):
            turn, has_answer = _longmemeval_turn(
                raw, session_id, m_index, when, src, f"{session_where}[{m_index}]"
            )
            turns.append(turn)
            if has_answer:
                evidence.append(turn.id)
    return _Haystack(tuple(turns), frozenset(seen), tuple(evidence))


def _longmemeval_turn(
    raw: Any, session_id: str, index: int, when: datetime, src: _Source, where: str
) -> tuple[BenchTurn, bool]:
    msg = src.item(raw, dict, where)
    role = src.get(msg, "role", str, where)
    content = src.get(msg, "content", str, where)
    if role not in _ROLES:
        raise src.error(where, f"role {role!r} should be 'user' or 'assistant'")
    turn = BenchTurn(f"{session_id}:{index}", session_id, role, None, content, when)
    return turn, msg.get("has_answer") is True


# ------------------------------------------------------------------------- detection


def load_dataset(path: str | Path, observations: bool = False) -> BenchDataset:
    """Load a LoCoMo or LongMemEval file, telling the layout from the keys of its first item.

    ``observations``: read a LoCoMo file's observation facts too (see ``load_locomo``;
    LongMemEval files have none). Raises ``DataFormatError`` if the file matches neither
    layout.
    """
    data, src = _read_json(path, EITHER_LAYOUT)
    if not data:
        raise src.error("", "the list is empty, so its layout cannot be told")
    first = data[0]
    if isinstance(first, dict) and "sample_id" in first and "conversation" in first:
        return _parse_locomo(data, _Source(src.path, LOCOMO_LAYOUT), observations)
    if isinstance(first, dict) and "question_id" in first and "haystack_sessions" in first:
        return _parse_longmemeval(data, _Source(src.path, LONGMEMEVAL_LAYOUT))
    found = sorted(first) if isinstance(first, dict) else type(first).__name__
    raise src.error("item 0", f"matches neither layout (found {found})")
