"""Copying collections between stores without re-embedding (issue 13): SQLite to SQLite, SQLite
to PostgreSQL and back (the ``postgres_url`` fixture's server). Also the store names the
command line takes (``storage/locations.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeel.errors import (
    CollectionNotFoundError,
    EmbeddingModelMismatchError,
    LanguageMismatchError,
    StoreLocationError,
)
from ragkeel.storage.copy import CopyProgress, CopyStore, copy_collections
from ragkeel.storage.locations import StoreLocation, open_location, parse_location
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.testing.contracts.store import (
    DIM,
    EMBEDDING_MODEL,
    ids,
    make_doc,
    put,
    unit,
)
from ragkeel.types import AccessScope

A = AccessScope("tenant-a", all_principals=True)


def fill(store: CopyStore) -> None:
    """Two tenants, two collections, ACLs, metadata, documents of several chunks."""
    for i in range(25):
        principals = frozenset({"hr"}) if i % 5 == 0 else frozenset()
        texts = [f"alpha {i} words", f"beta {i} more"][: 1 + i % 2]
        doc, chunks = make_doc(
            f"d{i:02}",
            texts,
            metadata={"n": i, "lang": "en"},
            principals=principals,
            tenant="tenant-a",
        )
        put(store, doc, chunks, axis=i)
    put(store, *make_doc("k1", ["kappa text"], collection="k", tenant="tenant-a"))
    put(store, *make_doc("b1", ["bravo text"], tenant="tenant-b"))


def snapshot(store: CopyStore, scope: AccessScope, collection: str = "c") -> list[object]:
    return [
        (s.document, list(s.chunks), s.vectors.tolist())
        for s in store.iter_documents(collection, scope=scope)
    ]


def open_store(kind: str, request: pytest.FixtureRequest, path: Path) -> CopyStore:
    if kind == "sqlite":
        return SqliteDocumentStore(path / "ragkeel.db")
    url = request.getfixturevalue("postgres_url")
    return open_location(parse_location(url), must_exist=False)  # a fresh database: migrated


@pytest.fixture(params=["sqlite>sqlite", "sqlite>postgres", "postgres>sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CopyStore, CopyStore]]:
    source_kind, target_kind = request.param.split(">")
    source = open_store(source_kind, request, tmp_path / "a")
    target = open_store(target_kind, request, tmp_path / "b")
    yield source, target
    source.close()
    target.close()


def test_a_copy_keeps_everything_and_searches_alike(
    stores: tuple[CopyStore, CopyStore],
) -> None:
    source, target = stores
    fill(source)
    lines: list[str] = []
    done = copy_collections(
        source,
        target,
        tenants=["tenant-a"],
        batch_size=4,
        progress=lambda p: lines.append(p.line()),
    )
    assert [(d.collection, d.written, d.chunks) for d in done] == [("c", 25, 37), ("k", 1, 1)]
    assert snapshot(target, A) == snapshot(source, A)
    assert target.collection_model("c", scope=A) == (EMBEDDING_MODEL, DIM)
    assert target.tenants() == ["tenant-a"]  # tenant-b was not asked for
    hr = AccessScope("tenant-a", frozenset({"hr"}))
    staff = AccessScope("tenant-a", frozenset({"staff"}))
    for scope in (A, hr, staff):
        for query in ("alpha 3", "beta words"):
            assert ids(target.keyword.search(query, 10, scope=scope)) == ids(
                source.keyword.search(query, 10, scope=scope)
            )
        got = target.vectors.search(unit(5), 10, scope=scope)
        want = source.vectors.search(unit(5), 10, scope=scope)
        assert [round(h.score, 5) for h in got] == [round(h.score, 5) for h in want]
        assert ids(got)[:1] == ids(want)[:1]  # the rest tie at 0, in each backend's order
    assert "d00" not in {d.document.id for d in target.iter_documents("c", scope=staff)}
    assert len(lines) >= 25 // 4 and lines[-1].startswith("tenant-a/k: 1/1 documents")
    assert target.check_integrity() == []


def test_copying_again_writes_nothing_and_changes_travel(
    stores: tuple[CopyStore, CopyStore],
) -> None:
    source, target = stores
    fill(source)
    copy_collections(source, target, tenants=["tenant-a", "tenant-b"])
    again = copy_collections(source, target, tenants=["tenant-a", "tenant-b"])
    assert sum(d.written for d in again) == 0 and sum(d.unchanged for d in again) == 27
    doc, chunks = make_doc("d03", ["changed text"], version="v2", tenant="tenant-a")
    put(source, doc, chunks, axis=3)
    assert source.set_principals("c", "d04", ["board"], scope=A)
    assert source.relocate_document("c", "d05", "/moved.txt", scope=A)
    (third,) = copy_collections(source, target, tenants=["tenant-a"], collection="c")
    assert (third.written, third.unchanged) == (3, 22)
    assert snapshot(target, A) == snapshot(source, A)
    assert target.get_chunks(["c-d03-v1-0"], scope=A) == {}  # the old version is gone


def test_an_embedding_model_mismatch_is_refused_before_writing(
    stores: tuple[CopyStore, CopyStore],
) -> None:
    source, target = stores
    fill(source)
    doc, chunks = make_doc("x", ["other model"], tenant="tenant-a", collection="k")
    target.upsert_document(doc, chunks, np.stack([unit(0)]), embedding_model="another-model")
    with pytest.raises(EmbeddingModelMismatchError) as err:
        copy_collections(source, target, tenants=["tenant-a"])
    assert err.value.code == "EMBEDDING_MODEL_MISMATCH"
    assert target.collections(scope=A).keys() == {"k"}  # "c" comes first: not written either
    with pytest.raises(CollectionNotFoundError):
        copy_collections(source, target, tenants=["tenant-a"], collection="nope")
    with pytest.raises(CollectionNotFoundError):
        copy_collections(source, target, tenants=["tenant-c"], collection="c")


def test_the_language_is_copied_and_a_mismatch_refused_before_writing(
    stores: tuple[CopyStore, CopyStore],
) -> None:
    source, target = stores
    doc, chunks = make_doc("g", ["Die alten Häuser"], tenant="tenant-a", collection="de")
    source.upsert_document(
        doc, chunks, np.stack([unit(0)]), embedding_model=EMBEDDING_MODEL, language="german"
    )
    fill(source)
    put(target, *make_doc("x", ["english words"], tenant="tenant-a", collection="k"))
    target.reindex_keywords("k", "french", scope=A)
    with pytest.raises(LanguageMismatchError) as err:
        copy_collections(source, target, tenants=["tenant-a"])
    assert err.value.code == "LANGUAGE_MISMATCH"
    assert target.collections(scope=A).keys() == {"k"}  # "c" and "de" are not written either
    copy_collections(source, target, tenants=["tenant-a"], collection="de")
    assert target.collection_language("de", scope=A) == "german"
    assert ids(target.keyword.search("Haus", 5, scope=A)) == [chunks[0].id]


def test_progress_counts(stores: tuple[CopyStore, CopyStore]) -> None:
    source, target = stores
    fill(source)
    states: list[tuple[int, int]] = []

    def record(p: CopyProgress) -> None:
        states.append((p.seen, p.total))

    copy_collections(source, target, tenants=["tenant-a"], collection="c", batch_size=10)
    copy_collections(
        source, target, tenants=["tenant-a"], collection="c", batch_size=10, progress=record
    )
    assert states == [(10, 25), (20, 25), (25, 25)]


def test_store_locations(tmp_path: Path) -> None:
    assert parse_location("sqlite:/x/r.db") == StoreLocation("sqlite", "/x/r.db")
    url = "postgresql://u:secret@127.0.0.1:5432/db"
    assert parse_location(f"postgres:{url}") == StoreLocation("postgres", url)
    assert parse_location(url) == StoreLocation("postgres", url)
    assert "secret" not in str(parse_location(url))
    for bad in ("", "/just/a/path.db", "sqlite:", "mysql://h/db", "postgres:/not/a/url"):
        with pytest.raises(StoreLocationError) as err:
            parse_location(bad)
        assert err.value.code == "STORE_LOCATION_INVALID"
    with pytest.raises(StoreLocationError, match="no SQLite store"):
        open_location(parse_location(f"sqlite:{tmp_path / 'missing.db'}"), must_exist=True)
    assert not (tmp_path / "missing.db").exists()  # a typo creates nothing
    with pytest.raises(StoreLocationError):
        open_location(parse_location(f"sqlite:{tmp_path}"), must_exist=False)
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    with pytest.raises(StoreLocationError):
        open_location(parse_location(f"sqlite:{tmp_path / 'notes.txt'}"), must_exist=True)
    created = open_location(parse_location(f"sqlite:{tmp_path / 'new.db'}"), must_exist=False)
    created.close()
