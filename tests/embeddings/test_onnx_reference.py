"""The int8 ONNX export against a float32 reference (house style 4.11: check against references).

The reference is a from-scratch numpy BERT forward pass over the original sentence-transformers
weights, ``model.safetensors`` inside ``all_minilm_l6_v2/model.zip``, followed by the same mean
pooling. It reads ~90 MB from the zip; about a second.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tokenizers import Tokenizer

from ragkeel.embeddings.onnx import OnnxEmbedder
from ragkeel.models import embedder_files

pytestmark = pytest.mark.model

Array = npt.NDArray[np.float32]
HEADS, LAYERS, EPS = 12, 6, 1e-12


def load_weights() -> dict[str, Array]:
    path = embedder_files.package_file(
        embedder_files.TOKENIZER_PACKAGE, "model.zip", embedder_files.TOKENIZER_PIP
    )
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("model.safetensors")
    (size,) = struct.unpack("<Q", raw[:8])
    header, base = json.loads(raw[8 : 8 + size]), 8 + size
    weights = {}
    for name, meta in header.items():
        if name != "__metadata__" and meta["dtype"] == "F32":
            start, end = meta["data_offsets"]
            array = np.frombuffer(raw[base + start : base + end], dtype=np.float32)
            weights[name.removeprefix("bert.")] = array.reshape(meta["shape"])
    return weights


def reference_embedding(w: dict[str, Array], ids: list[int]) -> Array:
    def norm(x: Array, p: str) -> Array:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + EPS) * w[p + ".weight"] + w[p + ".bias"]

    def dense(x: Array, p: str) -> Array:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    erf = np.vectorize(math.erf)
    n, emb = len(ids), "embeddings."
    x = w[emb + "word_embeddings.weight"][ids] + w[emb + "position_embeddings.weight"][:n]
    x = norm(x + w[emb + "token_type_embeddings.weight"][0], emb + "LayerNorm")
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            dense(x, p + "attention.self." + part).reshape(n, HEADS, -1).transpose(1, 0, 2)
            for part in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attended = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
        x = norm(
            dense(attended, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        hidden = dense(x, p + "intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + erf(hidden / math.sqrt(2.0)))
        x = norm(dense(hidden, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = x.mean(axis=0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)


def test_onnx_int8_matches_float32_reference(onnx_embedder: OnnxEmbedder, models_dir: Path) -> None:
    texts = [
        "How do I rotate an API key?",
        "To rotate an API key, create a new key and revoke the old one",
        "The weather in Paris is mild",
        "Retrieval-augmented generation grounds answers in retrieved documents.",
    ]
    weights = load_weights()
    tokenizer = Tokenizer.from_file(
        str(models_dir / embedder_files.MODEL_SUBDIR / "tokenizer.json")
    )
    tokenizer.no_padding()
    reference = np.stack([reference_embedding(weights, tokenizer.encode(t).ids) for t in texts])
    ours = onnx_embedder.embed_documents(texts)
    agreement = (reference * ours).sum(axis=1)
    assert agreement.min() > 0.999, agreement
    np.testing.assert_allclose(ours[1:3] @ ours[0], reference[1:3] @ reference[0], atol=0.01)
