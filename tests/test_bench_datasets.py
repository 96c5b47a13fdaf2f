"""Tests for remem.bench.datasets: the LoCoMo and LongMemEval loaders."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from remem.bench.datasets import (
    BenchDataset,
    load_dataset,
    load_locomo,
    load_longmemeval,
)
from remem.errors import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures"
LOCOMO = FIXTURES / "locomo_tiny.json"
LONGMEMEVAL = FIXTURES / "longmemeval_tiny.json"
LOCOMO_DEV = Path(__file__).parents[2] / "shared/data/locomo/locomo-dev.json"


def _write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _locomo_data() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(LOCOMO.read_text(encoding="utf-8"))
    return data


def _longmemeval_data() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(LONGMEMEVAL.read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- LoCoMo


@pytest.fixture(scope="module")
def locomo() -> BenchDataset:
    return load_locomo(LOCOMO)


def test_locomo_counts(locomo: BenchDataset) -> None:
    assert locomo.name == "locomo"
    assert locomo.path == str(LOCOMO)
    assert [c.id for c in locomo.conversations] == ["conv-a", "conv-b"]
    assert [len(c.turns) for c in locomo.conversations] == [18, 12]
    assert [len(c.questions) for c in locomo.conversations] == [4, 2]
    assert locomo.question_count == 6
    # conv-a q2 cites only a turn that does not exist; conv-b q0 cites nothing
    assert locomo.skipped_questions == 2


def test_locomo_turns(locomo: BenchDataset) -> None:
    conv = locomo.conversations[0]
    assert [t.id for t in conv.turns[:7]] == [
        "D1:1",
        "D1:2",
        "D1:3",
        "D1:4",
        "D1:5",
        "D1:6",
        "D2:1",
    ]
    first = conv.turns[0]
    assert (first.session, first.role, first.speaker) == ("1", "user", "Alice")
    assert first.text == "Hi Bob! Long time no see."
    assert conv.turns[1].role == "assistant"
    assert {t.session for t in conv.turns} == {"1", "2", "3"}  # session_4 has only a date


def test_locomo_timestamps(locomo: BenchDataset) -> None:
    conv = locomo.conversations[0]
    by_session = {t.session: t.timestamp for t in conv.turns}
    assert by_session == {
        "1": datetime(2023, 5, 8, 13, 56),
        "2": datetime(2023, 6, 27, 10, 37),
        "3": datetime(2023, 7, 3, 21, 5),  # "9:05 pm on 3 July 2023", no comma
    }
    assert locomo.conversations[1].turns[0].timestamp == datetime(2023, 9, 13, 0, 9)


def test_locomo_caption_appended(locomo: BenchDataset) -> None:
    turns = {t.id: t for t in locomo.conversations[0].turns}
    assert turns["D2:3"].text == (
        "His name is Oscar. Look at him. [shares a photo: a photo of a brown dog on a couch]"
    )
    assert sum("[shares a photo:" in t.text for t in turns.values()) == 1


def test_locomo_roles_follow_speaker_a_even_when_b_speaks_first(locomo: BenchDataset) -> None:
    conv = locomo.conversations[1]
    assert (conv.turns[0].speaker, conv.turns[0].role) == ("Dan", "assistant")
    assert (conv.turns[1].speaker, conv.turns[1].role) == ("Carol", "user")


def test_locomo_questions(locomo: BenchDataset) -> None:
    qs = {q.id: q for c in locomo.conversations for q in c.questions}
    assert list(qs) == [
        "conv-a:q0",
        "conv-a:q1",
        "conv-a:q3",
        "conv-a:q4",
        "conv-b:q1",
        "conv-b:q2",
    ]
    q0 = qs["conv-a:q0"]
    assert (q0.text, q0.answer, q0.category) == (
        "When did Alice go to a pottery class?",
        "7 May 2023",
        "2",
    )
    assert (q0.evidence, q0.evidence_sessions, q0.asked_at, q0.abstention) == (
        ("D1:3",),
        ("1",),
        None,
        False,
    )
    # "D1:5; D2:4" in one string is split; the int answer becomes a string
    assert qs["conv-a:q1"].evidence == ("D1:5", "D2:4")
    assert qs["conv-a:q1"].evidence_sessions == ("1", "2")
    assert qs["conv-a:q1"].answer == "2022"
    # a bare "D" is dropped, the valid ids are kept
    assert qs["conv-a:q4"].evidence == ("D2:1", "D3:6")
    # category 5 carries adversarial_answer instead of answer
    assert (qs["conv-a:q3"].category, qs["conv-a:q3"].answer) == ("5", "the park")
    assert qs["conv-b:q2"].evidence_sessions == ("1", "2")


def test_locomo_answer_preferred_over_adversarial_answer(tmp_path: Path) -> None:
    data = _locomo_data()
    data[0]["qa"][3]["answer"] = "No"
    assert load_locomo(_write(tmp_path, data)).conversations[0].questions[2].answer == "No"


def test_locomo_question_without_any_answer_gets_empty_string(tmp_path: Path) -> None:
    data = _locomo_data()
    del data[0]["qa"][0]["answer"]
    assert load_locomo(_write(tmp_path, data)).conversations[0].questions[0].answer == ""


# ---------------------------------------------------------------------- LongMemEval


@pytest.fixture(scope="module")
def longmemeval() -> BenchDataset:
    return load_longmemeval(LONGMEMEVAL)


def test_longmemeval_counts(longmemeval: BenchDataset) -> None:
    assert longmemeval.name == "longmemeval"
    assert [c.id for c in longmemeval.conversations] == ["q-user-1", "q-multi-2", "q-user-3_abs"]
    assert [len(c.turns) for c in longmemeval.conversations] == [7, 6, 4]
    assert all(len(c.questions) == 1 for c in longmemeval.conversations)
    # q-temporal-4's only answer session is not in its haystack
    assert longmemeval.skipped_questions == 1


def test_longmemeval_turns(longmemeval: BenchDataset) -> None:
    turns = longmemeval.conversations[0].turns
    assert [t.id for t in turns] == [
        "sharegpt_x1:0",
        "sharegpt_x1:1",
        "answer_a1:0",
        "answer_a1:1",
        "answer_a1:2",
        "ultrachat_y2:0",
        "ultrachat_y2:1",
    ]
    assert (turns[2].session, turns[2].role, turns[2].speaker) == ("answer_a1", "user", None)
    assert turns[2].text == "My beagle keeps chewing shoes."
    assert turns[0].timestamp == datetime(2023, 5, 20, 2, 21)
    assert turns[6].timestamp == datetime(2023, 5, 25, 9, 0)


def test_longmemeval_questions(longmemeval: BenchDataset) -> None:
    q1, q2, q3 = (c.questions[0] for c in longmemeval.conversations)
    assert (q1.id, q1.category, q1.answer) == ("q-user-1", "single-session-user", "A beagle")
    assert q1.evidence == ("answer_a1:0",)  # has_answer false does not count
    assert q1.evidence_sessions == ("answer_a1",)
    assert q1.asked_at == datetime(2023, 5, 30, 23, 40)
    assert q2.answer == "5"
    assert q2.evidence == ("answer_b1:0", "answer_b3:1")
    assert q2.evidence_sessions == ("answer_b1", "answer_b3")  # answer_missing is dropped
    assert (q3.abstention, q1.abstention, q2.abstention) == (True, False, False)
    assert q3.evidence == ()


def test_longmemeval_without_question_date(tmp_path: Path) -> None:
    data = _longmemeval_data()
    del data[0]["question_date"]
    assert load_longmemeval(_write(tmp_path, data)).conversations[0].questions[0].asked_at is None


# ------------------------------------------------------------------ autodetect, errors


def test_load_dataset_detects_layout() -> None:
    assert load_dataset(LOCOMO).name == "locomo"
    assert load_dataset(LONGMEMEVAL).name == "longmemeval"
    assert load_dataset(LOCOMO) == load_locomo(LOCOMO)


def test_non_json_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("this is not json", encoding="utf-8")
    for loader in (load_dataset, load_locomo, load_longmemeval):
        with pytest.raises(DataFormatError, match="not valid JSON") as info:
            loader(path)
        assert str(path) in str(info.value)
        assert "Expected" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="cannot read the file"):
        load_dataset(tmp_path / "absent.json")


def test_top_level_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, {"sample_id": "x"})
    with pytest.raises(DataFormatError, match="top level should be a JSON list, got dict"):
        load_locomo(path)


def test_neither_layout(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"id": 1, "messages": []}])
    with pytest.raises(DataFormatError) as info:
        load_dataset(path)
    message = str(info.value)
    assert str(path) in message
    assert "item 0" in message and "matches neither layout" in message
    assert "LoCoMo layout" in message and "LongMemEval layout" in message


def test_empty_list_cannot_be_detected(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="empty"):
        load_dataset(_write(tmp_path, []))


def test_wrong_loader_for_layout() -> None:
    with pytest.raises(DataFormatError, match="item 0: missing key 'sample_id'") as info:
        load_locomo(LONGMEMEVAL)
    assert "LoCoMo layout" in str(info.value)
    with pytest.raises(DataFormatError, match="missing key 'question_id'"):
        load_longmemeval(LOCOMO)


def test_locomo_bad_date(tmp_path: Path) -> None:
    data = _locomo_data()
    data[1]["conversation"]["session_2_date_time"] = "sometime in October"
    with pytest.raises(DataFormatError) as info:
        load_locomo(_write(tmp_path, data))
    message = str(info.value)
    assert "sample_id 'conv-b'" in message
    assert "session_2_date_time" in message
    assert "cannot parse the date 'sometime in October'" in message


def test_longmemeval_bad_date(tmp_path: Path) -> None:
    data = _longmemeval_data()
    data[1]["haystack_dates"][2] = "June 5th"
    with pytest.raises(DataFormatError, match=r"'q-multi-2'.*haystack session 2 date.*June 5th"):
        load_longmemeval(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d[0].pop("qa"), "missing key 'qa'"),
        (lambda d: d[0]["qa"][0].update(category="2"), "'category' should be an int, got str"),
        (lambda d: d[0]["conversation"].update(session_2="oops"), "'session_2' should be a list"),
        (lambda d: d[0]["conversation"]["session_1"][0].update(speaker="Eve"), "speaker 'Eve'"),
        (lambda d: d[0]["conversation"]["session_1"][1].update(dia_id="D1:1"), "appears twice"),
        (lambda d: d[0]["qa"][0].update(evidence=[1]), "evidence entry: should be a string"),
        (lambda d: d.append(3), "item 2: should be an object, got int"),
    ],
)
def test_locomo_malformed(tmp_path: Path, mutate: Any, expected: str) -> None:
    data = _locomo_data()
    mutate(data)
    with pytest.raises(DataFormatError, match=expected):
        load_locomo(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d[0].pop("answer"), "missing key 'answer'"),
        (lambda d: d[0]["haystack_dates"].pop(), "differ in length"),
        (lambda d: d[0]["haystack_sessions"][0][0].update(role="system"), "role 'system'"),
        (lambda d: d[0]["haystack_sessions"][0][0].pop("content"), "missing key 'content'"),
        (lambda d: d[0].update(haystack_session_ids=["a", "a", "b"]), "'a' appears twice"),
        (lambda d: d[0].update(question_date="yesterday"), "question_date: cannot parse"),
    ],
)
def test_longmemeval_malformed(tmp_path: Path, mutate: Any, expected: str) -> None:
    data = _longmemeval_data()
    mutate(data)
    with pytest.raises(DataFormatError, match=expected):
        load_longmemeval(_write(tmp_path, data))


# ----------------------------------------------------------------------- dev split


def test_locomo_dev_split_loads() -> None:
    if not LOCOMO_DEV.is_file():
        pytest.skip(f"LoCoMo dev split not found at {LOCOMO_DEV}")
    dataset = load_dataset(LOCOMO_DEV)
    assert dataset.name == "locomo"
    assert len(dataset.conversations) == 5
    assert all(c.turns and c.questions for c in dataset.conversations)
    for conv in dataset.conversations:
        turn_ids = {t.id for t in conv.turns}
        assert all(t.timestamp is not None for t in conv.turns)
        assert all(q.evidence and set(q.evidence) <= turn_ids for q in conv.questions)
