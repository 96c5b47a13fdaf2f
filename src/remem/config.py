"""Typed, frozen configuration objects; nothing here reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_MESSAGE_CHARS = 32_000
DEFAULT_INDEX_MEMORY_MB = 1024


@dataclass(frozen=True)
class EmbedderConfig:
    """Which embedder to use (a registry name) and its options."""

    name: str = "minilm-onnx"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreConfig:
    """Which store to use (a registry name) and where it lives."""

    name: str = "sqlite"
    path: str = "remem.db"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RerankerConfig:
    """Options for the reranker a recipe names (``Recipe.rerank``), by registry name."""

    name: str = "cross-encoder"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM to use (a registry name), where it is, and its options.

    ``base_url`` and ``model`` name an OpenAI-compatible endpoint (OpenAI, vLLM, Ollama,
    llama.cpp server, LM Studio); ``options`` are the client's other keyword arguments
    (timeouts, retries, concurrency; see ``docs/llm.md``). ``api_key`` is kept out of
    ``repr`` so a logged config never shows it. Nothing is sent anywhere unless an
    ``LLMConfig`` is given.
    """

    name: str = "openai"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrichConfig:
    """What ``add`` derives from each message, deterministically (no LLM).

    ``entities``: names and titles, linked to the scope's entity table. ``times``: time
    expressions resolved against when the message was said. ``keyphrases``: the
    ``keyphrases_per_turn`` most surprising phrases (at least ``keyphrase_min_bits``).
    ``summaries``: an extractive summary memory per session, refreshed as it grows.
    ``keyphrase_decay``: how much an entity's strength keeps per later session.
    """

    entities: bool = True
    times: bool = True
    keyphrases: bool = True
    summaries: bool = True
    keyphrases_per_turn: int = 3
    keyphrase_min_bits: float = 3.0
    keyphrase_decay: float = 0.9

    @classmethod
    def none(cls) -> EnrichConfig:
        """Verbatim turns only: no entities, times, key phrases or summaries."""
        return cls(entities=False, times=False, keyphrases=False, summaries=False)


@dataclass(frozen=True)
class DeriveConfig:
    """Deriving memories (facts, events, profile entries, procedures) from messages with
    the LLM, and consolidating them with what is stored. Runs only when an LLM is
    configured and ``enabled``.

    ``batch_turns``: messages per extraction call (one LLM call per batch);
    ``neighbours``: existing memories each candidate is compared with;
    ``consolidate_batch``: candidates decided per consolidation LLM call;
    ``lease_seconds``: how long a worker holds a job before another may take it over;
    ``max_attempts``: runs of a job before it is marked failed (with its reason);
    ``retry_seconds``: wait before a failed run is retried, doubled after each attempt;
    ``gather_seconds``: how long the background thread lets a burst of
    ``add(wait=False)`` calls gather into one job (a batch, one LLM call) before it runs;
    ``background``: jobs of ``add(wait=False)`` also run in a thread of the ``Memory``
    that enqueued them (off: only ``remem worker`` runs them).
    """

    enabled: bool = True
    batch_turns: int = 20
    neighbours: int = 5
    consolidate_batch: int = 10
    lease_seconds: float = 300.0
    max_attempts: int = 3
    background: bool = True
    retry_seconds: float = 10.0
    gather_seconds: float = 1.0


@dataclass(frozen=True)
class MemoryConfig:
    """Everything ``Memory`` needs; build it yourself or let ``remem.settings`` read it.

    ``index_memory_mb``: about how much memory the in-process search indexes of the
    scopes searched may take; the least recently searched scopes are dropped beyond it
    (and rebuilt from the store when searched again).
    ``record_access``: count each memory a search returns as recalled (``access_count``,
    ``last_accessed_at``, and ``strength`` reinforced: ``remem.evolution.retention``),
    written in batches by a background thread, never by the search itself.
    """

    store: StoreConfig = field(default_factory=StoreConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    namespace: str = "default"
    recipe: str = "default"
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
    index_memory_mb: int = DEFAULT_INDEX_MEMORY_MB
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    reranker: RerankerConfig = field(default_factory=RerankerConfig)
    llm: LLMConfig | None = None  # no LLM unless configured: nothing leaves the machine
    derive: DeriveConfig = field(default_factory=DeriveConfig)
    record_access: bool = True
