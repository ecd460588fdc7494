"""The ``Embedder`` protocol: text in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.tokens import TokenCounter

Vector = npt.NDArray[np.float32]  # shape (d,)
Matrix = npt.NDArray[np.float32]  # shape (n, d)


class Embedder(Protocol):
    @property
    def name(self) -> str:
        """Stable model identity (used as the embedding-cache key and stored with the index)."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def tokenizer(self) -> TokenCounter:
        """The model's own tokenizer, used to bound chunk sizes."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Embed passages; returns shape (len(texts), dimension), rows L2-normalised."""
        ...

    def embed_query(self, text: str) -> Vector:
        """Embed one search query; shape (dimension,), L2-normalised."""
        ...


def l2_normalise(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Matrix = (matrix / norms).astype(np.float32, copy=False)
    return out
