"""The one place that maps names to implementations, for built-ins and plugins alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from remem.config import EmbedderConfig, LLMConfig, StoreConfig
from remem.embedders.base import Embedder
from remem.errors import ConfigError
from remem.llms.base import LLM
from remem.models import Job
from remem.rerankers.base import Reranker
from remem.stores.base import Store

if TYPE_CHECKING:
    from remem.engine import Memory
    from remem.jobs import JobOutput

EmbedderFactory = Callable[..., Embedder]
StoreFactory = Callable[..., Store]
RerankerFactory = Callable[..., Reranker]

_EMBEDDERS: dict[str, EmbedderFactory] = {}
_STORES: dict[str, StoreFactory] = {}
_RERANKERS: dict[str, RerankerFactory] = {}
_SCHEMES: dict[str, str] = {}  # URL scheme -> store name


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make an embedder available by name (plugins call this too)."""
    _EMBEDDERS[name] = factory


def register_store(name: str, factory: StoreFactory, schemes: tuple[str, ...] = ()) -> None:
    """Make a store available by name, and by the URL schemes it serves (plugins call
    this too): ``register_store("postgres", factory, ("postgresql", "postgres"))``."""
    _STORES[name] = factory
    for scheme in schemes:
        _SCHEMES[scheme] = name


def store_config(location: str, options: Mapping[str, Any] | None = None) -> StoreConfig:
    """The store a ``--db`` / ``REMEM_DB`` value names: a file path (SQLite), a
    ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL, or the URL of any store
    registered for its scheme (the store gets the whole URL as its ``path``)."""
    scheme, sep, rest = location.partition("://")
    if not sep or not scheme.isidentifier():
        return StoreConfig("sqlite", location, dict(options or {}))
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        return StoreConfig("sqlite", path or ":memory:", dict(options or {}))
    if scheme not in _SCHEMES:
        known = ", ".join(sorted({"sqlite", *_SCHEMES}))
        raise ConfigError(f"no store serves {scheme}:// URLs; use a file path or one of: {known}")
    return StoreConfig(_SCHEMES[scheme], location, dict(options or {}))


def register_reranker(name: str, factory: RerankerFactory) -> None:
    """Make a reranker available by name, for ``Recipe.rerank`` (plugins call this too)."""
    _RERANKERS[name] = factory


def reranker_names() -> list[str]:
    """Registered reranker names."""
    return sorted(_RERANKERS)


def create_reranker(name: str, options: Mapping[str, Any] | None = None) -> Reranker:
    """Build the reranker a recipe names."""
    reranker: Reranker = _build("reranker", _RERANKERS, name, options or {})
    return reranker


def embedder_names() -> list[str]:
    """Registered embedder names."""
    return sorted(_EMBEDDERS)


def store_names() -> list[str]:
    """Registered store names."""
    return sorted(_STORES)


def _build(kind: str, table: Mapping[str, Callable[..., Any]], name: str, options: Any) -> Any:
    try:
        factory = table[name]
    except KeyError:
        raise ConfigError(
            f"unknown {kind} {name!r}; registered: {', '.join(sorted(table))}"
        ) from None
    try:
        return factory(**dict(options))
    except TypeError as exc:
        raise ConfigError(f"bad options for {kind} {name!r}: {exc}") from exc


def create_embedder(config: EmbedderConfig) -> Embedder:
    """Build the embedder a config names."""
    embedder: Embedder = _build("embedder", _EMBEDDERS, config.name, config.options)
    return embedder


def create_store(config: StoreConfig) -> Store:
    """Build the store a config names."""
    store: Store = _build("store", _STORES, config.name, {"path": config.path, **config.options})
    return store


LLMFactory = Callable[..., LLM]
_LLMS: dict[str, LLMFactory] = {}


def register_llm(name: str, factory: LLMFactory) -> None:
    """Make an LLM client available by name (plugins, and tests' scripted fakes, call this)."""
    _LLMS[name] = factory


def llm_names() -> list[str]:
    """Registered LLM names."""
    return sorted(_LLMS)


def create_llm(config: LLMConfig) -> LLM:
    """Build the LLM a config names; its ``base_url``, ``model`` and ``api_key`` (when set)
    are passed with its options."""
    given = {"base_url": config.base_url, "model": config.model, "api_key": config.api_key}
    options = {**config.options, **{k: v for k, v in given.items() if v is not None}}
    llm: LLM = _build("llm", _LLMS, config.name, options)
    return llm


def _openai_llm(**options: Any) -> LLM:
    try:
        from remem.llms.openai_compat import OpenAICompatLLM
    except ImportError as exc:  # httpx or pydantic is missing
        raise ConfigError("the openai LLM needs the llm extra: pip install 'remem[llm]'") from exc
    return OpenAICompatLLM(**options)


def _onnx(**options: Any) -> Embedder:
    from remem.embedders.onnx import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(**options)


def _openai(**options: Any) -> Embedder:
    from remem.embedders.openai_compat import OpenAICompatEmbedder

    return OpenAICompatEmbedder(**options)


def _sentence_transformers(**options: Any) -> Embedder:
    from remem.embedders.sentence_transformers import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder(**options)


def _cross_encoder(**options: Any) -> Reranker:
    from remem.rerankers.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(**options)


def _sqlite(**options: Any) -> Store:
    from remem.stores.sqlite import SQLiteStore

    return SQLiteStore(**options)


def _postgres(**options: Any) -> Store:
    try:
        from remem.stores.postgres.store import PostgresStore
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in {"psycopg", "psycopg_pool", "pgvector"}:
            raise
        raise ConfigError(
            f"the PostgreSQL store needs its extra ({exc.name} is missing): "
            "pip install 'remem[postgres]'"
        ) from exc
    return PostgresStore(**options)


register_embedder("minilm-onnx", _onnx)
register_embedder("openai", _openai)
register_embedder("sentence-transformers", _sentence_transformers)
register_store("sqlite", _sqlite, ("sqlite",))
register_store("postgres", _postgres, ("postgresql", "postgres"))
register_reranker("cross-encoder", _cross_encoder)
register_llm("openai", _openai_llm)


JobHandler = Callable[["Memory", Job], "JobOutput"]
_JOB_HANDLERS: dict[str, JobHandler] = {}


def register_job_handler(kind: str, handler: JobHandler) -> None:
    """Make a job kind runnable (plugins, and tests, call this too): ``handler(memory,
    job)`` does the job's work and returns what to write (``remem.jobs.JobOutput``); the
    runner writes it together with the job's completion, so it is written once."""
    _JOB_HANDLERS[kind] = handler


def job_handler(kind: str) -> JobHandler:
    """The handler of a job kind; ``ConfigError`` if none is registered."""
    try:
        return _JOB_HANDLERS[kind]
    except KeyError:
        raise ConfigError(
            f"no handler for jobs of kind {kind!r} (registered: "
            f"{', '.join(sorted(_JOB_HANDLERS))}); register one with register_job_handler"
        ) from None


def _derive_job(memory: Memory, job: Job) -> JobOutput:
    from remem.jobs import derive_job

    return derive_job(memory, job)


register_job_handler("derive", _derive_job)
