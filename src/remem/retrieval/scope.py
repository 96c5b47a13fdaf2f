"""Structures derived once per scope index (and kept in its memo): lookups and the graph."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from remem.annotations import TimeLink
from remem.retrieval.graph import Graph, build_graph
from remem.stores.base import ScopeIndex

T = TypeVar("T")


def _memo(index: ScopeIndex, name: str, build: Callable[[ScopeIndex], T]) -> T:
    if name not in index.memo:
        index.memo[name] = build(index)
    value: T = index.memo[name]
    return value


def rows(index: ScopeIndex) -> dict[str, int]:
    """Memory id -> row."""
    return _memo(index, "rows", lambda ix: {m: i for i, m in enumerate(ix.ids)})


def slots(index: ScopeIndex) -> dict[tuple[str, int], int]:
    """(conversation key, position) -> row, for memories with a known position."""

    def build(ix: ScopeIndex) -> dict[tuple[str, int], int]:
        return {
            (ix.sessions[i], ix.positions[i]): i
            for i in range(len(ix.ids))
            if ix.positions[i] > 0 and ix.kinds[i] == "turn"
        }

    return _memo(index, "slots", build)


def neighbours(index: ScopeIndex, row: int, radius: int = 1) -> list[int]:
    """Rows of the turns within ``radius`` positions of ``row`` in its conversation."""
    position = index.positions[row]
    if position <= 0:
        return []
    table = slots(index)
    key = index.sessions[row]
    found = (table.get((key, position + d)) for d in range(-radius, radius + 1) if d)
    return [r for r in found if r is not None]


def entity_rows(index: ScopeIndex) -> dict[str, list[int]]:
    """Entity key -> its entity rows (one per user/agent the filter spans)."""

    def build(ix: ScopeIndex) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for j, entity in enumerate(ix.entities):
            out.setdefault(entity.key, []).append(j)
        return out

    return _memo(index, "entity_rows", build)


def entities_with_word(index: ScopeIndex) -> dict[str, list[int]]:
    """Word -> entity rows whose key contains it (for linking question words to entities)."""

    def build(ix: ScopeIndex) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for j, entity in enumerate(ix.entities):
            for word in set(entity.key.split()):
                out.setdefault(word, []).append(j)
        return out

    return _memo(index, "entities_with_word", build)


def entity_kinds(index: ScopeIndex) -> dict[str, str]:
    """Entity key -> kind, for finding known entities in a question."""
    return _memo(index, "entity_kinds", lambda ix: {e.key: e.kind for e in ix.entities})


def mentions_by_row(index: ScopeIndex) -> dict[int, list[tuple[int, float]]]:
    """Memory row -> its (entity row, weight) links."""

    def build(ix: ScopeIndex) -> dict[int, list[tuple[int, float]]]:
        out: dict[int, list[tuple[int, float]]] = {}
        for memory, entity, weight in ix.mentions:
            out.setdefault(memory, []).append((entity, weight))
        return out

    return _memo(index, "mentions_by_row", build)


def specificity(index: ScopeIndex) -> list[float]:
    """Per entity row, ``1 / log2(1 + memories naming it)``: rare entities say more."""

    def build(ix: ScopeIndex) -> list[float]:
        degree = [0] * len(ix.entities)
        for _, entity, _ in ix.mentions:
            degree[entity] += 1
        return [1.0 / math.log2(1 + d) if d else 0.0 for d in degree]

    return _memo(index, "specificity", build)


def times_by_row(index: ScopeIndex) -> dict[int, list[TimeLink]]:
    """Memory row -> the periods it mentions."""

    def build(ix: ScopeIndex) -> dict[int, list[TimeLink]]:
        out: dict[int, list[TimeLink]] = {}
        for row, link in ix.times:
            out.setdefault(row, []).append(link)
        return out

    return _memo(index, "times_by_row", build)


def graph(index: ScopeIndex) -> Graph:
    """The memory-entity graph (see ``retrieval.graph``)."""

    def build(ix: ScopeIndex) -> Graph:
        return build_graph(len(ix.ids), len(ix.entities), ix.mentions)

    return _memo(index, "graph", build)
