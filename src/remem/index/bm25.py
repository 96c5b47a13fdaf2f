"""Okapi BM25 over plain data, the same for every backend (no engine's quirks).

``idf = log(1 + (N - n + 0.5) / (n + 0.5))`` (Lucene's form) stays positive however common
a term is, so small scopes (a user's few sessions) keep every word's signal; FTS5's
``log((N - n + 0.5) / (n + 0.5))`` clamps to ~0 for words in half the documents.

Turns are short passages: the turn index uses Anserini's passage defaults ``k1 = 0.9,
b = 0.4`` (``TURN_K1``, ``TURN_B``); whole sessions are long documents and keep the
classic ``k1 = 1.2, b = 0.75``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

K1 = 1.2
B = 0.75
TURN_K1 = 0.9
TURN_B = 0.4
Floats = npt.NDArray[np.float64]


def idf(docs: int, df: int) -> float:
    """Inverse document frequency of a term found in ``df`` of ``docs`` documents."""
    return math.log(1.0 + (docs - df + 0.5) / (df + 0.5))


def term_scores(
    tf: Floats, length: Floats, mean_length: float, weight: float, k1: float = K1, b: float = B
) -> Floats:
    """One term's BM25 contribution to each document: ``weight`` (its idf) times the
    saturated, length-normalised term frequency."""
    return normed_scores(tf, length_norms(length, mean_length, k1, b), weight, k1)


def length_norms(length: Floats, mean_length: float, k1: float = K1, b: float = B) -> Floats:
    """Each document's ``k1 * (1 - b + b * length / mean_length)``, which every term's
    score in it shares (an index may work it out once for all its rows)."""
    if mean_length <= 0:
        return np.full_like(length, k1)
    out: Floats = k1 * (1.0 - b + b * length / mean_length)
    return out


def normed_scores(tf: Floats, norms: Floats, weight: float, k1: float = K1) -> Floats:
    """``term_scores`` given the documents' ``length_norms``."""
    out: Floats = weight * tf * (k1 + 1.0) / (tf + norms)
    return out
