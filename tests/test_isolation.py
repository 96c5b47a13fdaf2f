"""Tenant isolation: a tenant's results and scores do not depend on anyone else's data.

A tenant is a namespace, a user within a namespace, or an agent of a user. Two stores are
built from the same tenant conversation: A holds only the tenant's data, B holds the same
adds interleaved (in call order and in time) with other tenants' conversations over the
same small vocabulary, so words overlap and other tenants' word statistics would move
BM25 scores if they leaked. Everything the tenant can read must be identical in A and B.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from remem import EmbedderConfig, Memory, SearchResults
from remem.embedders.base import Embedder
from remem.registry import create_embedder

REFERENCE = "2023-07-01T12:00:00"
BASE = datetime(2023, 5, 1, 9, 0)
TOL = 1e-9

SENTENCES = [
    "I moved to Lisbon in May",
    "We adopted a beagle called Oscar",
    "Maria went hiking near the lake yesterday",
    "The concert last Friday was loud",
    "I started painting lessons last week",
    "Oscar chewed my running shoes",
    "We are camping at the lake next weekend",
    "My sister Maria works at the hospital in Porto",
    'I finished the book "The Long Walk" on Sunday',
    "Bo called about the charity race",
    "The garden in Porto is full of roses",
    "Maria and Oscar ran along the beach two weeks ago",
]
WORDS = [
    "lake", "hiking", "Lisbon", "beagle", "concert", "painting", "race", "hospital",
    "shoes", "camping", "book", "sister", "Porto", "dog", "music", "garden", "beach",
    "roses", "Maria", "Oscar",
]  # fmt: skip
QUESTIONS = [
    "where did Maria go hiking?",
    "when did we go camping at the lake?",
    "what did Oscar chew?",
    "what happened last week?",
    "which book did Ana finish?",
    "how many times did Bo mention the race?",
    "where does my sister work?",
]
SPEAKERS = ["Ana", "Bo"]
SESSIONS = ["s1", "s2", "s3"]

# -- strategies ----------------------------------------------------------------------------

CONTENT = st.one_of(
    st.sampled_from(SENTENCES),
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=6).map(" ".join),
)
MESSAGE = st.fixed_dictionaries({"name": st.sampled_from(SPEAKERS), "content": CONTENT})
ADD = st.lists(MESSAGE, min_size=1, max_size=3)
# (session id, day offset, minute offset, adds): a session id may come back later
SESSION = st.tuples(
    st.sampled_from(SESSIONS),
    st.integers(0, 45),
    st.integers(0, 600),
    st.lists(ADD, min_size=1, max_size=2),
)
CONVERSATION = st.lists(SESSION, min_size=1, max_size=3)
# each of the other tenants' sessions belongs to one of two other tenants
OTHERS = st.lists(st.tuples(st.integers(0, 1), SESSION), min_size=1, max_size=2)
QUERY = st.one_of(
    st.sampled_from(QUESTIONS),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
)
QUERIES = st.lists(QUERY, min_size=2, max_size=3, unique=True)


@dataclass(frozen=True)
class Tenant:
    namespace: str = "default"
    user_id: str | None = None
    agent_id: str | None = None

    def scope(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id}


@dataclass(frozen=True)
class Add:
    tenant: Tenant
    session_id: str
    timestamp: str
    messages: tuple[dict[str, Any], ...]


# The tenant under test, and the two other tenants sharing the file, per kind of tenant.
# Other tenants reuse the tenant's user ids, session ids and client message ids where the
# kind allows it: only the namespace, user or agent tells them apart.
TENANTS: dict[str, tuple[Tenant, tuple[Tenant, Tenant]]] = {
    "namespace": (Tenant(user_id="ana"), (Tenant("other", "ana"), Tenant("other", "bo"))),
    "user": (Tenant(user_id="ana"), (Tenant(user_id="bo"), Tenant(user_id="cy"))),
    "agent": (
        Tenant(user_id="ana", agent_id="a1"),
        (Tenant(user_id="ana", agent_id="a2"), Tenant(user_id="ana", agent_id="a3")),
    ),
}


def plan(sessions: list[tuple[str, int, int, list[list[dict[str, str]]]]],
         owners: list[Tenant]) -> list[Add]:  # fmt: skip
    """The adds of a conversation, in call order, each message with a client id
    (numbered per tenant, so different tenants reuse the same ids)."""
    counters: dict[Tenant, int] = {}
    out = []
    for (session_id, day, minute, adds), owner in zip(sessions, owners, strict=True):
        start = BASE + timedelta(days=day, minutes=minute)
        for n, messages in enumerate(adds):
            batch = []
            for message in messages:
                counters[owner] = counters.get(owner, 0) + 1
                batch.append({**message, "id": f"m{counters[owner]}"})
            when = (start + timedelta(minutes=3 * n)).isoformat()
            out.append(Add(owner, session_id, when, tuple(batch)))
    return out


def interleave(mine: list[Add], theirs: list[Add], order: list[bool]) -> list[Add]:
    """Merge two call sequences, keeping each one's order (``True`` takes from theirs)."""
    a, b = iter(mine), iter(theirs)
    return [next(b) if take_theirs else next(a) for take_theirs in order]


class Stores:
    """``Memory`` objects on one file, one per namespace, opened on demand."""

    def __init__(self, path: Path, embedder: Embedder, stack: ExitStack) -> None:
        self.path, self.embedder, self.stack = path, embedder, stack
        self.open: dict[str, Memory] = {}

    def __getitem__(self, namespace: str) -> Memory:
        if namespace not in self.open:
            mem = Memory(self.path, embedder=self.embedder, namespace=namespace)
            self.open[namespace] = self.stack.enter_context(mem)
        return self.open[namespace]

    def run(self, adds: list[Add]) -> None:
        for add in adds:
            self[add.tenant.namespace].add(
                list(add.messages), session_id=add.session_id, timestamp=add.timestamp,
                **add.tenant.scope(),
            )  # fmt: skip


# -- what a tenant sees, in a form comparable across stores -------------------------------


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=TOL)


def assert_same_hits(a: SearchResults, b: SearchResults, tenant: Tenant, what: str) -> None:
    """Same memories (by kind, sources and text) in the same order, with the same score
    and per-step scores; memory ids differ between stores and are not compared."""
    for hit in b:
        scope = hit.memory.scope
        assert (scope.namespace, scope.user_id, scope.agent_id) == (
            tenant.namespace, tenant.user_id, tenant.agent_id,
        ), f"{what}: a hit from another tenant: {hit.text!r} {scope}"  # fmt: skip
    left = [(h.memory.kind, h.source_ids, h.text, h.memory.scope.session_id) for h in a]
    right = [(h.memory.kind, h.source_ids, h.text, h.memory.scope.session_id) for h in b]
    assert left == right, f"{what}: different hits"
    for x, y in zip(a, b, strict=True):
        assert close(x.score, y.score), f"{what}: {x.text!r} scores {x.score} != {y.score}"
        assert set(x.scores) == set(y.scores), f"{what}: {x.text!r} steps differ"
        for step, value in x.scores.items():
            assert close(value, y.scores[step]), (
                f"{what}: {x.text!r} {step} {value} != {y.scores[step]}"
            )
        assert x.channels == y.channels, f"{what}: {x.text!r} found by other channels"
        assert x.rank == y.rank


def sources_by_id(mem: Memory, tenant: Tenant) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Memory id -> (kind, source ids) for the tenant's memories."""
    return {r.id: (r.kind, r.source_ids) for r in mem.list(**tenant.scope(), limit=10_000)}


def entity_view(mem: Memory, tenant: Tenant) -> list[tuple[Any, ...]]:
    """The tenant's entity table with memory ids replaced by what they cite."""
    known = sources_by_id(mem, tenant)
    out = []
    for e in mem.entities(**tenant.scope(), limit=10_000):
        cited = tuple(known.get(i) or (mem.get(i).kind, mem.get(i).source_ids)
                      for i in e.memory_ids)  # fmt: skip
        out.append((e.key, e.name, e.kind, e.mentions, e.sessions, round(e.strength, 9),
                    e.first_seen, e.last_seen, cited))  # fmt: skip
    return out


def list_view(mem: Memory, tenant: Tenant, **kwargs: Any) -> list[tuple[Any, ...]]:
    return [
        (r.kind, r.text, r.source_ids, r.scope.session_id, r.occurred_at, dict(r.attributes))
        for r in mem.list(**tenant.scope(), limit=10_000, **kwargs)
    ]


def stats_view(mem: Memory) -> dict[str, Any]:
    stats = mem.stats()
    return {f.name: getattr(stats, f.name) for f in fields(stats) if f.name != "path"}


def assert_same_view(a: Memory, b: Memory, tenant: Tenant, queries: list[str]) -> None:
    """Everything ``tenant`` can read is the same in ``a`` and ``b``."""
    scope = tenant.scope()
    for query in queries:
        what = f"search {query!r}"
        ra = a.search(query, **scope, limit=100, explain=True, reference_time=REFERENCE)
        rb = b.search(query, **scope, limit=100, explain=True, reference_time=REFERENCE)
        assert_same_hits(ra, rb, tenant, what)
        assert ra.explain is not None and rb.explain is not None
        assert ra.explain["query"] == rb.explain["query"], what
        assert ra.explain["candidates"] == rb.explain["candidates"], what
        kinds = ["turn", "summary"]
        assert_same_hits(
            a.search(query, **scope, kinds=kinds, limit=100, reference_time=REFERENCE),
            b.search(query, **scope, kinds=kinds, limit=100, reference_time=REFERENCE),
            tenant, f"{what} with summaries",
        )  # fmt: skip
        ca = a.context(query, **scope, budget_tokens=300, reference_time=REFERENCE)
        cb = b.context(query, **scope, budget_tokens=300, reference_time=REFERENCE)
        assert ca.text == cb.text, f"context {query!r}"
    assert list_view(a, tenant) == list_view(b, tenant)
    assert list_view(a, tenant, kinds="summary") == list_view(b, tenant, kinds="summary")
    assert entity_view(a, tenant) == entity_view(b, tenant)


@pytest.fixture(scope="module")
def shared_embedder() -> Iterator[Embedder]:
    """The default embedder, built once for this module."""
    model = create_embedder(EmbedderConfig())
    yield model
    model.close()


# Shrinking rebuilds two stores per attempt and would take minutes; the failing example
# hypothesis prints is small already.
ISOLATION_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("kind", sorted(TENANTS))
@ISOLATION_SETTINGS
@given(mine=CONVERSATION, theirs=OTHERS, queries=QUERIES, data=st.data())
def test_other_tenants_data_does_not_change_what_a_tenant_sees(
    kind, mine, theirs, queries, data, shared_embedder, tmp_path_factory
):
    tenant, others = TENANTS[kind]
    own = plan(mine, [tenant] * len(mine))
    foreign = plan([s for _, s in theirs], [others[i] for i, _ in theirs])
    order = data.draw(st.permutations([False] * len(own) + [True] * len(foreign)), "order")
    folder = tmp_path_factory.mktemp(f"isolation-{kind}")
    with ExitStack() as stack:
        alone = Stores(folder / "alone.db", shared_embedder, stack)
        shared = Stores(folder / "shared.db", shared_embedder, stack)
        alone.run(own)
        shared.run(interleave(own, foreign, list(order)))
        a, b = alone[tenant.namespace], shared[tenant.namespace]
        assert_same_view(a, b, tenant, queries)
        if kind == "namespace":
            assert stats_view(a) == stats_view(b)


# -- deterministic scenarios ----------------------------------------------------------------


def fixed_conversation(seed: int, sessions: int = 3, adds: int = 2) -> list[Add]:
    """A conversation over the shared vocabulary (for ``plan``), reproducible by seed."""
    rng = random.Random(seed)
    out = []
    for s in range(sessions):
        batches = [
            [{"name": rng.choice(SPEAKERS), "content": rng.choice(SENTENCES)}
             for _ in range(rng.randint(1, 3))]
            for _ in range(adds)
        ]  # fmt: skip
        out.append((SESSIONS[s % len(SESSIONS)], 10 * s + rng.randint(0, 5), 0, batches))
    return out


FIXED_QUERIES = ["where did Maria go hiking?", "what happened last week?", "Oscar shoes"]


def test_delete_all_of_one_user_leaves_the_others_unchanged(shared_embedder, tmp_path):
    ana, bo, cy = Tenant(user_id="ana"), Tenant(user_id="bo"), Tenant(user_id="cy")
    mine = {t: plan(fixed_conversation(seed), [t] * 3) for seed, t in enumerate((ana, bo, cy))}
    rng = random.Random(7)
    merged: list[Add] = []
    queues = [list(adds) for adds in mine.values()]
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        merged.append(queue.pop(0))
    with ExitStack() as stack:
        alone = {t: Stores(tmp_path / f"{t.user_id}.db", shared_embedder, stack)
                 for t in (ana, cy)}  # fmt: skip
        for tenant, stores in alone.items():
            stores.run(mine[tenant])
        shared = Stores(tmp_path / "shared.db", shared_embedder, stack)
        shared.run(merged)
        mem = shared["default"]
        before = {(t, q): mem.search(q, **t.scope(), limit=100, reference_time=REFERENCE)
                  for t in (ana, cy) for q in FIXED_QUERIES}  # fmt: skip
        deleted = mem.delete_all(user_id="bo")
        assert deleted["messages"] == sum(len(a.messages) for a in mine[bo])
        assert mem.list(user_id="bo") == []
        for tenant in (ana, cy):
            for query in FIXED_QUERIES:
                after = mem.search(query, **tenant.scope(), limit=100, reference_time=REFERENCE)
                what = f"{query!r} after delete"
                assert_same_hits(before[tenant, query], after, tenant, what)
            assert_same_view(alone[tenant]["default"], mem, tenant, FIXED_QUERIES)


def test_delete_all_of_a_session_without_user_spares_users_sessions(shared_embedder, tmp_path):
    with Memory(tmp_path / "m.db", embedder=shared_embedder) as mem:
        for user in ("ana", "bo"):
            mem.add(
                [{"id": f"{user}{n}", "name": "Ana", "content": SENTENCES[n]} for n in range(5)],
                user_id=user, session_id="s1", timestamp="2023-05-02T10:00:00",
            )  # fmt: skip
        mem.add(
            [{"id": "agent-1", "content": "Oscar chewed my running shoes"}],
            agent_id="helper", session_id="s1", timestamp="2023-05-02T10:00:00",
        )  # fmt: skip
        unscoped = [{"id": f"u{n}", "content": SENTENCES[n + 5]} for n in range(3)]
        mem.add(unscoped, session_id="s1", timestamp="2023-05-03T10:00:00")
        mem.add([{"id": "u-other", "content": "The garden in Porto is full of roses"}],
                session_id="s2", timestamp="2023-05-04T10:00:00")  # fmt: skip
        kept = {
            (user, agent): list_view(mem, Tenant(user_id=user, agent_id=agent))
            for user, agent in (("ana", None), ("bo", None), (None, "helper"))
        }
        results = {
            (user, agent): mem.search("hiking near the lake", user_id=user, agent_id=agent,
                                      limit=100, reference_time=REFERENCE)
            for user, agent in (("ana", None), ("bo", None))
        }  # fmt: skip

        assert mem.delete_all(session_id="s1") == {"memories": 3, "messages": 3}

        for (user, agent), view in kept.items():
            assert list_view(mem, Tenant(user_id=user, agent_id=agent)) == view
        for (user, agent), before in results.items():
            after = mem.search("hiking near the lake", user_id=user, agent_id=agent,
                               limit=100, reference_time=REFERENCE)  # fmt: skip
            assert_same_hits(before, after, Tenant(user_id=user), f"{user} after delete")
        left = [
            (r.scope.user_id, r.scope.agent_id, r.scope.session_id, r.source_ids)
            for r in mem.list(limit=10_000)
            if not (r.scope.user_id or r.scope.agent_id)
        ]
        assert left == [(None, None, "s2", ("u-other",))]  # fmt: skip
        assert mem.stats().messages == 5 + 5 + 1 + 1


def test_an_unscoped_session_does_not_summarise_or_supersede_users_sessions(
    shared_embedder, tmp_path
):
    with Memory(tmp_path / "m.db", embedder=shared_embedder) as mem:
        summaries = {}
        for user, offset in (("ana", 0), ("bo", 4)):
            mem.add(
                [{"id": f"{user}{n}", "name": user.title(), "content": SENTENCES[offset + n]}
                 for n in range(4)],
                user_id=user, session_id="s1", timestamp="2023-05-02T10:00:00",
            )  # fmt: skip
            (summary,) = mem.list(user_id=user, session_id="s1", kinds="summary")
            assert set(summary.source_ids) <= {f"{user}{n}" for n in range(4)}
            summaries[user] = summary
        mine = [f"u{n}" for n in range(4)]
        result = mem.add(
            [{"id": i, "content": SENTENCES[8 + n]} for n, i in enumerate(mine)],
            session_id="s1", timestamp="2023-05-03T10:00:00",
        )  # fmt: skip

        (derived,) = result.derived  # the unscoped session reached four turns of its own
        assert derived.kind == "summary"
        assert (derived.scope.user_id, derived.scope.agent_id) == (None, None)
        assert set(derived.source_ids) <= set(mine)
        assert derived.attributes["turns"] == 4
        for user, summary in summaries.items():
            current = mem.list(user_id=user, session_id="s1", kinds="summary")
            assert [r.id for r in current] == [summary.id]
            assert mem.get(summary.id).superseded_by is None
            assert [e.action for e in mem.history(summary.id)] == ["ADD"]
        unscoped = [r for r in mem.list(session_id="s1", kinds="summary")
                    if not (r.scope.user_id or r.scope.agent_id)]  # fmt: skip
        assert [r.id for r in unscoped] == [derived.id]


def test_a_namespace_exported_into_another_namespace_of_the_same_file(shared_embedder, tmp_path):
    ana, bo = Tenant(user_id="ana"), Tenant(user_id="bo")
    with ExitStack() as stack:
        stores = Stores(tmp_path / "m.db", shared_embedder, stack)
        stores.run(plan(fixed_conversation(1), [ana] * 3) + plan(fixed_conversation(2), [bo] * 3))
        source = stores["default"]
        before = {(t, q): source.search(q, **t.scope(), limit=100, reference_time=REFERENCE)
                  for t in (ana, bo) for q in FIXED_QUERIES}  # fmt: skip
        exported = source.export(tmp_path / "default.jsonl")
        assert stores["copy"].import_(tmp_path / "default.jsonl") == exported
        copy = stores["copy"]

        # memory ids are unique per namespace: the copy keeps them
        for tenant in (ana, bo):
            ids = [r.id for r in source.list(**tenant.scope(), limit=10_000)]
            assert ids and [r.id for r in copy.list(**tenant.scope(), limit=10_000)] == ids
        for (tenant, query), hits in before.items():
            again = source.search(query, **tenant.scope(), limit=100, reference_time=REFERENCE)
            assert_same_hits(hits, again, tenant, f"{query!r} in the source after import")
            copied = copy.search(query, **tenant.scope(), limit=100, reference_time=REFERENCE)
            assert_same_hits(hits, copied, Tenant("copy", tenant.user_id), f"{query!r} copy")
        for tenant in (ana, bo):
            assert entity_view(source, tenant) == entity_view(copy, tenant)
        assert stats_view(source) == stats_view(copy)

        # the two namespaces stay apart: deleting in the copy leaves the source whole
        victim = source.list(user_id="ana", limit=1)[0]
        copy.delete(victim.id)
        assert source.get(victim.id).text == victim.text
        copy.delete_all(user_id="bo")
        assert len(source.list(user_id="bo", limit=10_000)) > 0
