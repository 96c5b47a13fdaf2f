"""Reads remem's settings from the environment: the only module that looks at ``os.environ``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from remem.config import (
    DEFAULT_INDEX_MEMORY_MB,
    DEFAULT_MAX_MESSAGE_CHARS,
    DeriveConfig,
    EmbedderConfig,
    LLMConfig,
    MemoryConfig,
    RerankerConfig,
)
from remem.errors import ConfigError, InvalidInputError
from remem.registry import embedder_names, store_config
from remem.retrieval.recipes import get_recipe
from remem.validation import MAX_ID_CHARS

DEFAULT_DB = "remem.db"
ENV_VARS: dict[str, str] = {
    "REMEM_DB": f"database: a SQLite file path or sqlite:/// URL (default {DEFAULT_DB})",
    "REMEM_NAMESPACE": "namespace (tenant) to read and write (default 'default')",
    "REMEM_RECIPE": "default retrieval recipe (default 'default')",
    "REMEM_EMBEDDER": "embedder registry name (default 'minilm-onnx')",
    "REMEM_EMBEDDER_OPTIONS": "JSON object of embedder options (default {})",
    "REMEM_MAX_MESSAGE_CHARS": f"largest message accepted (default {DEFAULT_MAX_MESSAGE_CHARS})",
    "REMEM_RERANKER_OPTIONS": "JSON object of cross-encoder options, e.g. a local model path",
    "REMEM_INDEX_MEMORY_MB": f"memory for in-process scope indexes, in MB (default "
    f"{DEFAULT_INDEX_MEMORY_MB})",
    "REMEM_LLM_BASE_URL": "OpenAI-compatible LLM endpoint, e.g. http://localhost:11434/v1 "
    "(default: no LLM)",
    "REMEM_LLM_MODEL": "LLM model name at that endpoint (needed with REMEM_LLM_BASE_URL)",
    "REMEM_LLM_API_KEY": "API key sent to the LLM endpoint as a Bearer token (default none)",
    "REMEM_LLM_OPTIONS": 'JSON object of LLM client options, e.g. {"timeout": 60}',
    "REMEM_RECORD_ACCESS": "count search hits as recalls, reinforcing their strength: 1 or 0 "
    "(default 1)",
    "REMEM_DERIVE_BATCH_TURNS": "messages per LLM extraction call (default 20)",
}


def load_settings(db: str | None = None, env: Mapping[str, str] | None = None) -> MemoryConfig:
    """Build a ``MemoryConfig`` from ``REMEM_*`` variables; an explicit ``db`` wins.

    ``env`` defaults to ``os.environ``. Unset or blank variables take their defaults; bad
    values raise ``ConfigError`` naming the variable and what it expects.

    >>> load_settings(env={"REMEM_DB": "/tmp/m.db", "REMEM_RECIPE": "bm25"}).recipe
    'bm25'
    """
    source: Mapping[str, str] = os.environ if env is None else env
    defaults = MemoryConfig()
    path = db if db is not None else _get(source, "REMEM_DB") or DEFAULT_DB
    return MemoryConfig(
        store=store_config(path),
        embedder=EmbedderConfig(
            name=_embedder(source) or defaults.embedder.name,
            options=_options(source),
        ),
        namespace=_namespace(source) or defaults.namespace,
        recipe=_recipe(source) or defaults.recipe,
        max_message_chars=_positive(source, "REMEM_MAX_MESSAGE_CHARS", DEFAULT_MAX_MESSAGE_CHARS),
        index_memory_mb=_positive(source, "REMEM_INDEX_MEMORY_MB", DEFAULT_INDEX_MEMORY_MB),
        reranker=RerankerConfig(options=_options(source, "REMEM_RERANKER_OPTIONS")),
        llm=_llm(source),
        record_access=_flag(source, "REMEM_RECORD_ACCESS", defaults.record_access),
        derive=_derive(source),
    )


def _derive(env: Mapping[str, str]) -> DeriveConfig:
    """Deriving memories with the LLM: the ``REMEM_DERIVE_*`` variables."""
    defaults = DeriveConfig()
    return DeriveConfig(
        batch_turns=_positive(env, "REMEM_DERIVE_BATCH_TURNS", defaults.batch_turns),
    )


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def _namespace(env: Mapping[str, str]) -> str | None:
    value = _get(env, "REMEM_NAMESPACE")
    if value is not None and len(value) > MAX_ID_CHARS:
        raise ConfigError(f"REMEM_NAMESPACE must be at most {MAX_ID_CHARS} characters")
    return value


def _recipe(env: Mapping[str, str]) -> str | None:
    value = _get(env, "REMEM_RECIPE")
    if value is not None:
        try:
            get_recipe(value)
        except InvalidInputError as exc:
            raise ConfigError(f"REMEM_RECIPE={value!r}: {exc}") from None
    return value


def _embedder(env: Mapping[str, str]) -> str | None:
    value = _get(env, "REMEM_EMBEDDER")
    if value is not None and value not in embedder_names():
        raise ConfigError(
            f"REMEM_EMBEDDER={value!r} is not a registered embedder; "
            f"use one of {', '.join(embedder_names())}"
        )
    return value


def _options(env: Mapping[str, str], name: str = "REMEM_EMBEDDER_OPTIONS") -> dict[str, Any]:
    value = _get(env, name)
    if value is None:
        return {}
    try:
        options = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{name} is not valid JSON ({exc.msg}); expected a JSON object "
            'such as {"model": "text-embedding-3-small"}'
        ) from exc
    if not isinstance(options, dict):
        raise ConfigError(f"{name} must be a JSON object, not {type(options).__name__}")
    return options


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _get(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer, e.g. {default}")
    return number


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _get(env, name)
    if value is None:
        return default
    if value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ConfigError(f"{name}={value!r} must be 1 or 0 (true/false, yes/no, on/off)")


LLM_OWN_VARIABLES = {
    "base_url": "REMEM_LLM_BASE_URL",
    "model": "REMEM_LLM_MODEL",
    "api_key": "REMEM_LLM_API_KEY",
}


def _llm(env: Mapping[str, str]) -> LLMConfig | None:
    """The LLM the ``REMEM_LLM_*`` variables configure: none unless both the endpoint and
    the model are given, so nothing is sent anywhere by default."""
    base_url, model = _get(env, "REMEM_LLM_BASE_URL"), _get(env, "REMEM_LLM_MODEL")
    api_key = _get(env, "REMEM_LLM_API_KEY")
    options = _options(env, "REMEM_LLM_OPTIONS")
    if base_url is None and model is None:
        if api_key is not None or options:
            raise ConfigError(
                "REMEM_LLM_API_KEY or REMEM_LLM_OPTIONS is set but no LLM is configured; "
                "set REMEM_LLM_BASE_URL and REMEM_LLM_MODEL too"
            )
        return None
    if base_url is None or model is None:
        missing = "REMEM_LLM_MODEL" if model is None else "REMEM_LLM_BASE_URL"
        raise ConfigError(
            f"{missing} is not set: an LLM needs both REMEM_LLM_BASE_URL (e.g. "
            "http://localhost:11434/v1) and REMEM_LLM_MODEL"
        )
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"REMEM_LLM_BASE_URL={base_url!r} must be an http:// or https:// URL")
    for key, variable in LLM_OWN_VARIABLES.items():
        if key in options:
            raise ConfigError(f"REMEM_LLM_OPTIONS may not set {key!r}; use {variable}")
    return LLMConfig(base_url=base_url, model=model, api_key=api_key, options=options)
