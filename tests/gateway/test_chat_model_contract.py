"""The chat-model contract (``ragkeel.testing.contracts.chat_model``) over every provider:
scripted, OpenAI-compatible (against the fault server), Anthropic (against its loopback fake)
and the local GGUF model (where installed: skipped with a reason otherwise, outside CI).

Add a provider by adding one ``ChatBackend`` and a ``Test...`` class with a ``backend`` fixture.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator

import pytest

from fake_anthropic import FakeAnthropicServer, Reply
from fake_http import serving
from ragkeel.gateway.base import ChatModel
from ragkeel.gateway.providers.anthropic import AnthropicChatModel
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, pinned_file
from ragkeel.testing import FaultServer, FaultSettings
from ragkeel.testing.contracts.chat_model import (
    RETRY_AFTER_S,
    SLOW_S,
    ChatBackend,
    ChatModelContract,
    Fault,
)

REPLY = (
    "Production API keys must be rotated every 90 days [1]. Rotate them sooner when a key may "
    "have leaked, and revoke the old key once every client uses the new one [1]."
)


def _unsupported(backend: str, fault: Fault | None) -> None:
    pytest.skip(f"{backend} cannot be made to show the {fault!r} fault")


# -- scripted -------------------------------------------------------------------------------


class ScriptedBackend:
    """``ScriptedChatModel(serialised=True)``: one stream at a time holds its generation lock,
    so a stream that is not released on close wedges the next call."""

    def __init__(self) -> None:
        self.models: list[ScriptedChatModel] = []

    def model(self, fault: Fault | None = None) -> ChatModel:
        if fault is None:
            built = ScriptedChatModel((REPLY,), serialised=True)
        elif fault == "unavailable":
            built = ScriptedChatModel((ScriptedFailure("unavailable"),))
        elif fault == "slow":  # 30 pieces, 0.2 s each: 6 s
            built = ScriptedChatModel((REPLY,), token_delay_s=0.2)
        elif fault == "interrupted":
            built = ScriptedChatModel(
                (ScriptedFailure("unavailable", after_tokens=3, partial=REPLY),)
            )
        else:  # no HTTP statuses in a script
            _unsupported("the scripted model", fault)
        self.models.append(built)
        return built

    def released(self) -> bool:
        # count_tokens takes the generation lock of a serialised model: it returns only once
        # no stream holds it
        done = threading.Event()
        for model in self.models:
            threading.Thread(
                target=lambda m=model: (m.count_tokens("x"), done.set()), daemon=True
            ).start()
            if not done.wait(0.5):
                return False
            done.clear()
        return True


class TestScriptedChatModel(ChatModelContract):
    @pytest.fixture
    def backend(self) -> ChatBackend:
        return ScriptedBackend()


# -- OpenAI-compatible, against the fault server ----------------------------------------------


class FaultServerBackend:
    def __init__(self, server: FaultServer) -> None:
        self.server = server
        self.models: list[OpenAICompatChatModel] = []

    def model(self, fault: Fault | None = None) -> ChatModel:
        healthy = FaultSettings(reply=REPLY, token_delay_s=0.04)  # 30 pieces: 1.2 s
        faults = {
            None: healthy,
            "unavailable": FaultSettings(error_rate=1.0, error="503"),
            "rate_limited": FaultSettings(error_rate=1.0, error="429", retry_after_s=RETRY_AFTER_S),
            "rejected": FaultSettings(error_rate=1.0, error="400"),
            "slow": FaultSettings(reply=REPLY, base_latency_s=SLOW_S),
            "interrupted": FaultSettings(reply=REPLY, disconnect_after=0.5),
        }
        self.server.set(faults[fault])
        built = OpenAICompatChatModel(
            self.server.base_url, "fault-model", api_key="sk-test", timeout_s=10, name="openai"
        )
        self.models.append(built)
        return built

    def released(self) -> bool:
        return self.server.stats.in_flight == 0

    def close(self) -> None:
        for model in self.models:
            model.close()


class TestOpenAICompatChatModel(ChatModelContract):
    @pytest.fixture
    def backend(self) -> Iterator[ChatBackend]:
        with FaultServer() as server:
            backend = FaultServerBackend(server)
            yield backend
            backend.close()


# -- Anthropic, against its loopback fake -----------------------------------------------------


class AnthropicBackend:
    def __init__(self, server: FakeAnthropicServer) -> None:
        self.server = server
        self.models: list[AnthropicChatModel] = []

    def model(self, fault: Fault | None = None) -> ChatModel:
        reply = {
            None: None,
            "unavailable": Reply(status=503),
            "rate_limited": Reply(status=429, headers={"retry-after": f"{RETRY_AFTER_S:g}"}),
            "rejected": Reply(status=400),
            "slow": Reply(delay_s=SLOW_S + 1),
            "interrupted": Reply(cut_after=2),
        }[fault]
        if reply is not None:
            self.server.then(*[reply] * 4)  # the suite makes one call per model
        built = AnthropicChatModel(self.server.base_url, "claude-test", api_key="k", timeout_s=10)
        self.models.append(built)
        return built

    def released(self) -> bool:
        return True  # the fake keeps no count of open streams (test_anthropic.py checks closing)

    def close(self) -> None:
        for model in self.models:
            model.close()


class TestAnthropicChatModel(ChatModelContract):
    @pytest.fixture
    def backend(self) -> Iterator[ChatBackend]:
        fake = FakeAnthropicServer()
        with serving(fake):
            backend = AnthropicBackend(fake)
            yield backend
            backend.close()


# -- local GGUF model, where installed ------------------------------------------------------

MODELS_DIR = default_models_dir()  # where `make setup` installs the model
LOCAL = MODELS[DEFAULT_MODEL]
LOCAL_MISSING = (
    "llama-cpp-python not installed"
    if importlib.util.find_spec("llama_cpp") is None
    else None
    if (MODELS_DIR / LOCAL.filename).exists()
    else "local model not installed"
)


class LocalBackend:
    def __init__(self, model: LocalChatModel) -> None:
        self.local = model

    def model(self, fault: Fault | None = None) -> ChatModel:
        if fault not in (None, "slow"):  # slow: a long essay under a 0.2 s timeout
            _unsupported("the local model", fault)
        return self.local

    def released(self) -> bool:
        return self.local.queue.snapshot()["generating"] is False


@pytest.fixture(scope="module")
def local_model() -> LocalChatModel:
    if LOCAL_MISSING and not os.environ.get("CI"):
        pytest.skip(f"{LOCAL_MISSING}: run `make setup`")
    model = LocalChatModel(pinned_file(MODELS_DIR, LOCAL), n_ctx=2048)
    model.load()
    return model


@pytest.mark.model
class TestLocalChatModel(ChatModelContract):
    @pytest.fixture
    def backend(self, local_model: LocalChatModel) -> ChatBackend:
        return LocalBackend(local_model)
