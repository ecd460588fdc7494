"""Wiring: builds every component from one ``Settings``. The only place that knows which
backend implements which protocol. Components are created lazily: ``config show`` needs no
database, ``search --mode bm25`` needs no embedding model."""

from __future__ import annotations

from functools import cached_property

from ragkeel.embeddings import build_embedder
from ragkeel.embeddings.base import Embedder
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import Settings
from ragkeel.storage.sqlite import SqliteDocumentStore


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> SqliteDocumentStore:
        s = self.settings
        return SqliteDocumentStore(
            s.database_path,
            bm25_k1=s.retrieval.bm25_k1,
            bm25_b=s.retrieval.bm25_b,
            busy_timeout_ms=s.storage.busy_timeout_ms,
        )

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings)

    @cached_property
    def chunker(self) -> Chunker:
        ing = self.settings.ingestion
        return Chunker(self.embedder.tokenizer, ing.chunk_tokens, ing.chunk_overlap)

    @cached_property
    def pipeline(self) -> IngestionPipeline:
        ing = self.settings.ingestion
        return IngestionPipeline(
            self.store,
            self.embedder,
            self.chunker,
            max_file_bytes=ing.max_file_bytes,
            embed_batch_chunks=ing.embed_batch_chunks,
        )

    @cached_property
    def retriever(self) -> HybridRetriever:
        r = self.settings.retrieval
        return HybridRetriever(
            self.store,
            self.store.keyword,
            self.store.vectors,
            self.embedder,
            fusion=r.fusion,
            rrf_k=r.rrf_k,
            keyword_weight=r.keyword_weight,
            dense_weight=r.dense_weight,
            candidates=r.candidates,
        )

    def close(self) -> None:
        if "retriever" in self.__dict__:
            self.retriever.close()
        if "store" in self.__dict__:
            self.store.close()
