"""Ingestion for a tenant with ACL principals (issue 11): real files, a real SQLite store, the
hashing embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import NameInvalidError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import DEFAULT_TENANT, AccessScope

A = AccessScope("acme", all_principals=True)
B = AccessScope("globex", all_principals=True)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture
def pipeline(tmp_path: Path, embedder: HashingEmbedder) -> Iterator[IngestionPipeline]:
    store = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    yield IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**6
    )
    store.close()


def texts(pipeline: IngestionPipeline, query: str, scope: AccessScope | None) -> list[str]:
    store = pipeline.store
    assert isinstance(store, SqliteDocumentStore)
    hits = store.keyword.search(query, 10, scope=scope)
    return [c.text for c in store.get_chunks([h.chunk_id for h in hits], scope=scope).values()]


def test_the_same_file_from_two_tenants_is_two_documents(
    tmp_path: Path, pipeline: IngestionPipeline
) -> None:
    # before tenants, B's policy.md replaced A's (same id: the path) and A's answers quoted B
    policy = tmp_path / "upload" / "policy.md"
    policy.parent.mkdir()
    policy.write_text("Holiday policy: acme staff get thirty days.")
    assert pipeline.ingest([str(policy)], "kb", tenant="acme").documents_written == 1
    policy.write_text("Holiday policy: globex staff get ten days.")
    assert pipeline.ingest([str(policy)], "kb", tenant="globex").documents_written == 1
    assert texts(pipeline, "holiday policy", A) == ["Holiday policy: acme staff get thirty days."]
    assert texts(pipeline, "holiday policy", B) == ["Holiday policy: globex staff get ten days."]
    assert texts(pipeline, "holiday policy", None) == []  # the default tenant has nothing
    policy.unlink()
    report = pipeline.ingest([str(policy.parent)], "kb", tenant="globex", prune=True)
    assert report.documents_deleted == 1
    assert texts(pipeline, "holiday policy", A) == ["Holiday policy: acme staff get thirty days."]
    assert texts(pipeline, "holiday policy", B) == []


def test_principals_are_written_and_changed_without_re_embedding(
    tmp_path: Path, pipeline: IngestionPipeline, embedder: HashingEmbedder
) -> None:
    doc = tmp_path / "salaries.md"
    doc.write_text("Salary bands for engineers.")
    pipeline.ingest([str(doc)], "kb", principals=["hr"])
    staff, hr = AccessScope(DEFAULT_TENANT), AccessScope(DEFAULT_TENANT, frozenset({"hr"}))
    assert texts(pipeline, "salary bands", staff) == []
    assert texts(pipeline, "salary bands", hr) == ["Salary bands for engineers."]
    stored = pipeline.store.get_document("kb", str(doc))
    assert stored is not None and stored.principals == {"hr"}
    calls = embedder.calls
    report = pipeline.ingest([str(doc)], "kb")  # same content, now public
    assert report.documents_unchanged == 1 and embedder.calls == calls
    assert texts(pipeline, "salary bands", staff) == ["Salary bands for engineers."]


def test_a_bad_tenant_or_principal_name_is_refused_before_anything_is_written(
    tmp_path: Path, pipeline: IngestionPipeline
) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("Some words.")
    with pytest.raises(NameInvalidError):
        pipeline.ingest([str(doc)], "kb", tenant="bad\x00tenant")
    with pytest.raises(NameInvalidError):
        pipeline.ingest([str(doc)], "kb", principals=["ok", ""])
    assert pipeline.store.stats().documents == 0
