"""remem: long-term memory for LLM agents, offline by default."""

from remem.config import (
    DeriveConfig,
    EmbedderConfig,
    EnrichConfig,
    LLMConfig,
    MemoryConfig,
    RerankerConfig,
    StoreConfig,
)
from remem.context import Context, ContextItem
from remem.engine import AsyncMemory, Memory
from remem.errors import (
    ConfigError,
    ConflictError,
    CorruptStoreError,
    DataFormatError,
    EmbedderError,
    InvalidInputError,
    LLMError,
    MessageTooLargeError,
    NotFoundError,
    RememError,
    StoreError,
)
from remem.models import (
    AddResult,
    CompactReport,
    Entity,
    ForgetReport,
    MemoryEvent,
    MemoryRecord,
    Message,
    Scope,
    SearchHit,
    SearchResults,
    Stats,
)
from remem.retrieval.recipes import RECIPES, Recipe

__version__ = "0.1.0"

__all__ = [
    "RECIPES",
    "AddResult",
    "AsyncMemory",
    "CompactReport",
    "ConfigError",
    "ConflictError",
    "Context",
    "ContextItem",
    "CorruptStoreError",
    "DataFormatError",
    "DeriveConfig",
    "EmbedderConfig",
    "EmbedderError",
    "EnrichConfig",
    "Entity",
    "ForgetReport",
    "InvalidInputError",
    "LLMConfig",
    "LLMError",
    "Memory",
    "MemoryConfig",
    "MemoryEvent",
    "MemoryRecord",
    "Message",
    "MessageTooLargeError",
    "NotFoundError",
    "Recipe",
    "RememError",
    "RerankerConfig",
    "Scope",
    "SearchHit",
    "SearchResults",
    "Stats",
    "StoreConfig",
    "StoreError",
    "__version__",
]
