"""Moving a collection to another embedding model without downtime (issue 13):
``ragkeel collections reembed C``.

The store keeps the collection's vector index in versions (``storage/base.py``
``IndexVersions``; SQLite: ``storage/sqlite_versions.py``). Re-embedding builds a new version
for the configured embedder alongside the live one, a batch of chunks at a time, while the
collection keeps serving searches from the active version and keeps taking writes with the
active model; then it switches in one transaction and the old vectors are dropped:

1. ``begin_version(model, dimension)`` — or resume the build an interrupted run left;
2. page through ``pending_chunks`` (by ``ref``), embed each batch's ``index_text`` (what
   ingestion embeds) and ``put_version_vectors``;
3. ``activate_version``: chunks written meanwhile (up to a batch of them) are embedded inside
   the switch, while writes wait; more than that, and the next pass embeds them first
   (``max_passes``), so a collection written to all the time still switches.

Chunks are kept as they are (their boundaries were made with the old model's tokenizer); a
model that needs other chunk sizes means re-ingesting instead. Searches must embed queries with
the active version's model: run this with the new embedding settings, and restart the service
with them once it has switched (``collection_model`` says which model is active).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.base import Matrix as F32
from ragkeel.errors import CollectionNotFoundError, StorageError
from ragkeel.storage.base import CollectionCatalog, IndexVersions
from ragkeel.types import AccessScope, Chunk


class ReembedStore(IndexVersions, CollectionCatalog, Protocol):
    """A store with index versions that can count a collection's chunks."""


@dataclass(slots=True)
class ReembedProgress:
    collection: str
    embedding_model: str
    version: int = 0
    total: int = 0  # chunks in the collection when the run started
    embedded: int = 0
    embed_seconds: float = 0.0  # inside the embedder (the rest is the store's)
    passes: int = 0
    switched: bool = False  # the new version is active
    current: bool = False  # nothing to do: the collection already uses this model
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def line(self) -> str:
        rate = self.embedded / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{self.collection} -> {self.embedding_model} (version {self.version}): "
            f"{self.embedded}/{self.total} chunks embedded ({rate:,.0f} chunks/s)"
        )


ProgressFn = Callable[[ReembedProgress], None]


def reembed_collection(
    store: ReembedStore,
    embedder: Embedder,
    collection: str,
    *,
    scope: AccessScope | None = None,
    batch_size: int = 64,
    force: bool = False,
    max_passes: int = 10,
    progress: ProgressFn | None = None,
) -> ReembedProgress:
    """Build ``collection``'s index for ``embedder`` and switch to it (see the module doc).
    Without ``force`` a collection already on this model and dimension is left alone."""
    state = ReembedProgress(collection, embedder.name)
    active = store.active_version(collection, scope=scope)
    info = store.collections(scope=scope).get(collection)
    if active is None or info is None:
        raise CollectionNotFoundError(
            f"no collection {collection!r} to re-embed",
            hint="`ragkeel collections list` shows the collections",
        )
    if not force and (active.embedding_model, active.dimension) == (
        embedder.name,
        embedder.dimension,
    ):
        state.version, state.current = active.version, True
        return state
    state.total = int(str(info["chunks"]))
    build = store.begin_version(collection, embedder.name, embedder.dimension, scope=scope)
    state.version = build.version
    while state.passes < max_passes:
        state.passes += 1
        _embed_pending(
            store, embedder, collection, build.version, scope, batch_size, state, progress
        )
        if store.activate_version(
            collection,
            build.version,
            embed=lambda chunks: _embed(embedder, chunks, state, count=True),
            max_pending=batch_size,
            scope=scope,
        ):
            state.switched = True
            if progress is not None:
                progress(state)
            return state
    raise StorageError(
        f"collection {collection!r} kept changing during {max_passes} passes; its new "
        f"version {build.version} is not active yet",
        hint="run the command again when ingestion is quieter: it resumes the build",
    )


def _embed_pending(
    store: ReembedStore,
    embedder: Embedder,
    collection: str,
    version: int,
    scope: AccessScope | None,
    batch_size: int,
    state: ReembedProgress,
    progress: ProgressFn | None,
) -> None:
    after = 0
    while True:
        batch = store.pending_chunks(
            collection, version, limit=batch_size, after=after, scope=scope
        )
        if not batch:
            return
        vectors = _embed(embedder, [p.chunk for p in batch], state)
        state.embedded += store.put_version_vectors(
            collection, version, [p.ref for p in batch], vectors, scope=scope
        )
        after = batch[-1].ref
        if progress is not None:
            progress(state)


def _embed(
    embedder: Embedder, chunks: Sequence[Chunk], state: ReembedProgress, *, count: bool = False
) -> F32:
    """What ingestion embeds of each chunk (``index_text``), timed (and counted: ``count``,
    for the chunks the switch embeds itself)."""
    t0 = time.perf_counter()
    vectors = embedder.embed_documents([c.index_text() for c in chunks])
    state.embed_seconds += time.perf_counter() - t0
    if count:
        state.embedded += len(chunks)
    return vectors
