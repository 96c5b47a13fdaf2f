"""``Memory`` (the entry class) and ``AsyncMemory`` (the same calls, awaitable)."""

from __future__ import annotations

import asyncio
import builtins
import copy
import functools
import os
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from remem import jobs as runner
from remem import portability
from remem.annotations import ENTITIES, KEYPHRASES, TIMES, entity_links
from remem.config import EmbedderConfig, MemoryConfig
from remem.context import Context, pack
from remem.embedders.base import Embedder
from remem.errors import ConfigError, InvalidInputError, NotFoundError
from remem.evolution import forgetting, history
from remem.evolution.recall import RecallLog
from remem.evolution.retention import reinforced
from remem.formation.derived import (
    DERIVED_KINDS,
    Candidate,
    candidate_record,
    derived_index_text,
)
from remem.formation.enrich import Enriched, enrich, index_suffix
from remem.formation.salience import entity_table
from remem.formation.summaries import needs_refresh, summarize, summary_embed_text
from remem.formation.turns import format_day, turn_embed_text, turn_index_text, turn_memories
from remem.index.cache import LiveIndex, SnapshotMoved
from remem.llms.base import LLM
from remem.models import (
    AddResult,
    CompactReport,
    Entity,
    ForgetReport,
    Job,
    JobsReport,
    MemoryEvent,
    MemoryRecord,
    Message,
    Scope,
    SearchHit,
    SearchResults,
    Stats,
)
from remem.registry import (
    create_embedder,
    create_llm,
    create_reranker,
    create_store,
    store_config,
)
from remem.rerankers.base import Reranker
from remem.retrieval.recipes import Recipe, get_recipe
from remem.retrieval.run import Rerank, Vector
from remem.retrieval.search import SearchRun
from remem.retrieval.search import search as run_search
from remem.stores.base import KEEP, MemoryFilter, MemoryPatch, NewJob, NewMemory, Store, WriteBatch
from remem.util import new_id, parse_timestamp, utcnow
from remem.validation import (
    check_count,
    check_flag,
    check_id,
    check_kinds,
    check_limit,
    check_metadata,
    check_metadata_filter,
    check_number,
    check_path,
    check_scope,
    check_text,
    normalize_messages,
)

if TYPE_CHECKING:
    from remem.answer import Answer

_UPDATABLE = ("text", "metadata", "pinned", "expires_at", "importance")
DERIVED = (ENTITIES, KEYPHRASES, TIMES)
P = ParamSpec("P")
R = TypeVar("R")
EMBED_WORKERS = 4  # query embeddings computed at once (searches from several threads)
FILTERS_KEPT = 1024  # checked filters kept per Memory (``Memory._filter``)


class Memory:
    """Long-term memory over one store: add conversations, search them, manage memories.

    >>> m = Memory("memory.db")
    >>> m.add("I moved to Lisbon in May", user_id="ana")
    >>> m.search("where does Ana live?", user_id="ana")
    """

    def __init__(
        self,
        path: str | Path | MemoryConfig = "remem.db",
        *,
        embedder: Embedder | str | None = None,
        namespace: str | None = None,
        recipe: str | Recipe | None = None,
        llm: LLM | None = None,
    ) -> None:
        config = (
            path if isinstance(path, MemoryConfig) else MemoryConfig(store_config(_location(path)))
        )
        self.config = config
        self.namespace = check_id(config.namespace if namespace is None else namespace,
                                  "namespace")  # fmt: skip
        self.recipe = get_recipe(recipe or config.recipe)
        memory_mb = check_limit(config.index_memory_mb, "index_memory_mb", 1 << 30)
        self._owns_embedder = not isinstance(embedder, Embedder)
        if isinstance(embedder, Embedder):
            self.embedder = embedder
        else:
            self.embedder = create_embedder(
                EmbedderConfig(embedder) if embedder else config.embedder
            )
        self.store: Store = create_store(config.store)
        self.index = LiveIndex(self.store, budget=memory_mb << 20)
        self._recalls = RecallLog(self._write_recalls)  # shared by ``tenant`` views
        self._rerankers: dict[str, Reranker] = {}
        self._rerankers_lock = threading.Lock()
        self._seen: dict[tuple[str, str], dict[str, str]] = {}
        self._seen_lock = threading.Lock()
        self._filters: dict[tuple[str | None, ...], MemoryFilter] = {}
        self._view = False  # made by ``tenant``: closing it releases nothing shared
        self._llm, self._owns_llm = llm, llm is None
        self._llm_lock = threading.Lock()
        self._drainer = runner.Drainer(self)  # runs add(wait=False)'s jobs, once started
        # a remote embedder's query embeddings run here while the search reads the store
        self._embedding = ThreadPoolExecutor(EMBED_WORKERS, thread_name_prefix="remem-embed")
        try:
            self.store.bind_embedder(self.embedder.model_id, self.embedder.dimensions)
        except BaseException:
            self.store.close()
            self._embedding.shutdown()
            raise

    @property
    def llm(self) -> LLM | None:
        """The LLM that extraction, consolidation and ``ask`` use: the one passed in, else
        the one ``config.llm`` names (built at first use), else ``None`` (no LLM: nothing
        leaves the machine)."""
        with self._llm_lock:
            if self._llm is None and self.config.llm is not None:
                self._llm = create_llm(self.config.llm)
            return self._llm

    # -- writing -----------------------------------------------------------------------

    def add(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        wait: bool = True,
    ) -> AddResult:
        """Log messages verbatim and derive a ``turn`` memory from each, atomically.

        Re-adding a message with the same ``id`` in the same user/agent scope is a no-op
        (reported in ``duplicate_ids``); reusing an id for other content is an error.

        With an LLM (and ``config.derive.enabled``), the same write enqueues a ``derive``
        job for the new messages (facts, events, profile entries, procedures). ``wait``
        runs it before returning (``AddResult.derived`` has what it wrote); ``wait=False``
        returns at once, and the job runs in this memory's background thread
        (``config.derive.background``), ``run_jobs`` or ``remem worker``.
        """
        wait = check_flag(wait, "wait")
        now = utcnow()
        scope = check_scope(self.namespace, user_id, agent_id, session_id)
        logged = normalize_messages(
            messages, scope, parse_timestamp(timestamp), check_metadata(metadata),
            self.config.max_message_chars, now,
        )  # fmt: skip
        stored = self.store.existing_messages(scope, [m.id for m in logged])
        fresh = [m for m in logged if m.id not in stored]  # the store still checks conflicts
        enriched = self._enrich(scope, fresh)
        records = turn_memories(fresh, now, [e.attributes for e in enriched])
        texts = [
            turn_index_text(m, index_suffix(e.times)) for m, e in zip(fresh, enriched, strict=True)
        ]
        summary = self._summary(scope, records, len(fresh), now)
        if summary is not None:
            records.append(summary[0])
            texts.append(summary[1])
        embedded = [turn_embed_text(m) for m in fresh]
        if summary is not None:
            embedded.append(summary_embed_text(summary[0]))
        vectors = self.embedder.embed(embedded)
        job = self._derive_job(scope, fresh, wait)
        batch = WriteBatch(
            messages=tuple(logged),
            memories=tuple(
                NewMemory(r, t, v) for r, t, v in zip(records, texts, vectors, strict=True)
            ),
            singleton_kinds=("summary",),
            jobs=(job,) if job is not None else (),
        )
        skipped = set(self.store.write(batch))
        self._learn_entities(scope, records)
        run = None if job is None else runner.after_add(self, job, skipped, wait)
        derived = ((summary[0],) if summary is not None else ()) + (run.memories if run else ())
        return AddResult(
            message_ids=tuple(m.id for m in logged if m.id not in skipped),
            memories=tuple(r for r in records if r.kind == "turn" and r.source_ids[0]
                           not in skipped),
            duplicate_ids=tuple(m.id for m in logged if m.id in skipped),
            derived=derived, job=run,
        )  # fmt: skip

    def _derive_job(self, scope: Scope, fresh: builtins.list[Message], wait: bool) -> NewJob | None:
        """The ``derive`` job for an add's new messages, when an LLM derives memories;
        one that will not wait joins a pending job of its scope with room (a batch)."""
        if not fresh or not self.config.derive.enabled or self.llm is None:
            return None
        size = 0 if wait else self.config.derive.batch_turns
        return NewJob(id=new_id(), kind=runner.DERIVE, scope=scope,
                      message_ids=tuple(m.id for m in fresh), batch_size=size)  # fmt: skip

    def remember(
        self,
        text: str,
        *,
        kind: str = "fact",
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        source_ids: Sequence[str] = (),
        timestamp: Any = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float = 0.5,
    ) -> MemoryRecord:
        """Store one derived memory as given (a fact an agent states, an imported
        observation): enriched and embedded like a turn, citing ``source_ids``, messages
        of the same user/agent (an id the store does not hold there is an error)."""
        if kind not in DERIVED_KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(DERIVED_KINDS)}, not {kind!r}")
        if isinstance(source_ids, str) or not isinstance(source_ids, Sequence):
            raise InvalidInputError("source_ids must be a list of message ids")
        candidate = Candidate(
            kind=kind, text=check_text(text, "text", self.config.max_message_chars),
            source_ids=tuple(check_id(i, "source_ids") for i in source_ids),
            occurred_at=parse_timestamp(timestamp), metadata=check_metadata(metadata),
            importance=check_number(importance, "importance"),
        )  # fmt: skip
        return self.remember_many([candidate], user_id=user_id, agent_id=agent_id,
                                  session_id=session_id)[0]  # fmt: skip

    def remember_many(
        self,
        candidates: Sequence[Candidate],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> builtins.list[MemoryRecord]:
        """Write derived memories as given, in one transaction (no consolidation: what
        the caller asserts is stored; ``remember`` checks one candidate's fields)."""
        scope = check_scope(self.namespace, user_id, agent_id, session_id)
        for c in candidates:
            if not isinstance(c, Candidate) or c.kind not in DERIVED_KINDS:
                raise InvalidInputError(
                    "remember_many takes Candidate objects of kind "
                    f"{', '.join(DERIVED_KINDS)}; got {getattr(c, 'kind', type(c).__name__)!r}"
                )
            check_text(c.text, "text", self.config.max_message_chars)
        self._check_sources(scope, [i for c in candidates for i in c.source_ids])
        new = self._derived(scope, candidates, utcnow())
        self.store.write(WriteBatch(memories=tuple(new), actor="user", reason="remember"))
        records = [n.record for n in new]
        self._learn_entities(scope, records)
        return records

    def _check_sources(self, scope: Scope, ids: Sequence[str]) -> None:
        wanted = set(ids)
        if not wanted:
            return
        found = {m.id for m in self.store.get_messages(self.namespace, scope, sorted(wanted))}
        missing = sorted(wanted - found)
        if missing:
            raise NotFoundError(
                f"source messages {', '.join(missing[:5])} are not in this user/agent's log; "
                "cite ids that add() returned for the same user_id and agent_id"
            )

    def _derived(
        self, scope: Scope, candidates: Sequence[Candidate], now: datetime
    ) -> builtins.list[NewMemory]:
        """Candidates as memories ready to write: enriched (entities, times) like turns
        and embedded, in one embedder call."""
        if not candidates:
            return []
        probes = [
            Message(id=new_id(), scope=scope, role="assistant", content=c.text, speaker=None,
                    occurred_at=c.occurred_at, recorded_at=now)
            for c in candidates
        ]  # fmt: skip
        enriched = self._enrich(scope, probes)
        records = [
            candidate_record(c, scope, now, e.attributes)
            for c, e in zip(candidates, enriched, strict=True)
        ]
        vectors = self.embedder.embed([r.text for r in records])
        return [
            NewMemory(r, derived_index_text(r, index_suffix(e.times)), v)
            for r, e, v in zip(records, enriched, vectors, strict=True)
        ]

    def _enrich(self, scope: Scope, messages: builtins.list[Message]) -> builtins.list[Enriched]:
        """Entities, times and key phrases of new messages, against the scope's statistics
        and the entities earlier adds of this scope learnt from the store."""
        if not messages:
            return []
        seen = self._seen_entities(scope)

        def known(keys: Sequence[str]) -> dict[str, str]:
            found = self.store.entity_kinds(scope, keys)
            seen.update(found)
            return found

        return enrich(
            messages, known, lambda words: self.store.term_counts(scope, words),
            self.config.enrich, seen,
        )  # fmt: skip

    def _learn_entities(self, scope: Scope, records: builtins.list[MemoryRecord]) -> None:
        """Remember the kinds of the entities this add wrote, as the store holds them (a
        writer elsewhere may have stored one first), so the next add of the scope finds
        them without asking the store again."""
        if not self.config.enrich.entities:
            return
        seen = self._seen_entities(scope)
        keys = sorted(
            {link.key for r in records for link in entity_links(r.attributes)} - seen.keys()
        )
        if keys:
            seen.update(self.store.entity_kinds(scope, keys))

    def _seen_entities(self, scope: Scope) -> dict[str, str]:
        """Entity kinds of a user/agent scope the store has answered before (kept for the
        64 most recent scopes; a stored entity's kind never changes)."""
        owner = (scope.user_id or "", scope.agent_id or "")
        with self._seen_lock:
            table = self._seen.pop(owner, None) or {}
            self._seen[owner] = table
            while len(self._seen) > 64:
                self._seen.pop(next(iter(self._seen)))
            return table

    def _summary(
        self, scope: Scope, new_turns: builtins.list[MemoryRecord], fresh: int, now: datetime
    ) -> tuple[MemoryRecord, str] | None:
        """A fresh summary of exactly the session these turns join (the record and its
        indexed text), if it is due. Deciding reads two counters, not the session; the
        write then supersedes whatever summary is current in the same transaction."""
        if not (self.config.enrich.summaries and new_turns and scope.session_id):
            return None
        info = self.store.session_info(scope)
        done = info.summary.attributes.get("turns") if info.summary else None
        if not needs_refresh(info.messages + fresh, done if isinstance(done, int) else None):
            return None
        turns = [*self.store.session_turns(scope), *new_turns]
        draft = summarize(turns)
        if draft is None:
            return None
        record = MemoryRecord(
            id=new_id(), kind="summary", text=draft.text, scope=scope,
            source_ids=draft.source_ids, occurred_at=turns[-1].occurred_at, created_at=now,
            updated_at=now, attributes=draft.attributes,
        )  # fmt: skip
        when = f" [{format_day(record.occurred_at)}]" if record.occurred_at else ""
        return record, draft.text + when

    def update(self, /, memory_id: str, *, reason: str = "update", **changes: Any) -> MemoryRecord:
        """Change a memory's text, metadata, pinned, expires_at or importance (audited)."""
        unknown = set(changes) - set(_UPDATABLE)
        if unknown or not changes:
            raise InvalidInputError(
                f"update takes some of {', '.join(_UPDATABLE)}, not {sorted(unknown) or 'nothing'}"
            )
        memory_id = check_id(memory_id, "memory_id")
        reason = check_text(reason, "reason", 1000)
        patch = MemoryPatch(
            metadata=check_metadata(changes["metadata"]) if "metadata" in changes else KEEP,
            pinned=check_flag(changes["pinned"], "pinned") if "pinned" in changes else KEEP,
            expires_at=(parse_timestamp(changes["expires_at"], "expires_at")
                        if "expires_at" in changes else KEEP),
            importance=(check_number(changes["importance"], "importance")
                        if "importance" in changes else KEEP),
        )  # fmt: skip
        if "text" in changes:
            text = check_text(changes["text"], "text", self.config.max_message_chars)
            # what ingest found in the old text no longer holds: drop it, so the entity
            # and time indexes do not point at words the memory no longer has
            old = self.get(memory_id).attributes
            kept = {k: v for k, v in old.items() if k not in DERIVED}
            vector = self.embedder.embed_one(text)
            patch = replace(patch, text=text, index_text=text, vector=vector, attributes=kept)
        return self.store.update_memory(self.namespace, memory_id, patch, "user", reason)

    def delete(self, memory_id: str) -> None:
        """Delete one memory with its vector, index entries, entity rows nothing else
        names and its events' copies of its content; ``history`` keeps when it changed
        and by whom, not what it said. Its source messages stay: the log is verbatim
        (``delete_all`` deletes messages). ``compact`` then clears the files' free space
        (``docs/deletion.md``)."""
        self.store.delete_memory(self.namespace, check_id(memory_id, "memory_id"), "user", "delete")
        self._forget_seen()

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, int]:
        """Delete every message and memory of a scope, and all derived from them: memories
        elsewhere that cite only its messages (a fact of the user from a deleted session;
        one citing surviving messages too stays, citing only those), their vectors,
        index entries, entity rows and term counts nothing else holds, the content of
        their events, and the scope's pending jobs. At least one scope field is required.
        Returns how many memories and messages went; ``compact`` then clears the files'
        free space (``docs/deletion.md``)."""
        scope = check_scope(self.namespace, user_id, agent_id, session_id)
        if scope.user_id is None and scope.agent_id is None and scope.session_id is None:
            raise InvalidInputError(
                "delete_all needs user_id, agent_id or session_id; it never wipes a whole store"
            )
        owner = scope.user_id is not None or scope.agent_id is not None
        # a session id names a session of one owner: alone, it means the unowned one's
        flt = MemoryFilter(self.namespace, scope.user_id if owner else "",
                           scope.agent_id if owner else "", scope.session_id,
                           current_only=False)  # fmt: skip
        memories, messages = self.store.delete_scope(flt, "user")
        self._forget_seen()
        return {"memories": memories, "messages": messages}

    def compact(self, *, full: bool = False) -> CompactReport:
        """Make deleted content unrecoverable from the store's files and give back the
        space: clear what deletions by earlier versions left (audit snapshots of deleted
        memories, entity rows nothing names, term counts at zero), then SQLite: VACUUM and
        an emptied write-ahead log; PostgreSQL: VACUUM of remem's tables (``full``: VACUUM
        FULL, rewriting them under a lock). It covers the whole store, every namespace;
        what it cannot reach (PostgreSQL's WAL, backups) is in ``docs/deletion.md``."""
        self.flush()  # recalls waiting to be written go first: nothing writes during it
        return self.store.compact(check_flag(full, "full"))

    def _forget_seen(self) -> None:
        """Drop the entity kinds learnt from the store: a deletion may have removed some."""
        with self._seen_lock:
            self._seen.clear()

    # -- reading -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 10,
        recipe: str | Recipe | None = None,
        explain: bool = False,
        reference_time: Any = None,
        as_of: Any = None,
        mode: str = "current",
    ) -> SearchResults:
        """The memories that best answer ``query``, best first, with per-channel scores.

        Relative time expressions in the query ("last week") are resolved against
        ``reference_time`` (default: now). Session summaries are searched only when
        ``kinds`` asks for them; otherwise they help rank the turns of their session.
        Each hit counts as a recall of its memory (``MemoryConfig.record_access``),
        written in the background. ``as_of`` searches the memories current at that time,
        ``mode="history"`` every version, superseded ones too (``remem.evolution.history``).
        """
        started = time.perf_counter()
        text = check_text(query, "query", self.config.max_message_chars)
        chosen = get_recipe(recipe) if recipe is not None else self.recipe
        flt = self._filter(user_id, agent_id, session_id, kinds, metadata, since, until)
        flt = history.read_filter(flt, as_of, mode)
        reference = parse_timestamp(reference_time, "reference_time")
        results = self._search(text, flt, chosen, check_limit(limit), reference, explain, started)
        self._recalled([hit.memory.id for hit in results.hits])
        return results

    def _search(
        self,
        text: str,
        flt: MemoryFilter,
        chosen: Recipe,
        limit: int,
        reference: datetime | None,
        explain: bool,
        started: float,
    ) -> SearchResults:
        """``search`` with its inputs checked; records no recall."""
        rerank = self._rerank_function(chosen.rerank)
        timings: dict[str, float] = {}
        vector = self._embed_later(text, timings) if "dense" in chosen.channels else None

        def ranked(fast: bool) -> tuple[SearchRun, dict[str, MemoryRecord]]:
            """The pipeline's run and its hits' records, from one state of the store."""
            opened = time.perf_counter()
            with self.index.open(flt, fast=fast) as index:
                timings["open"] = _ms(opened)
                run = run_search(self.store, index, vector, text, flt, chosen, limit, utcnow(),
                                 reference, rerank, explain)  # fmt: skip
                fetched = time.perf_counter()
                rows = [index.row_of[c.id] for c in run.candidates]
                records = {r.id: r for r in index.records(rows, self._load)}
                timings["fetch"] = _ms(fetched)
            return run, records

        try:
            run, records = ranked(fast=True)
        except SnapshotMoved:  # store reads met a write: again, in one snapshot
            run, records = ranked(fast=False)
        hits = tuple(
            SearchHit(records[c.id], c.score, c.scores, rank, c.channels)
            for rank, c in enumerate((c for c in run.candidates if c.id in records), start=1)
        )
        took = _ms(started)
        info = _explained(run.analysis, flt, timings, took) if explain else None
        return SearchResults(query=text, recipe=chosen.name, hits=hits, took_ms=took, explain=info)

    def _recalled(self, memory_ids: builtins.list[str]) -> None:
        """Count memories handed to the caller as recalled (written in the background)."""
        if self.config.record_access and memory_ids:
            self._recalls.record(self.namespace, memory_ids, utcnow())

    def _write_recalls(self, namespace: str, accesses: builtins.list[tuple[str, datetime]]) -> int:
        return self.store.record_access(namespace, accesses, reinforced)

    def _load(self, ids: builtins.list[str]) -> builtins.list[MemoryRecord]:
        return self.store.get_memories(self.namespace, ids)

    def _embed_later(self, text: str, timings: dict[str, float]) -> Future[Vector]:
        """The query's embedding (its time in ``timings``): from a remote embedder, computed
        in a worker thread while the search reads the store; from a local model, now
        (it already keeps both cores busy, and overlapping measured slower, README)."""

        def embed() -> Vector:
            started = time.perf_counter()
            try:
                return self.embedder.embed_one(text)
            finally:
                timings["embed"] = _ms(started)

        if self.embedder.remote:
            return self._embedding.submit(embed)
        done: Future[Vector] = Future()
        done.set_result(embed())
        return done

    def context(
        self,
        query: str,
        *,
        budget_tokens: int = 1000,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        recipe: str | Recipe | None = None,
        candidates: int = 50,
        reference_time: Any = None,
        as_of: Any = None,
        mode: str = "current",
    ) -> Context:
        """The best memories for ``query`` that fit ``budget_tokens``, laid out for a prompt.

        Tokens are counted with remem's bundled WordPiece tokenizer (``Context.tokenizer``);
        lines are grouped by session and date, each citing its source message ids. The
        memories packed (not every candidate ranked) count as recalled. ``as_of`` and
        ``mode`` read history as in ``search``.
        """
        started = time.perf_counter()
        budget = check_limit(budget_tokens, "budget_tokens", 1_000_000)
        depth = check_limit(candidates, "candidates")
        text = check_text(query, "query", self.config.max_message_chars)
        chosen = get_recipe(recipe) if recipe is not None else self.recipe
        flt = self._filter(user_id, agent_id, session_id, kinds, metadata, since, until)
        flt = history.read_filter(flt, as_of, mode)
        reference = parse_timestamp(reference_time, "reference_time")
        with self.index.open(flt) as index:  # the search and the slots from one snapshot
            results = self._search(text, flt, chosen, depth, reference, False, started)
            order = {h.memory.id: index.positions[index.row_of[h.memory.id]]
                     for h in results.hits if h.memory.id in index.row_of}  # fmt: skip
        packed = pack(results.query, results.hits, budget, positions=order)
        self._recalled([item.memory.id for item in packed.items])  # what the prompt shows
        return packed

    def ask(
        self,
        question: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        budget_tokens: int = 1000,
        recipe: str | Recipe | None = None,
        reference_time: Any = None,
    ) -> Answer:
        """Answer ``question`` from memory with the LLM, citing the memories it used.

        One ``context`` of ``budget_tokens`` for the question, one LLM call; the
        ``Answer`` holds the text, the cited memories with their source message ids, the
        context's tokens and the call's usage (``remem.answer``). ``ConfigError`` when no
        LLM is configured, ``LLMError`` when the LLM fails or its answer stays invalid.
        """
        llm = self.llm
        if llm is None:
            raise ConfigError(
                "ask needs an LLM: pass Memory(..., llm=...), set MemoryConfig.llm to an "
                "LLMConfig(base_url=..., model=...), or set REMEM_LLM_BASE_URL and "
                "REMEM_LLM_MODEL for the CLI and server (docs/llm.md)"
            )
        from remem.answer import answer  # needs pydantic, which comes with an LLM

        return answer(
            self, llm, question, user_id=user_id, agent_id=agent_id, session_id=session_id,
            budget_tokens=budget_tokens, recipe=recipe, reference_time=reference_time,
        )  # fmt: skip

    def get(self, memory_id: str, *, as_of: Any = None, mode: str = "current") -> MemoryRecord:
        """One memory by id, current or not (``superseded_by`` says); ``NotFoundError`` if
        it is unknown in this namespace. ``as_of``: the version of its line current then
        (``remem.evolution.history``)."""
        found = self.store.get_memories(self.namespace, [check_id(memory_id, "memory_id")])
        if not found:
            raise NotFoundError(
                f"no memory {memory_id!r} in namespace {self.namespace!r}; "
                "find ids with Memory.list() / search() or `remem list` / `remem search`"
            )
        return history.version_at(self.store, found[0], as_of, mode)

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 100,
        offset: int = 0,
        as_of: Any = None,
        mode: str = "current",
    ) -> builtins.list[MemoryRecord]:
        """Memories of a scope, most recent first (``as_of``, ``mode``: as in ``search``)."""
        offset = check_count(offset, "offset")
        flt = self._filter(user_id, agent_id, session_id, kinds, metadata, since, until)
        flt = history.read_filter(flt, as_of, mode)
        return self.store.list_memories(flt, check_limit(limit), offset)

    def entities(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Entity]:
        """The scope's entity table (names, titles, key phrases), strongest first.

        Strength decays per later session (``EnrichConfig.keyphrase_decay``) unless the
        entity is mentioned again; ``kind`` keeps one kind ("name", "keyphrase", ...).
        """
        flt = self._filter(user_id, agent_id, session_id, None, None, None, None)
        with self.index.open(flt) as index:
            table = entity_table(index, self.config.enrich.keyphrase_decay)
        if kind is not None:
            table = [e for e in table if e.kind == check_text(kind, "kind")]
        return table[: check_limit(limit)]

    # -- evolution ------------------------------------------------------------------------

    def forget(
        self,
        *,
        policy: str = "retention",
        threshold: float | None = None,
        dry_run: bool = False,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
    ) -> ForgetReport:
        """Archive the scope's memories a forgetting policy picks, each with an ARCHIVE
        event saying why; nothing is deleted, and pinned memories are never archived.

        ``retention``: memories whose retention ``exp(-t / S)`` (``t`` days since their
        last recall or storing, ``S`` their strength in days) is below ``threshold``
        (default 0.05). ``ttl``: memories whose ``expires_at`` has passed (no threshold).
        Archived memories leave search and list; ``get`` and ``history`` still show
        them. ``dry_run`` lists what would go and writes nothing. Recalls this process
        has not written yet are written first.
        """
        rule = forgetting.policy(policy, threshold)
        dry = check_flag(dry_run, "dry_run")
        flt = self._filter(user_id, agent_id, session_id, kinds, None, None, None)
        self.flush()
        return forgetting.forget(self.store, flt, rule, dry, utcnow())

    def flush(self) -> int:
        """Write the recalls searches have recorded and not yet written, now; returns how
        many. (A background thread writes them within about two seconds anyway, and
        ``close`` writes the rest.)"""
        return self._recalls.flush()

    def history(self, memory_id: str) -> builtins.list[MemoryEvent]:
        """Every change to a memory, oldest first. After the memory is deleted the events
        stay without their content (``before``, ``after`` and ``reason`` cleared): when it
        was added, changed and deleted, and by whom, but not what it said."""
        events = self.store.events(self.namespace, check_id(memory_id, "memory_id"))
        if not events:
            raise NotFoundError(f"no memory {memory_id!r} has ever existed in {self.namespace!r}")
        return events

    def stats(self) -> Stats:
        """Counts of messages, memories and events in this namespace, and its job backlog
        by status (``Stats.jobs``: pending, running, done, failed)."""
        return self.store.stats(self.namespace)

    # -- background jobs -----------------------------------------------------------------

    def run_jobs(self, *, limit: int | None = None, worker: str | None = None) -> JobsReport:
        """Run this namespace's due jobs now, in this thread, one after another until none
        is left (or ``limit`` runs were made); each is claimed through the store, so other
        workers never run the same one. ``worker`` names this runner on its claims."""
        most = None if limit is None else check_limit(limit, "limit", 1 << 30)
        name = runner.worker_name() if worker is None else check_id(worker, "worker")
        return runner.run_jobs(self, self.namespace, name, limit=most)

    def jobs(self, *, status: str | None = None, limit: int = 100) -> builtins.list[Job]:
        """This namespace's jobs, newest first (``status``: only pending, running, done or
        failed ones); a failed job shows why in ``error``."""
        return self.store.jobs(self.namespace, status, check_limit(limit))

    def retry_job(self, job_id: str) -> Job:
        """Queue a failed job again (attempts start over); it runs in the background
        thread, ``run_jobs`` or ``remem worker``."""
        job = self.store.retry_job(self.namespace, check_id(job_id, "job_id"))
        if self.config.derive.background and self.llm is not None:
            self._drainer.wake(self.namespace)
        return job

    # -- portability ---------------------------------------------------------------------

    def export(self, path: str | Path) -> int:
        """Write this namespace to a JSONL file (format in ``remem.portability``)."""
        target = check_path(path)
        return portability.export_jsonl(self.store, self.namespace, self.embedder, target)

    def import_(self, path: str | Path) -> int:
        """Load a JSONL export into this namespace, atomically; returns rows written."""
        source = check_path(path)
        return portability.import_jsonl(self.store, self.namespace, self.embedder, source)

    # -- lifecycle -----------------------------------------------------------------------

    def tenant(self, namespace: str) -> Memory:
        """This memory's store, embedder and search indexes, reading and writing another
        namespace: many tenants on one connection pool and one model. Every read and write
        of the returned ``Memory`` is confined to ``namespace`` as if it had been opened
        there; closing it releases nothing shared, closing this one closes the store."""
        view = copy.copy(self)
        view.namespace = check_id(namespace, "namespace")
        view._seen, view._seen_lock = {}, threading.Lock()  # entity kinds are per tenant
        view._filters = {}
        view._view = True
        return view

    def close(self) -> None:
        """Close the store, and the embedder unless the caller passed it in (a ``tenant``
        view closes nothing: the memory it came from owns them)."""
        if self._view:
            return
        self._drainer.stop()  # after the job it runs, before the store goes
        try:
            self._recalls.close()  # the recalls still waiting, before the store goes
        finally:
            self._embedding.shutdown()
            self.store.close()
            for reranker in self._rerankers.values():
                reranker.close()
            if self._owns_embedder:
                self.embedder.close()
            if self._owns_llm and self._llm is not None:
                self._llm.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rerank_function(self, name: str | None) -> Rerank | None:
        """The scoring function of the reranker a recipe names, built once (options from
        ``config.reranker`` when it names the same reranker)."""
        if name is None:
            return None
        with self._rerankers_lock:
            if name not in self._rerankers:
                options = self.config.reranker.options if self.config.reranker.name == name else {}
                self._rerankers[name] = create_reranker(name, options)
            return self._rerankers[name].score

    def _filter(
        self,
        user_id: Any,
        agent_id: Any,
        session_id: Any,
        kinds: Any,
        metadata: Any,
        since: Any,
        until: Any,
    ) -> MemoryFilter:
        """The checked filter; the plain ones (ids and a kind name as strings, nothing
        else) are kept, so a search repeats none of the checks (``FILTERS_KEPT``)."""
        key = (self.namespace, user_id, agent_id, session_id, kinds)
        unset = metadata is None and since is None and until is None
        plain = unset and all(value is None or type(value) is str for value in key)
        if plain and (kept := self._filters.get(key)) is not None:
            return kept
        scope = check_scope(self.namespace, user_id, agent_id, session_id)
        wanted = check_metadata_filter(metadata)
        flt = MemoryFilter(
            namespace=self.namespace, user_id=scope.user_id, agent_id=scope.agent_id,
            session_id=scope.session_id, kinds=check_kinds(kinds),
            metadata=wanted, since=parse_timestamp(since, "since"),
            until=parse_timestamp(until, "until"),
        )  # fmt: skip
        if plain:
            if len(self._filters) >= FILTERS_KEPT:
                self._filters.clear()
            self._filters[key] = flt
        return flt


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _explained(
    analysis: dict[str, Any], flt: MemoryFilter, timings: Mapping[str, float], took: float
) -> dict[str, Any]:
    """The pipeline's explanation, with the filter and every stage's milliseconds: the
    query embedding (in its worker thread) and how long the search waited for it, the
    store snapshot and index refresh (``open``), the pipeline's stages, reading the hits
    (``fetch``) and the whole call (``total``)."""
    stages = {"embed": timings.get("embed", 0.0), "open": timings.get("open", 0.0),
              **analysis.get("timings_ms", {}), "fetch": timings.get("fetch", 0.0),
              "total": took}  # fmt: skip
    rounded = {k: round(v, 3) for k, v in stages.items()}
    return {**analysis, "filter": _describe(flt), "timings_ms": rounded}


def _describe(flt: MemoryFilter) -> dict[str, Any]:
    """The non-empty parts of a filter, JSON-ready."""
    out: dict[str, Any] = {"namespace": flt.namespace}
    for name in ("user_id", "agent_id", "session_id"):
        if getattr(flt, name) is not None:
            out[name] = getattr(flt, name)
    if flt.kinds:
        out["kinds"] = list(flt.kinds)
    if flt.metadata:
        out["metadata"] = dict(flt.metadata)
    for name in ("since", "until"):
        value = getattr(flt, name)
        if value is not None:
            out[name] = value.isoformat()
    return out


def _location(path: Any) -> str:
    """A database path or store URL as given (checked, not normalised: URLs keep '//')."""
    check_path(path, "path")
    return path if isinstance(path, str) else os.fspath(path)


def _in_thread(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
    """``Memory``'s method as a coroutine that runs it in a worker thread: the same
    parameters and result types (checked by mypy), the same docs."""

    async def call(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncMemory:
    """``Memory`` for asyncio: the same calls, run in a worker thread so the loop never blocks.

    It wraps a ``Memory`` and shares all its logic; nothing is implemented twice, and each
    method has exactly ``Memory``'s parameters and result type.
    """

    def __init__(
        self,
        path: str | Path | MemoryConfig = "remem.db",
        *,
        embedder: Embedder | str | None = None,
        namespace: str | None = None,
        recipe: str | Recipe | None = None,
        llm: LLM | None = None,
    ) -> None:
        self.sync = Memory(path, embedder=embedder, namespace=namespace, recipe=recipe, llm=llm)

    add = _in_thread(Memory.add)
    remember = _in_thread(Memory.remember)
    remember_many = _in_thread(Memory.remember_many)
    search = _in_thread(Memory.search)
    context = _in_thread(Memory.context)
    ask = _in_thread(Memory.ask)
    get = _in_thread(Memory.get)
    list = _in_thread(Memory.list)
    update = _in_thread(Memory.update)
    delete = _in_thread(Memory.delete)
    delete_all = _in_thread(Memory.delete_all)
    compact = _in_thread(Memory.compact)
    entities = _in_thread(Memory.entities)
    history = _in_thread(Memory.history)
    forget = _in_thread(Memory.forget)
    flush = _in_thread(Memory.flush)
    stats = _in_thread(Memory.stats)
    run_jobs = _in_thread(Memory.run_jobs)
    jobs = _in_thread(Memory.jobs)
    retry_job = _in_thread(Memory.retry_job)
    export = _in_thread(Memory.export)
    import_ = _in_thread(Memory.import_)
    close = _in_thread(Memory.close)

    def tenant(self, namespace: str) -> AsyncMemory:
        """See ``Memory.tenant``."""
        view = copy.copy(self)
        view.sync = self.sync.tenant(namespace)
        return view

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
