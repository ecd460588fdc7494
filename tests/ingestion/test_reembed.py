"""Re-embedding without downtime (issue 13) on both real stores (SQLite, and PostgreSQL on the
``postgres_url`` fixture's server): a collection moves to another embedding model while another
handle searches it and a writer keeps ingesting with the old model; no search ever sees a mix
of the two versions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragkeel.embeddings.base import Matrix, Vector
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import CollectionNotFoundError, EmbeddingModelMismatchError
from ragkeel.ingestion.reembed import ReembedProgress, reembed_collection
from ragkeel.storage.base import ManagedStore
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import AccessScope, Chunk, Document

HALF = 32  # each model writes in its own half of 64 dimensions, with a marker axis


class HalfSpaceEmbedder:
    """A test model: hashing features in one half of the space plus a marker axis, so any
    stored vector tells which model made it (old: +axis 0, new: +axis 32). ``delay_s`` per
    batch makes a build take long enough for searches to run during it."""

    def __init__(self, half: int, delay_s: float = 0.0) -> None:
        self._half, self._delay = half, delay_s
        self._features = HashingEmbedder(HALF - 1)

    @property
    def name(self) -> str:
        return f"half-space-{self._half}"

    @property
    def dimension(self) -> int:
        return 2 * HALF

    @property
    def tokenizer(self) -> RegexTokenCounter:
        return RegexTokenCounter()

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        time.sleep(self._delay)
        out = np.zeros((len(texts), 2 * HALF), np.float32)
        start = self._half * HALF
        out[:, start] = 1.0
        out[:, start + 1 : start + HALF] = self._features.embed_documents(texts)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row


OLD, NEW = HalfSpaceEmbedder(0), HalfSpaceEmbedder(1, delay_s=0.01)
# scores +0.5 against every old vector's marker, -0.5 against every new one's
PROBE = np.zeros(2 * HALF, np.float32)
PROBE[0], PROBE[HALF] = 1 / np.sqrt(2), -1 / np.sqrt(2)


def write(store: ManagedStore, i: int, embedder: HalfSpaceEmbedder = OLD) -> None:
    text = f"document number {i} about topic {i % 7}"
    doc = Document(f"d{i}", "c", f"/src/d{i}.txt", f"D{i}", text, f"hash-{i}")
    chunk = Chunk(f"c-d{i}", doc.id, "c", 0, text, 0, len(text), title=doc.title)
    vectors = embedder.embed_documents([chunk.index_text()])
    store.upsert_document(doc, [chunk], vectors, embedding_model=embedder.name)


def versions_seen(store: ManagedStore) -> set[str]:
    """Which models' vectors one search sees ({'old'}, {'new'}; both would be a mixed index)."""
    hits = store.vectors.search(PROBE, 10_000)
    return {"old" if h.score > 0 else "new" for h in hits}


Opener = Callable[[], ManagedStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new handle on one fresh store each call."""
    if request.param == "sqlite":
        return lambda: SqliteDocumentStore(tmp_path / "store.db")
    from ragkeel.storage.postgres import PostgresDocumentStore

    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresDocumentStore(url, pool_size=2)


def test_queries_during_a_rebuild_see_one_version_and_writes_go_on(open_store: Opener) -> None:
    store = open_store()
    for i in range(300):
        write(store, i)
    searcher = open_store()  # another handle: a replica serving queries
    writer = open_store()  # ingestion with the old model, going on meanwhile
    seen: list[tuple[float, set[str]]] = []
    stop = threading.Event()
    written_during = [0]
    refused = threading.Event()

    def search() -> None:
        for _ in range(100_000):
            if stop.is_set():
                return
            seen.append((time.perf_counter(), versions_seen(searcher)))

    def ingest() -> None:
        for i in range(300, 1_300):
            if stop.is_set():
                return
            try:
                write(writer, i)
            except EmbeddingModelMismatchError:
                refused.set()  # the switch happened: the old model is refused from now on
                return
            written_during[0] += 1
            time.sleep(0.002)

    building: list[float] = []

    def progress(state: ReembedProgress) -> None:
        if not building:
            building.append(time.perf_counter())

    threads = [threading.Thread(target=search), threading.Thread(target=ingest)]
    try:
        for t in threads:
            t.start()
        done = reembed_collection(store, NEW, "c", batch_size=16, progress=progress)
        switched_at = time.perf_counter()
        time.sleep(0.2)  # searches after the switch
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        assert done.switched and done.embedded >= 300 and done.version == 2
        assert all(len(versions) == 1 for _, versions in seen)  # never a mixed index
        order = [next(iter(v)) for _, v in seen]
        first_new = order.index("new")
        assert set(order[:first_new]) == {"old"} and set(order[first_new:]) == {"new"}
        during = [v for t, v in seen if building[0] < t < switched_at]
        assert len(during) >= 5 and {"old"} in during  # searches ran while it was half built
        assert written_during[0] > 0  # the writer was not blocked by the build
        assert searcher.collection_model("c") == (NEW.name, NEW.dimension)
        assert versions_seen(store) == {"new"} and store.check_integrity() == []
        chunks = store.stats().chunks
        assert chunks == 300 + written_during[0]
        assert len(store.vectors.search(PROBE, 10_000)) == chunks  # all on the new model
        # the new model finds its own documents
        hit = store.vectors.search(NEW.embed_query("document number 42 about topic 0"), 1)
        assert hit[0].chunk_id == "c-d42"
    finally:
        for s in (store, searcher, writer):
            s.close()


def test_a_collection_on_the_model_already_is_left_alone(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "store.db")
    try:
        for i in range(3):
            write(store, i)
        done = reembed_collection(store, OLD, "c")
        assert done.current and not done.switched and done.embedded == 0
        assert store.building_version("c") is None
        forced = reembed_collection(store, OLD, "c", force=True)
        assert forced.switched and forced.embedded == 3 and forced.version == 2
        with pytest.raises(CollectionNotFoundError):
            reembed_collection(store, NEW, "missing")
        with pytest.raises(CollectionNotFoundError):  # the collection is the default tenant's
            reembed_collection(store, NEW, "c", scope=AccessScope("other", all_principals=True))
    finally:
        store.close()


def test_an_interrupted_build_resumes(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "store.db")
    try:
        for i in range(40):
            write(store, i)
        calls = [0]

        def interrupt(state: ReembedProgress) -> None:
            calls[0] += 1
            if calls[0] == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            reembed_collection(store, NEW, "c", batch_size=8, progress=interrupt)
        assert versions_seen(store) == {"old"}
        build = store.building_version("c")
        assert build is not None
        done = reembed_collection(store, NEW, "c", batch_size=8)
        assert done.version == build.version and done.embedded == 40 - 16
        assert versions_seen(store) == {"new"}
    finally:
        store.close()
