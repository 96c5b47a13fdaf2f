"""Personalized PageRank over the memory-entity graph, against a closed-form solution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from remem.retrieval.graph import build_graph, personalized_pagerank


def dense_transition(graph) -> np.ndarray:
    matrix = np.zeros((graph.n_nodes, graph.n_nodes))
    for s, d, p in zip(graph.src, graph.dst, graph.prob, strict=True):
        matrix[s, d] += p
    return matrix


def test_edges_weigh_mentions_by_entity_specificity() -> None:
    # memories 0,1,2; entity 0 named by all three, entity 1 by memory 2 only
    g = build_graph(3, 2, [(0, 0, 1.0), (1, 0, 1.0), (2, 0, 1.0), (2, 1, 0.5)])
    p = dense_transition(g)
    assert np.allclose(p.sum(axis=1), 1.0)
    common, rare = 1 / math.log2(4), 0.5 / math.log2(2)
    assert p[2, 3] == pytest.approx(common / (common + rare))
    assert p[2, 4] == pytest.approx(rare / (common + rare))
    assert p[3, 0] == pytest.approx(1 / 3)  # an entity spreads evenly over its memories


def test_pagerank_matches_the_linear_solution() -> None:
    g = build_graph(4, 2, [(0, 0, 1.0), (1, 0, 1.0), (1, 1, 1.0), (2, 1, 0.5), (3, 1, 1.0)])
    seeds = {0: 2.0, 4: 1.0}
    damping = 0.5
    restart = np.zeros(g.n_nodes)
    restart[0], restart[4] = 2 / 3, 1 / 3
    expected = np.linalg.solve(np.eye(g.n_nodes) - damping * dense_transition(g).T,
                               (1 - damping) * restart)  # fmt: skip
    got = personalized_pagerank(g, seeds, damping=damping, iterations=200)
    assert np.allclose(got, expected, atol=1e-9)
    assert got.sum() == pytest.approx(1.0)
    assert got[2] > 0  # two hops from memory 0: memory -> entity 0 -> memory 1 -> entity 1


def test_a_node_without_edges_returns_its_mass_to_the_seeds() -> None:
    g = build_graph(3, 1, [(0, 0, 1.0), (1, 0, 1.0)])  # memory 2 is isolated
    got = personalized_pagerank(g, {2: 1.0, 0: 1.0}, damping=0.85, iterations=500)
    assert got.sum() == pytest.approx(1.0)
    assert got[2] > 0 and got[1] > 0


def test_no_seeds_give_zeros() -> None:
    g = build_graph(2, 1, [(0, 0, 1.0), (1, 0, 1.0)])
    assert not personalized_pagerank(g, {}).any()
    assert not personalized_pagerank(g, {0: 0.0, 99: 1.0}).any()
