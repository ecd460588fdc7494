"""Storage protocols. The SQLite and PostgreSQL backends each implement all three over one
database so that a document, its chunks, its keyword postings and its vectors change in one
transaction. ``ManagedStore`` is what the container builds for ``storage.backend``.

Tenants and ACLs (issue 11, ``tenancy.py``): a document belongs to ``Document.tenant`` and is
visible to the ``Document.principals`` its ACL names (none: everyone in the tenant). Every call
that reads, searches or changes existing documents takes ``scope: AccessScope | None`` (None:
the default tenant with every principal, as before tenants) and treats what the scope may not
see as absent. Searches apply the scope inside the query, like filters.

A backend is done when it passes the contract suites ``ragkeel.testing.contracts.store``,
``keyword_index`` and ``vector_index``, run over every backend by
``tests/storage/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope, Chunk, Document, ScoredChunk


@dataclass(frozen=True, slots=True)
class StoredDocumentInfo:
    id: str
    source: str
    content_hash: str
    chunk_count: int
    principals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StoreStats:
    documents: int
    chunks: int
    collections: Mapping[str, int]  # collection -> chunk count
    embedding_model: str | None


class DocumentStore(Protocol):
    def document_info(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> StoredDocumentInfo | None: ...

    def upsert_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
        *,
        embedding_model: str | None = None,
    ) -> None:
        """Atomically replace the document and *all* its chunks, postings, vectors and ACL, in
        ``document.tenant``'s ``document.collection``.

        ``embedding_model`` is recorded per collection; vectors of another model are refused.
        """
        ...

    def delete_documents(
        self, collection: str, document_ids: Iterable[str], *, scope: AccessScope | None = None
    ) -> int:
        """Atomically remove documents with their chunks from every index; returns how many."""
        ...

    def relocate_document(
        self, collection: str, document_id: str, source: str, *, scope: AccessScope | None = None
    ) -> bool:
        """An unchanged document now comes from another source path; keep its rows."""
        ...

    def set_principals(
        self,
        collection: str,
        document_id: str,
        principals: Iterable[str],
        *,
        scope: AccessScope | None = None,
    ) -> bool:
        """Replace a document's ACL (empty: public in its tenant); the next search sees it."""
        ...

    def documents_by_source(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> Mapping[str, Sequence[str]]:
        """source path -> ids of documents ingested from it (used by ``--prune``)."""
        ...

    def get_document(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> Document | None: ...

    def get_chunks(
        self, chunk_ids: Sequence[str], *, scope: AccessScope | None = None
    ) -> Mapping[str, Chunk]: ...

    def stats(self, *, scope: AccessScope | None = None) -> StoreStats: ...

    def close(self) -> None: ...


class KeywordIndex(Protocol):
    def search(
        self,
        query: str,
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
    ) -> list[ScoredChunk]:
        """BM25 top-``k`` chunk ids for ``query`` among chunks that pass ``flt`` and ``scope``."""
        ...


class VectorIndex(Protocol):
    def search(
        self,
        vector: npt.NDArray[np.float32],
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
    ) -> list[ScoredChunk]:
        """Cosine top-``k`` (vectors are L2-normalised) among chunks that pass ``flt`` and
        ``scope``."""
        ...


class ManagedStore(DocumentStore, Protocol):
    """What the container builds for ``storage.backend`` (SQLite or PostgreSQL, issue 13): a
    store with its two search indexes and the operator's bookkeeping."""

    @property
    def keyword(self) -> KeywordIndex: ...

    @property
    def vectors(self) -> VectorIndex: ...

    def tenants(self) -> list[str]:
        """Every tenant that owns a collection (operator bookkeeping, never a request's answer)."""
        ...

    def collections(self, *, scope: AccessScope | None = None) -> dict[str, dict[str, object]]:
        """The scope tenant's collections by name, with their model and counts."""
        ...

    def drop_collection(self, collection: str, *, scope: AccessScope | None = None) -> int: ...

    def check_integrity(self) -> list[str]: ...
