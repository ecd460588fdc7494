"""Issue 15, secrets from the environment: ``${VAR}`` references in ragkeel.yaml resolved when
the settings load, for every secret field (found by walking the settings, so a new secret field
is covered without touching this file); an unset variable is CONFIG_ENV_MISSING naming it; the
providers send the variable's value; ``ragkeel config show`` prints none of them, in any
format."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from fake_http import WebhookSink, serving
from ragkeel.cli.main import app as cli
from ragkeel.container import Container
from ragkeel.env_refs import expand
from ragkeel.errors import ConfigError, EmbeddingError, EnvVarMissingError, RagkeelError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.settings import DeploymentSettings, Settings, load_settings

# -- the references themselves --


def test_references_are_replaced_anywhere_in_strings() -> None:
    env = {"KEY": "sk-1", "HOST": "db.internal", "EMPTY": ""}
    data = {
        "a": "${KEY}",
        "b": ["postgresql://u:${KEY}@${HOST}/x", 3, None],
        "c": {"d": "${MISSING:-fallback}", "e": "${EMPTY:-used}", "f": "${MISSING:-}"},
        "g": "literal $${KEY} and $$ and $KEY",
    }
    assert expand(data, env) == {
        "a": "sk-1",
        "b": ["postgresql://u:sk-1@db.internal/x", 3, None],
        "c": {"d": "fallback", "e": "used", "f": ""},
        "g": "literal ${KEY} and $$ and $KEY",
    }


@pytest.mark.parametrize(
    ("text", "variable", "words"),
    [
        ("${NOPE}", "NOPE", "not set"),
        ("${EMPTY}", "EMPTY", "empty"),
        ("Bearer ${NOPE}", "NOPE", "not set"),
        ("${OPENAI API KEY}", "OPENAI API KEY", "not a reference"),
        ("${OPENAI_API_KEY", "OPENAI_API_KEY", "not a reference"),
        ("${}", "", "not a reference"),
    ],
)
def test_a_missing_or_malformed_reference_is_an_error(text: str, variable: str, words: str) -> None:
    with pytest.raises(EnvVarMissingError) as err:
        expand({"gateway": {"deployments": [{"api_key": text}]}}, {"EMPTY": ""})
    assert err.value.code == "CONFIG_ENV_MISSING" and err.value.variable == variable
    assert words in str(err.value) and "gateway.deployments[0].api_key" in str(err.value)


# -- every secret field of the settings, from ragkeel.yaml --


def _secret_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[Any]:
    """(path, shape) of every secret in the settings: ``secret`` (a SecretStr), ``headers``
    (a dict of them), ``deployments`` (a list of sections holding one)."""
    for name, field in model.model_fields.items():
        path, annotation = (*prefix, name), field.annotation
        args = set(get_args(annotation)) if _is_union(annotation) else {annotation}
        if SecretStr in args:
            yield path, "secret"
        elif get_origin(annotation) is dict and get_args(annotation)[1] is SecretStr:
            yield path, "headers"
        elif get_origin(annotation) is list and get_args(annotation)[0] is DeploymentSettings:
            yield path, "deployments"
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _secret_fields(annotation, path)
        else:
            assert "SecretStr" not in str(annotation), f"{path}: a secret shape to cover"


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _secret_config() -> tuple[dict[str, Any], dict[str, str]]:
    """ragkeel.yaml with a ${VAR} in every secret field (and URL credentials), and the env."""
    config: dict[str, Any] = {}
    env: dict[str, str] = {}
    for i, (path, shape) in enumerate(_secret_fields(Settings)):
        var, value = f"RK_TEST_SECRET_{i}", f"s3cr3t-c4n4ry-{i:02d}-x9"
        env[var] = value
        ref = "${" + var + "}"
        if path[-1] == "url" and path[-2] == "redis":
            leaf: Any = f"redis://:{ref}@127.0.0.1:6379/0"
        elif path[-1] == "url":
            leaf = f"https://hooks.example/{ref}"
        elif path[-1] in ("queue_url",):
            leaf = f"postgresql://rk:{ref}@127.0.0.1:5432/q"
        elif shape == "headers":
            leaf = {"Authorization": f"Bearer {ref}"}
        elif shape == "deployments":
            leaf = [
                {"name": "main", "model": "gpt-4o-mini", "api_key": ref},
                {"name": "claude", "provider": "anthropic", "model": "claude", "api_key": ref},
            ]
        else:
            leaf = ref
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf
    env["RK_TEST_URL_PASSWORD"] = "pw-c4n4ry-in-url-77"
    config["generation"]["openai"]["base_url"] = "http://user:${RK_TEST_URL_PASSWORD}@127.0.0.1/v1"
    return config, env


def test_every_secret_field_takes_a_reference_and_config_show_masks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, env = _secret_config()
    assert len(env) >= 10, env  # provider keys, embedder, webhook, OTLP, stores, canary...
    (tmp_path / "ragkeel.yaml").write_text(yaml.safe_dump(config))
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = load_settings()
    assert settings.generation.openai.api_key is not None
    assert settings.generation.openai.api_key.get_secret_value().startswith("s3cr3t-c4n4ry-")
    dumped = json.dumps(settings.model_dump(mode="python"), default=_reveal)
    for value in env.values():
        assert value in dumped  # resolved, every one of them

    runner = CliRunner()
    for args in (["config", "show"], ["config", "show", "--json"]):
        shown = runner.invoke(cli, args)
        assert shown.exit_code == 0, shown.output
        assert "**********" in shown.stdout
        for value in env.values():
            assert value not in shown.output, (args, value)
        assert "${" not in shown.stdout  # references are resolved, not echoed


def _reveal(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def test_an_unset_variable_names_itself_and_nothing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_SET_KEY", "sk-set-c4n4ry")
    monkeypatch.delenv("RK_UNSET_KEY", raising=False)
    (tmp_path / "ragkeel.yaml").write_text(
        "generation:\n  openai:\n    api_key: ${RK_SET_KEY}\n"
        "gateway:\n  deployments:\n    - {name: a, model: m, api_key: '${RK_UNSET_KEY}'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.code == "CONFIG_ENV_MISSING"
    assert "RK_UNSET_KEY" in str(err.value) and "gateway.deployments[0].api_key" in str(err.value)
    assert "sk-set-c4n4ry" not in str(err.value)
    shown = CliRunner().invoke(cli, ["config", "show"])
    assert isinstance(shown.exception, RagkeelError)
    assert shown.exception.code == "CONFIG_ENV_MISSING"


def test_eval_config_settings_take_references_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_EVAL_KEY", "sk-eval-c4n4ry")
    s = load_settings(generation={"openai": {"api_key": "${RK_EVAL_KEY}"}})
    assert s.generation.openai.api_key is not None
    assert s.generation.openai.api_key.get_secret_value() == "sk-eval-c4n4ry"


# -- the providers send the variable's value --


def test_providers_send_the_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_OPENAI_KEY", "sk-openai-from-env")
    monkeypatch.setenv("RK_ANTHROPIC_KEY", "sk-ant-from-env")
    monkeypatch.setenv("RK_EMBED_KEY", "sk-embed-from-env")
    sink = WebhookSink().then(*[500] * 50)  # every call fails after its headers are seen
    with serving(sink):
        base = sink.origin
        (tmp_path / "ragkeel.yaml").write_text(
            yaml.safe_dump(
                {
                    "embedding": {
                        "provider": "remote",
                        "cache": False,
                        "remote": {
                            "base_url": f"{base}/emb",
                            "api_key": "${RK_EMBED_KEY}",
                            "dimension": 8,
                            "max_retries": 0,
                        },
                    },
                    "gateway": {
                        "retry": {"max_retries": 0},
                        "deployments": [
                            {
                                "name": "o",
                                "model": "m",
                                "base_url": f"{base}/o",
                                "api_key": "${RK_OPENAI_KEY}",
                            },
                            {
                                "name": "a",
                                "provider": "anthropic",
                                "model": "c",
                                "base_url": f"{base}/a",
                                "api_key": "${RK_ANTHROPIC_KEY}",
                            },
                        ],
                    },
                }
            )
        )
        with Container(load_settings()) as c:
            with pytest.raises(EmbeddingError):
                c.embedder.embed_query("hello")
            assert c.chat_model is not None
            with pytest.raises(RagkeelError):
                c.chat_model.complete(ChatRequest((ChatMessage("user", "hi"),), max_tokens=4))
    seen = {
        path.split("/")[1]: {k.lower(): v for k, v in headers.items()}
        for path, headers, _ in sink.requests
    }
    assert seen["emb"]["authorization"] == "Bearer sk-embed-from-env"
    assert seen["o"]["authorization"] == "Bearer sk-openai-from-env"
    assert seen["a"]["x-api-key"] == "sk-ant-from-env"
