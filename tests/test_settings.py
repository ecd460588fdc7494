from __future__ import annotations

from pathlib import Path

import pytest

from ragkeel.errors import ConfigError
from ragkeel.models.cache import default_models_dir
from ragkeel.settings import load_settings


def test_defaults_and_home_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.home == tmp_path / "h"
    assert s.database_path == tmp_path / "h" / "ragkeel.db"
    assert s.ingestion.chunk_tokens == 256 and s.ingestion.chunk_overlap == pytest.approx(0.15)
    assert s.embedding.provider == "onnx" and s.retrieval.mode == "hybrid"


def test_yaml_file_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ragkeel.yaml").write_text(
        "retrieval:\n  fusion: rrf\n  k: 7\ningestion:\n  chunk_tokens: 128\n"
    )
    s = load_settings()
    assert (s.retrieval.fusion, s.retrieval.k, s.ingestion.chunk_tokens) == ("rrf", 7, 128)
    monkeypatch.setenv("RAGKEEL_RETRIEVAL__K", "3")
    assert load_settings().retrieval.k == 3


def test_explicit_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("embedding:\n  provider: hashing\n")
    monkeypatch.setenv("RAGKEEL_CONFIG", str(cfg))
    assert load_settings().embedding.provider == "hashing"
    monkeypatch.setenv("RAGKEEL_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


@pytest.mark.parametrize(
    ("yaml_text", "key", "value"),
    [
        ("ingestion:\n  chunk_tokens: many\n", "ingestion.chunk_tokens", "'many'"),
        ("retrieval:\n  fusion: magic\n", "retrieval.fusion", "'magic'"),
        ("ingestion:\n  chunk_overlap: 1.5\n", "ingestion.chunk_overlap", "1.5"),
        ("embeding:\n  provider: onnx\n", "embeding", "provider"),
    ],
)
def test_errors_name_the_key_and_the_bad_value(
    tmp_path: Path, yaml_text: str, key: str, value: str
) -> None:
    (tmp_path / "ragkeel.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.code == "CONFIG_INVALID"
    assert key in str(info.value) and value in str(info.value)


def test_bad_env_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__THREADS", "-2")
    with pytest.raises(ConfigError, match=r"embedding\.threads"):
        load_settings()


def test_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "ragkeel.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings()


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__REMOTE__API_KEY", "sk-very-secret")
    s = load_settings()
    assert s.embedding.remote.api_key is not None
    assert s.embedding.remote.api_key.get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in str(s.masked()) and "sk-very-secret" not in repr(s)


def test_gateway_deployments_validate_and_mask_their_keys() -> None:
    settings = load_settings(
        gateway={
            "deployments": [
                {"name": "primary", "model": "gpt-4o", "api_key": "sk-secret-1"},
                {"name": "backup", "provider": "anthropic", "model": "claude-3-5-haiku"},
            ],
            "routing": {"enabled": True},
        }
    )
    assert [d.name for d in settings.gateway.deployments] == ["primary", "backup"]
    assert "sk-secret-1" not in str(settings.masked())
    assert settings.cost_ledger_path == settings.home / "costs.db"


def test_gateway_deployment_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="repeated"):
        load_settings(
            gateway={"deployments": [{"name": "a", "model": "m"}, {"name": "a", "model": "n"}]}
        )


def test_models_live_in_one_user_level_dir_not_under_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAGKEEL_MODELS__DIR")  # set by the suite's conftest
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    user_cache = tmp_path / "user" / ".cache" / "ragkeel" / "models"
    assert load_settings(home=tmp_path / "a").models_dir == user_cache
    assert load_settings(home=tmp_path / "b").models_dir == user_cache  # every home sees it
    assert default_models_dir() == user_cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_settings().models_dir == tmp_path / "xdg" / "ragkeel" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored (XDG rule)
    assert load_settings().models_dir == user_cache
    assert load_settings().masked()["models"]["dir"] == str(user_cache)


def test_the_models_dir_is_settable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared-models"
    assert load_settings(models={"dir": str(shared)}).models_dir == shared
    monkeypatch.setenv("RAGKEEL_MODELS__DIR", str(shared / "env"))
    assert load_settings().models_dir == shared / "env"
    (tmp_path / "ragkeel.yaml").write_text(f"models: {{dir: {shared / 'yaml'}}}\n")
    monkeypatch.delenv("RAGKEEL_MODELS__DIR")
    assert load_settings().models_dir == shared / "yaml"
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert load_settings(models={"dir": "~/models"}).models_dir == tmp_path / "user" / "models"


def test_the_old_local_models_dir_still_wins_with_a_deprecation_warning(tmp_path: Path) -> None:
    old, new = tmp_path / "old-models", tmp_path / "new-models"
    with pytest.warns(DeprecationWarning, match=r"generation\.local\.models_dir .* models\.dir"):
        settings = load_settings(
            models={"dir": str(new)}, generation={"local": {"models_dir": str(old)}}
        )
    assert settings.models_dir == old


def test_bm25_answers_need_a_keyword_gate() -> None:
    with pytest.raises(ConfigError, match="gate_keyword_threshold"):
        load_settings(retrieval={"mode": "bm25"})
    settings = load_settings(retrieval={"mode": "bm25"}, generation={"gate_keyword_threshold": 3})
    assert settings.retrieval.mode == "bm25"


SECRET = "sk-canary-7f3a9c"


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        pytest.param(  # a model-level check used to quote the whole section, keys and all
            {
                "gateway": {
                    "deployments": [
                        {"name": "a", "model": "m", "api_key": SECRET},
                        {"name": "a", "model": "n", "api_key": SECRET},
                    ]
                }
            },
            "repeated",
            id="section-with-keys",
        ),
        pytest.param(
            {"generation": {"openai": {"api_kee": SECRET}}}, "api_kee", id="misspelt-key-name"
        ),
        pytest.param({"generation": {"openai": SECRET}}, "generation.openai", id="not-a-section"),
        pytest.param(
            {"generation": {"openai": {"base_url": f"http://u:{SECRET}@h/v1", "timeout_s": "x"}}},
            "timeout_s",
            id="url-beside-the-error",
        ),
        pytest.param(
            {"gateway": {"deployments": [{"name": "a", "api_key": SECRET}]}},
            "deployments.0.model",
            id="deployment-missing-a-field",
        ),
    ],
)
def test_config_errors_never_quote_a_secret(overrides: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert where in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.to_dict())


def test_credentials_in_urls_are_masked() -> None:
    settings = load_settings(
        generation={"openai": {"base_url": f"https://user:{SECRET}@llm.internal/v1"}},
        embedding={"remote": {"base_url": f"https://{SECRET}@embed.internal/v1"}},
        gateway={"deployments": [{"name": "a", "model": "m", "base_url": f"http://x:{SECRET}@h"}]},
    )
    shown = settings.masked()
    assert SECRET not in str(shown)
    assert shown["generation"]["openai"]["base_url"] == "https://user:**********@llm.internal/v1"
    assert shown["embedding"]["remote"]["base_url"] == "https://**********@embed.internal/v1"
    assert settings.generation.openai.base_url.endswith(f"{SECRET}@llm.internal/v1")  # still used


def test_secret_query_parameters_in_urls_are_masked() -> None:
    """``?api_key=`` style credentials (Azure-style gateways, signed URLs) were shown as they
    are by ``config show`` and named in error messages; ordinary parameters stay readable."""
    settings = load_settings(
        generation={"openai": {"base_url": f"https://llm.internal/v1?api_key={SECRET}&v=2"}},
        embedding={"remote": {"base_url": f"https://e.internal/v1?x=1&X-Api-Key={SECRET}"}},
        gateway={
            "deployments": [
                {"name": "a", "model": "m", "base_url": f"http://h/v1?sig={SECRET};max_tokens=9"}
            ]
        },
    )
    shown = settings.masked()
    assert SECRET not in str(shown)
    assert (
        shown["generation"]["openai"]["base_url"]
        == "https://llm.internal/v1?api_key=**********&v=2"
    )
    assert shown["embedding"]["remote"]["base_url"].endswith("?x=1&X-Api-Key=**********")
    assert shown["gateway"]["deployments"][0]["base_url"].endswith("sig=**********;max_tokens=9")
    assert settings.generation.openai.base_url.endswith(f"api_key={SECRET}&v=2")  # still used


def test_redis_url_turns_on_shared_state_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().redis.url is None  # the default: everything in-process
    monkeypatch.setenv("RAGKEEL_REDIS__URL", "redis://:hunter2@127.0.0.1:6390/0")
    monkeypatch.setenv("RAGKEEL_REDIS__KEY_PREFIX", "svc:")
    r = load_settings().redis
    assert r.url is not None and r.url.get_secret_value().endswith("6390/0")
    assert "hunter2" not in repr(r) and r.key_prefix == "svc:"
    monkeypatch.setenv("RAGKEEL_REDIS__URL", "http://127.0.0.1:6390")
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_settings()


def test_the_postgres_store_needs_a_url_and_masks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_STORAGE__BACKEND", "postgres")
    with pytest.raises(ConfigError, match=r"storage\.postgres\.url"):
        load_settings()
    monkeypatch.setenv("RAGKEEL_STORAGE__POSTGRES__URL", "postgresql://u:hunter2@db:5432/rk")
    monkeypatch.setenv("RAGKEEL_STORAGE__POSTGRES__HNSW_EF_SEARCH", "64")
    s = load_settings()
    assert s.storage.postgres.hnsw_ef_search == 64 and s.storage.postgres.migrate_on_start
    assert "hunter2" not in str(s.masked())
