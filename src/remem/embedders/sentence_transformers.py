"""An embedder running any sentence-transformers model (the ``[st]`` extra, needs PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from remem.embedders.base import Embedder, Vectors, normalize
from remem.errors import ConfigError


class SentenceTransformersEmbedder(Embedder):
    """Wraps ``sentence_transformers.SentenceTransformer`` (local path or cached model)."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "the sentence-transformers embedder needs the [st] extra: pip install 'remem[st]'"
            ) from exc
        self._model = SentenceTransformer(model, device="cpu")
        self.model_id = f"st:{model}"
        self.dimensions = int(self._model.get_sentence_embedding_dimension() or 0)
        self.max_batch = batch_size

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Encode up to ``max_batch`` texts."""
        vectors = self._model.encode(list(texts), batch_size=self.max_batch)
        return normalize(np.asarray(vectors, dtype=np.float32))
