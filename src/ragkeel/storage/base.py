"""Storage protocols. The SQLite and PostgreSQL backends each implement all three over one
database so that a document, its chunks, its keyword postings and its vectors change in one
transaction. ``ManagedStore`` is what the container builds for ``storage.backend``.

Tenants and ACLs (issue 11, ``tenancy.py``): a document belongs to ``Document.tenant`` and is
visible to the ``Document.principals`` its ACL names (none: everyone in the tenant). Every call
that reads, searches or changes existing documents takes ``scope: AccessScope | None`` (None:
the default tenant with every principal, as before tenants) and treats what the scope may not
see as absent. Searches apply the scope inside the query, like filters.

Moving and re-embedding collections (issue 13): ``iter_documents`` reads a collection back
in batches, with its chunks and vectors, for ``storage/copy.py`` to write through another
store's ``upsert_document``; ``IndexVersions`` builds a collection's vectors for a new
embedding model alongside the live ones and switches to them in one transaction
(``ingestion/reembed.py`` drives it).

Revisions (issue 14): ``revision`` names the state of a tenant's collection (or of all its
collections) as an opaque string that every write which can change an answer replaces —
upsert, delete, relocate, an ACL change, an index version's switch, a drop (and a re-created
collection never repeats an old value). It is read from the database on each call (one indexed
row per collection), so replicas and workers that share the database agree without any
in-process counter; the answer cache keys on it (``caching/keys.py``).

Languages (issue 15): each collection records the language its keyword index was built with
(``collection_language``); postings are written and queries analysed with that language's
analyzer (``storage/analyzer.py``), a write in another language is refused
(``LANGUAGE_MISMATCH``), and ``reindex_keywords`` moves a collection to another language.

A backend is done when it passes the contract suites ``ragkeel.testing.contracts.store``,
``keyword_index``, ``vector_index``, ``index_versions``, ``revisions`` and ``languages``, run
over every backend by ``tests/storage/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document as stored, with its chunks in order and their vectors (one row per chunk)."""

    document: Document
    chunks: Sequence[Chunk]
    vectors: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class IndexVersion:
    """One version of a collection's vector index: the model its vectors come from."""

    version: int
    embedding_model: str | None
    dimension: int


EmbedFn = Callable[[Sequence[Chunk]], npt.NDArray[np.float32]]  # chunks -> their vectors


@dataclass(frozen=True, slots=True)
class PendingChunk:
    """A chunk still without a vector in a version being built; ``ref`` names its stored row
    (a replaced chunk is a new row, so a vector is never attached to text it was not made of)."""

    ref: int
    chunk: Chunk


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
        language: str | None = None,
    ) -> None:
        """Atomically replace the document and *all* its chunks, postings, vectors and ACL, in
        ``document.tenant``'s ``document.collection``.

        ``embedding_model`` is recorded per collection; vectors of another model are refused.
        ``language``: the keyword analyzer's; a new collection is created in it (None:
        English), an existing one refuses another (``LANGUAGE_MISMATCH``; None: its own).
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

    def iter_documents(
        self, collection: str, *, scope: AccessScope | None = None, batch_size: int = 256
    ) -> Iterator[StoredDocument]:
        """Every document of the scope tenant's ``collection`` that ``scope`` sees, in document
        id order, with its ACL, chunks and vectors; read ``batch_size`` documents at a time
        (each batch one consistent snapshot), so memory stays bounded by a batch."""
        ...

    def collection_model(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> tuple[str | None, int] | None:
        """(embedding model, dimension) of the scope tenant's ``collection``; None if absent."""
        ...

    def collection_language(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> str | None:
        """The language of the scope tenant's ``collection``'s keyword index; None if absent."""
        ...

    def revision(self, collection: str | None, *, scope: AccessScope | None = None) -> str:
        """The current revision of the scope tenant's ``collection`` (None: of all the
        tenant's collections, what a question without a collection searches); any write that
        can change an answer changes it (see the module docstring). Cheap: read per request."""
        ...

    def close(self) -> None: ...


class CollectionCatalog(Protocol):
    """What exists, for operator tools (copy, re-embed, metrics) and the caller's own model
    listing (``GET /v1/models``, within its tenant), never for answering a request."""

    def tenants(self) -> list[str]:
        """Every tenant that owns a collection (operator bookkeeping, never a request's answer)."""
        ...

    def collections(self, *, scope: AccessScope | None = None) -> dict[str, dict[str, object]]:
        """The scope tenant's collections by name: ``embedding_model``, ``dimension``,
        ``documents``, ``chunks`` (all ACLs), ``language`` (the keyword index's)."""
        ...


class IndexVersions(Protocol):
    """A collection's vector index in versions: one active version (what searches read), and
    at most one being built for another embedding model. Building never touches the active
    vectors; ``activate_version`` switches in one transaction once every chunk of the
    collection has a vector in the new version, and drops the old vectors. Chunks written
    while a version is built (with the active model) show up again in ``pending_chunks``."""

    def active_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        """The version searches read (None: no such collection)."""
        ...

    def building_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        """The version being built, if any."""
        ...

    def begin_version(
        self,
        collection: str,
        embedding_model: str,
        dimension: int,
        *,
        scope: AccessScope | None = None,
    ) -> IndexVersion:
        """Start building a version for ``embedding_model`` (the one under way when it is for
        the same model and dimension: a build resumes; another one is abandoned)."""
        ...

    def pending_chunks(
        self,
        collection: str,
        version: int,
        *,
        limit: int,
        after: int = 0,
        scope: AccessScope | None = None,
    ) -> list[PendingChunk]:
        """Up to ``limit`` chunks of the collection with ``ref`` above ``after`` that have no
        vector in ``version`` yet, by ``ref`` (a chunk written later has a higher ``ref``, so
        a build pages with ``after`` and a last pass from 0 finds nothing it missed)."""
        ...

    def put_version_vectors(
        self,
        collection: str,
        version: int,
        refs: Sequence[int],
        vectors: npt.NDArray[np.float32],
        *,
        scope: AccessScope | None = None,
    ) -> int:
        """Store vectors of ``version`` for the chunk rows ``refs``; rows gone meanwhile are
        skipped. Returns how many were stored."""
        ...

    def activate_version(
        self,
        collection: str,
        version: int,
        *,
        embed: EmbedFn | None = None,
        max_pending: int = 256,
        scope: AccessScope | None = None,
    ) -> bool:
        """Atomically make ``version`` the active one once every chunk has a vector in it;
        the previous version's vectors are dropped. Chunks still pending (written since the
        caller's last pass) are embedded with ``embed`` inside the switch, while writes to the
        collection wait, if there are at most ``max_pending`` of them: so a collection that is
        written to all the time still switches. False (nothing changed) otherwise."""
        ...

    def abandon_version(
        self, collection: str, version: int, *, scope: AccessScope | None = None
    ) -> bool:
        """Drop a version under construction; the active one is untouched."""
        ...


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
        model: str | None = None,
    ) -> list[ScoredChunk]:
        """Cosine top-``k`` (vectors are L2-normalised) among chunks that pass ``flt`` and
        ``scope``. With ``model`` (the query's embedding model), only collections whose active
        index version is of that model are searched: a query vector of one model compared
        with another's vectors means nothing. A named collection of another model, or a
        tenant none of whose collections is of it, is ``EmbeddingModelMismatchError``
        (issue 15; ``storage/query_models.py``)."""
        ...


class ManagedStore(DocumentStore, CollectionCatalog, IndexVersions, Protocol):
    """What the container builds for ``storage.backend`` (SQLite or PostgreSQL, issue 13): a
    store with its two search indexes, the operator's bookkeeping (``CollectionCatalog``) and
    its index versions."""

    @property
    def keyword(self) -> KeywordIndex: ...

    @property
    def vectors(self) -> VectorIndex: ...

    def drop_collection(self, collection: str, *, scope: AccessScope | None = None) -> int: ...

    def reindex_keywords(
        self, collection: str, language: str, *, scope: AccessScope | None = None
    ) -> int:
        """Re-analyse every chunk of the scope tenant's ``collection`` in ``language`` and make
        it the collection's, in one transaction (searches see the old index or the new one,
        never a mix; the revision changes); returns the chunks re-analysed. Vectors are kept."""
        ...

    def check_integrity(self) -> list[str]: ...
