"""An embedder for any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, ...)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from remem.embedders.base import Embedder, Vectors, normalize
from remem.errors import ConfigError, EmbedderError

log = logging.getLogger(__name__)


class OpenAICompatEmbedder(Embedder):
    """POSTs batches of texts to ``{base_url}/embeddings`` and returns normalised vectors.

    ``dimensions`` must be given (it is stored with the database); requests are retried
    ``retries`` times on connection errors and 5xx answers.
    """

    remote = True

    def __init__(
        self,
        model: str,
        dimensions: int,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise ConfigError(
                "the openai embedder needs httpx: pip install 'remem[openai]'"
            ) from exc
        if not isinstance(dimensions, int) or dimensions <= 0:
            raise ConfigError("the openai embedder needs dimensions=<positive int>")
        self.model_id = f"openai:{model}"
        self.model = model
        self.dimensions = dimensions
        self.max_batch = batch_size
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self._transport_errors: tuple[type[BaseException], ...] = (httpx.TransportError,)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One request for up to ``max_batch`` texts."""
        payload = self._post({"model": self.model, "input": list(texts)})
        try:
            rows = sorted(payload["data"], key=lambda d: d["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(
                f"the embeddings endpoint sent an unexpected answer: {exc}"
            ) from exc
        if vectors.shape != (len(texts), self.dimensions):
            raise EmbedderError(
                f"the embeddings endpoint returned shape {vectors.shape}, expected "
                f"({len(texts)}, {self.dimensions}); check the model and dimensions options"
            )
        return normalize(vectors)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if last is not None:
                log.info("retrying the embeddings endpoint (attempt %d): %s", attempt + 1, last)
            try:
                response = self._client.post("/embeddings", json=body)
            except self._transport_errors as exc:
                last = exc
                continue
            if response.status_code >= 500:
                last = EmbedderError(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            if response.status_code != 200:
                raise EmbedderError(
                    f"the embeddings endpoint answered HTTP {response.status_code}: "
                    f"{response.text[:200]}; check base_url, model and api_key"
                )
            data: dict[str, Any] = response.json()
            return data
        raise EmbedderError(f"the embeddings endpoint failed after retries: {last}") from last

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
