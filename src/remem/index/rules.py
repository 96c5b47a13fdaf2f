"""Derivation rules every backend applies when a memory is written or removed.

A memory's text and attributes are the source of truth; a store keeps, per user/agent
scope, the entity table (names and key phrases its memories link to) and the term counts
of its turns (for key-phrase surprisal at ingest). Nothing derived crosses a scope.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from remem.annotations import EntityLink, entity_links, words

DOCS = ""  # the term-count row holding how many turns the scope has
Owner = tuple[str, str, str]  # (namespace, user_id, agent_id)
Linked = tuple[Owner, str, str, Mapping[str, Any]]  # (owner, kind, text, attributes)
EntityValues = tuple[str, str, str, str, str, str]  # (*owner, key, name, kind)
TermValues = tuple[str, str, str, str, int]  # (*owner, term, delta)


def term_deltas(kind: str, text: str, sign: int) -> list[tuple[str, int]]:
    """Changes to the scope's term counts when a memory is added (+1) or removed (-1):
    a turn counts once, and once per distinct word of its text; other kinds not at all."""
    if kind != "turn":
        return []
    return [(DOCS, sign), *((w, sign) for w in sorted(set(words(text))))]


def entity_rows(attributes: Mapping[str, Any]) -> list[EntityLink]:
    """The entity-table rows a memory needs (each row counts the memories of its scope
    naming it, and goes when none is left)."""
    return entity_links(attributes)


def link_rows(memories: Iterable[Linked]) -> tuple[list[EntityValues], list[TermValues]]:
    """The entity rows new memories need and the term-count changes of their turns, each
    in the memory's own user/agent scope (one row per entity, one per term and scope)."""
    entities: dict[tuple[str, ...], EntityValues] = {}
    terms: Counter[tuple[str, str, str, str]] = Counter()
    for owner, kind, text, attributes in memories:
        for e in entity_rows(attributes):
            entities.setdefault((*owner, e.key), (*owner, e.key, e.name, e.kind))
        for term, delta in term_deltas(kind, text, 1):
            terms[(*owner, term)] += delta
    return list(entities.values()), [(*key, delta) for key, delta in terms.items()]


def term_rows(owner: Owner, kind: str, text: str, sign: int) -> list[TermValues]:
    """The term-count changes of adding (``sign`` 1) or removing (-1) one memory."""
    return [(*owner, term, delta) for term, delta in term_deltas(kind, text, sign)]
