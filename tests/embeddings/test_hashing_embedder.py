"""HashingEmbedder: deterministic, similarity-preserving, never a zero vector."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.tokens import RegexTokenCounter


def test_similar_texts_are_closer_than_unrelated() -> None:
    embedder = HashingEmbedder()
    query = embedder.embed_query("How do I rotate an API key?")
    docs = embedder.embed_documents(
        [
            "To rotate an API key, create a new key and revoke the old one",
            "The weather in Paris is mild",
        ]
    )
    related, unrelated = docs @ query
    assert related > 0.3
    assert related > unrelated + 0.2


def test_shared_word_pieces_count() -> None:
    embedder = HashingEmbedder()
    base = embedder.embed_query("rotation")
    assert float(base @ embedder.embed_query("rotating")) > float(
        base @ embedder.embed_query("mild")
    )


def test_case_insensitive_and_deterministic() -> None:
    a, b = HashingEmbedder(), HashingEmbedder()
    np.testing.assert_array_equal(a.embed_query("Hello World"), b.embed_query("hello world"))


def test_stable_across_processes_with_different_hash_seeds() -> None:
    code = (
        "from ragkeel.embeddings.hashing import HashingEmbedder;"
        "print(HashingEmbedder(64).embed_query('stable hashing across runs').tobytes().hex())"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout.strip())
    here = HashingEmbedder(64).embed_query("stable hashing across runs").tobytes().hex()
    assert outputs == {here}


@pytest.mark.parametrize("text", ["", "   ", "?!", "\n\t"])
def test_featureless_text_gets_the_fixed_unit_vector(text: str) -> None:
    embedder = HashingEmbedder(32)
    vector = embedder.embed_query(text)
    assert np.linalg.norm(vector) == pytest.approx(1.0)
    np.testing.assert_array_equal(vector, embedder.embed_query(""))
    assert abs(float(vector @ embedder.embed_query("some real words"))) < 0.5


def test_identity_counters_and_tokenizer() -> None:
    embedder = HashingEmbedder(dimension=16)
    assert embedder.name == "hashing-16"
    assert embedder.dimension == 16
    assert isinstance(embedder.tokenizer, RegexTokenCounter)
    assert embedder.embed_documents([]).shape == (0, 16)
    embedder.embed_documents(["a", "b", "c"])
    embedder.embed_query("d")
    assert (embedder.calls, embedder.texts_embedded) == (2, 4)


def test_rejects_tiny_dimension() -> None:
    with pytest.raises(ValueError):
        HashingEmbedder(1)
