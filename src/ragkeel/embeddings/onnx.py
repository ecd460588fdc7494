"""The local default embedder: all-MiniLM-L6-v2 (int8 weights) on onnxruntime, CPU only.

Pipeline per call: WordPiece-tokenise every text once (truncated to ``max_length``), sort by
token length, run batches padded only to the longest text in the batch, mean-pool the last
hidden state over the attention mask, L2-normalise, and restore the input order. This module is
the only place that imports onnxruntime and tokenizers; ``ragkeel.embeddings`` loads it lazily.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from ragkeel.embeddings.base import Matrix, Vector, l2_normalise
from ragkeel.errors import EmbeddingError, ModelError
from ragkeel.models.embedder_files import resolve_model_files

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSION = 384
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "last_hidden_state"


class WordPieceTokenCounter:
    """``TokenCounter`` over the model's own tokenizer, *without* truncation, so that chunk
    sizing sees true counts (special tokens are not counted)."""

    def __init__(self, tokenizer_path: Path) -> None:
        self._tokenizer = _load_tokenizer(tokenizer_path)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)


class OnnxEmbedder:
    """``Embedder`` running the int8 MiniLM ONNX export. Safe to call from several threads
    (an onnxruntime session is); the counters are informational."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        threads: int = 0,
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        if batch_size < 1 or max_length < 2 or threads < 0:
            raise ValueError("need batch_size >= 1, max_length >= 2 and threads >= 0")
        self._batch_size = batch_size
        self._session = _load_session(Path(model_path), threads or _usable_cpus())
        self._tokenizer = _load_tokenizer(Path(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; we pad per batch
        self._counter = WordPieceTokenCounter(Path(tokenizer_path))
        self.calls = 0
        self.texts_embedded = 0

    @classmethod
    def from_installed_packages(
        cls, models_dir: Path, threads: int = 0, batch_size: int = 32, max_length: int = 256
    ) -> OnnxEmbedder:
        """Build from the pinned pip packages, verifying both files; ``models_dir`` holds the
        extracted tokenizer (``ragkeel.models.embedder_files``)."""
        files = resolve_model_files(Path(models_dir))
        return cls(
            files.model_path,
            files.tokenizer_path,
            threads=threads,
            batch_size=batch_size,
            max_length=max_length,
        )

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def tokenizer(self) -> WordPieceTokenCounter:
        return self._counter

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(encodings), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            out[rows] = self._run([encodings[i] for i in rows])
        self.calls += 1
        self.texts_embedded += len(encodings)
        return l2_normalise(out)

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row

    def _run(self, batch: Sequence[Encoding]) -> Matrix:
        feeds = _pad(batch)
        try:
            (hidden,) = self._session.run([_OUTPUT], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingError(f"onnxruntime failed on a batch of {len(batch)}: {exc}") from exc
        return _mean_pool(np.asarray(hidden, dtype=np.float32), feeds["attention_mask"])


def _pad(batch: Sequence[Encoding]) -> dict[str, Any]:
    """int64 input arrays, right-padded with 0 ([PAD], mask 0) to the longest in the batch."""
    width = max(len(e.ids) for e in batch)
    arrays = {name: np.zeros((len(batch), width), dtype=np.int64) for name in _INPUTS}
    for row, enc in enumerate(batch):
        n = len(enc.ids)
        arrays["input_ids"][row, :n] = enc.ids
        arrays["attention_mask"][row, :n] = enc.attention_mask
        arrays["token_type_ids"][row, :n] = enc.type_ids
    return arrays


def _mean_pool(hidden: Matrix, mask: Any) -> Matrix:
    """Average token vectors where the mask is 1 (sentence-transformers' mean pooling)."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled: Matrix = (summed / counts).astype(np.float32, copy=False)
    return pooled


def _usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count, in containers)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _load_session(model_path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no optimizer chatter on stderr
    # Idle pool threads sleep instead of spinning: as fast here (measured), and it leaves the
    # cores to tokenisation, SQLite and request handling between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc
    names = {i.name for i in session.get_inputs()}
    if names != set(_INPUTS) or _OUTPUT not in {o.name for o in session.get_outputs()}:
        raise ModelError(f"{model_path} does not have the MiniLM inputs/outputs {_INPUTS}")
    return session


def _load_tokenizer(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise ModelError(f"cannot load tokenizer {path}: {exc}") from exc
