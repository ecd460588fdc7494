"""``ragkeel collections copy`` and ``reembed`` (issue 13), run in process on the real app:
ingest with the hashing embedder, copy the home's store to another file, search the copy,
re-embed it with another model; bad input ends with its stable code. Issue 15: ``ingest
--language``, the language in ``collections list``, ``collections reindex --language``, and a
copy keeping the language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ragkeel.cli.main import app
from ragkeel.errors import RagkeelError
from ragkeel.storage.sqlite import SqliteDocumentStore


@pytest.fixture(autouse=True)
def _hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def code(result: Result) -> str:
    assert isinstance(result.exception, RagkeelError), result.output
    return result.exception.code


def test_copy_then_reembed_the_copy(
    tmp_path: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# API keys\n\nRotate an API key by creating a new key.\n")
    (docs / "outage.txt").write_text("Postmortem\n\nThe upstream provider was down.\n")
    assert run("ingest", str(docs), "--collection", "kb").exit_code == 0
    home_db, copy_db = _isolated_home / "ragkeel.db", tmp_path / "copy" / "ragkeel.db"
    args = ("collections", "copy", "--from", f"sqlite:{home_db}", "--to", f"sqlite:{copy_db}")
    done = run(*args, "--batch-size", "1")
    assert done.exit_code == 0, done.output
    assert "2 documents (2 chunks) written, 0 unchanged" in done.stdout
    assert "default/kb: 1/2 documents" in done.stderr  # a progress line per batch
    again = run(*args, "--quiet")
    assert "0 documents (0 chunks) written, 2 unchanged" in again.stdout and not again.stderr

    assert (
        code(
            run(
                "collections",
                "copy",
                "--from",
                f"sqlite:{tmp_path / 'typo.db'}",
                "--to",
                f"sqlite:{copy_db}",
            )
        )
        == "STORE_LOCATION_INVALID"
    )
    assert code(run(*args, "--collection", "nope")) == "COLLECTION_NOT_FOUND"

    monkeypatch.setenv("RAGKEEL_STORAGE__PATH", str(copy_db))
    monkeypatch.setenv("RAGKEEL_EMBEDDING__HASHING_DIMENSION", "128")
    moved = run("collections", "reembed", "kb")
    assert moved.exit_code == 0, moved.output
    assert "switched kb to hashing-128 (version 2): 2 chunks embedded" in moved.stdout
    assert "kb -> hashing-128 (version 2): 2/2 chunks embedded" in moved.stderr
    assert "already uses hashing-128" in run("collections", "reembed", "kb").stdout
    listed = json.loads(run("collections", "list", "--json").stdout)
    assert listed["kb"]["embedding_model"] == "hashing-128" and listed["kb"]["dimension"] == 128
    dense = run("search", "rotate api key", "--mode", "dense", "--k", "1", "--json")
    assert json.loads(dense.stdout)["hits"][0]["chunk"]["source"].endswith("keys.md")
    assert code(run(*args)) == "EMBEDDING_MODEL_MISMATCH"  # the home's kb is on hashing-384


def test_copy_to_postgres_then_reembed_there(
    tmp_path: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# API keys\n\nRotate an API key by creating a new key.\n")
    (docs / "outage.txt").write_text("Postmortem\n\nThe upstream provider was down.\n")
    assert run("ingest", str(docs), "--collection", "kb").exit_code == 0
    home_db = _isolated_home / "ragkeel.db"
    to_pg = (
        "collections",
        "copy",
        "--from",
        f"sqlite:{home_db}",
        "--to",
        f"postgres:{postgres_url}",
    )
    done = run(*to_pg)
    assert done.exit_code == 0, done.output
    assert "2 documents (2 chunks) written" in done.stdout and "**" in done.stdout  # user masked
    assert "0 documents (0 chunks) written, 2 unchanged" in run(*to_pg).stdout
    back = tmp_path / "back" / "ragkeel.db"
    assert (
        run("collections", "copy", "--from", postgres_url, "--to", f"sqlite:{back}").exit_code == 0
    )

    monkeypatch.setenv("RAGKEEL_STORAGE__BACKEND", "postgres")
    monkeypatch.setenv("RAGKEEL_STORAGE__POSTGRES__URL", postgres_url)
    found = run("search", "rotate api key", "--k", "1", "--json")
    assert json.loads(found.stdout)["hits"][0]["chunk"]["source"].endswith("keys.md")
    monkeypatch.setenv("RAGKEEL_EMBEDDING__HASHING_DIMENSION", "128")
    moved = run("collections", "reembed", "kb")
    assert "switched kb to hashing-128 (version 2): 2 chunks embedded" in moved.stdout
    dense = run("search", "rotate api key", "--mode", "dense", "--k", "1", "--json")
    assert json.loads(dense.stdout)["hits"][0]["chunk"]["source"].endswith("keys.md")
    assert code(run(*to_pg)) == "EMBEDDING_MODEL_MISMATCH"  # the SQLite kb is on hashing-384


GERMAN = "Die alten Häuser der Stadt stehen zwischen hohen Bäumen.\n"


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
