"""Consolidation: what each derived-memory candidate does to the memories already stored.

Deterministic steps first, each cheaper than the next, and only what they leave goes to
the LLM (after Think-in-Memory's insert / forget / merge, and A-Mem's linking of related
notes):

1. **Same text**: a candidate whose normalised text (``normalise``: case, Unicode form,
   punctuation and spacing ignored) hashes like a current derived memory of the same
   user/agent, or like an earlier candidate of the batch, is a NOOP of it.
2. **Near-duplicate vector**: a candidate whose embedding has cosine at least
   ``NEAR_DUPLICATE`` with such a memory (found through the scope's live index, the one
   searches use, never by loading the scope) or with an earlier candidate is a NOOP of
   it, if both texts carry the same key tokens (``same_key_tokens``: numbers, negations
   and capitalised words; "has 2 kids" and "has 3 kids" are 0.985 apart).
3. **Entities**: names a candidate declares (``who``, ``entities``) or mentions, in any
   case or possessive ("Melanie", "melanie", "Melanie's"), link to one entity key
   (``remem.formation.entities.entity_key``), the one the scope's turns use.
4. **The LLM** (``Memory.llm``), when configured, decides the rest in batches of
   ``DeriveConfig.consolidate_batch``, each candidate shown with its
   ``DeriveConfig.neighbours`` nearest current memories by short local numbers:
   ADD, UPDATE (the old memory is superseded: ``valid_to`` and ``superseded_by`` set,
   never overwritten), MERGE (one new memory replaces several), NOOP or INVALIDATE (the
   old memory ends, nothing replaces it). Without an LLM, the rest is ADDed.

A decision is never applied blindly (``_checked``): one naming a memory number it was
not shown, or retiring a memory an earlier decision of the batch already retires, or an
UPDATE / MERGE / INVALIDATE naming no memory, becomes an ADD (a wrong ADD costs a
duplicate; a wrong retire would end a true memory). Unknown link numbers are dropped,
and a candidate the model gave no decision is ADDed. Every new memory records why it
was written (``attributes["consolidation"]``), its related memories
(``attributes["links"]``) and its text hash; every retired or restated memory gets an
event with the reason. ``consolidate`` only plans; ``consolidate_and_write`` writes the
plan in one transaction and plans again if another writer got there first.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from remem.errors import ConflictError, InvalidInputError
from remem.evolution import consolidate_entities as entities
from remem.formation.derived import DERIVED_KINDS, Candidate
from remem.index.live import LiveScope
from remem.llms.base import LLM, Usage
from remem.models import MemoryRecord, Scope
from remem.stores.base import JobClaim, MemoryFilter, NewMemory, Note, Retire, WriteBatch
from remem.stores.consolidation import TEXT_HASH
from remem.util import utcnow

if TYPE_CHECKING:
    from remem.engine import Memory
    from remem.evolution.consolidate_prompt import Consolidation, ConsolidationDecision

log = logging.getLogger(__name__)

NEAR_DUPLICATE = 0.95  # cosine (MiniLM) from which two texts with the same key tokens agree
RELATED = 0.75  # cosine from which a memory ADDed without an LLM links an existing one
# below this cosine to every stored memory, a candidate can update, merge or invalidate
# nothing: it is ADDed by rule, without asking the LLM (a scope's first facts cost no
# consolidation call). Measured with MiniLM: contradictions such as "Ana is vegetarian" /
# "Ana started eating fish again" sit at 0.62, unrelated facts near 0.2.
UNRELATED = 0.45
ACTIONS = ("ADD", "UPDATE", "MERGE", "NOOP", "INVALIDATE")
RETIRE_EVENTS = {"UPDATE": "SUPERSEDE", "MERGE": "MERGE", "INVALIDATE": "INVALIDATE"}
LINKS = "links"
PROVENANCE = "consolidation"
MAX_REASON = 500


@dataclass(frozen=True)
class Decision:
    """What consolidation decided for one candidate, and what it wrote for it."""

    action: str  # "ADD" | "UPDATE" | "MERGE" | "NOOP" | "INVALIDATE"
    candidate: Candidate
    targets: tuple[str, ...]  # existing memory ids concerned (UPDATE/MERGE/NOOP/INVALIDATE)
    memory_id: str | None  # the memory written for it, if any
    reason: str
    by: str  # "hash" | "vector" | "llm" | "rule"


@dataclass(frozen=True)
class Plan:
    """Everything a consolidation writes, ready for one ``WriteBatch`` (``write_batch``):
    new memories, the memories they retire, events about memories left unchanged, and
    one decision per candidate, in order. ``llm_calls``/``usage``: what the LLM cost."""

    memories: tuple[NewMemory, ...]
    retire: tuple[Retire, ...]
    notes: tuple[Note, ...]  # events without a change (NOOP, reinforcement)
    decisions: tuple[Decision, ...]
    llm_calls: int
    usage: Usage  # zero without an LLM


@dataclass(frozen=True)
class _Choice:
    """A decision before it is written: ``targets`` are existing memory ids; ``same_as``
    an earlier candidate of the batch this one repeats; ``text`` replaces the
    candidate's text (MERGE, UPDATE) when not empty."""

    action: str
    by: str
    reason: str
    targets: tuple[str, ...] = ()
    same_as: int | None = None
    text: str = ""
    links: tuple[str, ...] = ()


@dataclass
class _Item:
    """One candidate on its way through the steps."""

    candidate: Candidate
    hash: str
    draft: NewMemory | None = None
    near: list[tuple[MemoryRecord, float]] = field(default_factory=list)
    choice: _Choice | None = None


# -- text ------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_NEGATIONS = frozenset(
    "no not never none nobody nothing nowhere neither nor without".split()  # noqa: SIM905
)
_NUMBERS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve twenty thirty
    forty fifty hundred thousand million first second third once twice""".split()  # noqa: SIM905
)


def normalise(text: str) -> str:
    """Text as hash dedupe compares it: Unicode NFKC, lower case, curly apostrophes as
    straight ones, only words (punctuation and spacing ignored)."""
    folded = unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()
    return " ".join(_TOKEN.findall(folded))


def text_hash(text: str) -> str:
    """The hash of a text's ``normalise``d form (what ``TEXT_HASH`` holds)."""
    return hashlib.sha256(normalise(text).encode()).hexdigest()[:32]


def _base(token: str) -> str:
    low = token.replace("\u2019", "'").lower()
    return low[:-2] if low.endswith("'s") and len(low) > 2 else low


def key_tokens(text: str) -> frozenset[str]:
    """Words that change what a sentence says while its embedding barely moves: numbers,
    negations, and capitalised words (names, places, months)."""
    out = set()
    for token in _TOKEN.findall(unicodedata.normalize("NFKC", text).replace("\u2019", "'")):
        base = _base(token)
        if (any(c.isdigit() for c in token) or token[0].isupper() or base in _NUMBERS
                or base in _NEGATIONS or base.endswith("n't")):  # fmt: skip
            out.add(base)
    return frozenset(out)


def same_key_tokens(a: str, b: str) -> bool:
    """Whether each text's key tokens all occur in the other (in any case)."""
    words_a = {_base(t) for t in _TOKEN.findall(a)}
    words_b = {_base(t) for t in _TOKEN.findall(b)}
    return key_tokens(a) <= words_b and key_tokens(b) <= words_a


# -- planning --------------------------------------------------------------------------


def consolidate(
    memory: Memory, scope: Scope, candidates: Sequence[Candidate], now: datetime
) -> Plan:
    """Decide what each candidate does to the scope's current derived memories (see the
    module docstring) and return the plan; nothing is written. An ``LLMError`` (the
    model's answer stayed invalid, the endpoint failed) propagates: nothing is planned."""
    if scope.namespace != memory.namespace:
        raise InvalidInputError(
            f"the scope is in namespace {scope.namespace!r}, this memory in "
            f"{memory.namespace!r}; consolidate with memory.tenant({scope.namespace!r})"
        )
    for c in candidates:
        if c.kind not in DERIVED_KINDS:
            raise InvalidInputError(
                f"a candidate of kind {c.kind!r} cannot be consolidated; derived kinds are "
                f"{', '.join(DERIVED_KINDS)}"
            )
    items = [_Item(c, text_hash(c.text)) for c in candidates]
    flt = owner_filter(scope)
    with memory.index.open(flt) as index:
        _same_text(index, index.mask(flt, now), items)
    fresh = [i for i in items if i.choice is None]
    drafts = entities.resolved(memory, scope, [i.candidate for i in fresh], now)
    for item, draft in zip(fresh, drafts, strict=True):
        item.draft = draft
    _nearest(memory, flt, fresh, now)
    calls, usage = 0, Usage()
    llm = memory.llm
    for item in fresh:
        if item.choice is None and _unrelated(item):
            best = max((score for _, score in item.near), default=None)
            why = "no stored memory" if best is None else f"best cosine {best:.2f}"
            item.choice = _Choice("ADD", "rule", f"nothing close to update ({why} < "
                                  f"{UNRELATED}): kept as new", links=_related(item))  # fmt: skip
    undecided = [i for i in fresh if i.choice is None]
    if undecided and llm is not None:
        calls, usage = _decide(llm, undecided, memory.config.derive.consolidate_batch)
    for item in undecided:
        if item.choice is None:
            why = "no decision from the model" if llm is not None else "no LLM configured"
            item.choice = _Choice("ADD", "rule", f"{why}: kept as new", links=_related(item))
    return _assemble(memory, scope, items, now, calls, usage)


def owner_filter(scope: Scope) -> MemoryFilter:
    """What a candidate is compared with: the current derived memories of its user and
    agent, in every session (a fact about a person holds across conversations)."""
    return MemoryFilter(scope.namespace, scope.user_id or "", scope.agent_id or "", None,
                        kinds=DERIVED_KINDS)  # fmt: skip


def _hash_rows(index: LiveScope) -> dict[str, list[int]]:
    """Text hash -> rows of derived memories (built once per index state)."""

    def build(ix: LiveScope) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for r, kind in enumerate(ix.kinds):
            if kind in DERIVED_KINDS and ix.alive(r):
                out.setdefault(text_hash(ix.text(r)), []).append(r)
        return out

    return index.memo_get("consolidate:text-hashes", build)


def _same_text(index: LiveScope, mask: np.ndarray[Any, Any], items: list[_Item]) -> None:
    """Step 1: NOOP the candidates whose text a current memory or an earlier candidate
    already has."""
    by_hash = _hash_rows(index)
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        rows = [r for r in by_hash.get(item.hash, ()) if mask[r]]
        if rows:
            target = index.ids[rows[0]]
            item.choice = _Choice("NOOP", "hash", f"same text as memory {target}", (target,))
        elif item.hash in first:
            j = first[item.hash]
            item.choice = _Choice("NOOP", "hash", f"same text as candidate {j + 1}", same_as=j)
        else:
            first[item.hash] = i


def _nearest(memory: Memory, flt: MemoryFilter, items: list[_Item], now: datetime) -> None:
    """Step 2: each candidate's nearest current memories (kept for the LLM), and NOOP
    the near-duplicates of a memory or of an earlier candidate."""
    k = max(1, memory.config.derive.neighbours)
    found: dict[int, list[tuple[int, float]]] = {}
    with memory.index.open(flt) as index:
        mask = index.mask(flt, now)
        for i, item in enumerate(items):
            vector = item.draft.vector if item.draft is not None else None
            if vector is None:
                continue
            rows, scores = index.vector_top(vector, mask, k)
            found[i] = list(zip(rows.tolist(), scores.tolist(), strict=True))
            item.choice = _near_duplicate(index, item, found[i]) or _repeats(items, i)
        wanted = sorted({r for pairs in found.values() for r, _ in pairs})
        load = lambda ids: memory.store.get_memories(flt.namespace, ids)  # noqa: E731
        records = {r.id: r for r in index.records(wanted, load)}
        for i, pairs in found.items():
            items[i].near = [(records[index.ids[r]], s) for r, s in pairs
                             if index.ids[r] in records]  # fmt: skip


def _near_duplicate(index: LiveScope, item: _Item, near: list[tuple[int, float]]) -> _Choice | None:
    for row, score in near:
        if score >= NEAR_DUPLICATE and same_key_tokens(item.candidate.text, index.text(row)):
            target = index.ids[row]
            return _Choice("NOOP", "vector", f"near-duplicate of memory {target} "
                           f"(cosine {score:.3f})", (target,))  # fmt: skip
    return None


def _repeats(items: list[_Item], i: int) -> _Choice | None:
    """A NOOP of an earlier candidate of the batch this one nearly repeats."""
    item = items[i]
    if item.draft is None or item.draft.vector is None:
        return None
    mine = _unit(item.draft.vector)
    for j in range(i):
        other = items[j]
        if other.choice is not None or other.draft is None or other.draft.vector is None:
            continue
        score = float(mine @ _unit(other.draft.vector))
        if score >= NEAR_DUPLICATE and same_key_tokens(item.candidate.text, other.candidate.text):
            return _Choice("NOOP", "vector", f"near-duplicate of candidate {j + 1} "
                           f"(cosine {score:.3f})", same_as=j)  # fmt: skip
    return None


def _unit(vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _unrelated(item: _Item) -> bool:
    """Whether no stored memory is close enough for the candidate to change it."""
    return all(score < UNRELATED for _, score in item.near)


def _related(item: _Item) -> tuple[str, ...]:
    """Existing memories a new one links without an LLM: its neighbours from ``RELATED``."""
    return tuple(r.id for r, score in item.near if score >= RELATED)


# -- the LLM ---------------------------------------------------------------------------


def _decide(llm: LLM, items: list[_Item], batch: int) -> tuple[int, Usage]:
    """Step 4: one structured call per ``batch`` candidates; returns calls and usage."""
    from remem.evolution import consolidate_prompt as prompt  # needs the [llm] extra

    calls, usage = 0, Usage()
    size = max(1, batch)
    for start in range(0, len(items), size):
        group = items[start : start + size]
        shown: dict[str, int] = {}  # memory id -> its local number
        memories: list[prompt.Shown] = []
        asked = []
        for item in group:
            for record, _ in item.near:
                if record.id not in shown:
                    shown[record.id] = len(shown) + 1
                    memories.append(prompt.Shown(record.kind, record.text, record.occurred_at))
            c = item.candidate
            numbers = tuple(shown[r.id] for r, _ in item.near)
            asked.append(prompt.Asked(prompt.Shown(c.kind, c.text, c.occurred_at), numbers))
        completion = llm.structured(prompt.consolidate_messages(memories, asked),
                                    prompt.Consolidation,
                                    max_tokens=prompt.max_tokens(len(group)))  # fmt: skip
        calls, usage = calls + 1, usage + completion.usage
        _take(group, list(shown), completion.value)
    return calls, usage


def _take(group: list[_Item], ids: list[str], answer: Consolidation) -> None:
    """The model's decisions, checked (``_checked``); the first for a candidate counts,
    one for a candidate number not asked about is ignored."""
    for decision in answer.decisions:
        if 1 <= decision.candidate <= len(group):
            item = group[decision.candidate - 1]
            if item.choice is None:
                item.choice = _checked(decision, ids)
                log.debug("consolidation: %s -> %s", item.candidate.text, item.choice)


def _checked(decision: ConsolidationDecision, ids: list[str]) -> _Choice:
    """A decision whose numbers are mapped back to ids, or the rule's ADD instead."""

    def known(numbers: list[int]) -> tuple[list[str], list[int]]:
        good = [ids[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(ids)]
        return good, [n for n in numbers if not 1 <= n <= len(ids)]

    targets, unknown = known(decision.targets)
    links, _ = known(decision.links)  # an unknown link is dropped: it changes nothing
    action = decision.action
    reason = " ".join(decision.reason.split())[:MAX_REASON] or action.lower()
    if unknown:
        return _Choice("ADD", "rule", f"kept as new: the model's {action} named memory "
                       f"M{unknown[0]}, which it was not shown ({reason})",
                       links=tuple(links))  # fmt: skip
    if action == "ADD":
        return _Choice("ADD", "llm", reason, links=tuple(dict.fromkeys([*targets, *links])))
    if action == "NOOP":
        return _Choice("NOOP", "llm", reason, tuple(targets))
    if not targets:
        return _Choice("ADD", "rule", f"kept as new: the model's {action} named no memory "
                       f"({reason})", links=tuple(links))  # fmt: skip
    if action == "UPDATE" and len(targets) > 1:
        action = "MERGE"  # one new memory replacing several
    text = " ".join(decision.text.split()) if action in ("UPDATE", "MERGE") else ""
    kept = tuple(i for i in links if i not in targets)
    return _Choice(action, "llm", reason, tuple(targets), text=text, links=kept)


# -- the plan --------------------------------------------------------------------------


def _assemble(
    memory: Memory,
    scope: Scope,
    items: list[_Item],
    now: datetime,
    calls: int,
    usage: Usage,
) -> Plan:
    """The plan: drafts for what is written (re-derived where the model rewrote the
    text), retirements, notes and one decision per candidate."""
    known = {r.id: r for item in items for r, _ in item.near}
    _one_retire_each(items)
    _rewrite(memory, scope, items, known, now)
    ids: dict[int, str] = {}
    memories: list[NewMemory] = []
    for i, item in enumerate(items):
        choice = item.choice
        if choice is not None and choice.action in ("ADD", "UPDATE", "MERGE") and item.draft:
            new = _finished(item.draft, choice, item.hash)
            ids[i] = new.record.id
            memories.append(new)
    retire: list[Retire] = []
    notes: list[Note] = []
    decisions: list[Decision] = []
    for i, item in enumerate(items):
        choice = item.choice or _Choice("ADD", "rule", "undecided")
        targets = _targets(items, ids, i)
        if choice.action in RETIRE_EVENTS:
            retire += [_retire(known[t], ids.get(i), choice, item.candidate, now, scope)
                       for t in choice.targets]  # fmt: skip
        elif choice.action == "NOOP":
            said = _quote(item.candidate.text)
            notes += [Note(t, "NOOP", f"restated by a candidate ({choice.reason}): {said}",
                           scope.namespace) for t in targets]  # fmt: skip
        decisions.append(Decision(choice.action, item.candidate, targets, ids.get(i),
                                  choice.reason, choice.by))  # fmt: skip
    return Plan(tuple(memories), tuple(retire), tuple(notes), tuple(decisions), calls, usage)


def _one_retire_each(items: list[_Item]) -> None:
    """A memory is retired once per plan: a later decision retiring one an earlier one
    already retires becomes an ADD."""
    taken: dict[str, int] = {}
    for i, item in enumerate(items):
        choice = item.choice
        if choice is None or choice.action not in RETIRE_EVENTS:
            continue
        clash = [t for t in choice.targets if t in taken]
        if clash:
            item.choice = _Choice("ADD", "rule", f"kept as new: memory {clash[0]} is already "
                                  f"retired by candidate {taken[clash[0]] + 1} "
                                  f"({choice.reason})", links=choice.targets)  # fmt: skip
        else:
            taken.update((t, i) for t in choice.targets)


def _rewrite(
    memory: Memory,
    scope: Scope,
    items: list[_Item],
    known: dict[str, MemoryRecord],
    now: datetime,
) -> None:
    """Drafts of the memories that replace others: a MERGE cites every source of what it
    replaces; a text the model rewrote is enriched and embedded again. A rewritten text
    that a current memory or another new memory already has makes it a NOOP."""
    changed: list[tuple[int, Candidate]] = []
    for i, item in enumerate(items):
        choice = item.choice
        if choice is None or choice.action not in ("UPDATE", "MERGE"):
            continue
        c = item.candidate
        sources = c.source_ids
        if choice.action == "MERGE":
            cited = [s for t in choice.targets for s in known[t].source_ids]
            sources = tuple(dict.fromkeys([*sources, *cited]))
        text = choice.text or c.text
        if text != c.text or sources != c.source_ids:
            changed.append((i, replace(c, text=text, source_ids=sources)))
    if not changed:
        return
    drafts = entities.resolved(memory, scope, [c for _, c in changed], now)
    for (i, candidate), draft in zip(changed, drafts, strict=True):
        items[i].draft, items[i].hash = draft, text_hash(candidate.text)
    _recheck(memory, scope, items, [i for i, _ in changed], now)


def _recheck(
    memory: Memory, scope: Scope, items: list[_Item], rewritten: list[int], now: datetime
) -> None:
    """Step 1 again for rewritten texts (the store refuses a second copy of a text)."""
    retiring = {t for item in items if item.choice for t in item.choice.targets
                if item.choice.action in RETIRE_EVENTS}  # fmt: skip
    flt = owner_filter(scope)
    with memory.index.open(flt) as index:
        mask = index.mask(flt, now)
        by_hash = _hash_rows(index)
        for i in rewritten:
            item = items[i]
            same = [index.ids[r] for r in by_hash.get(item.hash, ()) if mask[r]]
            same = [t for t in same if t not in retiring]
            earlier = [j for j in range(len(items)) if j != i and items[j].hash == item.hash
                       and _writes(items[j]) and (j < i or j not in rewritten)]  # fmt: skip
            if same or earlier:
                item.choice = _Choice(
                    "NOOP",
                    "hash",
                    "the merged text is already stored",
                    tuple(same[:1]),
                    same_as=None if same else earlier[0],
                )


def _writes(item: _Item) -> bool:
    return item.choice is not None and item.choice.action in ("ADD", "UPDATE", "MERGE")


def _finished(draft: NewMemory, choice: _Choice, hashed: str) -> NewMemory:
    """A draft with what consolidation records on it: its text hash, links, and why."""
    record = draft.record
    why: dict[str, Any] = {"action": choice.action, "by": choice.by, "reason": choice.reason}
    if choice.targets:
        why["replaces"] = list(choice.targets)
    if choice.by == "llm":
        from remem.evolution.consolidate_prompt import CONSOLIDATE_VERSION

        why["prompt"] = CONSOLIDATE_VERSION
    attributes = {**record.attributes, TEXT_HASH: hashed, PROVENANCE: why}
    if choice.links:
        attributes[LINKS] = list(choice.links)
    return replace(draft, record=replace(record, attributes=attributes))


def _targets(items: list[_Item], ids: dict[int, str], i: int) -> tuple[str, ...]:
    """The memories a decision concerns: its own targets, or for a repeat of an earlier
    candidate, the memory written for that one (or that one's NOOP targets)."""
    choice = items[i].choice
    if choice is None:
        return ()
    if choice.same_as is None:
        return choice.targets
    j = choice.same_as
    if j in ids:
        return (ids[j],)
    earlier = items[j].choice
    return _targets(items, ids, j) if earlier and earlier.action == "NOOP" else ()


def _retire(
    old: MemoryRecord,
    successor: str | None,
    choice: _Choice,
    candidate: Candidate,
    now: datetime,
    scope: Scope,
) -> Retire:
    """How an UPDATE, MERGE or INVALIDATE ends ``old``: valid until the candidate's time
    (when it happened or was said, else now), never before ``old`` began."""
    start = old.valid_from or old.created_at
    at = max(candidate.occurred_at or now, start)
    reason = f"{choice.action} ({choice.by}): {choice.reason}: {_quote(candidate.text)}"
    return Retire(old.id, successor, at, RETIRE_EVENTS[choice.action], reason[:1000],
                  scope.namespace)  # fmt: skip


def _quote(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "\u2026")


# -- writing ---------------------------------------------------------------------------


def write_batch(
    plan: Plan,
    *,
    actor: str = "remem",
    reason: str = "consolidate",
    complete: JobClaim | None = None,
) -> WriteBatch:
    """The one transaction that applies a plan (add messages or jobs with ``replace``)."""
    return WriteBatch(memories=plan.memories, retire=plan.retire, notes=plan.notes,
                      actor=actor, reason=reason, complete=complete)  # fmt: skip


def consolidate_and_write(
    memory: Memory,
    scope: Scope,
    candidates: Sequence[Candidate],
    *,
    now: datetime | None = None,
    attempts: int = 3,
    actor: str = "remem",
    reason: str = "consolidate",
    complete: JobClaim | None = None,
) -> Plan:
    """Consolidate and write in one transaction. If another writer changed a memory the
    plan relied on, or stored the same fact first, the store refuses the whole batch
    (``ConflictError``) and this plans again on the new state, up to ``attempts`` times;
    the returned plan's ``llm_calls`` and ``usage`` count every attempt."""
    calls, usage = 0, Usage()
    for attempt in range(1, max(1, attempts) + 1):
        plan = consolidate(memory, scope, candidates, now or utcnow())
        calls, usage = calls + plan.llm_calls, usage + plan.usage
        try:
            memory.store.write(write_batch(plan, actor=actor, reason=reason, complete=complete))
        except ConflictError as exc:
            if attempt >= attempts:
                raise
            log.info("consolidation attempt %d conflicted (%s); planning again", attempt, exc)
            continue
        memory._learn_entities(scope, [m.record for m in plan.memories])
        return replace(plan, llm_calls=calls, usage=usage)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "ACTIONS",
    "NEAR_DUPLICATE",
    "RELATED",
    "Decision",
    "Plan",
    "consolidate",
    "consolidate_and_write",
    "normalise",
    "owner_filter",
    "same_key_tokens",
    "text_hash",
    "write_batch",
]
