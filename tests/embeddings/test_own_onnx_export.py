"""Issue 15, your own ONNX export (``embedding.onnx.model_dir``), run for real: an export
directory built from the shipped MiniLM files (``models/embedder_files.py`` finds them). Mean
pooling gives the default embedder's vectors; a CLS pooling config gives other vectors of the
same size and another name; a collection built with one embedder refuses the other when
ingesting and when searching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragkeel.embeddings import build_embedder
from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.embeddings.onnx import OnnxEmbedder
from ragkeel.errors import EmbeddingModelMismatchError, ModelError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.models.embedder_files import resolve_model_files
from ragkeel.models.onnx_export import read_export
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore

pytestmark = pytest.mark.model

TEXTS = [
    "How do I rotate an API key?",
    "To rotate an API key, create a new key and revoke the old one",
    "The weather in Paris is mild",
    "x",
]
ST = "sentence_transformers.models."


def make_export(root: Path, models_dir: Path, pooling: str, name: str = "minilm-export") -> Path:
    """A sentence-transformers layout around the shipped model.onnx and tokenizer.json."""
    files = resolve_model_files(models_dir)
    d = root / name
    (d / "1_Pooling").mkdir(parents=True)
    shutil.copyfile(files.model_path, d / "model.onnx")
    shutil.copyfile(files.tokenizer_path, d / "tokenizer.json")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": ST + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": ST + "Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": ST + "Normalize"},
    ]
    (d / "modules.json").write_text(json.dumps(modules))
    config = {
        "word_embedding_dimension": 384,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
    }
    (d / "1_Pooling" / "config.json").write_text(json.dumps(config))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    return d


def test_mean_pooling_gives_the_default_embedders_vectors(
    tmp_path: Path, models_dir: Path, onnx_embedder: OnnxEmbedder
) -> None:
    d = make_export(tmp_path, models_dir, "mean")
    own = OnnxEmbedder.from_export(read_export(d), threads=2, batch_size=8)
    assert own.dimension == onnx_embedder.dimension == 384
    np.testing.assert_allclose(
        own.embed_documents(TEXTS), onnx_embedder.embed_documents(TEXTS), atol=1e-5
    )
    assert own.name.startswith("onnx:minilm-export:") and own.name.endswith(":mean")
    assert own.name != onnx_embedder.name
    assert own.tokenizer.count("rotate keys") == onnx_embedder.tokenizer.count("rotate keys")


def test_cls_and_max_pooling_give_other_vectors_of_the_same_size(
    tmp_path: Path, models_dir: Path
) -> None:
    vectors, names = {}, set()
    for pooling in ("mean", "cls", "max"):
        d = make_export(tmp_path / pooling, models_dir, pooling)
        own = OnnxEmbedder.from_export(read_export(d), threads=2, batch_size=2)
        vectors[pooling] = own.embed_documents(TEXTS)
        names.add(own.name)
        assert vectors[pooling].shape == (len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(vectors[pooling], axis=1), 1.0, rtol=1e-5)
    assert len(names) == 3  # the pooling is part of the model's name
    for other in ("cls", "max"):
        assert not np.allclose(vectors[other], vectors["mean"], atol=1e-3)
    # still a working embedder: the related passage is nearer than the unrelated one
    query, related, unrelated = vectors["cls"][:3]
    assert related @ query > unrelated @ query


def test_the_settings_build_it_and_a_bad_directory_is_a_clear_error(
    tmp_path: Path, models_dir: Path
) -> None:
    d = make_export(tmp_path, models_dir, "mean")
    s = load_settings(embedding={"onnx": {"model_dir": str(d), "max_length": 64}})
    embedder = build_embedder(s.embedding, models_dir=models_dir, cache_dir=tmp_path / "cache")
    assert embedder.name.startswith("onnx:minilm-export:") and embedder.dimension == 384
    long = "key " * 200  # only 62 word pieces reach the model (64 with [CLS] and [SEP])
    np.testing.assert_allclose(
        embedder.embed_query(long), embedder.embed_query("key " * 100), atol=1e-5
    )
    (d / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"no tokenizer\.json") as err:
        build_embedder(s.embedding, models_dir=models_dir, cache_dir=tmp_path / "cache")
    assert err.value.code == "MODEL_MISSING"


def test_a_collection_refuses_an_embedder_it_was_not_built_with(
    tmp_path: Path, models_dir: Path, onnx_embedder: OnnxEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# Keys\n\nProduction API keys must be rotated every 90 days.\n")
    store = SqliteDocumentStore(tmp_path / "db.sqlite")
    mean = OnnxEmbedder.from_export(read_export(make_export(tmp_path, models_dir, "mean")))
    cls = OnnxEmbedder.from_export(read_export(make_export(tmp_path / "c", models_dir, "cls")))
    hashing = HashingEmbedder(384)  # same dimension: only the recorded name tells them apart
    others: tuple[Embedder, ...] = (cls, hashing, onnx_embedder)

    def pipeline(emb: Embedder) -> IngestionPipeline:
        return IngestionPipeline(store, emb, Chunker(emb.tokenizer, 64), max_file_bytes=10**6)

    try:
        assert pipeline(mean).ingest([str(docs)], "kb").exit_code == 0
        assert store.collection_model("kb") == (mean.name, 384)
        (docs / "more.md").write_text("# More\n\nKeys expire after a year.\n")
        for other in others:  # written with another model: refused
            report = pipeline(other).ingest([str(docs)], "kb")
            assert report.exit_code != 0
            assert "EMBEDDING_MODEL_MISMATCH" in json.dumps(report.to_dict()), report.to_dict()
        for other in others:  # searched with another model: refused
            retriever = HybridRetriever(store, store.keyword, store.vectors, other)
            try:
                with pytest.raises(EmbeddingModelMismatchError) as err:
                    retriever.search("rotate keys", 3, flt=Filter(collection="kb"))
                assert mean.name in str(err.value) and other.name in str(err.value)
            finally:
                retriever.close()
        mine = HybridRetriever(store, store.keyword, store.vectors, mean)
        try:
            assert mine.search("rotate keys", 3, flt=Filter(collection="kb")).hits
        finally:
            mine.close()
    finally:
        store.close()
