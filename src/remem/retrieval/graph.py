"""Personalized PageRank over a memory-entity graph (the HippoRAG 2 idea), over plain data.

Nodes are memories and entities (names, titles, key phrases); a memory links to each
entity it mentions. A walk restarts at the seeds (the entities the question links to, and
the first-stage hits), so memories two hops away (through an entity a hit mentions) gain
score that keyword search cannot give. Adjacent turns are left to the neighbour step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Graph:
    """A weighted undirected graph as a symmetric edge list, row-normalised for walks.

    Memory ``i`` is node ``i``; entity ``j`` is node ``n_memories + j``.
    """

    n_memories: int
    n_nodes: int
    src: Ints
    dst: Ints
    prob: Floats  # transition probability of each directed edge (rows sum to 1)
    dangling: npt.NDArray[np.bool_]  # nodes without edges (their walk restarts)


def build_graph(
    n_memories: int, n_entities: int, mentions: Sequence[tuple[int, int, float]]
) -> Graph:
    """The graph of (memory, entity, weight) mentions (see ``graph_from_edges``)."""
    edges = {(m, e): w for m, e, w in mentions}  # one edge per pair, the last weight
    memories = np.array([m for m, _ in edges], dtype=np.int64)
    entities = np.array([e for _, e in edges], dtype=np.int64)
    weights = np.array(list(edges.values()), dtype=np.float64)
    return graph_from_edges(n_memories, n_entities, memories, entities, weights)


def graph_from_edges(
    n_memories: int, n_entities: int, memories: Ints, entities: Ints, weights: Floats
) -> Graph:
    """Memory-entity edges, weighted by the mention's weight times the entity's
    specificity, ``1 / log2(1 + memories naming it)``: an entity named everywhere (a
    speaker, say) carries little. Vectorised: building costs O(edges) in numpy."""
    degree = np.bincount(entities, minlength=n_entities).astype(np.float64)
    specificity = 1.0 / np.log2(1.0 + np.maximum(degree[entities], 1.0))
    weight = np.maximum(weights, 1e-6) * specificity
    src = np.concatenate([memories, n_memories + entities]).astype(np.int64)
    dst = np.concatenate([n_memories + entities, memories]).astype(np.int64)
    both = np.concatenate([weight, weight])
    n_nodes = n_memories + n_entities
    out_weight = np.bincount(src, weights=both, minlength=n_nodes)
    prob = both / np.where(out_weight[src] > 0, out_weight[src], 1.0)
    return Graph(n_memories, n_nodes, src, dst, prob, out_weight <= 0)


def personalized_pagerank(
    graph: Graph, seeds: Mapping[int, float], damping: float = 0.5, iterations: int = 30
) -> Floats:
    """Scores of every node: the stationary distribution of a walk that follows an edge
    with probability ``damping`` and restarts at a seed (chosen by weight) otherwise.

    Power iteration ``p = (1 - d) s + d P^T p``; a node without edges sends its mass back
    to the seeds, so the scores always sum to 1. Empty or all-zero seeds give zeros.
    """
    restart = np.zeros(graph.n_nodes)
    for node, weight in seeds.items():
        if 0 <= node < graph.n_nodes and weight > 0:
            restart[node] += weight
    total = restart.sum()
    if total <= 0:
        return np.zeros(graph.n_nodes)
    restart /= total
    scores: Floats = restart.copy()
    for _ in range(iterations):
        spread = np.bincount(graph.dst, weights=scores[graph.src] * graph.prob,
                             minlength=graph.n_nodes)  # fmt: skip
        dangling = scores[graph.dangling].sum()
        updated: Floats = (1 - damping) * restart + damping * (spread + dangling * restart)
        converged = float(np.abs(updated - scores).sum()) < 1e-10
        scores = updated
        if converged:
            break
    return scores
