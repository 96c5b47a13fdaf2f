"""The OpenAI-compatible embedder against a real local HTTP server speaking /embeddings."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from remem import Memory
from remem.config import EmbedderConfig
from remem.errors import EmbedderError
from remem.registry import create_embedder

DIM = 16


def _vector(text: str) -> list[float]:
    """Deterministic bag-of-words hashing vector: shared words give similar vectors."""
    vec = np.zeros(DIM)
    for word in text.lower().split():
        digest = hashlib.sha256(word.strip("?.,!").encode()).digest()
        vec[digest[0] % DIM] += 1.0
    return [float(x) for x in vec]


class _Handler(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, object]]] = []
    fail_next: ClassVar[list[int]] = []
    delay: ClassVar[float] = 0.0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(type(self).delay)
        type(self).calls.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if type(self).fail_next:
            self._send(type(self).fail_next.pop(0), {"error": "scripted failure"})
            return
        data = [{"index": i, "embedding": _vector(t)} for i, t in enumerate(body["input"])]
        self._send(200, {"data": list(reversed(data)), "model": body["model"]})

    def _send(self, status: int, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.calls, _Handler.fail_next, _Handler.delay = [], [], 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _embedder(url: str, **extra: object) -> object:
    options = {"model": "hash-16", "dimensions": DIM, "base_url": url, "api_key": "k", **extra}
    return create_embedder(EmbedderConfig("openai", options))


def test_memory_works_over_the_openai_embedder(server: str, tmp_path: Path) -> None:
    embedder = _embedder(server, batch_size=2)
    with Memory(tmp_path / "m.db", embedder=embedder) as memory:  # type: ignore[arg-type]
        memory.add(
            [{"content": "I adopted a puppy named Rex"}, {"content": "Paris is lovely"},
             {"content": "my sister plays violin"}], user_id="u"
        )  # fmt: skip
        hits = memory.search("puppy named Rex", user_id="u", recipe="dense")
    assert "puppy" in hits[0].text
    assert all(c["path"] == "/v1/embeddings" and c["auth"] == "Bearer k" for c in _Handler.calls)
    assert len(_Handler.calls) >= 3  # three texts in batches of two, then the query


def test_server_errors_are_retried_then_reported(server: str) -> None:
    embedder = _embedder(server, retries=1)
    _Handler.fail_next = [503]
    assert embedder.embed(["hello"]).shape == (1, DIM)  # type: ignore[attr-defined]
    _Handler.fail_next = [503, 503]
    with pytest.raises(EmbedderError, match="after retries"):
        embedder.embed(["hello"])  # type: ignore[attr-defined]
    _Handler.fail_next = [401]
    with pytest.raises(EmbedderError, match="HTTP 401"):
        embedder.embed(["hello"])  # type: ignore[attr-defined]


def test_wrong_dimensions_are_reported(server: str) -> None:
    embedder = _embedder(server, dimensions=DIM + 1)
    with pytest.raises(EmbedderError, match="expected"):
        embedder.embed(["hello"])  # type: ignore[attr-defined]


def test_a_search_reads_the_store_while_a_remote_embedder_works(
    server: str, tmp_path: Path
) -> None:
    embedder = _embedder(server)
    with Memory(tmp_path / "m.db", embedder=embedder) as memory:  # type: ignore[arg-type]
        memory.add([{"content": "I adopted a puppy named Rex"}, {"content": "Paris is lovely"}],
                   user_id="u")  # fmt: skip
        _Handler.delay = 0.3
        hits = memory.search("puppy named Rex", user_id="u", explain=True)
        assert "puppy" in hits[0].text
        timings = hits.explain["timings_ms"]  # type: ignore[index]
        # the snapshot, the query analysis and the keyword channel ran while the
        # embedding was on its way: the search waited less than the embedding took
        assert {"open", "analyze", "bm25"} <= timings.keys()
        assert timings["embed_wait"] < timings["embed"]
        _Handler.fail_next = [401]
        with pytest.raises(EmbedderError, match="HTTP 401"):
            memory.search("puppy", user_id="u")
        assert memory.stats().memories == 2
