"""Symlinks while expanding ingest arguments (issue 9): a link that leaves the given roots is
skipped and reported, unless ``follow_symlinks``; links inside the roots and paths named
explicitly are followed. Real files, a real SQLite store and the hashing embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.ingestion.report import IngestReport
from ragkeel.storage.sqlite import SqliteDocumentStore

SECRET = "The production database password is hunter2.\n"


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[IngestionPipeline]:
    store = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    embedder = HashingEmbedder(64)
    yield IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**7
    )
    store.close()


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """docs/ (ingested) with a note, and elsewhere/ (not ingested) with a secret."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "note.md").write_text("# Note\n\nRotate keys every ninety days.\n")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "private").mkdir(parents=True)
    (elsewhere / "secret.txt").write_text(SECRET)
    (elsewhere / "private" / "more.txt").write_text(SECRET)
    return tmp_path


def sources(pipeline: IngestionPipeline) -> set[str]:
    return set(pipeline.store.documents_by_source("default"))


def skipped(report: IngestReport) -> dict[str, str]:
    return {f.path: f.error_code or "" for f in report.files if f.status == "skipped"}


def test_link_out_of_the_directory_is_skipped_and_reported(
    pipeline: IngestionPipeline, layout: Path
) -> None:
    docs = layout / "docs"
    (docs / "leak.txt").symlink_to(layout / "elsewhere" / "secret.txt")
    (docs / "sub" / "private").symlink_to(layout / "elsewhere" / "private")
    report = pipeline.ingest([str(docs)])
    assert report.exit_code == 0  # a skipped link is not a failure
    assert skipped(report) == {
        str(docs / "leak.txt"): "SYMLINK_OUTSIDE_ROOT",
        str(docs / "sub" / "private"): "SYMLINK_OUTSIDE_ROOT",
    }
    (leak,) = [f for f in report.files if f.path.endswith("leak.txt")]
    assert "--follow-symlinks" in (leak.error_message or "")
    assert sources(pipeline) == {str((docs / "note.md").resolve())}


def test_follow_symlinks_follows_them_once_without_cycles(
    pipeline: IngestionPipeline, layout: Path
) -> None:
    docs = layout / "docs"
    (docs / "leak.txt").symlink_to(layout / "elsewhere" / "secret.txt")
    (docs / "sub" / "private").symlink_to(layout / "elsewhere" / "private")
    (docs / "sub" / "loop").symlink_to(docs)  # a cycle back to the root
    report = pipeline.ingest([str(docs)], follow_symlinks=True)
    assert report.exit_code == 0 and not skipped(report)
    assert sources(pipeline) == {
        str((docs / "note.md").resolve()),
        str((layout / "elsewhere" / "secret.txt").resolve()),
        str((layout / "elsewhere" / "private" / "more.txt").resolve()),
    }


def test_links_that_stay_inside_the_roots_are_followed(
    pipeline: IngestionPipeline, layout: Path
) -> None:
    docs, other = layout / "docs", layout / "elsewhere"
    (docs / "alias.md").symlink_to(docs / "note.md")
    (docs / "sub" / "up").symlink_to(docs)  # a directory link inside the root: not walked again
    (docs / "to-other-root.txt").symlink_to(other / "secret.txt")  # other is a root too
    report = pipeline.ingest([str(docs), str(other)])
    assert report.exit_code == 0 and not skipped(report)
    assert str((docs / "note.md").resolve()) in sources(pipeline)
    assert len(sources(pipeline)) == 3  # note, secret, more: each once


def test_paths_named_explicitly_are_the_users_choice(
    pipeline: IngestionPipeline, layout: Path
) -> None:
    file_link = layout / "secret-link.txt"
    file_link.symlink_to(layout / "elsewhere" / "secret.txt")
    dir_link = layout / "private-link"
    dir_link.symlink_to(layout / "elsewhere" / "private")
    report = pipeline.ingest([str(file_link), str(dir_link)])
    assert report.exit_code == 0 and not skipped(report)
    assert sources(pipeline) == {
        str((layout / "elsewhere" / "secret.txt").resolve()),
        str((layout / "elsewhere" / "private" / "more.txt").resolve()),
    }


def test_glob_matches_through_a_link_out_are_skipped(
    pipeline: IngestionPipeline, layout: Path
) -> None:
    docs = layout / "docs"
    (docs / "leak.txt").symlink_to(layout / "elsewhere" / "secret.txt")
    (docs / "sub" / "private").symlink_to(layout / "elsewhere" / "private")
    report = pipeline.ingest([f"{docs}/**/*.txt", f"{docs}/*.md"])
    assert skipped(report) == {
        str(docs / "leak.txt"): "SYMLINK_OUTSIDE_ROOT",
        str(docs / "sub" / "private" / "more.txt"): "SYMLINK_OUTSIDE_ROOT",
    }
    assert sources(pipeline) == {str((docs / "note.md").resolve())}
