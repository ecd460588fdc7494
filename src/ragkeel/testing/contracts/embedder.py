"""The embedder contract: what every ``Embedder`` (``embeddings/base.py``) must do — hashing,
ONNX, remote, and the caching wrapper today.

* ``embed_documents`` returns ``(len(texts), dimension)`` float32 rows of norm 1 (the empty
  text included), in input order, deterministically; the empty batch is ``(0, dimension)``.
* A vector does not depend on its batch: the same text alone, in a large batch, or repeated
  gives the same row; ``embed_query(t)`` equals the row of ``embed_documents([t])``.
* ``name`` is a non-empty string and ``dimension`` positive; the tokenizer's ``count`` equals
  the number of its ``offsets``, which lie inside the text in order.

A backend subclasses ``EmbedderContract`` as ``Test...`` and overrides the ``embedder`` fixture
(closing what it opened after the ``yield``)::

    class TestHashingEmbedder(EmbedderContract):
        @pytest.fixture
        def embedder(self) -> Embedder:
            return HashingEmbedder(48)

Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import numpy as np
import pytest

from ragkeel.embeddings.base import Embedder

TEXTS = [
    "How do I rotate an API key?",
    "",
    "The weather in Paris is mild",
    "Naïve café, 日本語 text!",
    "How do I rotate an API key?",
]
# enough texts to cross any batch size a backend is likely to use in tests
MANY = [f"passage {i}: keys rotate every {i} days in region {i % 7}" for i in range(40)]


class EmbedderContract:
    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError("override the embedder fixture: build the backend under test")

    def test_documents_shape_dtype_and_norms(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(TEXTS)
        assert vectors.shape == (len(TEXTS), embedder.dimension)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    def test_order_and_determinism(self, embedder: Embedder) -> None:
        forward = embedder.embed_documents(TEXTS)
        backward = embedder.embed_documents(TEXTS[::-1])
        np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
        np.testing.assert_allclose(forward[0], forward[4], atol=1e-6)

    def test_a_vector_does_not_depend_on_its_batch(self, embedder: Embedder) -> None:
        together = embedder.embed_documents(MANY)
        alone = np.stack([embedder.embed_documents([text])[0] for text in MANY[::9]])
        np.testing.assert_allclose(together[::9], alone, atol=1e-4)

    def test_different_texts_get_different_vectors(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents([TEXTS[0], TEXTS[2]])
        assert float(vectors[0] @ vectors[1]) < 0.99

    def test_query_matches_document_row(self, embedder: Embedder) -> None:
        query = embedder.embed_query(TEXTS[0])
        assert query.shape == (embedder.dimension,)
        assert query.dtype == np.float32
        np.testing.assert_allclose(query, embedder.embed_documents(TEXTS[:1])[0], atol=1e-5)

    def test_empty_batch(self, embedder: Embedder) -> None:
        assert embedder.embed_documents([]).shape == (0, embedder.dimension)

    def test_identity(self, embedder: Embedder) -> None:
        assert isinstance(embedder.name, str) and embedder.name
        assert embedder.dimension > 0

    def test_tokenizer_counts_match_offsets(self, embedder: Embedder) -> None:
        for text in TEXTS:
            offsets = embedder.tokenizer.offsets(text)
            assert embedder.tokenizer.count(text) == len(offsets)
            assert all(0 <= a < b <= len(text) for a, b in offsets)
            assert offsets == sorted(offsets)
