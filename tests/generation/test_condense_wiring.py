"""Which condenser the container builds from ``generation.condense`` (issue 15), and the cheap
route it asks (``GatewayStack.cheap``): the cheap local tier beside the default model, the
cheap deployments when routing is on, else the model itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.gateway.stack import build_gateway
from ragkeel.generation.condense import ModelCondenser
from ragkeel.generation.condense_rules import RuleCondenser, on_topic
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer


def _container(**generation: object) -> Container:
    return Container(load_settings(generation=generation))


@pytest.mark.parametrize(
    ("generation", "kind"),
    [
        ({"provider": "none"}, RuleCondenser),  # auto, no model
        ({"provider": "local", "mode": "extractive"}, RuleCondenser),  # auto, extractive
        ({"provider": "local", "condense": {"mode": "rules"}}, RuleCondenser),
        ({"provider": "local"}, RuleCondenser),  # auto, the one local model: no cheap route
        ({"provider": "local", "condense": {"mode": "model"}}, ModelCondenser),
        (
            {"provider": "local", "mode": "extractive", "condense": {"mode": "model"}},
            ModelCondenser,
        ),
    ],
)
def test_the_condenser_the_settings_ask_for(generation: dict[str, object], kind: type) -> None:
    with _container(**generation) as container:
        assert isinstance(container.condenser, kind)
        assert container.answerer.condenser is container.condenser


def test_off_condenses_nothing_and_model_without_a_model_is_a_config_error() -> None:
    with _container(provider="local", condense={"mode": "off"}) as container:
        assert container.condenser is None and container.answerer.condenser is None
    with (
        _container(provider="none", condense={"mode": "model"}) as container,
        pytest.raises(ConfigError, match=r"condense\.mode is model"),
    ):
        _ = container.condenser


def test_the_model_condenser_settings_reach_it() -> None:
    condense = {"mode": "model", "max_turns": 3, "max_turn_chars": 200, "max_tokens": 50}
    with _container(provider="local", condense=condense | {"timeout_s": 4}) as container:
        condenser = container.condenser
        assert isinstance(condenser, ModelCondenser)
        assert (condenser.max_turns, condenser.max_turn_chars) == (3, 200)
        assert (condenser.max_tokens, condenser.timeout_s) == (50, 4)
        assert not condenser.rules_offline and condenser.offline() is condenser
        assert container.gateway is not None and condenser.model is container.gateway.cheap
        assert condenser.check is on_topic  # a rewrite off the conversation is not used


@pytest.mark.parametrize("routing", [True, False])
def test_auto_asks_a_remote_model_or_the_cheap_deployments(routing: bool) -> None:
    with FaultServer(seed=1) as a, FaultServer(seed=2) as b:
        deployments = [
            {"name": "mini", "model": "gpt-4o-mini", "base_url": a.base_url, "tier": "cheap"},
            {"name": "big", "model": "gpt-4o", "base_url": b.base_url, "tier": "strong"},
        ]
        settings = load_settings(
            generation={"provider": "openai"},
            gateway={"deployments": deployments[1 - routing :], "routing": {"enabled": routing}},
        )
        with Container(settings) as container:
            condenser = container.condenser
            assert isinstance(condenser, ModelCondenser) and condenser.rules_offline
            assert container.gateway is not None
            assert condenser.model is container.gateway.cheap


def test_the_cheap_route_is_the_cheap_tier_when_there_is_one() -> None:
    settings = load_settings(generation={"provider": "local"})
    strong = ScriptedChatModel(["strong"], name="strong")
    cheap = ScriptedChatModel(["cheap"], name="cheap")
    prices = PriceTable.with_defaults()
    tiered = build_gateway(
        settings.gateway, [], prices, local=lambda: strong, local_cheap=lambda: cheap
    )
    single = build_gateway(settings.gateway, [], prices, local=lambda: strong)
    assert tiered is not None and single is not None
    request = ChatRequest((ChatMessage("user", "Rewrite: how long does it take?"),))
    assert tiered.cheap.complete(request).text == "cheap"  # no router decision: always cheap
    assert single.cheap is single.model and single.cheap.complete(request).text == "strong"


def test_the_cheap_route_is_the_cheap_deployments_with_routing() -> None:
    with FaultServer(seed=1) as a, FaultServer(seed=2) as b:
        a.set(reply="from cheap")
        b.set(reply="from strong")
        deployments = [
            {"name": "mini", "model": "gpt-4o-mini", "base_url": a.base_url, "tier": "cheap"},
            {"name": "big", "model": "gpt-4o", "base_url": b.base_url, "tier": "strong"},
        ]
        settings = load_settings(
            generation={"provider": "openai"},
            gateway={"deployments": deployments, "routing": {"enabled": True}},
        )
        with Container(settings) as container:
            gateway = container.gateway
            assert gateway is not None
            request = ChatRequest((ChatMessage("user", "a long, hard, multi-part question?"),))
            with recording(CallLog()) as log:
                assert gateway.cheap.complete(request).text == "from cheap"
            assert [x.deployment for x in log.attempts] == ["mini"]


def test_a_bare_yaml_off_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "condense.yaml").write_text("generation:\n  condense: {mode: off}\n")
    monkeypatch.setenv("RAGKEEL_CONFIG", str(tmp_path / "condense.yaml"))
    assert load_settings().generation.condense.mode == "off"  # YAML 1.1 reads `off` as false
