"""``build_gateway``: the policies composed from settings, exercised end to end over HTTP against
``FaultServer``s on 127.0.0.1 (no mocks: the real clients, wrappers and chain)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragkeel.container import Container, deployments_of
from ragkeel.errors import BudgetExceededError, ModelUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest, RoutingHints
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.gateway.router import RouterChatModel
from ragkeel.gateway.stack import GatewayStack, build_gateway
from ragkeel.models.gguf import get_model, model_path
from ragkeel.settings import Settings, load_settings
from ragkeel.testing import FaultServer

PRICES = PriceTable.with_defaults()


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    with FaultServer(seed=1) as a, FaultServer(seed=2) as b:
        yield a, b


def _settings(*deployments: dict[str, Any], **gateway: Any) -> Settings:
    retry = {"max_retries": 1, "base_delay_s": 0.001, "max_delay_s": 0.002}
    return load_settings(
        gateway={"deployments": list(deployments), "retry": retry, **gateway},
        generation={"provider": "openai"},
    )


def _deployment(name: str, server: FaultServer, model: str, tier: str = "strong") -> dict[str, Any]:
    return {"name": name, "model": model, "base_url": server.base_url, "tier": tier, "timeout_s": 5}


def _request(question: str = "What is the capital of France?", **kw: Any) -> ChatRequest:
    return ChatRequest((ChatMessage("user", question),), max_tokens=32, **kw)


def _build(settings: Settings, **kw: Any) -> GatewayStack:
    stack = build_gateway(settings.gateway, deployments_of(settings), PRICES, **kw)
    assert stack is not None
    return stack


def test_a_down_primary_falls_back_and_readyz_sees_the_breaker_open(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    primary, backup = servers
    primary.set(down=True)
    settings = _settings(
        _deployment("primary", primary, "gpt-4o"),
        _deployment("backup", backup, "gpt-4o-mini"),
        breaker={"consecutive_failures": 2, "open_s": 60, "max_open_s": 60},
    )
    stack = _build(settings)
    try:
        for _ in range(3):
            with recording(CallLog()) as log:
                response = stack.model.complete(_request())
            assert response.text == "Paris is the capital [1]."
            assert log.served_by == "backup"
            assert log.rung == 1
        states = {s["deployment"]: s["state"] for s in stack.readiness()}
        assert states == {"primary": "open", "backup": "closed"}
        outcomes = [a.outcome for a in log.attempts]
        assert outcomes == ["rejected", "ok"]  # the open breaker: no call reached the primary
        assert log.cost > 0  # gpt-4o-mini's default price, metered
    finally:
        stack.close()


def test_routing_sends_a_confident_single_fact_question_to_the_cheap_tier(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    cheap, strong = servers
    settings = _settings(
        _deployment("mini", cheap, "gpt-4o-mini", "cheap"),
        _deployment("big", strong, "gpt-4o", "strong"),
        routing={"enabled": True},
    )
    stack = _build(settings)
    try:
        easy = _request(hints=RoutingHints("What is the capital of France?", 0.8, 0.2))
        hard = _request(hints=RoutingHints("Compare A and B; what differs?", 0.3, 0.01))
        with recording(CallLog()) as easy_log:
            stack.model.complete(easy)
        with recording(CallLog()) as hard_log:
            stack.model.complete(hard)
        assert cheap.stats.requests == 1 and strong.stats.requests == 1
        assert easy_log.served_by == "mini"
        assert hard_log.served_by == "big"
        reasons = [d.reason for d in easy_log.decisions if d.policy == "router"]
        assert reasons and reasons[0].startswith("cheap:")
    finally:
        stack.close()


def test_when_every_deployment_fails_the_local_model_answers(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    a, b = servers
    a.set(error_rate=1.0, error="503")
    b.set(down=True)
    local = ScriptedChatModel(["Local answer [1]."], name="local-gguf")
    settings = _settings(
        _deployment("a", a, "gpt-4o"), _deployment("b", b, "gpt-4o"), fallback_to_local=True
    )
    stack = _build(settings, local=lambda: local)
    try:
        with recording(CallLog()) as log:
            chunks = list(stack.model.stream(_request()))
        assert "".join(c.text_delta for c in chunks) == "Local answer [1]."
        assert chunks[-1].model == "local-gguf"
        assert log.served_by == "local-gguf"
        assert log.rung == 2
        assert a.stats.requests == 2  # one retry, then fall through
    finally:
        stack.close()


def test_a_request_over_its_max_cost_is_refused_before_any_call(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    a, _ = servers
    stack = _build(_settings(_deployment("a", a, "gpt-4o")))
    try:
        with pytest.raises(BudgetExceededError):
            stack.model.complete(_request(max_cost=1e-9))
        assert a.stats.requests == 0
    finally:
        stack.close()


def test_without_deployments_the_generation_provider_decides() -> None:
    none = load_settings(generation={"provider": "none"})
    assert Container(none).gateway is None
    local_settings = load_settings(generation={"provider": "local"})
    model: ChatModel = ScriptedChatModel(["hi"])
    stack = _build(local_settings, local=lambda: model)
    with recording(CallLog()) as log:
        assert stack.model.complete(_request()).text == "hi"
    assert [a.outcome for a in log.attempts] == ["ok"]
    assert stack.readiness() == []


def test_errors_carry_through_when_nothing_is_left(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    a, _ = servers
    a.set(down=True)
    stack = _build(_settings(_deployment("a", a, "gpt-4o")))
    try:
        with pytest.raises(ModelUnavailableError):
            stack.model.complete(_request())
    finally:
        stack.close()


def test_a_cheap_local_tier_takes_confident_single_fact_questions() -> None:
    """Issue 14: with no deployment, a cheap local model beside the default one gets the
    questions the router finds easy (gateway.routing's thresholds); the rest stay on the
    default model, and each choice is logged."""
    strong = ScriptedChatModel(["strong answer"], name="qwen-1.5b")
    cheap = ScriptedChatModel(["cheap answer"], name="qwen-0.5b")
    settings = load_settings(generation={"provider": "local"})
    stack = build_gateway(
        settings.gateway, [], PRICES, local=lambda: strong, local_cheap=lambda: cheap
    )
    assert stack is not None
    confident = RoutingHints("What is the capital of France?", top_score=0.8, margin=0.2)
    unsure = RoutingHints("What is the capital of France?", top_score=0.3, margin=0.2)
    two = RoutingHints("Compare Paris and Rome?", top_score=0.8, margin=0.2)
    replies, metered = [], []
    for hints in (confident, unsure, two):
        with recording(CallLog()) as log:
            replies.append(stack.model.complete(_request(hints=hints)).text)
        assert log.decisions[0].policy == "router"
        metered += [a.deployment for a in log.attempts]
    assert replies == ["cheap answer", "strong answer", "strong answer"]
    assert metered == ["qwen-0.5b", "qwen-1.5b", "qwen-1.5b"]
    assert (cheap.calls, strong.calls) == (1, 2)
    only = build_gateway(settings.gateway, [], PRICES, local=lambda: strong)
    assert only is not None and only.model.complete(_request(hints=confident)).text == (
        "strong answer"
    )


def test_the_cheap_local_tier_is_wired_beside_the_default_model_on_one_slot(
    tmp_path: Path,
) -> None:
    cheap_key = "qwen2.5-coder-0.5b-instruct-q4_k_m"
    model_path(tmp_path, get_model(cheap_key)).touch()  # installed (nothing is loaded here)
    settings = load_settings(
        models={"dir": str(tmp_path)},
        generation={"provider": "local", "local": {"cheap_model": cheap_key}},
    )
    container = Container(settings)
    try:
        strong, cheap = container.local_model, container.local_cheap_model
        assert isinstance(strong, LocalChatModel) and isinstance(cheap, LocalChatModel)
        assert cheap.name == cheap_key and strong.name != cheap_key
        assert strong.queue is cheap.queue  # one generation at a time on the shared cores
        router = container.chat_model
        assert isinstance(router, RouterChatModel) and router.name.startswith("router(")
        assert Container(load_settings(generation={"provider": "local"})).local_cheap_model is None
    finally:
        container.close()


def test_a_cheap_local_tier_that_is_not_installed_leaves_the_router_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (issue 14, found by the paired comparison on a fresh machine): with
    ``cheap_model`` set but its file not installed, the router sent every easy question to a
    model that could not load, and each became a degraded extractive answer (MODEL_MISSING).
    Now the main model answers everything and the log says how to install the cheap one."""
    cheap_key = "qwen2.5-coder-0.5b-instruct-q4_k_m"
    settings = load_settings(
        models={"dir": str(tmp_path)},
        generation={"provider": "local", "local": {"cheap_model": cheap_key}},
    )
    container = Container(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="ragkeel.container"):
            assert container.local_cheap_model is None
        assert f"ragkeel models install --model {cheap_key}" in caplog.text
        assert not isinstance(container.chat_model, RouterChatModel)
    finally:
        container.close()
