"""The local embedder on onnxruntime, CPU only: by default all-MiniLM-L6-v2 (int8 weights), or
any sentence-transformers ONNX export (``embedding.onnx.model_dir``, issue 15;
``models/onnx_export.py`` reads its directory).

Pipeline per call: tokenise every text once (truncated to ``max_length``), sort by token
length, run batches padded (with the tokenizer's own pad id) only to the longest text in the
batch, pool the token vectors over the attention mask (mean, the CLS token, or max), L2-normalise,
and restore the input order. The model's inputs are whichever of ``input_ids``,
``attention_mask``, ``token_type_ids`` it declares (the first two required); its output is
``last_hidden_state`` (or ``token_embeddings``, or its only output), and the dimension is read
from that output's shape (or from one probe run when the export leaves it symbolic). This
module is the only place that imports onnxruntime and tokenizers; ``ragkeel.embeddings`` loads
it lazily.
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
from ragkeel.models.onnx_export import OnnxExport, Pooling

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSION = 384  # the default model's
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_REQUIRED = frozenset(_INPUTS[:2])
_OUTPUTS = ("last_hidden_state", "token_embeddings")  # token vectors, in order of preference


class WordPieceTokenCounter:
    """``TokenCounter`` over the model's own tokenizer (WordPiece for the default MiniLM;
    whatever an export's tokenizer.json defines), *without* truncation, so that chunk sizing
    sees true counts (special tokens are not counted)."""

    def __init__(self, tokenizer_path: Path) -> None:
        self._tokenizer = _load_tokenizer(tokenizer_path)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)


class OnnxEmbedder:
    """``Embedder`` running an ONNX export of a sentence-transformers model (default: the int8
    MiniLM). Safe to call from several threads (an onnxruntime session is); the counters are
    informational."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        threads: int = 0,
        batch_size: int = 32,
        max_length: int = 256,
        pooling: Pooling = "mean",
        name: str = MODEL_NAME,
    ) -> None:
        if batch_size < 1 or max_length < 2 or threads < 0:
            raise ValueError("need batch_size >= 1, max_length >= 2 and threads >= 0")
        self._batch_size = batch_size
        self._pool = _POOLS[pooling]
        self._name = name
        self._session = _load_session(Path(model_path), threads or _usable_cpus())
        self._inputs = tuple(i.name for i in self._session.get_inputs())
        self._output, width = _token_output(self._session, Path(model_path))
        self._tokenizer = _load_tokenizer(Path(tokenizer_path))
        padding = self._tokenizer.padding  # tokenizer.json may pad to a fixed length: we pad
        self._pad_id = int(padding["pad_id"]) if padding else _pad_token(self._tokenizer)
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.no_padding()  # ... per batch, to its longest text
        self._counter = WordPieceTokenCounter(Path(tokenizer_path))
        self._dimension = width if width is not None else self._run_texts(["dimension"]).shape[1]
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

    @classmethod
    def from_export(
        cls,
        export: OnnxExport,
        threads: int = 0,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> OnnxEmbedder:
        """Build from your own export (``models.onnx_export.read_export``), named after it;
        ``max_length`` (None: the export's ``max_seq_length``, else 256) bounds the tokens a text
        is read to. The dimension the export's Pooling config names must be the model's."""
        embedder = cls(
            export.model_path,
            export.tokenizer_path,
            threads=threads,
            batch_size=batch_size,
            max_length=max_length or export.max_length or 256,
            pooling=export.pooling,
            name=export.name,
        )
        if export.dimension is not None and export.dimension != embedder.dimension:
            raise ModelError(
                f"{export.model_path} gives {embedder.dimension}-dimensional token vectors, "
                f"its Pooling config says {export.dimension}",
                hint="check that model.onnx and 1_Pooling/config.json are of the same model",
            )
        return embedder

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def tokenizer(self) -> WordPieceTokenCounter:
        return self._counter

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        out = self._run_texts(texts)
        self.calls += 1
        self.texts_embedded += len(texts)
        return l2_normalise(out)

    def _run_texts(self, texts: Sequence[str]) -> Matrix:
        """Pooled, not yet normalised vectors of ``texts``, in their order."""
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        parts: dict[int, Matrix] = {}
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            pooled = self._run([encodings[i] for i in rows])
            parts.update(zip(rows, pooled, strict=True))
        return np.stack([parts[i] for i in range(len(encodings))]).astype(np.float32)

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row

    def _run(self, batch: Sequence[Encoding]) -> Matrix:
        feeds = _pad(batch, self._pad_id)
        try:
            (hidden,) = self._session.run([self._output], {k: feeds[k] for k in self._inputs})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingError(f"onnxruntime failed on a batch of {len(batch)}: {exc}") from exc
        return self._pool(np.asarray(hidden, dtype=np.float32), feeds["attention_mask"])


def _pad(batch: Sequence[Encoding], pad_id: int = 0) -> dict[str, Any]:
    """int64 input arrays, right-padded (``pad_id``, mask 0) to the longest in the batch."""
    width = max(len(e.ids) for e in batch)
    arrays = {name: np.zeros((len(batch), width), dtype=np.int64) for name in _INPUTS}
    arrays["input_ids"][:] = pad_id
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


def _cls_pool(hidden: Matrix, mask: Any) -> Matrix:
    """The first token's vector ([CLS] / <s>: the tokenizer puts it first)."""
    pooled: Matrix = np.ascontiguousarray(hidden[:, 0, :], dtype=np.float32)
    return pooled


def _max_pool(hidden: Matrix, mask: Any) -> Matrix:
    """Each dimension's largest value over the tokens where the mask is 1 (padding excluded,
    as sentence-transformers does)."""
    masked = np.where(mask[:, :, None] > 0, hidden, np.float32(-1e9))
    pooled: Matrix = masked.max(axis=1).astype(np.float32, copy=False)
    return pooled


_POOLS = {"mean": _mean_pool, "cls": _cls_pool, "max": _max_pool}


def _pad_token(tokenizer: Tokenizer) -> int:
    """The pad token's id when tokenizer.json sets no padding: [PAD] or <pad>, else 0."""
    for token in ("[PAD]", "<pad>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def _token_output(session: Any, model_path: Path) -> tuple[str, int | None]:
    """The output of token vectors (batch, tokens, dimension) and its dimension when fixed."""
    outputs = {o.name: o for o in session.get_outputs()}
    name = next((n for n in _OUTPUTS if n in outputs), None)
    if name is None and len(outputs) == 1:
        name = next(iter(outputs))
    shape = list(outputs[name].shape) if name is not None else []
    if name is None or len(shape) != 3:
        raise ModelError(
            f"{model_path} has no token-level output (looked for {' or '.join(_OUTPUTS)} "
            f"of shape batch x tokens x dimension; it has {sorted(outputs)})",
            hint="export the transformer without its pooling (optimum / sentence-transformers "
            "ONNX backend)",
        )
    width = shape[2]
    return name, width if isinstance(width, int) and width > 0 else None


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
    if not _REQUIRED <= names <= set(_INPUTS):
        raise ModelError(
            f"{model_path} takes inputs {sorted(names)}; ragkeel feeds input_ids and "
            "attention_mask (and token_type_ids when the model asks for it)",
            hint="export the transformer with the usual tokenizer inputs",
        )
    return session


def _load_tokenizer(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise ModelError(f"cannot load tokenizer {path}: {exc}") from exc
