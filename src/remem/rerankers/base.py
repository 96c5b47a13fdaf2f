"""The reranker interface: one method, plus what it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class Reranker(ABC):
    """Scores how well each text answers a query (higher is better; any scale)."""

    model_id: str = ""

    @abstractmethod
    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook, most rerankers hold nothing
        """Release resources."""
