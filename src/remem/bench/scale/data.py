"""Synthetic tenants for the scale bench: a pool of distinct chat texts embedded once with
the real model, users whose conversations draw their texts from it, and an embedder that
answers from the pool (so a million memories do not take hours of model time)."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from remem.bench.live import SyntheticChat, latency
from remem.embedders.base import Embedder, Vectors

POOL_SEED = 97
SAMPLE = 1000  # texts the real model embeds to measure its own speed
CHUNK = 512  # texts embedded at once while the pool is built


def pool_key(speaker: str, content: str) -> str:
    """The text the embedder sees of a turn (``turn_embed_text``: speaker and content)."""
    return f"{speaker}: {content}"


@dataclass(frozen=True)
class Pool:
    """Distinct turn contents per speaker parity (even turns: the user's speaker, odd:
    the assistant's), plus the bench queries, each text with its vector in ``vectors``."""

    speakers: tuple[str, str]
    contents: tuple[tuple[str, ...], tuple[str, ...]]
    queries: tuple[str, ...]
    vectors: dict[str, Vectors]

    def draw(self, parity: int, rng: random.Random) -> str:
        """A content for a turn of this parity, uniformly from the pool."""
        return rng.choice(self.contents[parity])


def pool_texts(count: int, seed: int = POOL_SEED) -> tuple[tuple[str, str], list[list[str]]]:
    """``count`` distinct turn contents from ``SyntheticChat``, split by speaker parity."""
    chat = SyntheticChat(seed=seed)
    seen: list[dict[str, None]] = [{}, {}]
    misses = 0
    while sum(map(len, seen)) < count and misses < 50 * count:
        for number, turn in enumerate(chat.next_turns(2)):
            if turn["content"] in seen[number]:
                misses += 1
            elif sum(map(len, seen)) < count:
                seen[number][turn["content"]] = None
    return chat.speakers, [list(part) for part in seen]


def _embed_all(embedder: Embedder, texts: Sequence[str], progress: bool) -> Vectors:
    out = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
    with tqdm(total=len(texts), desc="embed pool", unit="text", disable=not progress) as bar:
        for start in range(0, len(texts), CHUNK):
            part = texts[start : start + CHUNK]
            out[start : start + len(part)] = embedder.embed(part)
            bar.update(len(part))
    return out


def build_pool(
    embedder: Embedder, count: int, queries: Sequence[str], folder: Path, progress: bool
) -> Path:
    """The pool's texts and vectors as ``<stem>.json`` and ``<stem>.npy`` in ``folder``
    (reused when they exist: the stem hashes the model, texts and queries); returns the
    stem's path."""
    speakers, contents = pool_texts(count)
    keys = [pool_key(speakers[p], c) for p in (0, 1) for c in contents[p]] + list(queries)
    digest = hashlib.sha256("\n".join([embedder.model_id, *keys]).encode()).hexdigest()[:12]
    stem = folder / f"remem-scale-pool-{len(keys)}-{digest}"
    if not stem.with_suffix(".npy").exists():
        vectors = _embed_all(embedder, keys, progress)
        np.save(stem.with_suffix(".tmp.npy"), vectors)
        stem.with_suffix(".tmp.npy").replace(stem.with_suffix(".npy"))
        body = {"speakers": speakers, "contents": contents, "queries": list(queries)}
        stem.with_suffix(".json").write_text(json.dumps(body), encoding="utf-8")
    return stem


def load_pool(stem: Path) -> Pool:
    """The pool ``build_pool`` wrote at ``stem``."""
    body = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    matrix = np.load(stem.with_suffix(".npy"))
    speakers = tuple(body["speakers"])
    keys = [pool_key(speakers[p], c) for p in (0, 1) for c in body["contents"][p]]
    keys += body["queries"]
    return Pool(
        speakers=(speakers[0], speakers[1]),
        contents=(tuple(body["contents"][0]), tuple(body["contents"][1])),
        queries=tuple(body["queries"]),
        vectors={key: matrix[n] for n, key in enumerate(keys)},
    )


def embedder_speed(embedder: Embedder, pool: Pool, sample: int = SAMPLE) -> dict[str, Any]:
    """The real model's own speed on ``sample`` pool texts (turns/s, batches as ``add``
    sends them: one session of about 30 turns at a time) and per query (``embed_one``)."""
    texts = list(pool.vectors)[:sample]
    embedder.embed(texts[:32])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), 30):
        embedder.embed(texts[start : start + 30])
    seconds = time.perf_counter() - started
    timings = []
    for query in pool.queries:
        begun = time.perf_counter()
        embedder.embed_one(query)
        timings.append((time.perf_counter() - begun) * 1000)
    return {
        "texts": len(texts),
        "turns_per_second": round(len(texts) / seconds, 1),
        "query": latency(timings),
    }


class PoolEmbedder(Embedder):
    """The pool's vector for a text it holds; any other text (session summaries' topics)
    from the real model, remembered, with the time it took in ``model_seconds``."""

    def __init__(self, real: Embedder, pool: Pool) -> None:
        self.real = real
        self.model_id = real.model_id
        self.dimensions = real.dimensions
        self.max_batch = 1 << 20  # ``embed`` is overridden: one call per ``add``
        self.known = dict(pool.vectors)
        self.model_seconds = 0.0
        self.model_texts = 0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts``, from the pool where it can."""
        missing = sorted({t for t in texts if t not in self.known})
        if missing:
            started = time.perf_counter()
            vectors = self.real.embed(missing)
            self.model_seconds += time.perf_counter() - started
            self.model_texts += len(missing)
            self.known.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        out: npt.NDArray[np.float32] = np.vstack([self.known[t] for t in texts])
        return out

    def close(self) -> None:
        self.real.close()


def user_ids(users: int) -> list[str]:
    """The tenant's user ids, ``user00000`` on."""
    return [f"user{n:05d}" for n in range(users)]


def turns_per_user(size: int, users: int) -> list[int]:
    """``size`` turns split over ``users`` as evenly as can be (the first get the rest)."""
    base, rest = divmod(size, users)
    return [base + (1 if n < rest else 0) for n in range(users)]


def _user_sessions(pool: Pool, seed: int, turns: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    rng = random.Random(seed)
    for session, messages in SyntheticChat(seed=seed, speakers=pool.speakers).sessions(turns):
        for number, message in enumerate(messages):
            message["content"] = pool.draw(number % 2, rng)
        yield session, messages


def tenant_sessions(
    pool: Pool, size: int, users: int
) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """``(user_id, session_id, messages)`` for ``size`` turns over ``users`` users, one
    session of each user in turn (users talk at the same time, not one after another)."""
    streams = [
        (user, _user_sessions(pool, 1000 + n, turns))
        for n, (user, turns) in enumerate(
            zip(user_ids(users), turns_per_user(size, users), strict=True)
        )
    ]
    while streams:
        alive = []
        for user, stream in streams:
            item = next(stream, None)
            if item is not None:
                yield user, item[0], item[1]
                alive.append((user, stream))
        streams = alive
