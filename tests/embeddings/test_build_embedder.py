"""``build_embedder`` wiring from the embedding settings (as the container passes them), and the
cheap package import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragkeel.embeddings import CachingEmbedder, Embedder, HashingEmbedder, build_embedder
from ragkeel.embeddings.remote import RemoteEmbedder
from ragkeel.settings import Settings


def _build(settings: Settings) -> Embedder:
    """``build_embedder`` as ``Container.embedder`` calls it."""
    return build_embedder(
        settings.embedding, models_dir=settings.models_dir, cache_dir=settings.home / "cache"
    )


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ragkeel.yaml or RAGKEEL_* variables from the developer's machine."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("RAGKEEL_")]:
        monkeypatch.delenv(name)


def test_hashing_with_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedding={"provider": "hashing", "hashing_dimension": 64})
    embedder = _build(settings)
    assert isinstance(embedder, CachingEmbedder)
    assert isinstance(embedder.inner, HashingEmbedder)
    assert (embedder.name, embedder.dimension) == ("hashing-64", 64)
    embedder.embed_query("cached")
    assert (home / "cache" / "embeddings.db").is_file()
    embedder.cache.close()


def test_hashing_without_cache(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, embedding={"provider": "hashing", "cache": False})
    assert isinstance(_build(settings), HashingEmbedder)
    assert not (tmp_path / "cache").exists()


def test_remote_is_built_without_a_request(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        embedding={
            "provider": "remote",
            "cache": False,
            "batch_size": 7,
            "remote": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "dimension": 12},
        },
    )
    embedder = _build(settings)
    assert isinstance(embedder, RemoteEmbedder)
    assert (embedder.name, embedder.dimension) == ("m", 12)
    embedder.close()


@pytest.mark.model
def test_onnx_default_uses_models_dir(tmp_path: Path) -> None:
    models = tmp_path / "models"
    settings = Settings(home=tmp_path / "home", models={"dir": models}, embedding={"threads": 1})
    embedder = _build(settings)
    assert isinstance(embedder, CachingEmbedder)
    assert embedder.name == "all-MiniLM-L6-v2-int8"
    # the tokenizer is extracted into the models dir, shared by every home, not under the home
    assert (models / "all-minilm-l6-v2" / "tokenizer.json").is_file()
    assert not (settings.home / "models").exists()
    assert embedder.embed_query("hello").shape == (384,)
    embedder.cache.close()


def test_package_import_is_cheap() -> None:
    code = (
        "import sys, ragkeel.embeddings as e;"
        "heavy = {'onnxruntime', 'tokenizers', 'httpx'} & set(sys.modules);"
        "assert not heavy, heavy;"
        "assert e.RemoteEmbedder.__name__ == 'RemoteEmbedder'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
