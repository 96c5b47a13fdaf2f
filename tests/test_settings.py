"""Tests for remem.settings: REMEM_* variables parsed into a MemoryConfig."""

from __future__ import annotations

import pytest

from remem.config import DEFAULT_MAX_MESSAGE_CHARS, MemoryConfig
from remem.errors import ConfigError
from remem.settings import DEFAULT_DB, ENV_VARS, load_settings


def test_defaults_when_nothing_is_set() -> None:
    config = load_settings(env={})
    assert config == MemoryConfig()
    assert config.store.path == DEFAULT_DB == "remem.db"
    assert config.max_message_chars == DEFAULT_MAX_MESSAGE_CHARS


def test_every_variable_is_read() -> None:
    config = load_settings(
        env={
            "REMEM_DB": "/tmp/x.db",
            "REMEM_NAMESPACE": "team-a",
            "REMEM_RECIPE": "bm25",
            "REMEM_EMBEDDER": "minilm-onnx",
            "REMEM_EMBEDDER_OPTIONS": '{"threads": 2}',
            "REMEM_MAX_MESSAGE_CHARS": "1000",
            "REMEM_INDEX_MEMORY_MB": "256",
        }
    )
    assert config.store.path == "/tmp/x.db"
    assert config.store.name == "sqlite"
    assert config.namespace == "team-a"
    assert config.recipe == "bm25"
    assert config.embedder.name == "minilm-onnx"
    assert config.embedder.options == {"threads": 2}
    assert config.max_message_chars == 1000
    assert config.index_memory_mb == 256


def test_explicit_db_wins_over_the_environment() -> None:
    assert load_settings("mine.db", env={"REMEM_DB": "env.db"}).store.path == "mine.db"
    assert load_settings(None, env={"REMEM_DB": "env.db"}).store.path == "env.db"


def test_blank_values_mean_unset() -> None:
    blank = {name: "  " for name in ENV_VARS}
    assert load_settings(env=blank) == MemoryConfig()


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEM_DB", "from-env.db")
    monkeypatch.setenv("REMEM_NAMESPACE", "ns1")
    config = load_settings()
    assert (config.store.path, config.namespace) == ("from-env.db", "ns1")


def test_env_vars_documents_every_variable() -> None:
    assert set(ENV_VARS) == {
        "REMEM_DB",
        "REMEM_NAMESPACE",
        "REMEM_RECIPE",
        "REMEM_EMBEDDER",
        "REMEM_EMBEDDER_OPTIONS",
        "REMEM_MAX_MESSAGE_CHARS",
        "REMEM_RERANKER_OPTIONS",
        "REMEM_INDEX_MEMORY_MB",
        "REMEM_LLM_BASE_URL",
        "REMEM_LLM_MODEL",
        "REMEM_LLM_API_KEY",
        "REMEM_LLM_OPTIONS",
        "REMEM_RECORD_ACCESS",
        "REMEM_DERIVE_BATCH_TURNS",
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REMEM_EMBEDDER_OPTIONS", "{not json", "JSON object"),
        ("REMEM_EMBEDDER_OPTIONS", "[1, 2]", "JSON object"),
        ("REMEM_EMBEDDER_OPTIONS", '"text"', "JSON object"),
        ("REMEM_MAX_MESSAGE_CHARS", "many", "positive integer"),
        ("REMEM_MAX_MESSAGE_CHARS", "0", "positive integer"),
        ("REMEM_MAX_MESSAGE_CHARS", "-5", "positive integer"),
        ("REMEM_MAX_MESSAGE_CHARS", "1.5", "positive integer"),
        ("REMEM_INDEX_MEMORY_MB", "lots", "positive integer"),
        ("REMEM_INDEX_MEMORY_MB", "0", "positive integer"),
        ("REMEM_RECIPE", "fancy", "bm25"),
        ("REMEM_EMBEDDER", "no-such-model", "minilm-onnx"),
        ("REMEM_NAMESPACE", "n" * 300, "at most"),
        ("REMEM_RECORD_ACCESS", "maybe", "1 or 0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: value})
    assert name in str(info.value)
    assert expected in str(info.value)


def test_recording_recalls_can_be_switched_off() -> None:
    assert load_settings(env={}).record_access is True
    for off in ("0", "false", "No", "off"):
        assert load_settings(env={"REMEM_RECORD_ACCESS": off}).record_access is False
    assert load_settings(env={"REMEM_RECORD_ACCESS": "yes"}).record_access is True


def test_recipe_may_be_an_ablation_and_reranker_options_are_json() -> None:
    config = load_settings(env={"REMEM_RECIPE": "default-no-multihop",
                                "REMEM_RERANKER_OPTIONS": '{"model": "/models/ce"}'})  # fmt: skip
    assert config.recipe == "default-no-multihop"
    assert dict(config.reranker.options) == {"model": "/models/ce"}
    with pytest.raises(ConfigError, match="REMEM_RERANKER_OPTIONS"):
        load_settings(env={"REMEM_RERANKER_OPTIONS": "[1]"})


def test_db_takes_a_path_or_a_store_url() -> None:
    assert load_settings("sqlite:///rel/m.db", env={}).store.path == "rel/m.db"
    assert load_settings("sqlite:////abs/m.db", env={}).store.path == "/abs/m.db"
    assert load_settings(None, env={"REMEM_DB": "sqlite:///e.db"}).store.path == "e.db"
    assert load_settings("C:/data/m.db", env={}).store.path == "C:/data/m.db"
    assert load_settings("postgresql://u@localhost/remem", env={}).store.name == "postgres"
    with pytest.raises(ConfigError, match="no store serves mysql://"):
        load_settings("mysql://localhost/x", env={})


def test_memory_opens_a_sqlite_url(tmp_path, embedder) -> None:  # type: ignore[no-untyped-def]
    from remem import Memory

    with Memory(f"sqlite:///{tmp_path}/url.db", embedder=embedder) as memory:
        memory.add("I keep bees", user_id="ana")
    assert (tmp_path / "url.db").exists()


def test_llm_variables_configure_an_llm_and_none_means_no_llm() -> None:
    assert load_settings(env={}).llm is None  # nothing is sent anywhere by default
    config = load_settings(
        env={
            "REMEM_LLM_BASE_URL": "http://localhost:11434/v1",
            "REMEM_LLM_MODEL": "qwen2.5:7b",
            "REMEM_LLM_API_KEY": "sk-settings-secret",
            "REMEM_LLM_OPTIONS": '{"timeout": 60, "max_concurrency": 2}',
        }
    ).llm
    assert config is not None
    assert (config.name, config.base_url, config.model) == (
        "openai", "http://localhost:11434/v1", "qwen2.5:7b"
    )  # fmt: skip
    assert config.api_key == "sk-settings-secret"
    assert dict(config.options) == {"timeout": 60, "max_concurrency": 2}
    assert "sk-settings-secret" not in repr(config)  # a logged config never shows the key


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REMEM_LLM_MODEL": "m"}, "REMEM_LLM_BASE_URL is not set"),
        ({"REMEM_LLM_BASE_URL": "http://h/v1"}, "REMEM_LLM_MODEL is not set"),
        ({"REMEM_LLM_API_KEY": "k"}, "no LLM is configured"),
        ({"REMEM_LLM_OPTIONS": '{"timeout": 5}'}, "no LLM is configured"),
        ({"REMEM_LLM_BASE_URL": "localhost:8080", "REMEM_LLM_MODEL": "m"}, "http://"),
        ({"REMEM_LLM_BASE_URL": "http://h/v1", "REMEM_LLM_MODEL": "m",
          "REMEM_LLM_OPTIONS": "{oops"}, "REMEM_LLM_OPTIONS is not valid JSON"),
        ({"REMEM_LLM_BASE_URL": "http://h/v1", "REMEM_LLM_MODEL": "m",
          "REMEM_LLM_OPTIONS": '{"api_key": "k"}'}, "REMEM_LLM_API_KEY"),
    ],
)  # fmt: skip
def test_bad_llm_settings_say_what_to_set(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(env=env)
