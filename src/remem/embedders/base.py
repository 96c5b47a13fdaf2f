"""The embedder contract: one abstract method and declared capabilities."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    Implementations set ``model_id`` (stored with the vectors, so a database is never
    searched with another model's vectors), ``dimensions`` and ``max_batch``, and implement
    ``embed_batch`` for at most ``max_batch`` texts. ``remote`` says the work happens
    elsewhere (a server): a search then reads the store while it waits for the query's
    embedding; a local model already uses every core, and overlapping slowed it down.
    """

    model_id: str
    dimensions: int
    max_batch: int = 32
    remote: bool = False

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed up to ``max_batch`` texts; returns an array of shape (len(texts), dimensions)."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed any number of texts in batches of ``max_batch``."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        parts = [
            self.embed_batch(texts[i : i + self.max_batch])
            for i in range(0, len(texts), self.max_batch)
        ]
        stacked: Vectors = np.vstack(parts).astype(np.float32, copy=False)
        return normalize(stacked)

    def embed_one(self, text: str) -> Vectors:
        """Embed one text; returns a vector of shape (dimensions,)."""
        vector: Vectors = self.embed([text])[0]
        return vector

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, HTTP clients)."""


def normalize(vectors: Vectors) -> Vectors:
    """L2-normalise rows; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (vectors / norms).astype(np.float32, copy=False)
    return out
