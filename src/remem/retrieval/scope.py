"""Lookups over a scope's live index that retrieval steps share; structures derived from
the whole index (the graph, entity specificity) are built once per index state."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from remem.formation.derived import DERIVED_KINDS
from remem.index.live import LiveScope
from remem.models import MEMORY_KINDS
from remem.retrieval.graph import Graph, graph_from_edges

_DERIVED_CODES = [MEMORY_KINDS.index(kind) for kind in DERIVED_KINDS]


def derived(index: LiveScope) -> npt.NDArray[np.bool_]:
    """Per row, whether it is a derived memory (fact, event, profile entry, procedure)."""

    def build(ix: LiveScope) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = np.isin(ix.kind_codes(), _DERIVED_CODES)
        return out

    return index.memo_get("derived", build)


def specificity(index: LiveScope) -> npt.NDArray[np.float64]:
    """Per entity row, ``1 / log2(1 + memories naming it)``: rare entities say more."""

    def build(ix: LiveScope) -> npt.NDArray[np.float64]:
        _, entities, _ = ix.edges()
        degree = np.bincount(entities, minlength=len(ix.entities)).astype(np.float64)
        out: npt.NDArray[np.float64] = np.zeros_like(degree)
        named = degree > 0
        out[named] = 1.0 / np.log2(1.0 + degree[named])
        return out

    return index.memo_get("specificity", build)


def graph(index: LiveScope) -> Graph:
    """The memory-entity graph (see ``retrieval.graph``)."""

    def build(ix: LiveScope) -> Graph:
        memories, entities, weights = ix.edges()
        return graph_from_edges(len(ix.ids), len(ix.entities), memories, entities, weights)

    return index.memo_get("graph", build)
