"""Token counts for OpenAI models (bpe-openai, offline) and the chat framing overhead."""

from __future__ import annotations

import pytest

from ragkeel.gateway.base import ChatMessage
from ragkeel.gateway.tokenizers import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY,
    count_message_tokens,
    encoding_for,
    is_exact,
    load_encoding,
    token_counter_for,
)


@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [
        ("gpt-4o", "o200k_base", True),
        ("gpt-4o-mini-2024-07-18", "o200k_base", True),
        ("openai/gpt-4.1-nano", "o200k_base", True),
        ("o4-mini", "o200k_base", True),
        ("o1", "o200k_base", True),
        ("o3-mini", "o200k_base", True),
        ("gpt-4", "cl100k_base", True),
        ("gpt-4-turbo", "cl100k_base", True),
        ("gpt-3.5-turbo-0125", "cl100k_base", True),
        ("claude-sonnet-4-20250514", "cl100k_base", False),
        ("llama-3.1-8b-instruct", "cl100k_base", False),
        ("o10-fantasy", "cl100k_base", False),  # not an "o1" model: the suffix must be a separator
    ],
)
def test_model_families_map_to_their_encoding(model: str, encoding: str, exact: bool) -> None:
    assert encoding_for(model) == (encoding, exact)
    assert is_exact(model) is exact


def test_counts_match_the_reference_encodings() -> None:
    text = "Rotate every API key every ninety days. Ключи меняют каждые 90 дней."
    for model, name in [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")]:
        expected = len(load_encoding(name).encode_ordinary(text))
        assert token_counter_for(model)(text) == expected
    # the two vocabularies really differ on this text, so the mapping matters
    assert token_counter_for("gpt-4o")(text) != token_counter_for("gpt-4")(text)


def test_known_small_counts() -> None:
    assert token_counter_for("gpt-4")("hello world") == 2
    assert token_counter_for("gpt-4o")("") == 0
    # special-token text in user content is ordinary text, not an error
    assert token_counter_for("gpt-4o")("<|endoftext|>") > 1


def test_message_overhead_is_openais_framing() -> None:
    count = token_counter_for("gpt-4o")
    messages = (
        ChatMessage("system", "You answer from the sources."),
        ChatMessage("user", "How often should I rotate an API key?"),
    )
    content = sum(count(m.content) for m in messages)
    roles = sum(count(m.role) for m in messages)
    assert roles == 2  # "system" and "user" are one token each
    expected = content + roles + TOKENS_PER_MESSAGE * 2 + TOKENS_PER_REPLY
    assert count_message_tokens(messages, count) == expected
