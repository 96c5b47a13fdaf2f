"""Retrieval benchmark runner: ingest a dataset into a fresh store, ask, score, report."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

import remem
from remem import Memory
from remem.bench.datasets import (
    BenchConversation,
    BenchDataset,
    BenchFact,
    BenchQuestion,
    BenchTurn,
    load_dataset,
)
from remem.bench.metrics import (
    MetricAccumulator,
    dedupe,
    mean_steps,
    percentile,
    session_metrics,
    session_of,
    turn_metrics,
)
from remem.bench.scratch import temporary_memory
from remem.context import pack
from remem.embedders.base import Embedder
from remem.errors import InvalidInputError
from remem.formation.derived import Candidate
from remem.formation.turns import turn_embed_text
from remem.models import Message, Scope, SearchHit
from remem.retrieval.recipes import get_recipe
from remem.tokens import count_tokens

SEARCH_DEPTH = 50  # hits asked per question; enough to rank 20 distinct turns
CONTEXT_BUDGETS = (500, 1000, 1500, 2000)
# What a run searches (``--memories``): the kinds asked for; None is search's default
# (every retrievable kind: the turns and the facts loaded beside them).
MEMORIES: dict[str, tuple[str, ...] | None] = {"turns": ("turn",), "facts": ("fact",),
                                               "both": None}  # fmt: skip


@dataclass(frozen=True)
class IngestTiming:
    """How long ingest took over the whole dataset, and the raw embedder on its texts."""

    turns: int
    seconds: float
    embed_seconds: float = 0.0
    embedding_in_add: float = 0.0  # of ``seconds``, spent inside the engine's embedder

    def report(self) -> dict[str, float]:
        """Ingest speed against the raw embedder's (measured apart, same run, same texts),
        and the split of ingest itself: time inside the embedder (turns and summaries) and
        the rest, enrichment, summaries and writes (``overhead``: the rest as a share of
        the raw embedder's time)."""
        other = self.seconds - self.embed_seconds
        rest = self.seconds - self.embedding_in_add
        return {
            "turns": self.turns,
            "seconds": round(self.seconds, 3),
            "turns_per_second": _rate(self.turns, self.seconds),
            "embedder_seconds": round(self.embed_seconds, 3),
            "embedder_turns_per_second": _rate(self.turns, self.embed_seconds),
            "speed_vs_embedder": ratio(self.embed_seconds, self.seconds),
            "other_seconds": round(other, 3),
            "overhead": ratio(other, self.embed_seconds),
            "embedding_in_add_seconds": round(self.embedding_in_add, 3),
            "rest_in_add_seconds": round(rest, 3),
            "rest_share": ratio(rest, self.seconds),
        }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else 0.0


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else 0.0


def ingest(
    memory: Memory, dataset: BenchDataset, progress: bool, paired: bool = False
) -> IngestTiming:
    """Add every conversation, one ``add`` per session, into its own user scope; time
    spent inside the engine's embedder is measured on the side. ``paired``: before each
    add, time the raw embedder on the same turn texts, so both see the same machine load
    (this shared machine's speed drifts by 10-20% within minutes)."""
    spent, raw, adding = [0.0], 0.0, 0.0
    embed = memory.embedder.embed

    def timed(texts: Sequence[str]) -> Any:
        begun = time.perf_counter()
        try:
            return embed(texts)
        finally:
            spent[0] += time.perf_counter() - begun

    memory.embedder.embed = timed  # type: ignore[method-assign]
    total = sum(len(c.turns) for c in dataset.conversations)
    try:
        with tqdm(total=total, desc="ingest", unit="turn", disable=not progress) as bar:
            for conv in dataset.conversations:
                for session, turns in _sessions(conv):
                    if paired:
                        begun = time.perf_counter()
                        embed([turn_embed_text(_message(t)) for t in turns])
                        raw += time.perf_counter() - begun
                    begun = time.perf_counter()
                    memory.add(
                        [{"id": t.id, "role": t.role, "content": t.text, "name": t.speaker,
                          "timestamp": t.timestamp} for t in turns],
                        user_id=conv.id, session_id=session,
                    )  # fmt: skip
                    adding += time.perf_counter() - begun
                    bar.update(len(turns))
    finally:
        del memory.embedder.embed  # back to the embedder's own method
    return IngestTiming(total, adding, raw, spent[0])


@dataclass(frozen=True)
class FactIngest:
    """The file's own facts written as fact memories (after the turns, timed apart)."""

    facts: int
    seconds: float
    skipped: int  # facts citing no turn of their conversation
    dropped_citations: int

    def report(self) -> dict[str, float]:
        """How many facts were written, how fast, and what the file held that was not."""
        return {"facts": self.facts, "seconds": round(self.seconds, 3),
                "facts_per_second": _rate(self.facts, self.seconds), "skipped": self.skipped,
                "dropped_citations": self.dropped_citations}  # fmt: skip


def ingest_facts(memory: Memory, dataset: BenchDataset, progress: bool) -> FactIngest:
    """Write each conversation's facts (LoCoMo observations) into its user scope as fact
    memories citing their turns' messages, one ``remember_many`` per session; the turns
    must be in already (``ingest``)."""
    total = sum(len(c.facts) for c in dataset.conversations)
    begun = time.perf_counter()
    with tqdm(total=total, desc="facts", unit="fact", disable=not progress) as bar:
        for conv in dataset.conversations:
            by_session: dict[str, list[BenchFact]] = {}
            for fact in conv.facts:
                by_session.setdefault(fact.session, []).append(fact)
            for session, facts in by_session.items():
                candidates = [Candidate("fact", f.text, f.cites, f.timestamp) for f in facts]
                memory.remember_many(candidates, user_id=conv.id, session_id=session)
                bar.update(len(facts))
    seconds = time.perf_counter() - begun
    return FactIngest(total, seconds, dataset.skipped_facts, dataset.dropped_citations)


def cited_turns(hits: Sequence[SearchHit]) -> list[str]:
    """The turns a ranking points to, best first: each hit's cited messages in order (a
    turn cites its own message, a fact the turns it came from), each counted once."""
    return dedupe(s for h in hits for s in h.source_ids)


def _warmup(dataset: BenchDataset, count: int = 64) -> list[BenchTurn]:
    """The first turns of the dataset, to warm the embedder up before anything is timed."""
    return [t for c in dataset.conversations for t in c.turns][:count]


def _message(turn: BenchTurn) -> Message:
    """A benchmark turn as the ``Message`` ``add`` would log (for its embedded text)."""
    return Message(turn.id, Scope(), turn.role, turn.text, turn.speaker, turn.timestamp,
                   datetime.now())  # fmt: skip


def last_time(conv: BenchConversation) -> datetime | None:
    """When a question without a date is asked: at the end of the conversation."""
    return max((t.timestamp for t in conv.turns if t.timestamp is not None), default=None)


def _sessions(conv: BenchConversation) -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for turn in conv.turns:
        groups.setdefault(turn.session, []).append(turn)
    return list(groups.items())


def _score(dataset: BenchDataset, question: BenchQuestion, ranked: list[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if question.evidence:
        metrics.update(turn_metrics(ranked, question.evidence))
    if dataset.name == "longmemeval" and question.evidence_sessions:
        sessions = dedupe(session_of(t) for t in ranked)
        metrics.update(session_metrics(sessions, question.evidence_sessions))
    return metrics


def _context_metrics(
    question: BenchQuestion, hits: Sequence[SearchHit], count: Callable[[str], int]
) -> dict[str, float]:
    """For each budget: are all / any evidence turns in the packed context, and its size."""
    out: dict[str, float] = {}
    gold = set(question.evidence)
    for budget in CONTEXT_BUDGETS:
        context = pack(question.text, hits, budget, count)
        cited = set(context.source_ids)
        out[f"recall_all@{budget}tok"] = float(gold <= cited)
        out[f"recall_any@{budget}tok"] = float(bool(gold & cited))
        out[f"mean_tokens@{budget}tok"] = float(context.tokens)
    return out


def evaluate(
    memory: Memory, dataset: BenchDataset, recipe: str, progress: bool, memories: str = "turns"
) -> dict[str, Any]:
    """Ask every scored question with one recipe, searching ``memories`` (a key of
    ``MEMORIES``); return the retrieval and search parts."""
    acc = MetricAccumulator()
    packed = MetricAccumulator()
    count = functools.lru_cache(maxsize=100_000)(count_tokens)
    timings: list[float] = []
    steps: list[Any] = []
    questions = [(c, q) for c in dataset.conversations for q in c.questions if not q.abstention]
    last = {c.id: last_time(c) for c in dataset.conversations}
    kinds = MEMORIES[memories]
    desc = f"search [{recipe}, {memories}]"
    for conv, question in tqdm(questions, desc=desc, disable=not progress):
        started = time.perf_counter()
        hits = memory.search(
            question.text, user_id=conv.id, kinds=kinds, limit=SEARCH_DEPTH, recipe=recipe,
            reference_time=question.asked_at or last[conv.id], explain=True,
        )  # fmt: skip
        timings.append((time.perf_counter() - started) * 1000)
        steps.append((hits.explain or {}).get("timings_ms"))
        ranked = cited_turns(hits.hits)
        metrics = _score(dataset, question, ranked)
        if metrics:
            acc.add(question.category, metrics)
        if question.evidence:
            packed.add(question.category, _context_metrics(question, hits.hits, count))
    summary = acc.summary()
    return {
        "n_questions": len(acc),
        "retrieval": {"overall": summary["overall"], "by_category": summary["by_category"]},
        "context": {k: v for k, v in packed.summary()["overall"].items() if k != "n"},
        "search": {
            "queries": len(timings),
            "p50_ms": percentile(timings, 50) if timings else 0.0,
            "p95_ms": percentile(timings, 95) if timings else 0.0,
            "steps_ms": mean_steps(steps),
        },
    }


def run(
    data: str | Path | BenchDataset,
    recipes: Sequence[str] = ("default",),
    embedder: Embedder | str | None = None,
    progress: bool = True,
    on_report: Callable[[dict[str, Any]], None] | None = None,
    database: str | None = None,
    facts: bool = False,
    memories: Sequence[str] = ("turns",),
) -> list[dict[str, Any]]:
    """Benchmark each recipe on one ingest of ``data``; returns one report per recipe and
    ``memories`` searched (``MEMORIES``: turns, the file's facts, or both).

    ``facts``: also write the file's own facts (LoCoMo observations) as fact memories
    citing their turns, after the turns and timed apart (``facts_ingest``); searching
    facts needs them. The ingest goes to a fresh temporary SQLite file, or to
    ``database`` (in a new namespace, see ``temporary_memory``)."""
    for name in recipes:
        get_recipe(name)  # fail on a typo before the long ingest
    _check_memories(memories, facts)
    dataset = data if isinstance(data, BenchDataset) else load_dataset(data, facts)
    if facts and not any(c.facts for c in dataset.conversations):
        raise InvalidInputError(
            "no facts to load: facts come from a LoCoMo file's observations (load it with "
            "load_dataset(path, observations=True))"
        )
    reports = []
    with temporary_memory(embedder, database=database) as memory:
        # same run, same texts, same batches, interleaved; after the same warm-up
        memory.embedder.embed([turn_embed_text(_message(t)) for t in _warmup(dataset)])
        timing = ingest(memory, dataset, progress, paired=True)
        loaded = ingest_facts(memory, dataset, progress) if facts else None
        for name in recipes:
            for searched in memories:
                report = _report(dataset, memory, name, timing)
                report["memories"] = searched
                if loaded is not None:
                    report["facts_ingest"] = loaded.report()
                report.update(evaluate(memory, dataset, name, progress, searched))
                reports.append(report)
                if on_report:
                    on_report(report)
    return reports


def _check_memories(memories: Sequence[str], facts: bool) -> None:
    unknown = [m for m in memories if m not in MEMORIES]
    if unknown or not memories:
        raise InvalidInputError(
            f"memories to search: choose among {', '.join(MEMORIES)}, not {unknown or '[]'}"
        )
    if not facts and any(m != "turns" for m in memories):
        raise InvalidInputError(
            "searching facts needs facts: load the file's observations as fact memories "
            "(--facts-from-observations)"
        )


def _report(
    dataset: BenchDataset, memory: Memory, recipe: str, timing: IngestTiming
) -> dict[str, Any]:
    return {
        "benchmark": dataset.name,
        "data": str(dataset.path),
        "recipe": recipe,
        "embedder": memory.embedder.model_id,
        "store": memory.config.store.name,
        "version": remem.__version__,
        "n_conversations": len(dataset.conversations),
        "n_questions": 0,
        "skipped_questions": dataset.skipped_questions,
        "ingest": timing.report(),
    }
