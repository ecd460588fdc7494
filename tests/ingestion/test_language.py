"""Ingesting in a language (issue 15): real files, a real SQLite store, the hashing embedder.
A collection is created in the language asked (or the pipeline's default), keeps it, and a
mismatch is refused before any file is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import LanguageError, LanguageMismatchError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore

GERMAN = "Die alten Häuser der Stadt stehen zwischen hohen Bäumen."


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    yield s
    s.close()


def pipeline(store: SqliteDocumentStore, language: str = "english") -> IngestionPipeline:
    embedder = HashingEmbedder(64)
    chunker = Chunker(embedder.tokenizer, 64, 0.15)
    return IngestionPipeline(store, embedder, chunker, max_file_bytes=10**6, language=language)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "stadt.txt").write_text(GERMAN, encoding="utf-8")
    return folder


def hits(store: SqliteDocumentStore, query: str, collection: str) -> int:
    return len(store.keyword.search(query, 5, Filter(collection=collection)))


def test_the_language_asked_for_makes_a_german_collection(
    store: SqliteDocumentStore, docs: Path
) -> None:
    report = pipeline(store).ingest([str(docs)], "de", language="German")
    assert report.documents_written == 1
    assert store.collection_language("de") == "german"
    assert hits(store, "Haus", "de") == 1
    pipeline(store).ingest([str(docs)], "en")
    assert store.collection_language("en") == "english" and hits(store, "Haus", "en") == 0


def test_the_pipelines_default_makes_new_collections_only(
    store: SqliteDocumentStore, docs: Path
) -> None:
    pipeline(store).ingest([str(docs)], "old")
    (docs / "mehr.txt").write_text("Ein Haus am See.", encoding="utf-8")
    german_default = pipeline(store, "german")
    assert german_default.ingest([str(docs)], "old").documents_written == 1  # stays English
    assert store.collection_language("old") == "english"
    german_default.ingest([str(docs)], "new")
    assert store.collection_language("new") == "german" and hits(store, "Häusern", "new") == 2


def test_a_mismatch_is_refused_before_any_file_is_read(
    store: SqliteDocumentStore, docs: Path, tmp_path: Path
) -> None:
    pipeline(store).ingest([str(docs)], "de", language="german")
    before = store.revision("de")
    (docs / "neu.txt").write_text("Neue Häuser.", encoding="utf-8")
    with pytest.raises(LanguageMismatchError) as err:
        pipeline(store).ingest([str(docs)], "de", language="english", prune=True)
    assert err.value.code == "LANGUAGE_MISMATCH"
    assert store.revision("de") == before and store.stats().documents == 1
    with pytest.raises(LanguageError):
        pipeline(store).ingest([str(tmp_path / "missing")], "x", language="klingon")
    assert store.collection_language("x") is None
    assert pipeline(store).ingest([str(docs)], "de").documents_written == 1  # its own language
    assert hits(store, "Haus", "de") == 2


def test_an_unknown_default_language_is_refused_at_construction(
    store: SqliteDocumentStore,
) -> None:
    with pytest.raises(LanguageError):
        pipeline(store, "klingon")
