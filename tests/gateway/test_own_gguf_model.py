"""Issue 15, your own GGUF file, loaded for real: an installed pinned model (``make setup``;
the 0.5B one when it is there) linked under another name, as ``generation.local.model_path``
— with no pin, with the right pin, with a wrong one. Its chat template comes from the file's
metadata; the answer is served by the file's own name; a wrong pin is refused before
loading."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import MODELS, own_file
from ragkeel.settings import load_settings

# the smallest pinned model installed (the 0.5B one if it is, else the default 1.5B)
SMALL = next(
    (
        MODELS[key]
        for key in ("qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m")
        if (default_models_dir() / MODELS[key].filename).exists()
    ),
    MODELS["qwen2.5-coder-0.5b-instruct-q4_k_m"],
)
INSTALLED = default_models_dir() / SMALL.filename
pytestmark = pytest.mark.model

if not INSTALLED.exists() and not os.environ.get("CI"):
    pytest.skip("no local model is installed: run `make setup`", allow_module_level=True)
if importlib.util.find_spec("llama_cpp") is None and not os.environ.get("CI"):
    pytest.skip("llama-cpp-python not installed: run `make setup`", allow_module_level=True)

SOURCES = (
    "[1] Production API keys must be rotated every 90 days.\n\n"
    "Question: How often must production API keys be rotated?"
)


@pytest.fixture
def own(tmp_path: Path) -> Path:
    link = tmp_path / "models of mine" / "tiny-assistant.gguf"
    link.parent.mkdir()
    link.symlink_to(INSTALLED)
    return link


def test_an_unpinned_file_loads_with_its_own_chat_template(own: Path) -> None:
    model = LocalChatModel(own_file(own), n_ctx=2048)
    model.load()
    assert model.name == "tiny-assistant"
    # the template is the file's (Qwen's Jinja template is none of llama-cpp-python's built-ins)
    assert "tokenizer.chat_template" in model._llm.metadata
    assert model.chat_format == "chat_template.default"
    request = ChatRequest(
        (ChatMessage("system", "Answer from the sources only."), ChatMessage("user", SOURCES)),
        max_tokens=30,
    )
    assert "90" in model.complete(request).text


def settings(tmp_path: Path, own: Path, sha256: str | None):  # type: ignore[no-untyped-def]
    local = {"model_path": str(own), "n_ctx": 2048, **({"sha256": sha256} if sha256 else {})}
    return load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "max_answer_tokens": 40, "local": local},
    )


def test_a_pinned_file_answers_under_its_name_and_a_wrong_pin_is_refused(
    tmp_path: Path, own: Path
) -> None:
    docs = write_corpus(tmp_path / "docs")
    c = Container(settings(tmp_path, own, SMALL.sha256.upper()))
    assert c.pipeline.ingest([str(docs)], COLLECTION).exit_code == 0
    with TestClient(create_app(c)) as client:  # the app's lifespan closes the container
        body = client.post("/v1/query", json={"question": ON_TOPIC}).json()
    assert not body["degraded"], body
    assert body["mode"] == "generative" and body["served_by"] == "tiny-assistant", body
    model = c.local_model
    assert isinstance(model, LocalChatModel) and model.prefix is not None  # warm prefix
    wrong = Container(settings(tmp_path, own, "0" * 64))
    with TestClient(create_app(wrong)) as client:
        body = client.post("/v1/query", json={"question": ON_TOPIC}).json()
    assert body["degraded"] and body["degraded_reason"] == "MODEL_CHECKSUM", body
    assert isinstance(wrong.local_model, LocalChatModel) and not wrong.local_model.loaded
