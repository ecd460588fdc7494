"""``ragkeel ingest --language``, ``collections list`` and ``collections reindex --language``
(issue 15), in process on the real CLI with the hashing embedder and the home's SQLite store;
bad input ends with its stable code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ragkeel.cli.main import app
from ragkeel.errors import RagkeelError
from ragkeel.storage.sqlite import SqliteDocumentStore

GERMAN = "Die alten Häuser der Stadt stehen zwischen hohen Bäumen.\n"


@pytest.fixture(autouse=True)
def _hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def code(result: Result) -> str:
    assert isinstance(result.exception, RagkeelError), result.output
    return result.exception.code


def found(query: str, collection: str) -> int:
    out = run("search", query, "--mode", "bm25", "--collection", collection, "--json")
    assert out.exit_code == 0, out.output
    return len(json.loads(out.stdout)["hits"])


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "stadt.txt").write_text(GERMAN, encoding="utf-8")
    return folder


@pytest.mark.usefixtures("_isolated_home")
def test_ingest_in_german_then_reindex_an_english_collection(docs: Path) -> None:
    assert run("ingest", str(docs), "-c", "de", "--language", "german").exit_code == 0
    assert run("ingest", str(docs), "-c", "en").exit_code == 0
    listed = json.loads(run("collections", "list", "--json").stdout)
    assert (listed["de"]["language"], listed["en"]["language"]) == ("german", "english")
    table = run("collections", "list").stdout
    assert "language" in table and "german" in table
    assert (found("Haus", "de"), found("Haus", "en")) == (1, 0)

    assert code(run("ingest", str(docs), "-c", "de", "--language", "english")) == (
        "LANGUAGE_MISMATCH"
    )
    unknown = run("ingest", str(docs), "-c", "x", "--language", "klingon")
    assert code(unknown) == "LANGUAGE_UNSUPPORTED" and "german" in str(unknown.exception)

    moved = run("collections", "reindex", "en", "--language", "german")
    assert moved.exit_code == 0, moved.output
    assert "re-indexed en in german: 1 chunks" in moved.stdout
    assert found("Haus", "en") == 1
    assert run("ingest", str(docs), "-c", "en", "--language", "german").exit_code == 0
    assert code(run("collections", "reindex", "nope", "--language", "german")) == (
        "COLLECTION_NOT_FOUND"
    )


def test_copy_keeps_the_language(docs: Path, tmp_path: Path, _isolated_home: Path) -> None:
    assert run("ingest", str(docs), "-c", "de", "--language", "german").exit_code == 0
    copy_db = tmp_path / "copy" / "ragkeel.db"
    done = run(
        "collections",
        "copy",
        "--from",
        f"sqlite:{_isolated_home / 'ragkeel.db'}",
        "--to",
        f"sqlite:{copy_db}",
        "--quiet",
    )
    assert done.exit_code == 0, done.output
    copy = SqliteDocumentStore(copy_db)
    try:
        assert copy.collection_language("de") == "german"
        assert len(copy.keyword.search("Haus", 5)) == 1
    finally:
        copy.close()
