"""The document flow end to end on real files, a real SQLite store and the hashing embedder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    yield s
    s.close()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


def make_pipeline(
    store: SqliteDocumentStore, embedder: HashingEmbedder, max_bytes: int = 10**7
) -> IngestionPipeline:
    return IngestionPipeline(
        store,
        embedder,
        Chunker(embedder.tokenizer, 64, 0.15),
        max_file_bytes=max_bytes,
        embed_batch_chunks=16,
    )


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def docs_dir(root: Path) -> Path:
    write(
        root / "a.md",
        "# Keys\n\nRotate the API key every ninety days.\n\n## Revoke\n\nRevoke old keys at once.\n",
    )
    write(
        root / "b.txt",
        "Upstream outage postmortem.\n\nThe provider failed; fallbacks served answers.\n",
    )
    write(
        root / "sub" / "c.html",
        "<html><head><title>Pricing</title></head><body><nav>Home | About</nav><main><h1>Pricing</h1><p>Tokens cost money per query.</p></main></body></html>",
    )
    write(root / "d.csv", "region,revenue\nEMEA,100\nAPAC,200\n")
    return root


def test_ingest_is_idempotent_and_incremental(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    root = docs_dir(tmp_path / "docs")
    pipe = make_pipeline(store, embedder)
    first = pipe.ingest([str(root)], "kb")
    assert first.exit_code == 0, first.to_dict()
    assert first.documents_written == 4 and first.embedded_texts == first.chunks_written > 0
    calls = embedder.calls
    again = pipe.ingest([str(root)], "kb")
    assert again.embedded_texts == 0 and embedder.calls == calls, (
        "unchanged re-ingest embeds nothing"
    )
    assert again.documents_unchanged == 4 and again.documents_written == 0
    assert {f.status for f in again.files} == {"unchanged"}
    # change one file: only its chunks are replaced, and old text leaves both indexes
    write(
        root / "b.txt",
        "Upstream outage postmortem.\n\nA circuit breaker now opens after five errors.\n",
    )
    changed = pipe.ingest([str(root)], "kb")
    assert changed.documents_written == 1 and changed.documents_unchanged == 3
    flt = Filter(collection="kb")
    assert store.keyword.search("fallbacks served", 10, flt) == []
    texts = store.get_chunks(
        [
            h.chunk_id
            for h in store.vectors.search(embedder.embed_query("fallbacks served answers"), 50, flt)
        ]
    )
    assert all("fallbacks served" not in c.text for c in texts.values())
    assert store.keyword.search("circuit breaker", 10, flt)
    assert store.check_integrity() == []


def test_prune_removes_documents_whose_source_is_gone(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    root = docs_dir(tmp_path / "docs")
    pipe = make_pipeline(store, embedder)
    pipe.ingest([str(root)], "kb")
    (root / "a.md").unlink()
    kept = pipe.ingest([str(root)], "kb")  # without --prune nothing is deleted
    assert kept.documents_deleted == 0 and store.keyword.search(
        "ninety", 5, Filter(collection="kb")
    )
    pruned = pipe.ingest([str(root)], "kb", prune=True)
    assert pruned.documents_deleted == 1
    assert store.keyword.search("ninety", 5, Filter(collection="kb")) == []
    assert store.stats().documents == 3


def test_beir_corpus_keeps_ids_and_isolates_a_broken_line(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    lines = [
        json.dumps(
            {"_id": f"doc{i}", "title": f"T{i}", "text": f"text number {i} about topic {i % 3}"}
        )
        for i in range(20)
    ]
    lines.insert(7, '{"_id": "broken", "text": ')
    corpus = write(tmp_path / "beir" / "corpus.jsonl", "\n".join(lines) + "\n")
    report = make_pipeline(store, embedder).ingest([str(corpus)], "beir")
    assert report.exit_code == 3
    (result,) = report.files
    assert result.status == "partial" and result.documents == 20
    assert result.record_errors and result.record_errors[0]["code"] == "PARSE_ERROR"
    assert store.get_document("beir", "doc5") is not None


def test_bad_files_are_isolated_and_nothing_stored_is_lost(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    root = docs_dir(tmp_path / "docs")
    pipe = make_pipeline(store, embedder, max_bytes=4000)
    pipe.ingest([str(root)], "kb")
    before = store.stats()
    bad = tmp_path / "bad"
    write(bad / "random.txt", os.urandom(3000))
    write(bad / "empty.md", "")
    write(bad / "big.txt", "word " * 2000)
    write(bad / "broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    write(bad / "latin1.txt", "Caf\xe9 cr\xe8me br\xfbl\xe9e recipe.\n".encode("latin-1"))
    write(bad / "notes.xyz", "unsupported")
    report = pipe.ingest([str(root), str(bad), str(bad / "notes.xyz")], "kb")
    codes = {Path(f.path).name: f.error_code for f in report.files if f.error_code}
    assert codes["random.txt"] == "DECODE_ERROR"
    assert codes["empty.md"] == "EMPTY"
    assert codes["big.txt"] == "TOO_LARGE"
    assert codes["broken.pdf"] == "PARSE_ERROR"
    assert codes["notes.xyz"] == "UNSUPPORTED_TYPE"
    assert report.exit_code == 3
    assert store.keyword.search("crème brûlée", 5, Filter(collection="kb")), "latin-1 file ingested"
    after = store.stats()
    assert after.documents == before.documents + 1 and store.check_integrity() == []
    only_bad = pipe.ingest([str(bad / "random.txt"), str(bad / "empty.md")], "kb")
    assert only_bad.exit_code == 1
    missing = pipe.ingest([str(tmp_path / "nope" / "*.md")], "kb")
    assert missing.exit_code == 1 and missing.files[0].error_code == "READ_ERROR"


def test_chunks_carry_provenance(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    root = docs_dir(tmp_path / "docs")
    make_pipeline(store, embedder).ingest([str(root)], "kb")
    hits = store.keyword.search("revoke old keys", 1, Filter(collection="kb"))
    chunk = store.get_chunks([hits[0].chunk_id])[hits[0].chunk_id]
    doc = store.get_document("kb", chunk.document_id)
    assert doc is not None and doc.text[chunk.start : chunk.end] == chunk.text
    assert chunk.source.endswith("a.md") and chunk.title == "Keys"
    assert chunk.heading_path[-1] == "Revoke"


def test_moved_corpus_with_prune_keeps_its_documents(
    tmp_path: Path, store: SqliteDocumentStore, embedder: HashingEmbedder
) -> None:
    lines = [
        json.dumps({"_id": f"doc{i}", "title": f"T{i}", "text": f"text number {i}"})
        for i in range(5)
    ]
    first = write(tmp_path / "a" / "corpus.jsonl", "\n".join(lines) + "\n")
    pipe = make_pipeline(store, embedder)
    pipe.ingest([str(first)], "beir", prune=True)
    moved = tmp_path / "b" / "corpus.jsonl"
    moved.parent.mkdir()
    first.rename(moved)
    calls = embedder.calls
    report = pipe.ingest([str(moved)], "beir", prune=True)
    assert report.documents_unchanged == 5 and report.documents_deleted == 0
    assert embedder.calls == calls, "a move re-embeds nothing"
    assert store.stats().documents == 5
    assert set(store.documents_by_source("beir")) == {str(moved.resolve())}
    hits = store.keyword.search(
        "number", 10, Filter(collection="beir", sources=(str(moved.resolve()),))
    )
    assert len(hits) == 5
    assert store.check_integrity() == []
