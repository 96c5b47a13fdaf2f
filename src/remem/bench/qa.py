"""LoCoMo question answering with an LLM: ingest, ask each question with ``Memory.ask``,
score the answer by an LLM judge and by LoCoMo's token F1, and count what it cost.

Scoring, per question:

* **judge accuracy**: the judge LLM (``judge_messages``, version ``JUDGE_VERSION``)
  compares the answer with the gold answer and says ``{"correct": true|false}``;
* **F1**: LoCoMo's own token F1 (``task_eval/evaluation.py``): answers normalised
  (lower case, commas, punctuation and the words a/an/the/and removed), tokens
  Porter-stemmed (snowball's ``porter``; NLTK's variant differs on a few rare words),
  F1 of the token multisets. Category 1 (multi-hop) splits both on commas and averages,
  over the gold parts, the best F1 against any predicted part; category 3 keeps the gold
  answer's first ``;`` part;
* **category 5 (adversarial)**: as LoCoMo scores it, for both measures: 1 when the
  answer says "no information available" or "not mentioned", else 0 (the file's
  ``adversarial_answer`` is the trap, not the truth, so the judge is not asked). Category
  5 has its own row and is left out of ``overall`` (categories 1-4), as published
  LoCoMo QA results do.

Ingest cost: the turns go in with ``add`` (no LLM), then, when ``extract`` is on,
``remem.evolution.derive.derive`` runs per session with the answering LLM and its batch
is written: its ``llm_calls``, tokens and seconds are reported per turn. Without that
module, or with ``extract`` off, the cost is reported as not measured, saying why.
"""

from __future__ import annotations

import re
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import snowballstemmer
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

import remem
from remem.answer import ANSWER_VERSION
from remem.api import to_plain
from remem.bench.datasets import BenchConversation, BenchDataset, BenchQuestion
from remem.bench.metrics import MetricAccumulator, format_table, percentile
from remem.bench.runner import ingest, last_time
from remem.config import DeriveConfig, EmbedderConfig, MemoryConfig, StoreConfig
from remem.embedders.base import Embedder
from remem.engine import Memory
from remem.errors import LLMError
from remem.llms.base import LLM, ChatMessage, Usage
from remem.models import Scope

JUDGE_VERSION = "judge/1"
JUDGE_MAX_TOKENS = 20
ADVERSARIAL = "5"
CATEGORY_NAMES = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop",
                  ADVERSARIAL: "adversarial"}  # fmt: skip
NO_ANSWER_PHRASES = ("no information available", "not mentioned")  # LoCoMo's category 5 test
QA_COLUMNS = ("judge_accuracy", "f1", "context_tokens", "n")


# -------------------------------------------------------------------------- judge


class Verdict(BaseModel):
    """The judge's verdict on one answer."""

    model_config = ConfigDict(extra="forbid")

    correct: bool = Field(description="true if the answer matches the gold answer")


def judge_messages(question: str, gold: str, answer: str) -> list[ChatMessage]:
    """Ask whether ``answer`` says what ``gold`` says (version ``JUDGE_VERSION``)."""
    system = (
        "You grade answers to questions about a long conversation. Given a question, the "
        "gold answer and a generated answer, the generated answer is correct if it states "
        "the same thing as the gold answer: it may be longer or worded differently, and a "
        "date or period in another format counts if it means the same one. It is wrong if "
        "it contradicts the gold answer, misses its point, or says the information is not "
        'available. Reply in JSON: {"correct": true} or {"correct": false}.'
    )
    user = f"Question: {question}\nGold answer: {gold}\nGenerated answer: {answer}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ----------------------------------------------------------------------------- F1

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = frozenset(string.punctuation)
_STEMMER = snowballstemmer.stemmer("porter")


def normalize_answer(text: str) -> str:
    """LoCoMo's normalisation: commas dropped, lower case, punctuation removed, the words
    a/an/the/and removed, whitespace collapsed."""
    text = "".join(ch for ch in text.replace(",", "").lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the stemmed tokens of the normalised answers (LoCoMo's ``f1_score``)."""
    predicted = _STEMMER.stemWords(normalize_answer(prediction).split())
    wanted = _STEMMER.stemWords(normalize_answer(gold).split())
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def multi_answer_f1(prediction: str, gold: str) -> float:
    """LoCoMo's ``f1`` for lists: both split on commas; the mean over gold parts of the
    best ``token_f1`` against any predicted part."""
    predicted = [p.strip() for p in prediction.split(",")]
    wanted = [g.strip() for g in gold.split(",")]
    return sum(max(token_f1(p, g) for p in predicted) for g in wanted) / len(wanted)


def says_no_answer(prediction: str) -> bool:
    """Whether an answer declines, in the words LoCoMo's category 5 scoring looks for."""
    lowered = prediction.lower()
    return any(phrase in lowered for phrase in NO_ANSWER_PHRASES)


def locomo_f1(category: str, prediction: str, gold: str) -> float:
    """A prediction's F1 as LoCoMo's evaluation scores its category."""
    if category == ADVERSARIAL:
        return float(says_no_answer(prediction))
    if category == "1":
        return multi_answer_f1(prediction, gold)
    if category == "3":
        gold = gold.split(";")[0].strip()
    return token_f1(prediction, gold)


# ---------------------------------------------------------------------- questions


@dataclass(frozen=True)
class QuestionResult:
    """One question asked and scored. ``correct`` is the judge's verdict (category 5:
    LoCoMo's phrase test); ``error`` says why answering or judging failed (then the
    question scores 0)."""

    id: str
    category: str
    question: str
    gold: str
    answer: str
    correct: bool
    f1: float
    context_tokens: int
    cited: tuple[str, ...]
    evidence: tuple[str, ...]
    seconds: float
    error: str | None = None


def judge(llm: LLM, question: BenchQuestion, answer: str) -> tuple[bool, str | None]:
    """The judge's verdict on ``answer`` (category 5: the phrase test, no call), and the
    reason when the judge failed (the answer then counts as wrong)."""
    if question.category == ADVERSARIAL:
        return says_no_answer(answer), None
    try:
        messages = judge_messages(question.text, question.answer, answer)
        verdict = llm.structured(messages, Verdict, max_tokens=JUDGE_MAX_TOKENS)
    except LLMError as exc:
        return False, f"judge: {exc.reason}"
    return verdict.value.correct, None


def ask_question(
    memory: Memory,
    judge_llm: LLM,
    conversation: BenchConversation,
    question: BenchQuestion,
    recipe: str,
    budget_tokens: int,
) -> QuestionResult:
    """Ask ``question`` about ``conversation`` (at the conversation's end) and score it."""
    started = time.perf_counter()
    reference = question.asked_at or last_time(conversation)
    try:
        answer = memory.ask(
            question.text, user_id=conversation.id, budget_tokens=budget_tokens,
            recipe=recipe, reference_time=reference,
        )  # fmt: skip
    except LLMError as exc:
        return QuestionResult(
            question.id, question.category, question.text, question.answer, "", False, 0.0,
            0, (), question.evidence, time.perf_counter() - started, f"answer: {exc.reason}",
        )  # fmt: skip
    correct, error = judge(judge_llm, question, answer.text)
    return QuestionResult(
        question.id, question.category, question.text, question.answer, answer.text,
        correct, locomo_f1(question.category, answer.text, question.answer),
        answer.context_tokens, answer.source_ids, question.evidence,
        time.perf_counter() - started, error,
    )  # fmt: skip


def summarize(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Judge accuracy, F1 and context tokens per category, and ``overall`` over
    categories 1-4 (category 5 apart, as published LoCoMo QA results do)."""
    by_category, overall = MetricAccumulator(), MetricAccumulator()
    for result in results:
        row = {"judge_accuracy": float(result.correct), "f1": result.f1}
        if not (result.error or "").startswith("answer"):  # no context when ask failed
            row["context_tokens"] = float(result.context_tokens)
        by_category.add(result.category, row)
        if result.category != ADVERSARIAL:
            overall.add("overall", row)
    tokens = [float(r.context_tokens) for r in results if not (r.error or "").startswith("answer")]
    return {
        "overall": overall.summary()["overall"] if len(overall) else {"n": 0},
        "by_category": by_category.summary()["by_category"],
        "context_tokens": _spread(tokens),
        "failures": {"answer": sum(1 for r in results if (r.error or "").startswith("answer")),
                     "judge": sum(1 for r in results if (r.error or "").startswith("judge"))},
    }  # fmt: skip


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    return {"mean": round(sum(values) / len(values), 1), "p50": percentile(values, 50),
            "p95": percentile(values, 95)}  # fmt: skip


# -------------------------------------------------------------------------- slices


def sliced(
    dataset: BenchDataset,
    conversations: int | None = None,
    sessions: int | None = None,
    questions: int | None = None,
) -> BenchDataset:
    """A small run's share of ``dataset``: its first ``conversations``, each cut to its
    first ``sessions`` (keeping the questions whose evidence is all in them), then the
    first ``questions`` questions in file order; conversations left without a question
    are dropped (nothing would ask about them)."""
    kept: list[BenchConversation] = []
    left = questions
    for conv in dataset.conversations[:conversations]:
        if sessions is not None:
            conv = _first_sessions(conv, sessions)
        asked = conv.questions if left is None else conv.questions[:left]
        if left is not None:
            left -= len(asked)
        if asked:
            kept.append(replace(conv, questions=asked))
    return replace(dataset, conversations=tuple(kept))


def _first_sessions(conv: BenchConversation, sessions: int) -> BenchConversation:
    order = list(dict.fromkeys(t.session for t in conv.turns))[:sessions]
    turns = tuple(t for t in conv.turns if t.session in order)
    ids = {t.id for t in turns}
    asked = tuple(q for q in conv.questions if set(q.evidence) <= ids)
    return replace(conv, turns=turns, questions=asked)


# -------------------------------------------------------------------------- ingest


@dataclass(frozen=True)
class IngestCost:
    """What extraction with the LLM cost at ingest (``measured`` false: why not, in
    ``reason``)."""

    turns: int
    measured: bool
    reason: str = ""
    llm_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    memories: int = 0
    failed_sessions: int = 0
    failures: tuple[str, ...] = ()  # why sessions failed, each reason once

    def report(self) -> dict[str, Any]:
        """The cost in total and per turn, JSON-ready."""
        out: dict[str, Any] = {"measured": self.measured, "turns": self.turns}
        if not self.measured:
            return {**out, "reason": self.reason}
        per = max(self.turns, 1)
        return {
            **out, "llm_calls": self.llm_calls,
            "llm_calls_per_turn": round(self.llm_calls / per, 4),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "tokens_per_turn": round(self.usage.total_tokens / per, 1),
            "seconds": round(self.seconds, 2), "seconds_per_turn": round(self.seconds / per, 3),
            "memories_written": self.memories, "failed_sessions": self.failed_sessions,
            "failures": list(self.failures),
        }  # fmt: skip


def extract(memory: Memory, dataset: BenchDataset, progress: bool) -> IngestCost:
    """Derive memories from each session's turns with the LLM (``derive``) and write them;
    the turns must be in already. The cost is the LLM client's usage and the wall time
    over all sessions, failed ones included; a session whose derivation fails is counted,
    with its reason, and skipped (its turns stay)."""
    turns = sum(len(c.turns) for c in dataset.conversations)
    try:
        from remem.evolution.derive import derive
    except ImportError as exc:
        return IngestCost(turns, False, f"no LLM extraction in this build ({exc})")
    llm = memory.llm
    if llm is None:
        return IngestCost(turns, False, "the memory has no LLM to extract with")
    before, started = llm.usage(), time.perf_counter()
    written, reasons = 0, []
    sessions = [(c, s) for c in dataset.conversations for s in _session_ids(c)]
    for conv, session in tqdm(sessions, desc="extract", unit="session", disable=not progress):
        scope = Scope(user_id=conv.id, session_id=session, namespace=memory.namespace)
        ids = [t.id for t in conv.turns if t.session == session]
        messages = memory.store.get_messages(memory.namespace, scope, ids)
        try:
            derivation = derive(memory, scope, messages)
        except LLMError as exc:
            reasons.append(exc.reason)
            continue
        memory.store.write(derivation.batch)
        written += len(derivation.batch.memories)
    spent = _spent(llm.usage(), before)
    return IngestCost(turns, True, "", spent.calls, spent, time.perf_counter() - started,
                      written, len(reasons), tuple(dict.fromkeys(reasons)))  # fmt: skip


def _session_ids(conv: BenchConversation) -> list[str]:
    return list(dict.fromkeys(t.session for t in conv.turns))


@contextmanager
def qa_memory(embedder: Embedder, llm: LLM, derive: DeriveConfig) -> Iterator[Memory]:
    """A ``Memory`` on a fresh temporary SQLite file that answers with ``llm``; ``add``
    does not derive (``extract`` does, measured), whatever ``derive`` says."""
    with tempfile.TemporaryDirectory(prefix="remem-qa-") as folder:
        config = MemoryConfig(
            StoreConfig(path=str(Path(folder) / "qa.db")), EmbedderConfig(),
            derive=replace(derive, enabled=False),
        )  # fmt: skip
        with Memory(config, embedder=embedder, llm=llm) as memory:
            yield memory


# ----------------------------------------------------------------------------- run


@dataclass(frozen=True)
class QaSettings:
    """What a QA run does: recipes, the context budget, whether ingest extracts."""

    recipes: tuple[str, ...] = ("default",)
    budget_tokens: int = 1000
    extract: bool = True
    derive: DeriveConfig = field(default_factory=DeriveConfig)


def run_qa(
    dataset: BenchDataset,
    llm: LLM,
    judge_llm: LLM,
    embedder: Embedder,
    settings: QaSettings = QaSettings(),
    progress: bool = True,
    on_report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Ingest ``dataset`` once (turns, then extraction when asked), then ask and score
    every question with each recipe; one report per recipe."""
    reports = []
    with qa_memory(embedder, llm, settings.derive) as memory:
        timing = ingest(memory, dataset, progress)
        off = IngestCost(timing.turns, False, "extraction switched off (--no-extract)")
        cost = extract(memory, dataset, progress) if settings.extract else off
        for recipe in settings.recipes:
            before, judged = llm.usage(), judge_llm.usage()
            results = _ask_all(memory, judge_llm, dataset, recipe, settings, progress)
            report = _report(dataset, memory, llm, judge_llm, recipe, settings)
            report.update(summarize(results))
            report["ingest"] = {"turns": timing.turns, "seconds": round(timing.seconds, 3),
                                "extraction": cost.report()}  # fmt: skip
            report["answer_usage"] = _usage(llm.usage(), before, len(results))
            report["judge_usage"] = _usage(judge_llm.usage(), judged, len(results))
            report["questions"] = [to_plain(r) for r in results]
            reports.append(report)
            if on_report:
                on_report(report)
    return reports


def _ask_all(
    memory: Memory,
    judge_llm: LLM,
    dataset: BenchDataset,
    recipe: str,
    settings: QaSettings,
    progress: bool,
) -> list[QuestionResult]:
    asked = [(c, q) for c in dataset.conversations for q in c.questions if not q.abstention]
    return [
        ask_question(memory, judge_llm, conv, question, recipe, settings.budget_tokens)
        for conv, question in tqdm(asked, desc=f"ask [{recipe}]", disable=not progress)
    ]


def _spent(after: Usage, before: Usage) -> Usage:
    """The LLM usage between two readings of a client's ``usage()``."""
    return Usage(*(getattr(after, f) - getattr(before, f) for f in asdict(after)))


def _usage(after: Usage, before: Usage, questions: int) -> dict[str, float]:
    """The LLM usage between two readings, and per question."""
    spent = _spent(after, before)
    per = max(questions, 1)
    return {**asdict(spent), "calls_per_question": round(spent.calls / per, 3),
            "tokens_per_question": round(spent.total_tokens / per, 1)}  # fmt: skip


def _report(
    dataset: BenchDataset,
    memory: Memory,
    llm: LLM,
    judge_llm: LLM,
    recipe: str,
    settings: QaSettings,
) -> dict[str, Any]:
    return {
        "benchmark": dataset.name, "mode": "qa", "data": str(dataset.path), "recipe": recipe,
        "embedder": memory.embedder.model_id, "version": remem.__version__,
        "answer_model": llm.model_id, "answer_prompt": ANSWER_VERSION,
        "judge_model": judge_llm.model_id, "judge_prompt": JUDGE_VERSION,
        "budget_tokens": settings.budget_tokens,
        "n_conversations": len(dataset.conversations),
        "n_questions": sum(len(c.questions) for c in dataset.conversations),
    }  # fmt: skip


# -------------------------------------------------------------------------- output


def format_qa_report(report: dict[str, Any]) -> str:
    """One recipe's QA report as text: header, a table per category, costs."""
    rows = {f"{c} {CATEGORY_NAMES.get(c, '')}".strip(): m
            for c, m in report["by_category"].items()}  # fmt: skip
    rows["overall (1-4)"] = report["overall"]
    tokens, extraction = report["context_tokens"], report["ingest"]["extraction"]
    answer, judged = report["answer_usage"], report["judge_usage"]
    lines = [
        f"LoCoMo QA  recipe={report['recipe']}  budget={report['budget_tokens']} tokens  "
        f"answer={report['answer_model']} ({report['answer_prompt']})  "
        f"judge={report['judge_model']} ({report['judge_prompt']})",
        f"{report['n_conversations']} conversations, {report['n_questions']} questions; "
        f"failures: {report['failures']['answer']} answers, {report['failures']['judge']} "
        "verdicts",
        "",
        format_table(rows, list(QA_COLUMNS), "category"),
        "",
        f"context: mean {tokens['mean']:.0f} tokens per question (p50 {tokens['p50']:.0f}, "
        f"p95 {tokens['p95']:.0f})",
        f"answering: {answer['calls_per_question']:.2f} calls, "
        f"{answer['tokens_per_question']:.0f} tokens per question; judging: "
        f"{judged['calls_per_question']:.2f} calls, {judged['tokens_per_question']:.0f} tokens",
        _extraction_line(report["ingest"]["turns"], extraction),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def _extraction_line(turns: int, cost: dict[str, Any]) -> str:
    if not cost["measured"]:
        return f"ingest: {turns} turns; LLM extraction not measured: {cost['reason']}"
    return (
        f"ingest with LLM extraction: {turns} turns, {cost['llm_calls']} LLM calls "
        f"({cost['llm_calls_per_turn']:.3f} per turn), {cost['tokens_per_turn']:.0f} tokens "
        f"and {cost['seconds_per_turn']:.2f} s per turn, {cost['memories_written']} memories "
        f"written, {cost['failed_sessions']} sessions failed"
        + (f" ({'; '.join(cost['failures'])})" if cost["failures"] else "")
    )
