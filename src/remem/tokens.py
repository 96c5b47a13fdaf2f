"""Token counting for context budgets, with a real tokenizer that ships with remem.

The counter is the BERT WordPiece tokenizer of the default embedder (uncased, 30,522
tokens). It is not the tokenizer of any particular LLM: for English chat text it counts
within about 10-20% of GPT-style BPE tokenizers, so leave some headroom in budgets.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from typing import Any

TOKENIZER_NAME = "bert-base-uncased-wordpiece"
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import BertWordPieceTokenizer

    vocab = str(resources.files("remem").joinpath("data/minilm-vocab.txt"))
    return BertWordPieceTokenizer(vocab, lowercase=True)


def count_tokens(text: str) -> int:
    """Number of WordPiece tokens in ``text`` (no special tokens)."""
    with _lock:
        encoding = _tokenizer().encode(text, add_special_tokens=False)
    return len(encoding.ids)
