"""A sentence-transformers ONNX export of your own (``embedding.onnx.model_dir``, issue 15):
which files it has, how its vectors are pooled, and the name that identifies it.

What the directory must hold (what ``SentenceTransformer.save(...)`` with the ONNX backend, or
an export from the Hugging Face Hub, lays out)::

    model.onnx  or  onnx/model.onnx   the transformer (inputs input_ids, attention_mask and,
                                      for BERT-like models, token_type_ids; a token-level output)
    tokenizer.json                    the fast tokenizer (``tokenizers``)
    modules.json                      optional: the module list (Transformer, Pooling, Normalize)
    1_Pooling/config.json             the pooling mode: mean, CLS or max (the ``path`` of the
                                      Pooling module in modules.json, if it says another)
    sentence_bert_config.json         optional: ``max_seq_length`` (else tokenizer_config.json's
                                      ``model_max_length``) bounds the tokens read of a text

The pooling comes from the Pooling module's config unless ``embedding.onnx.pooling`` overrides it
(a directory without one needs the setting). A ``Normalize`` module is noted (``normalize``),
but every vector is L2-normalised whatever it says: both stores score by cosine, so a model
trained for dot products is still compared by cosine here. A ``Dense`` module (or any other
module after pooling) is refused: its weights are not in ``model.onnx``.

The name (``onnx:<directory name>:<first 12 hex of model.onnx's sha256>:<pooling>``) is what a
collection records as its ``embedding_model``: another file, or the same file pooled another
way, is another model, and a collection built with one refuses the other. The sha256 is
computed once and remembered by size and mtime (``integrity.stamped_sha256``); with a pin
(``embedding.onnx.sha256``) a file that differs is refused (MODEL_CHECKSUM) before it is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from ragkeel.errors import ModelError
from ragkeel.models.integrity import StampFile, sha256_file, stamped_sha256, verify_sha256

Pooling = Literal["mean", "cls", "max"]
POOLINGS: tuple[Pooling, ...] = get_args(Pooling)
MODEL_FILES = ("model.onnx", "onnx/model.onnx")
_CONFIG_MODES = {  # 1_Pooling/config.json's switches
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")
_HINT = "check embedding.onnx.model_dir: a sentence-transformers export with its ONNX model"


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """The files and the pooling of one export (``read_export``)."""

    directory: Path
    model_path: Path
    tokenizer_path: Path
    pooling: Pooling
    normalize: bool  # whether the export ends in a Normalize module (vectors are unit anyway)
    max_length: int | None  # max_seq_length (sentence_bert_config.json), else model_max_length
    dimension: int | None  # the Pooling config's word_embedding_dimension, if it says
    sha256: str  # of model.onnx

    @property
    def name(self) -> str:
        """The embedding model's name, recorded by every collection built with it."""
        return f"onnx:{self.directory.name}:{self.sha256[:12]}:{self.pooling}"


def read_export(
    model_dir: Path,
    *,
    sha256: str | None = None,
    pooling: Pooling | None = None,
    stamps: Path | None = None,
) -> OnnxExport:
    """Find and check the export's files; ``ModelError`` saying what is missing or unsupported
    (MODEL_MISSING), ``ModelChecksumError`` when ``model.onnx`` differs from the ``sha256`` pin.
    ``pooling`` overrides the export's; ``stamps``: where known hashes are remembered."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelError(f"embedding model directory {directory} does not exist", hint=_HINT)
    model = next((directory / f for f in MODEL_FILES if (directory / f).is_file()), None)
    if model is None:
        raise ModelError(
            f"{directory} has no ONNX model (looked for {' and '.join(MODEL_FILES)})", hint=_HINT
        )
    tokenizer = directory / "tokenizer.json"
    if not tokenizer.is_file():
        raise ModelError(
            f"{directory} has no tokenizer.json",
            hint="export the model's fast tokenizer beside it (tokenizer.save_pretrained)",
        )
    pooling_dir = _module_paths(directory)
    config = _json(directory / pooling_dir / "config.json") or {}
    mode = pooling or _pooling_mode(config, directory / pooling_dir)
    bert = _json(directory / "sentence_bert_config.json") or {}
    hf = _json(directory / "tokenizer_config.json") or {}
    digest = _sha256(model, sha256, stamps)
    return OnnxExport(
        directory=directory,
        model_path=model,
        tokenizer_path=tokenizer,
        pooling=mode,
        normalize=_has_normalize(directory),
        max_length=_positive_int(bert.get("max_seq_length"))
        or _positive_int(hf.get("model_max_length"), below=100_000),  # HF's "unknown": 1e30
        dimension=_positive_int(config.get("word_embedding_dimension")),
        sha256=digest,
    )


def _sha256(model: Path, pin: str | None, stamps: Path | None) -> str:
    stamp_file = StampFile(stamps) if stamps is not None else None
    hint = "the pinned embedding.onnx.sha256 is of another model.onnx: check the file or the pin"
    if pin is not None:
        verify_sha256(model, pin.lower(), stamps=stamp_file, hint=hint)
        return pin.lower()
    if stamp_file is None:
        return sha256_file(model, hint=_HINT)
    return stamped_sha256(model, stamp_file, hint=_HINT)


def _modules(directory: Path) -> list[dict[str, Any]]:
    data = _json(directory / "modules.json")
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise ModelError(f"{directory / 'modules.json'} is not a list of modules", hint=_HINT)
    return data


def _module_kind(module: dict[str, Any]) -> str:
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def _module_paths(directory: Path) -> str:
    """The Pooling module's directory (``1_Pooling`` unless modules.json says otherwise);
    refuses modules ragkeel cannot run (their weights are not in the ONNX file)."""
    path = "1_Pooling"
    for module in _modules(directory):
        kind = _module_kind(module)
        if kind not in _KNOWN_MODULES:
            raise ModelError(
                f"{directory} has a {kind or 'typeless'} module ({module.get('path')}) that "
                "model.onnx does not contain; ragkeel runs Transformer + Pooling (+ Normalize)",
                hint="use an export without it, or serve the model behind an OpenAI-compatible "
                "/embeddings endpoint (embedding.provider: remote)",
            )
        if kind == "Pooling" and module.get("path"):
            path = str(module["path"])
    return path


def _has_normalize(directory: Path) -> bool:
    return any(_module_kind(m) == "Normalize" for m in _modules(directory))


def _pooling_mode(config: dict[str, Any], where: Path) -> Pooling:
    if not config:
        raise ModelError(
            f"{where / 'config.json'} is missing: the pooling is unknown",
            hint="set embedding.onnx.pooling (mean, cls or max)",
        )
    named = config.get("pooling_mode")
    modes = [named] if isinstance(named, str) else []
    modes += [mode for key, mode in _CONFIG_MODES.items() if config.get(key) is True]
    modes = list(dict.fromkeys(modes))
    if len(modes) != 1 or modes[0] not in POOLINGS:
        raise ModelError(
            f"{where / 'config.json'} asks for pooling {' + '.join(modes) or 'none'}; "
            f"ragkeel pools one way: {', '.join(POOLINGS)}",
            hint="set embedding.onnx.pooling to override it",
        )
    mode: Pooling = modes[0]
    return mode


def _positive_int(value: Any, *, below: int | None = None) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return value if below is None or value < below else None


def _json(path: Path) -> Any:
    """The file's JSON, or None when there is no such file."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", hint=_HINT) from exc
