"""Issue 15, reading a sentence-transformers ONNX export directory (``models/onnx_export.py``):
where the model is, the pooling (config, override, unsupported modes), the Normalize and Dense
modules, the name and the sha256 pin. Placeholder files: nothing is loaded here
(tests/embeddings/test_own_onnx_export.py runs a real export)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.models.onnx_export import read_export

WEIGHTS = b"onnx-placeholder-bytes"
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()
ST = "sentence_transformers.models."


def export(
    root: Path,
    *,
    pooling: dict[str, object] | None = None,
    modules: Sequence[str] | None = ("Transformer", "Pooling", "Normalize"),
    onnx_subdir: bool = False,
    tokenizer: bool = True,
) -> Path:
    d = root / "my-export"
    (d / "onnx" if onnx_subdir else d).mkdir(parents=True)
    (d / "onnx" / "model.onnx" if onnx_subdir else d / "model.onnx").write_bytes(WEIGHTS)
    if tokenizer:
        (d / "tokenizer.json").write_text("{}")
    if modules is not None:
        paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize"}
        listed = [
            {"idx": i, "name": str(i), "path": paths.get(m, f"{i}_{m}"), "type": ST + m}
            for i, m in enumerate(modules)
        ]
        (d / "modules.json").write_text(json.dumps(listed))
    (d / "1_Pooling").mkdir()
    config = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}
    (d / "1_Pooling" / "config.json").write_text(json.dumps(pooling or config))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    return d


def test_a_standard_export_is_read(tmp_path: Path) -> None:
    found = read_export(export(tmp_path), stamps=tmp_path / "stamps.json")
    assert found.model_path.name == "model.onnx" and found.tokenizer_path.name == "tokenizer.json"
    assert (found.pooling, found.normalize, found.max_length, found.dimension) == (
        "mean",
        True,
        128,
        384,
    )
    assert found.name == f"onnx:my-export:{DIGEST[:12]}:mean"
    nested = read_export(export(tmp_path / "b", onnx_subdir=True, modules=None))
    assert nested.model_path == tmp_path / "b" / "my-export" / "onnx" / "model.onnx"
    assert not nested.normalize and nested.name == found.name  # same file, same pooling


def test_the_length_falls_back_on_the_tokenizer_config(tmp_path: Path) -> None:
    d = export(tmp_path)
    (d / "sentence_bert_config.json").unlink()
    assert read_export(d).max_length is None
    (d / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    assert read_export(d).max_length == 512
    (d / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1e30}))
    assert read_export(d).max_length is None  # Hugging Face's "no limit known"


@pytest.mark.parametrize(
    ("config", "pooling"),
    [
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
        ({"pooling_mode_max_tokens": True}, "max"),
        ({"pooling_mode": "cls"}, "cls"),
    ],
)
def test_the_pooling_comes_from_the_config(
    tmp_path: Path, config: dict[str, object], pooling: str
) -> None:
    found = read_export(export(tmp_path, pooling=config))
    assert found.pooling == pooling and found.name.endswith(f":{pooling}")


def test_unsupported_or_missing_pooling_is_refused_unless_overridden(tmp_path: Path) -> None:
    both = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}
    with pytest.raises(ModelError, match=r"cls \+ mean|mean \+ cls"):
        read_export(export(tmp_path / "a", pooling=both))
    with pytest.raises(ModelError, match="lasttoken"):
        read_export(export(tmp_path / "b", pooling={"pooling_mode_lasttoken": True}))
    d = export(tmp_path / "c")
    (d / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ModelError, match=r"embedding\.onnx\.pooling"):
        read_export(d)
    assert read_export(d, pooling="cls").pooling == "cls"


def test_missing_files_and_modules_it_cannot_run_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no tokenizer\.json") as no_tokenizer:
        read_export(export(tmp_path / "a", tokenizer=False))
    assert no_tokenizer.value.code == "MODEL_MISSING"
    d = export(tmp_path / "b")
    (d / "model.onnx").unlink()
    with pytest.raises(ModelError, match="no ONNX model"):
        read_export(d)
    with pytest.raises(ModelError, match="does not exist"):
        read_export(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="Dense module"):
        read_export(export(tmp_path / "c", modules=["Transformer", "Pooling", "Dense"]))


def test_a_pin_is_checked(tmp_path: Path) -> None:
    d = export(tmp_path)
    assert read_export(d, sha256=DIGEST.upper()).sha256 == DIGEST
    with pytest.raises(ModelChecksumError) as wrong:
        read_export(d, sha256="0" * 64)
    assert wrong.value.code == "MODEL_CHECKSUM"
