"""Issue 15: a collection records the embedding model that built it, and a query embedded with
another model is refused with EMBEDDING_MODEL_MISMATCH at query time too — through the
retriever, the CLI and the HTTP API — instead of quietly searching nothing on the dense side
(before the fix the dense half skipped the collection and answers fell back on keywords)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.cli.main import app as cli
from ragkeel.container import Container
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import EmbeddingModelMismatchError, RagkeelError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore

QUESTION = "How often must production API keys be rotated?"


def ingest(store: SqliteDocumentStore, docs: Path, collection: str, dimension: int) -> None:
    emb = HashingEmbedder(dimension)
    pipeline = IngestionPipeline(store, emb, Chunker(emb.tokenizer, 64), max_file_bytes=10**6)
    assert pipeline.ingest([str(docs)], collection).exit_code == 0


def test_the_retriever_refuses_a_collection_of_another_model(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs")
    store = SqliteDocumentStore(tmp_path / "db.sqlite")
    ingest(store, docs, "old", 384)
    other = HybridRetriever(store, store.keyword, store.vectors, HashingEmbedder(256))
    try:
        for mode in ("hybrid", "dense"):
            with pytest.raises(EmbeddingModelMismatchError) as err:
                other.search(QUESTION, 3, mode=mode, flt=Filter(collection="old"))  # type: ignore[arg-type]
            assert "hashing-384" in str(err.value) and "hashing-256" in str(err.value)
            with pytest.raises(EmbeddingModelMismatchError):  # the whole index is of another
                other.search(QUESTION, 3, mode=mode)  # type: ignore[arg-type]
        assert other.search(QUESTION, 3, mode="bm25").hits  # keywords need no embedder
        # a collection of the query's model beside it: an unnamed search searches that one
        ingest(store, docs, "new", 256)
        found = other.search(QUESTION, 3, mode="dense")
        assert found.hits and {h.chunk.collection for h in found.hits} == {"new"}
        with pytest.raises(EmbeddingModelMismatchError):  # naming the old one still refuses
            other.search(QUESTION, 3, flt=Filter(collection="old"))
    finally:
        other.close()
        store.close()


def settings(home: Path, dimension: int):  # type: ignore[no-untyped-def]
    return load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": dimension, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "none"},
    )


def test_the_api_and_the_cli_name_the_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    with Container(settings(home, 384)) as built:
        report = built.pipeline.ingest([str(write_corpus(tmp_path / "docs"))], COLLECTION)
        assert report.exit_code == 0
    with TestClient(create_app(Container(settings(home, 256)))) as client:  # closes it
        r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
        s = client.get("/v1/search", params={"q": ON_TOPIC, "collection": COLLECTION})
        kw = client.get("/v1/search", params={"q": ON_TOPIC, "mode": "bm25"})
    for response in (r, s):
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["code"] == "EMBEDDING_MODEL_MISMATCH", body
        assert "hashing-384" in body["detail"] and "hashing-256" in body["detail"], body
    assert kw.status_code == 200 and kw.json()["hits"]

    monkeypatch.setenv("RAGKEEL_HOME", str(home))
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_EMBEDDING__HASHING_DIMENSION", "256")
    result = CliRunner().invoke(cli, ["search", ON_TOPIC, "--collection", COLLECTION])
    assert isinstance(result.exception, RagkeelError), result.output
    assert result.exception.code == "EMBEDDING_MODEL_MISMATCH"
    assert "collections reembed" in str(result.exception)
