"""Rerankers plug in through the registry; the cross-encoder needs its extra and a model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from remem import ConfigError, Memory, MemoryConfig, Recipe, StoreConfig
from remem.config import RerankerConfig
from remem.embedders.base import Embedder
from remem.registry import create_reranker, register_reranker, reranker_names
from remem.rerankers.base import Reranker


class WordReranker(Reranker):
    """A scripted reranker: scores a text by how often it contains ``word``."""

    model_id = "test-word"

    def __init__(self, word: str = "beagle") -> None:
        self.word = word
        self.calls: list[tuple[str, int]] = []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append((query, len(texts)))
        return [float(t.lower().count(self.word)) for t in texts]


made: list[WordReranker] = []


def _factory(**options: str) -> WordReranker:
    made.append(WordReranker(**options))
    return made[-1]


register_reranker("test-word", _factory)


def test_a_named_reranker_reorders_the_best_candidates(tmp_path: Path, embedder: Embedder) -> None:
    config = MemoryConfig(StoreConfig(path=str(tmp_path / "r.db")),
                          reranker=RerankerConfig("test-word", {"word": "oscar"}))  # fmt: skip
    with Memory(config, embedder=embedder) as m:
        m.add([{"content": "We adopted a dog.", "name": "Ana"},
               {"content": "The dog is called Oscar.", "name": "Ana"},
               {"content": "Dogs, dogs, dogs: I love dogs and my dog.", "name": "Ana"}],
              user_id="ana", session_id="s1")  # fmt: skip
        recipe = Recipe("hybrid+rerank", {"bm25": 0.6, "dense": 0.4}, rerank="test-word",
                        rerank_depth=3)  # fmt: skip
        plain = m.search("dog", user_id="ana", recipe=Recipe("h", {"bm25": 0.6, "dense": 0.4}))
        assert plain[0].text != "Ana: The dog is called Oscar."
        hits = m.search("dog", user_id="ana", recipe=recipe)
        assert hits[0].text == "Ana: The dog is called Oscar."
        assert "rerank" in hits[0].scores
        assert made[-1].word == "oscar" and made[-1].calls == [("dog", 3)]
        m.search("dog", user_id="ana", recipe=recipe)
        assert len(made) == 1  # built once per Memory


def test_the_cross_encoder_is_registered_and_names_its_extra() -> None:
    assert "cross-encoder" in reranker_names()
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"\[rerank\] extra"):
            create_reranker("cross-encoder")
    else:  # pragma: no cover - only where the extra is installed
        with pytest.raises(ConfigError, match="cannot load the cross-encoder"):
            create_reranker("cross-encoder", {"model": "/no/such/model"})
