"""The real local GGUF model (installed by `make setup`) through llama-cpp-python."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.errors import (
    DeadlineExceededError,
    ModelBusyError,
    ModelChecksumError,
    ModelError,
    ModelTimeoutError,
)
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, GgufModel, pinned_file

MODELS_DIR = default_models_dir()  # where `make setup` installs the model
MODEL = MODELS[DEFAULT_MODEL]
installed = (MODELS_DIR / MODEL.filename).exists()
llama_cpp = importlib.util.find_spec("llama_cpp") is not None
pytestmark = pytest.mark.model

if not installed and not os.environ.get("CI"):
    pytest.skip("local model not installed: run `make setup`", allow_module_level=True)
if not llama_cpp and not os.environ.get("CI"):
    pytest.skip("llama-cpp-python not installed: run `make setup`", allow_module_level=True)


@pytest.fixture(scope="module")
def model() -> Iterator[LocalChatModel]:
    m = LocalChatModel(pinned_file(MODELS_DIR, MODEL), n_ctx=2048)
    m.load()
    yield m


def ask(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(
        (
            ChatMessage("system", "Answer from the sources only and cite them as [n]."),
            ChatMessage("user", text),
        ),
        **kw,  # type: ignore[arg-type]
    )


SOURCES = "[1] Production API keys must be rotated every 90 days.\n\nQuestion: How often must production API keys be rotated?"


def test_streams_a_cited_answer_with_usage(model: LocalChatModel) -> None:
    chunks = list(model.stream(ask(SOURCES, max_tokens=40)))
    text = "".join(c.text_delta for c in chunks)
    assert "90" in text
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length") and last.usage is not None
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > model.count_tokens(
        SOURCES
    )


def test_complete_and_token_counts(model: LocalChatModel) -> None:
    response = model.complete(ask(SOURCES, max_tokens=5))
    assert response.finish_reason == "length" and response.usage.completion_tokens <= 5
    assert model.count_tokens("hello world") == 2
    assert model.name == DEFAULT_MODEL


def test_timeout_stops_generation(model: LocalChatModel) -> None:
    with pytest.raises(ModelTimeoutError):
        list(
            model.stream(
                ask("Write a long essay about rivers. " + SOURCES, max_tokens=400, timeout_s=0.05)
            )
        )
    assert "90" in model.complete(ask(SOURCES, max_tokens=30)).text  # still usable afterwards


def test_refuses_a_missing_or_tampered_file(tmp_path: Path) -> None:
    fake = GgufModel("fake", "Fake", "fake-part", "1", 1, 10, "0" * 64)
    with pytest.raises(ModelError, match="not installed"):
        LocalChatModel(pinned_file(tmp_path, fake)).load()
    (tmp_path / fake.filename).write_bytes(b"x" * 10)
    with pytest.raises(ModelChecksumError):
        LocalChatModel(pinned_file(tmp_path, fake)).load()


def test_refuses_a_copied_file_under_another_pin(tmp_path: Path) -> None:
    small = MODELS["qwen2.5-coder-0.5b-instruct-q4_k_m"]
    (tmp_path / small.filename).symlink_to(MODELS_DIR / MODEL.filename)
    with pytest.raises(ModelChecksumError):
        LocalChatModel(pinned_file(tmp_path, small)).load()
    shutil.rmtree(tmp_path)


def test_a_json_schema_constrains_the_reply_to_valid_json(model: LocalChatModel) -> None:
    schema = {
        "type": "object",
        "required": ["rotation_days"],
        "properties": {"rotation_days": {"type": "integer"}},
    }
    text = model.complete(ask(SOURCES + "\nReply as JSON.", max_tokens=30, json_schema=schema)).text
    reply = json.loads(text)  # the grammar admits nothing else
    assert set(reply) >= {"rotation_days"} and isinstance(reply["rotation_days"], int)


def test_tokens_are_counted_while_a_stream_is_open(model: LocalChatModel) -> None:
    # issue 9: count_tokens took the generation lock; a cleanup path counting tokens while its
    # own stream was still open (same thread) hung forever. Same thread and another thread:
    stream = model.stream(ask(SOURCES, max_tokens=20))
    next(stream)
    assert model.count_tokens("hello world") == 2  # would block forever before the fix
    counted: list[int] = []
    other = threading.Thread(target=lambda: counted.append(model.count_tokens("hello world")))
    other.start()
    other.join(10)
    assert counted == [2]
    stream.close()
    assert model.queue.snapshot()["generating"] is False  # closing gave the slot back


def test_a_full_queue_refuses_at_once_and_waiting_is_bounded_by_the_deadline(
    model: LocalChatModel,
) -> None:
    busy = model.stream(ask(SOURCES, max_tokens=20))
    next(busy)  # holds the generation slot
    try:
        model.queue.max_queue = 0  # no room to wait
        started = time.monotonic()
        with pytest.raises(ModelBusyError) as refused:
            next(model.stream(ask(SOURCES, max_tokens=5)))
        assert time.monotonic() - started < 5.0 and refused.value.retry_after_s
        model.queue.max_queue = 2
        log = CallLog()
        waiting = ask(SOURCES, max_tokens=5, deadline=time.monotonic() + 0.3)
        with recording(log), pytest.raises(DeadlineExceededError, match="waited"):
            next(model.stream(waiting))  # the slot is held by `busy`: waits 0.3 s, no more
        assert 250 <= log.queue_ms < 5000  # a wait that ran out is a queue stage too
        assert model.queue.snapshot()["waiting"] == 0
    finally:
        model.queue.max_queue = 2
        busy.close()
    with recording(CallLog()) as log:
        text = "".join(c.text_delta for c in model.stream(ask(SOURCES, max_tokens=5)))
    assert text and 0 <= log.queue_ms < 5000  # reported, and short (no one held the slot)


def test_a_timeout_stops_a_long_prompt_while_it_is_read(model: LocalChatModel) -> None:
    # found by the chat-model contract: the clock was checked only between generated tokens, so
    # reading a long prompt (decodes of 512 tokens) ran 3-13 s past a 0.2 s timeout
    long_prompt = "Rivers carry water to the sea. " * 220 + SOURCES  # ~1,600 tokens
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError, match="exceeded"):
        list(model.stream(ask(long_prompt, max_tokens=5, timeout_s=0.2)))
    # one ggml graph node may finish after the limit; a whole 512-token decode may not
    assert time.monotonic() - started < 2.5
    assert "90" in model.complete(ask(SOURCES, max_tokens=30)).text  # still usable afterwards


def test_the_prompt_read_is_logged_and_a_shared_prefix_is_not_read_again(
    model: LocalChatModel,
) -> None:
    """Issue 14: the call log says how long the prompt took to read and how many of its tokens
    came from the KV cache; a second question after the same system prompt and source reads
    only what follows the common prefix (llama.cpp's prefix matching keeps it between calls)."""
    model.complete(ask("Say hello.", max_tokens=2))  # something else in the KV cache first
    source = "[1] Production API keys must be rotated every 90 days.\n\n"
    reads, prompts = [], []
    for question in ("How often must API keys be rotated?", "Who must rotate the API keys?"):
        log = CallLog()
        with recording(log):
            response = model.complete(ask(source + question, max_tokens=4))
        assert log.prompt is not None and log.prompt.ms > 0
        assert log.to_dict()["prompt_eval"] == log.prompt.to_dict()
        reads.append(log.prompt)
        prompts.append(response.usage.prompt_tokens)
    first, second = reads
    assert first.tokens + first.reused == prompts[0]
    assert second.tokens + second.reused == prompts[1]
    shared = model.count_tokens(source)  # at least the source line is shared, beyond the system
    assert second.reused >= first.reused + shared
    assert second.tokens < prompts[1] - shared


def test_the_warm_prefix_is_read_at_load_and_put_back_after_another_prompt() -> None:
    """Issue 14: with ``warm_prefix`` the first question already reuses the system message, and
    so does the first one after a prompt with another system message overwrote the cache."""
    system = ChatMessage("system", "Answer from the sources only and cite them as [n]. " * 8)
    model = LocalChatModel(
        pinned_file(MODELS_DIR, MODEL),
        n_ctx=2048,
        warm_prefix=lambda: (system, ChatMessage("user", "")),
    )
    model.load()
    assert model.prefix is not None and model.prefix.head >= 8 * 10

    def answer(messages: tuple[ChatMessage, ...]) -> tuple[str, int]:
        log = CallLog()
        with recording(log):
            text = model.complete(ChatRequest(messages, max_tokens=8)).text
        assert log.prompt is not None
        return text, log.prompt.reused

    question = (system, ChatMessage("user", SOURCES))
    first, reused = answer(question)
    assert first and reused >= model.prefix.head  # the first question reused it
    other = (ChatMessage("system", "You are a poet."), ChatMessage("user", "Rhyme on keys."))
    assert answer(other)[1] < 5  # nothing in common: read in full
    again, reused = answer(question)
    assert reused >= model.prefix.head and model.prefix.restored == 1
    assert again == first  # the cells put back are the ones the first answer started from
