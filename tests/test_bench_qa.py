"""``remem bench locomo --llm`` (``remem.bench.qa``): LoCoMo's token F1 against reference
values, the judge's verdicts read through the real structured-output core (``ScriptedLLM``
through the real registry), and a whole QA run on the tiny LoCoMo fixture: per-category
table, context tokens, failures, ingest cost."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from llm_server import KEY, MODEL

from remem.bench.datasets import BenchQuestion, load_dataset
from remem.bench.qa import (
    JUDGE_VERSION,
    QaSettings,
    extract,
    format_qa_report,
    judge,
    judge_messages,
    locomo_f1,
    multi_answer_f1,
    normalize_answer,
    qa_memory,
    run_qa,
    says_no_answer,
    sliced,
    token_f1,
)
from remem.bench.runner import ingest
from remem.cli.main import main
from remem.config import DeriveConfig, LLMConfig
from remem.embedders.base import Embedder
from remem.errors import LLMError
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.registry import create_llm, register_llm
from remem.settings import ENV_VARS

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake

TINY = Path(__file__).parent / "fixtures" / "locomo_tiny.json"


def _scripted(*replies: Any, model: str = "qa", **options: Any) -> ScriptedLLM:
    config = LLMConfig(name="scripted", model=model, options={"replies": replies, **options})
    llm = create_llm(config)
    assert isinstance(llm, ScriptedLLM)
    return llm


def _question(category: str, answer: str = "the park") -> BenchQuestion:
    return BenchQuestion("q", "What does Alice's dog love?", answer, category, ("D3:2",),
                         ("3",), None)  # fmt: skip


# ----------------------------------------------------------------------------- F1


@pytest.mark.parametrize(
    ("text", "normal"),
    [("The Lisbon, Portugal!", "lisbon portugal"), ("  a cat AND the dog ", "cat dog"),
     ("7 May, 2023.", "7 may 2023"), ("Anand's", "anands"), ("", "")],
)  # fmt: skip
def test_normalisation_is_locomos(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_token_f1_reference_values() -> None:
    assert token_f1("walks him every evening", "Walks him every evening.") == 1.0
    # he walk dog | walk him everi even: one shared token, P = 1/3, R = 1/4
    assert token_f1("He walks the dog", "walks him every evening") == pytest.approx(2 / 7)
    assert token_f1("painted", "painting") == 1.0  # Porter stems
    assert token_f1("", "Lisbon") == 0.0 and token_f1("Lisbon", "the") == 0.0
    assert token_f1("Lisbon Lisbon", "Lisbon") == pytest.approx(2 / 3)  # multisets


def test_multi_answer_f1_averages_over_the_gold_parts() -> None:
    assert multi_answer_f1("painting, pottery", "pottery, camping") == 0.5
    assert multi_answer_f1("pottery", "pottery, camping") == 0.5
    assert multi_answer_f1("camping, pottery", "pottery, camping") == 1.0


def test_each_category_is_scored_as_locomo_scores_it() -> None:
    assert locomo_f1("1", "painting, pottery", "pottery, camping") == 0.5
    assert locomo_f1("3", "Lisbon", "Lisbon; because she loved it") == 1.0
    assert locomo_f1("4", "Lisbon", "Lisbon; because she loved it") == pytest.approx(1 / 3)
    assert locomo_f1("5", "No information available.", "the park") == 1.0
    assert locomo_f1("5", "It is not mentioned in the conversation", "the park") == 1.0
    assert locomo_f1("5", "the park", "the park") == 0.0
    assert says_no_answer("NO INFORMATION AVAILABLE") and not says_no_answer("no idea")


# -------------------------------------------------------------------------- judge


def test_the_judge_prompt_is_versioned_and_pure() -> None:
    messages = judge_messages("When?", "7 May 2023", "on May 7th")
    assert messages == judge_messages("When?", "7 May 2023", "on May 7th")
    assert messages[1]["content"] == (
        "Question: When?\nGold answer: 7 May 2023\nGenerated answer: on May 7th"
    )
    assert '{"correct": true}' in messages[0]["content"] and JUDGE_VERSION == "judge/1"


def test_the_judges_verdicts_are_read_in_every_mode() -> None:
    llm = _scripted({"correct": True}, {"correct": False})
    assert judge(llm, _question("4"), "the park") == (True, None)
    assert judge(llm, _question("4"), "the beach") == (False, None)
    prose = _scripted('Let me think. {"correct": true} is my verdict.',
                      reject_modes=["json_schema", "json_object"])  # fmt: skip
    assert judge(prose, _question("2"), "the park") == (True, None)
    assert prose.requests[-1].mode == "text"


def test_a_judge_that_stays_invalid_counts_the_answer_wrong_and_says_why() -> None:
    llm = _scripted({"correct": "maybe"}, {"verdict": True}, {"correct": [1]})
    correct, error = judge(llm, _question("4"), "the park")
    assert correct is False and error is not None and error.startswith("judge: ")
    assert len(llm.requests) == 3


def test_adversarial_questions_are_not_sent_to_the_judge() -> None:
    llm = _scripted()
    assert judge(llm, _question("5"), "No information available.") == (True, None)
    assert judge(llm, _question("5"), "the park") == (False, None)  # the trap answer
    assert llm.requests == []


# ------------------------------------------------------------------------- slices


def test_small_runs_slice_conversations_sessions_and_questions() -> None:
    tiny = load_dataset(TINY)
    one = sliced(tiny, conversations=1)
    assert [c.id for c in one.conversations] == ["conv-a"]
    first = sliced(tiny, sessions=1)  # only questions whose evidence is in session 1
    assert [(c.id, [q.evidence for q in c.questions]) for c in first.conversations] == [
        ("conv-a", [("D1:3",)])
    ]
    assert {t.session for t in first.conversations[0].turns} == {"1"}
    three = sliced(tiny, questions=5)
    assert [len(c.questions) for c in three.conversations] == [4, 1]
    assert sliced(tiny) == tiny


# ---------------------------------------------------------------------------- run

ANSWERS = {  # what the scripted model answers, by question
    "When did Alice go to a pottery class?": "7 May 2023",
    "When did Alice paint a sunrise?": "last year",
    "What does Alice's dog love?": "No information available.",
    "What does Bob do with his dog?": "walks him every evening",
    "What language is Dan learning?": "Portuguese",
    "Which city does Dan want to revisit?": "Porto",
}


def _answering(request: ScriptedRequest) -> dict[str, Any]:
    """Answer from ``ANSWERS``, citing memory 1 (and a number that names nothing)."""
    prompt = request.messages[-1]["content"]
    question = prompt.rsplit("Question: ", 1)[1]
    assert re.search(r"^\[1\] ", prompt, re.MULTILINE), "the memories are numbered"
    return {"answer": ANSWERS[question], "citations": [1, 999]}


def _judging(request: ScriptedRequest) -> dict[str, Any]:
    """Correct when the gold answer's words are all in the generated one."""
    fields = dict(line.split(": ", 1) for line in request.messages[-1]["content"].splitlines())
    gold, answer = (
        normalize_answer(fields[k]).split() for k in ("Gold answer", "Generated answer")
    )
    return {"correct": set(gold) <= set(answer)}


def test_a_whole_run_on_the_tiny_file(embedder: Embedder) -> None:
    llm = _scripted(*[_answering] * 6, model="answerer")
    judge_llm = _scripted(*[_judging] * 5, model="judge")
    settings = QaSettings(("default",), budget_tokens=300, extract=False)
    (report,) = run_qa(load_dataset(TINY), llm, judge_llm, embedder, settings, progress=False)

    assert (report["answer_model"], report["judge_model"]) == ("scripted:answerer",
                                                                "scripted:judge")  # fmt: skip
    assert report["judge_prompt"] == JUDGE_VERSION and report["budget_tokens"] == 300
    by_category = report["by_category"]
    assert {c: m["n"] for c, m in by_category.items()} == {"1": 2, "2": 1, "3": 1, "4": 1, "5": 1}
    assert by_category["2"]["judge_accuracy"] == 1.0 and by_category["2"]["f1"] == 1.0
    assert by_category["1"]["judge_accuracy"] == 0.5  # "last year" is not "2022"
    assert by_category["1"]["f1"] == 0.5
    assert by_category["3"]["judge_accuracy"] == 0.0 and by_category["3"]["f1"] == 0.0
    assert by_category["5"] == {"judge_accuracy": 1.0, "f1": 1.0, "n": 1,
                                "context_tokens": by_category["5"]["context_tokens"]}  # fmt: skip
    overall = report["overall"]  # categories 1-4 only
    assert overall["n"] == 5 and overall["judge_accuracy"] == pytest.approx(3 / 5)
    assert overall["f1"] == pytest.approx((1 + 0 + 1 + 1 + 0) / 5)
    assert 0 < report["context_tokens"]["mean"] <= 300
    assert report["failures"] == {"answer": 0, "judge": 0}
    assert report["answer_usage"]["calls"] == 6 and report["judge_usage"]["calls"] == 5
    assert report["ingest"]["extraction"] == {
        "measured": False,
        "turns": 30,
        "reason": "extraction switched off (--no-extract)",
    }
    details = {q["question"]: q for q in report["questions"]}
    walks = details["What does Bob do with his dog?"]
    assert walks["correct"] and walks["evidence"] == ["D2:1", "D3:6"]
    assert len(walks["cited"]) == 1  # citation 999 named no memory
    json.dumps(report)

    text = format_qa_report(report)
    assert "5 adversarial" in text and "overall (1-4)" in text and "judge_accuracy" in text
    assert "LLM extraction not measured: extraction switched off" in text


def test_failed_answers_and_verdicts_score_zero_and_are_counted(embedder: Embedder) -> None:
    tiny = sliced(load_dataset(TINY), conversations=1, questions=2)
    llm = _scripted(*[{"wrong": 1}] * 3, _answering)  # the first question's answer stays bad
    judge_llm = _scripted(*[{"verdict": "yes"}] * 3)  # the second's verdict too
    settings = QaSettings(extract=False)
    (report,) = run_qa(tiny, llm, judge_llm, embedder, settings, progress=False)
    first, second = report["questions"]
    assert first["error"].startswith("answer: ") and first["answer"] == ""
    assert second["error"].startswith("judge: ") and second["answer"] == "last year"
    assert report["failures"] == {"answer": 1, "judge": 1}
    assert report["overall"]["judge_accuracy"] == 0.0


def test_extraction_cost_is_not_measured_without_the_derive_module(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "remem.evolution.derive", None)  # import fails
    tiny = sliced(load_dataset(TINY), conversations=1)
    with qa_memory(embedder, _scripted(), DeriveConfig()) as memory:
        ingest(memory, tiny, progress=False)
        cost = extract(memory, tiny, progress=False)
    assert cost.report()["measured"] is False
    assert "no LLM extraction in this build" in cost.report()["reason"]


def test_a_session_whose_extraction_fails_is_counted_and_its_turns_stay(
    embedder: Embedder,
) -> None:
    pytest.importorskip("remem.evolution.derive")
    tiny = sliced(load_dataset(TINY), conversations=1)
    failing = LLMError("the endpoint is down", reason="down", transient=True)
    with qa_memory(embedder, _scripted(*[failing] * 20), DeriveConfig()) as memory:
        ingest(memory, tiny, progress=False)
        cost = extract(memory, tiny, progress=False)
        turns = len(memory.list(user_id="conv-a", kinds="turn", limit=100))
    report = cost.report()
    assert report["measured"] is True and report["failed_sessions"] == 3
    assert report["failures"] == ["down"] and report["llm_calls"] >= 3  # failed calls count
    assert report["memories_written"] == 0 and turns == 18


# ---------------------------------------------------------------------------- CLI


def _cli(*args: str, **env: str) -> Any:
    runner = CliRunner(env={name: None for name in ENV_VARS} | env)
    return runner.invoke(main, ["bench", "locomo", str(TINY), "--no-progress", *args])


def test_cli_llm_runs_need_an_endpoint_and_say_which_options_clash() -> None:
    result = _cli("--llm")
    assert result.exit_code == 2 and "--llm needs an LLM endpoint" in result.stderr
    result = _cli("--conversations", "1")
    assert result.exit_code == 2 and "--conversations needs --llm" in result.stderr
    result = _cli("--llm", "--ablate")
    assert result.exit_code == 2 and "--ablate is for retrieval runs" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.llm_integration
def test_cli_llm_run_against_the_real_model(llm_server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "qa.json"
    result = _cli(
        "--llm", "--no-extract", "--limit-questions", "2", "--budget", "300", "--out", str(out),
        REMEM_LLM_BASE_URL=llm_server_url, REMEM_LLM_MODEL=MODEL, REMEM_LLM_API_KEY=KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overall (1-4)" in result.stdout and f"answer=openai:{MODEL}" in result.stdout
    report = json.loads(out.read_text())
    assert report["n_questions"] == 2 and len(report["questions"]) == 2
    assert report["answer_usage"]["calls"] == 2
    assert report["answer_usage"]["prompt_tokens"] > 0
