"""Typed, frozen configuration objects; nothing here reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_MESSAGE_CHARS = 32_000


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
class MemoryConfig:
    """Everything ``Memory`` needs; build it yourself or let ``remem.settings`` read it."""

    store: StoreConfig = field(default_factory=StoreConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    namespace: str = "default"
    recipe: str = "default"
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
