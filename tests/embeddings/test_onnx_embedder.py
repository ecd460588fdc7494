"""OnnxEmbedder on the installed int8 MiniLM model: quick checks on a handful of texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragkeel.embeddings.onnx import DIMENSION, MODEL_NAME, OnnxEmbedder
from ragkeel.errors import ModelError

pytestmark = pytest.mark.model

QUERY = "How do I rotate an API key?"
RELATED = "To rotate an API key, create a new key and revoke the old one"
UNRELATED = "The weather in Paris is mild"


def test_related_passage_is_clearly_closer(onnx_embedder: OnnxEmbedder) -> None:
    query = onnx_embedder.embed_query(QUERY)
    related, unrelated = onnx_embedder.embed_documents([RELATED, UNRELATED]) @ query
    assert related > 0.7
    assert unrelated < 0.2
    assert related - unrelated > 0.5


def test_shape_norms_and_identity(onnx_embedder: OnnxEmbedder) -> None:
    vectors = onnx_embedder.embed_documents(["one", "two words", ""])
    assert vectors.shape == (3, DIMENSION)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert (onnx_embedder.name, onnx_embedder.dimension) == (MODEL_NAME, 384)


def test_length_sorted_batches_keep_input_order(onnx_embedder: OnnxEmbedder) -> None:
    texts = [
        "a fairly long sentence about retrieval pipelines and their many moving parts",
        "short",
        "medium length text here",
        "tiny",
        "another long one: chunking, embedding, indexing, fusing and re-ranking passages",
        "x",
        "the quick brown fox",
        "jumps over the lazy dog today",
        "nine",
    ]  # 9 texts with batch_size=8: two batches, mixed lengths
    together = onnx_embedder.embed_documents(texts)
    alone = np.stack([onnx_embedder.embed_query(t) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_long_text_is_truncated_for_the_model_but_counted_in_full(
    onnx_embedder: OnnxEmbedder,
) -> None:
    text = "key " * 600
    assert onnx_embedder.tokenizer.count(text) == 600
    vector = onnx_embedder.embed_query(text)
    assert np.isfinite(vector).all()
    # only the first 254 words reach the model, so more words change nothing
    np.testing.assert_allclose(vector, onnx_embedder.embed_query("key " * 300), atol=1e-5)


def test_token_counter_counts_and_offsets(onnx_embedder: OnnxEmbedder) -> None:
    counter = onnx_embedder.tokenizer
    text = "Naïve café: rotate keys!"
    offsets = counter.offsets(text)
    assert counter.count(text) == len(offsets)
    assert [text[a:b] for a, b in offsets][:3] == ["Naïve", "café", ":"]
    assert counter.count("") == 0


def test_counters_count_model_runs_only(models_dir: Path) -> None:
    embedder = OnnxEmbedder.from_installed_packages(models_dir, threads=1, batch_size=2)
    embedder.embed_documents([])
    assert (embedder.calls, embedder.texts_embedded) == (0, 0)
    embedder.embed_documents(["a", "b", "c"])  # two batches, one call
    embedder.embed_query("d")
    assert (embedder.calls, embedder.texts_embedded) == (2, 4)


def test_loading_prints_nothing(models_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    embedder = OnnxEmbedder.from_installed_packages(models_dir, threads=1)
    embedder.embed_documents(["quiet please"])
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_bad_model_file_is_a_model_error(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not an onnx model")
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError):
        OnnxEmbedder(bogus, tokenizer)
