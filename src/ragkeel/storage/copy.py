"""Copying collections between stores without re-embedding (issue 13): ``ragkeel collections
copy --from sqlite:PATH --to postgres:URL``.

Written on the storage Protocols only: the source's ``iter_documents`` reads a collection back
a batch of documents at a time (memory stays bounded by a batch), with each document's ACL,
metadata, content hash, chunks and vectors; the target's ``upsert_document`` writes each one in
its own transaction, recording the source collection's embedding model. So either backend can
be either end, and the target keeps its own guarantees (a document is all there or not at all).

- Idempotent: a document the target already holds with the same content hash, source, ACL and
  chunk count is left alone, so running the copy again writes nothing, and a copy that was
  interrupted resumes where it stopped. A changed document is replaced whole.
- A copy, not a sync: documents the target has and the source lacks are kept.
- Before anything is written, a target collection indexed with another embedding model (or
  dimension) is refused (``EMBEDDING_MODEL_MISMATCH``); a collection the source tenant does not
  have is ``COLLECTION_NOT_FOUND``; so is a target collection whose keyword index is in
  another language than the source's (``LANGUAGE_MISMATCH``, issue 15). A new target collection
  is created in the source's language, so its postings are analysed as the source's were.
- Every document is read with the tenant operator's scope (all principals), so restricted
  documents travel with their ACL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ragkeel.errors import CollectionNotFoundError, EmbeddingModelMismatchError
from ragkeel.languages import language_mismatch
from ragkeel.storage.base import CollectionCatalog, DocumentStore, StoredDocument
from ragkeel.types import AccessScope


class CopyStore(DocumentStore, CollectionCatalog, Protocol):
    """Either end of a copy: a document store that can list its tenants and collections."""


@dataclass(slots=True)
class CopyProgress:
    """How far the copy of one collection is; handed to the progress callback per batch."""

    tenant: str
    collection: str
    total: int  # documents in the source collection when the copy started
    seen: int = 0
    written: int = 0  # documents written to the target
    unchanged: int = 0  # documents the target already held as they are
    chunks: int = 0  # chunks written
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def line(self) -> str:
        rate = self.chunks / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{self.tenant}/{self.collection}: {self.seen}/{self.total} documents, "
            f"{self.written} written, {self.unchanged} unchanged, {self.chunks} chunks "
            f"({rate:,.0f} chunks/s)"
        )


ProgressFn = Callable[[CopyProgress], None]


def copy_collections(
    source: CopyStore,
    target: CopyStore,
    *,
    tenants: Iterable[str],
    collection: str | None = None,
    batch_size: int = 256,
    progress: ProgressFn | None = None,
) -> list[CopyProgress]:
    """Copy ``collection`` (every collection when None) of each of ``tenants`` from ``source``
    to ``target``; one finished ``CopyProgress`` per collection copied."""
    plan: list[tuple[str, str, int]] = []
    for tenant in tenants:
        scope = AccessScope(tenant, all_principals=True)
        found = source.collections(scope=scope)
        names = [collection] if collection is not None else sorted(found)
        for name in names:
            if name not in found:
                raise CollectionNotFoundError(
                    f"the source has no collection {name!r} in tenant {tenant!r}",
                    hint="`ragkeel collections list` shows them; --tenant picks the tenant",
                )
            _check_models(source, target, name, scope)
            _check_language(source, target, name, scope)
            plan.append((tenant, name, int(str(found[name]["documents"]))))
    return [
        copy_collection(
            source,
            target,
            name,
            AccessScope(tenant, all_principals=True),
            total,
            batch_size,
            progress,
        )
        for tenant, name, total in plan
    ]


def copy_collection(
    source: DocumentStore,
    target: DocumentStore,
    collection: str,
    scope: AccessScope,
    total: int,
    batch_size: int,
    progress: ProgressFn | None,
) -> CopyProgress:
    model = _check_models(source, target, collection, scope)
    language = _check_language(source, target, collection, scope)
    state = CopyProgress(scope.tenant, collection, total)
    for stored in source.iter_documents(collection, scope=scope, batch_size=batch_size):
        state.seen += 1
        if _unchanged(target, stored, scope):
            state.unchanged += 1
        else:
            target.upsert_document(
                stored.document,
                stored.chunks,
                stored.vectors,
                embedding_model=model,
                language=language,
            )
            state.written += 1
            state.chunks += len(stored.chunks)
        if progress is not None and state.seen % batch_size == 0:
            progress(state)
    if progress is not None:
        progress(state)
    return state


def _check_models(
    source: DocumentStore, target: DocumentStore, collection: str, scope: AccessScope
) -> str | None:
    """The source collection's embedding model, after checking the target can take it."""
    at_source = source.collection_model(collection, scope=scope)
    if at_source is None:
        raise CollectionNotFoundError(
            f"the source has no collection {collection!r} in tenant {scope.tenant!r}"
        )
    at_target = target.collection_model(collection, scope=scope)
    if at_target is None:
        return at_source[0]
    (model, dim), (their_model, their_dim) = at_source, at_target
    if (their_model is not None and model is not None and their_model != model) or (
        their_dim and dim and their_dim != dim
    ):
        raise EmbeddingModelMismatchError(
            f"collection {collection!r} of tenant {scope.tenant!r} is indexed with {model} "
            f"({dim} dims) at the source but {their_model} ({their_dim} dims) at the target",
            hint="copy into another collection name, drop it at the target, or re-embed one "
            "side first (`ragkeel collections reembed`)",
        )
    return model


def _check_language(
    source: DocumentStore, target: DocumentStore, collection: str, scope: AccessScope
) -> str | None:
    """The source collection's keyword language, after checking the target can take it."""
    language = source.collection_language(collection, scope=scope)
    theirs = target.collection_language(collection, scope=scope)
    if language is not None and theirs is not None and theirs != language:
        raise language_mismatch(collection, theirs, language)
    return language


def _unchanged(target: DocumentStore, stored: StoredDocument, scope: AccessScope) -> bool:
    doc = stored.document
    info = target.document_info(doc.collection, doc.id, scope=scope)
    return (
        info is not None
        and info.content_hash == doc.content_hash
        and info.source == doc.source
        and info.principals == doc.principals
        and info.chunk_count == len(stored.chunks)
    )
