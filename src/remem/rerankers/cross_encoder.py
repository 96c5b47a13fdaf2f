"""A cross-encoder reranker (sentence-transformers ``CrossEncoder``; the ``[rerank]`` extra).

It reads a question and a memory together, which bi-encoders and BM25 cannot, at the cost
of one model call per candidate: keep ``Recipe.rerank_depth`` small on CPUs. The model must
be available locally (a path, or a Hugging Face cache filled beforehand).
"""

from __future__ import annotations

from collections.abc import Sequence

from remem.errors import ConfigError
from remem.rerankers.base import Reranker

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"


class CrossEncoderReranker(Reranker):
    """Wraps ``sentence_transformers.CrossEncoder``."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise ConfigError(
                "the cross-encoder reranker needs the [rerank] extra: pip install 'remem[rerank]'"
            ) from exc
        try:
            self._model = CrossEncoder(model, device="cpu")
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load the cross-encoder {model!r} ({exc}); pass a local model path as "
                "the reranker option 'model', or download it into the Hugging Face cache first"
            ) from exc
        self.model_id = f"cross-encoder:{model}"
        self._batch = batch_size

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the query."""
        if not texts:
            return []
        pairs = [(query, text) for text in texts]
        return [float(s) for s in self._model.predict(pairs, batch_size=self._batch)]
