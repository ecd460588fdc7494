"""The document flow: source → parse → clean → hash (skip unchanged) → chunk → embed (batched
across documents) → one transaction per document → prune what the source no longer has.

With ``parse_workers`` >= 1 (``ingestion.parse_workers``, default "auto": half the cores) and
two PDF or DOCX files or more, files are parsed in that many worker processes, a few files
ahead, while this process chunks, embeds and writes the files before them (``parallel.py``);
everything after parsing (change detection, embedding, the store writes) stays here, in file order, so
the result is the same as parsing here one file after the other.

A failure is isolated to its file (or record) and recorded with its stable error code; a
document is written whole or not at all. Each file is parsed within ``ParseLimits`` (inflated
size of ZIP formats, PDF pages, parse time: ``parsers/base.py``); symlinks leaving the given
roots are skipped unless ``follow_symlinks`` (``sources.py``). Skipped files are in the report
with status ``skipped`` and the reason's code (``UNSUPPORTED_TYPE``, ``SYMLINK_OUTSIDE_ROOT``).

Documents are written for a ``tenant`` (default ``DEFAULT_TENANT``: the CLI, auth off) with ACL
``principals`` (default none: public within the tenant). Change detection, relocation and
pruning happen within that tenant only (with every principal); re-ingesting an unchanged
document with other principals replaces its ACL without re-embedding it.

Languages (issue 15): a collection's keyword index is in one language. ``ingest(language=)``
names it (``--language``, an upload's ``language``): a new collection is created in it, an
existing one in another language is refused with ``LANGUAGE_MISMATCH`` before any file is read.
Without one, an existing collection keeps its own and a new one gets ``language`` (the
pipeline's default: ``retrieval.language``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragkeel.embeddings.base import Embedder
from ragkeel.errors import IngestError, RagkeelError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.parallel import parsed_in_order
from ragkeel.ingestion.parsers import SUPPORTED_SUFFIXES, ParseLimits, ParseOutcome
from ragkeel.ingestion.report import FileResult, IngestReport
from ragkeel.ingestion.sources import expand_sources
from ragkeel.languages import DEFAULT_LANGUAGE, check_language, language_mismatch
from ragkeel.storage.base import DocumentStore
from ragkeel.storage.tenancy import check_name, check_principals
from ragkeel.types import DEFAULT_TENANT, AccessScope, Chunk, Document, ParsedDocument

CHUNKER_VERSION = "2"  # bump when chunk boundaries or index_text change: forces re-embedding
ProgressFn = Callable[[str, FileResult | None, IngestReport], None]


@dataclass(frozen=True, slots=True)
class _Target:
    """Where an ingest writes: a tenant's collection, with the ACL its documents get."""

    collection: str
    scope: AccessScope  # the tenant, with every principal: the ingest sees all its documents
    principals: frozenset[str]
    language: str  # of the collection's keyword index


@dataclass(slots=True)
class _Pending:
    document: Document
    chunks: list[Chunk]
    result: FileResult
    language: str


class IngestionPipeline:
    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        chunker: Chunker,
        *,
        max_file_bytes: int,
        embed_batch_chunks: int = 64,
        limits: ParseLimits | None = None,
        parse_workers: int = 0,
        language: str = DEFAULT_LANGUAGE,
    ) -> None:
        """``language``: the keyword analyzer's for collections this creates without being
        told one."""
        self.store = store
        self.language = check_language(language)
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.limits = limits or ParseLimits()
        self.embed_batch_chunks = embed_batch_chunks
        self.parse_workers = parse_workers  # 0: parse in this process (parallel.py)
        self.signature = (
            f"chunker={CHUNKER_VERSION};tokens={chunker.max_tokens};overlap={chunker.overlap};"
            f"embedder={embedder.name}"
        )

    def ingest(
        self,
        arguments: Sequence[str],
        collection: str = "default",
        *,
        prune: bool = False,
        progress: ProgressFn | None = None,
        follow_symlinks: bool = False,
        tenant: str = DEFAULT_TENANT,
        principals: Iterable[str] = (),
        language: str | None = None,
    ) -> IngestReport:
        """Ingest files and folders into ``tenant``'s ``collection``; every document written
        gets ``principals`` as its ACL (none: public within the tenant). ``language``: the
        collection's keyword language (module docstring); a mismatch raises before any work."""
        scope = AccessScope(check_name("tenant", tenant), all_principals=True)
        target = _Target(
            collection,
            scope,
            check_principals(principals),
            self.language_of(collection, scope, language),
        )
        started = time.perf_counter()
        report = IngestReport(collection=collection)
        scan = expand_sources(list(arguments), SUPPORTED_SUFFIXES, follow_symlinks=follow_symlinks)
        for name, error in scan.errors:
            report.files.append(_failed(name, error))
        for path, reason in scan.skipped:
            skipped = FileResult(str(path), "skipped")
            skipped.failed_with(reason)
            report.files.append(skipped)
        notify = progress or (lambda *_: None)
        notify("start", None, report)
        pending: list[_Pending] = []
        parsed_files = parsed_in_order(
            scan.files,
            workers=self.parse_workers,
            max_bytes=self.max_file_bytes,
            limits=self.limits,
        )
        for path, parsed in parsed_files:  # workers parse the next files while this embeds
            result = FileResult(str(path), "ingested")
            report.files.append(result)
            buffered = sum(len(p.chunks) for p in pending)
            for item in self._prepare(path, parsed, target, prune, result, report):
                pending.append(item)
                buffered += len(item.chunks)
                if buffered >= self.embed_batch_chunks:
                    self._flush(pending, report)
                    pending, buffered = [], 0
                    notify("batch", result, report)
            notify("file", result, report)
        self._flush(pending, report)
        if prune:
            self._prune_missing(target, report)
        report.elapsed_seconds = time.perf_counter() - started
        notify("end", None, report)
        return report

    def language_of(self, collection: str, scope: AccessScope, language: str | None) -> str:
        """The language documents written into ``collection`` are analysed in: ``language``
        (checked against an existing collection's: ``LANGUAGE_MISMATCH``), else the
        collection's own, else the pipeline's default."""
        existing = self.store.collection_language(collection, scope=scope)
        if language is None:
            return existing or self.language
        wanted = check_language(language)
        if existing is not None and existing != wanted:
            raise language_mismatch(collection, existing, wanted)
        return wanted

    # -- per file ----------------------------------------------------------------------------
    def _prepare(
        self,
        path: Path,
        outcome: ParseOutcome | IngestError,
        target: _Target,
        prune: bool,
        result: FileResult,
        report: IngestReport,
    ) -> Iterator[_Pending]:
        """Yield one parsed file's new or changed documents, chunked, ready to embed."""
        if isinstance(outcome, IngestError):
            _fail(result, outcome)
            return
        for label, error in outcome.record_errors:
            result.record_errors.append({"record": label, **error.to_dict()})
        if outcome.record_errors:
            result.status = "partial"
        source = str(path)
        changed = 0
        seen: set[str] = set()
        for parsed in outcome.documents:
            doc_id = _document_id(parsed, source)
            seen.add(doc_id)
            document, chunks = self._build(parsed, doc_id, target, source)
            collection, scope = target.collection, target.scope
            stored = self.store.document_info(collection, doc_id, scope=scope)
            if stored is not None and stored.content_hash == document.content_hash:
                if stored.source != source:  # moved file: same content, new path
                    self.store.relocate_document(collection, doc_id, source, scope=scope)
                if stored.principals != target.principals:  # same content, new ACL
                    self.store.set_principals(collection, doc_id, target.principals, scope=scope)
                result.unchanged += 1
                report.documents_unchanged += 1
                continue
            changed += 1
            yield _Pending(document, chunks, result, target.language)
        if prune:
            by_source = self.store.documents_by_source(target.collection, scope=target.scope)
            gone = [d for d in by_source.get(source, ()) if d not in seen]
            report.documents_deleted += self.store.delete_documents(
                target.collection, gone, scope=target.scope
            )
        if not outcome.documents and not outcome.record_errors:
            result.status = "failed"
        elif result.status != "partial" and not changed and result.unchanged:
            result.status = "unchanged"

    def _build(
        self, parsed: ParsedDocument, doc_id: str, target: _Target, source: str
    ) -> tuple[Document, list[Chunk]]:
        collection = target.collection
        text, spans = self.chunker.chunk(parsed.title, parsed.blocks)
        digest = hashlib.sha256()
        for part in (
            self.signature,
            parsed.title,
            text,
            json.dumps(dict(parsed.metadata), sort_keys=True),
        ):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
        content_hash = digest.hexdigest()
        document = Document(
            doc_id,
            collection,
            source,
            parsed.title,
            text,
            content_hash,
            dict(parsed.metadata),
            tenant=target.scope.tenant,
            principals=target.principals,
        )
        chunks = [
            Chunk(
                id=_chunk_id(collection, doc_id, content_hash, i),
                document_id=doc_id,
                collection=collection,
                ordinal=i,
                text=text[s.start : s.end],
                start=s.start,
                end=s.end,
                title=parsed.title,
                source=source,
                heading_path=s.heading_path,
                page=s.page,
                token_count=s.token_count,
                metadata=dict(parsed.metadata),
            )
            for i, s in enumerate(spans)
        ]
        return document, chunks

    # -- batched embedding + one transaction per document ------------------------------------
    def _flush(self, pending: list[_Pending], report: IngestReport) -> None:
        texts = [c.index_text() for p in pending for c in p.chunks]
        if not texts:
            return
        t0 = time.perf_counter()
        try:
            vectors = self.embedder.embed_documents(texts)
        except RagkeelError as exc:
            for item in pending:
                _fail(item.result, exc)
            return
        finally:
            report.embed_seconds += time.perf_counter() - t0
        report.embedded_texts += len(texts)
        offset = 0
        for item in pending:
            n = len(item.chunks)
            block = np.ascontiguousarray(vectors[offset : offset + n], dtype=np.float32)
            offset += n
            try:
                self.store.upsert_document(
                    item.document,
                    item.chunks,
                    block,
                    embedding_model=self.embedder.name,
                    language=item.language,
                )
            except RagkeelError as exc:
                _fail(item.result, exc)
                continue
            item.result.documents += 1
            item.result.chunks += n
            report.documents_written += 1
            report.chunks_written += n

    def _prune_missing(self, target: _Target, report: IngestReport) -> None:
        collection, scope = target.collection, target.scope
        for source, ids in self.store.documents_by_source(collection, scope=scope).items():
            if not Path(source).exists():
                report.documents_deleted += self.store.delete_documents(
                    collection, ids, scope=scope
                )
                report.files.append(FileResult(source, "pruned", documents=len(ids)))


def _document_id(parsed: ParsedDocument, source: str) -> str:
    if parsed.external_id and not parsed.external_id.startswith("line-"):
        return parsed.external_id
    return f"{source}#{parsed.external_id}" if parsed.external_id else source


def _chunk_id(collection: str, doc_id: str, content_hash: str, ordinal: int) -> str:
    key = f"{collection}\x00{doc_id}\x00{content_hash}\x00{ordinal}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def _fail(result: FileResult, error: RagkeelError) -> None:
    result.status = "failed" if not result.documents else "partial"
    result.failed_with(error)


def _failed(name: str, error: IngestError) -> FileResult:
    result = FileResult(name, "failed")
    result.failed_with(error)
    return result
