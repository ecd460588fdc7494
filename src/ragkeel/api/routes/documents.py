"""``POST /v1/documents`` (multipart files, or JSON text), ``GET /v1/documents``,
``DELETE /v1/documents/{id}``. Uploads go through the ingestion pipeline (``uploads.py``); the
answer is its per-file report. Writes are serialised by one lock (SQLite has one writer).

With the job queue on (``ingestion.queue``, issue 13) an upload is kept and one job deferred:
the answer is ``202`` with the job's id and a ``Location`` (``GET /v1/jobs/{id}``,
``routes/jobs.py``); workers parse and embed, the request holds no lock.

``language`` (issue 15; a query parameter, a form field or the JSON body's field) is the
keyword analyzer's language of the collection: a new collection is created in it; one that
exists in another language is refused with 409 ``LANGUAGE_MISMATCH`` before anything is
written (also before a job is queued); an unknown one is 422 ``LANGUAGE_UNSUPPORTED``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ragkeel.api.auth import caller_scope, require
from ragkeel.api.job_schemas import JobAcceptedOut
from ragkeel.api.problems import status_for
from ragkeel.api.public_ids import internal_id
from ragkeel.api.schemas import (
    DeletedOut,
    DocumentListOut,
    DocumentOut,
    IngestOut,
    TextDocumentIn,
)
from ragkeel.api.state import ApiState, get_state
from ragkeel.api.uploads import (
    Owner,
    UploadArea,
    enqueue_files,
    enqueue_text,
    ingest_files,
    ingest_text,
)
from ragkeel.errors import (
    InvalidUploadError,
    NotFoundError,
    ProblemError,
    UnsupportedMediaTypeError,
)
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.languages import check_language
from ragkeel.storage.tenancy import check_principals
from ragkeel.types import AccessScope

router = APIRouter(tags=["documents"])
DEFAULT_COLLECTION = "default"
MAX_FILES = 100
Collection = Annotated[str, Query(min_length=1, description="the collection")]
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "collection": {"type": "string"},
                        "language": {
                            "type": "string",
                            "description": "keyword analyzer language of the collection "
                            "(english, german, ...; default: the collection's, or "
                            "retrieval.language for a new one)",
                        },
                        "principals": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "ACL principals of the documents (repeated or "
                            "comma-separated; none: public within the tenant)",
                        },
                    },
                    "required": ["files"],
                }
            },
            "application/json": {"schema": TextDocumentIn.model_json_schema()},
        },
    }
}


def upload_area(state: ApiState) -> UploadArea:
    return UploadArea(state.container.uploads_dir)


@router.post(
    "/v1/documents",
    response_model=IngestOut,
    responses={202: {"model": JobAcceptedOut, "description": "queued (ingestion.queue on)"}},
    openapi_extra=_BODY_DOC,
    dependencies=[Depends(require("ingest"))],
)
async def add_documents(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
    collection: Annotated[str | None, Query(min_length=1)] = None,
    language: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> JSONResponse:
    """Ingest uploaded files (multipart, field ``files``) or one JSON text document into the
    caller's tenant. ``principals`` (form field, repeated or comma-separated; in JSON a list)
    is the documents' ACL: any names a caller with the ingest scope chooses (an ingest key is
    trusted with its tenant's ACLs); none: public within the tenant."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    c = state.container
    area = upload_area(state)
    if kind == "multipart/form-data":
        async with request.form(max_files=MAX_FILES, max_fields=16) as form:
            uploads = [
                f for f in form.getlist("files") + form.getlist("file") if isinstance(f, UploadFile)
            ]
            if not uploads:
                raise InvalidUploadError(
                    "no file in the form", hint='send files in the "files" field'
                )
            name = collection or _field(form.get("collection")) or DEFAULT_COLLECTION
            files: list[tuple[str, BinaryIO]] = [(u.filename or "", u.file) for u in uploads]
            owner = _owner(
                scope,
                [v for v in form.getlist("principals") if isinstance(v, str)],
                language or _field(form.get("language")),
            )
            if c.queue_enabled:
                _check_language(c.pipeline, name, owner)
                job_id = await run_in_threadpool(
                    enqueue_files, area, c.job_queue, c.store, name, files, owner
                )
                return _accepted(job_id, name, [n for n, _ in files])
            ingest = partial(ingest_files, view=state.public_view(scope))
            report = await run_in_threadpool(
                _locked, state, ingest, area, c.pipeline, c.store, name, files, owner
            )
    elif kind in ("application/json", ""):
        doc = _text_document(await request.body())
        name = collection or doc.collection or DEFAULT_COLLECTION
        owner = _owner(scope, doc.principals, language or doc.language)
        if c.queue_enabled:
            _check_language(c.pipeline, name, owner)
            job_id = await run_in_threadpool(
                enqueue_text, area, c.job_queue, c.store, name, doc, owner
            )
            return _accepted(job_id, name, [doc.id or "text"])
        ingest = partial(ingest_text, view=state.public_view(scope))
        report = await run_in_threadpool(
            _locked, state, ingest, area, c.pipeline, c.store, name, doc, owner
        )
    else:
        raise UnsupportedMediaTypeError(
            f"cannot ingest a {kind} body", hint="send multipart/form-data files or JSON text"
        )
    return _reported(report)


def _accepted(job_id: str, collection: str, names: list[str]) -> JSONResponse:
    """202: the upload is kept and its job queued; ``Location`` is the job's URL."""
    url = f"/v1/jobs/{job_id}"
    body = JobAcceptedOut(
        job_id=job_id, state="queued", status_url=url, collection=collection, files=names
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": url})


def _owner(scope: AccessScope, values: list[str], language: str | None = None) -> Owner:
    """The upload's tenant (the caller's), ACL (``values``, each maybe comma-separated) and
    the collection's language if one is named (``LANGUAGE_UNSUPPORTED`` if unknown)."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    lang = check_language(language) if language is not None else None
    return Owner(scope.tenant, tuple(sorted(check_principals(names))), lang)


def _check_language(pipeline: IngestionPipeline, collection: str, owner: Owner) -> None:
    """Before a job is queued: a language the collection does not have is refused now
    (``LANGUAGE_MISMATCH``), not when a worker runs it."""
    if owner.language is not None:
        scope = AccessScope(owner.tenant, all_principals=True)
        pipeline.language_of(collection, scope, owner.language)


def _locked(state: ApiState, ingest: Callable[..., IngestOut], *args: Any) -> IngestOut:
    with state.write_lock:
        return ingest(*args)


def _field(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _text_document(body: bytes) -> TextDocumentIn:
    try:
        return TextDocumentIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from exc


def _reported(report: IngestOut) -> JSONResponse:
    """200 with the report when anything was ingested; when nothing was, the first failure's
    problem (413 for a file too large, 422 for one that cannot be parsed) with the report."""
    body = report.model_dump(mode="json")
    if report.files and not any(
        f.status in ("ingested", "unchanged", "partial") for f in report.files
    ):
        first = report.files[0]
        raise ProblemError(
            first.error_code or "INGEST_ERROR",
            first.error_message or "nothing could be ingested",
            status=status_for(first.error) if first.error else 422,
            extra={"report": body},
        )
    return JSONResponse(body)


@router.get(
    "/v1/documents", response_model=DocumentListOut, dependencies=[Depends(require("query"))]
)
async def list_documents(
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
    collection: Collection = DEFAULT_COLLECTION,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentListOut:
    """The collection's documents, ordered by id: the public id, title, file name, chunk
    count (``public_ids.py``: never a server path)."""
    return await run_in_threadpool(_list, state, scope, collection, offset, limit)


def _list(
    state: ApiState, scope: AccessScope, collection: str, offset: int, limit: int
) -> DocumentListOut:
    store, view = state.container.store, state.public_view(scope)
    triples = sorted(
        (view.id(doc_id), doc_id, source)
        for source, ids in store.documents_by_source(collection, scope=scope).items()
        for doc_id in ids
    )
    documents = []
    for public, doc_id, source in triples[offset : offset + limit]:
        info = store.document_info(collection, doc_id, scope=scope)
        doc = store.get_document(collection, doc_id, scope=scope)
        if info is None or doc is None:  # deleted meanwhile
            continue
        documents.append(
            DocumentOut(
                id=public,
                title=doc.title,
                source=view.source(source, doc_id),
                filename=view.filename(source, doc_id),
                chunks=info.chunk_count,
                metadata=dict(doc.metadata),
            )
        )
    return DocumentListOut(
        collection=collection, total=len(triples), offset=offset, limit=limit, documents=documents
    )


@router.delete(
    "/v1/documents/{document_id:path}",
    response_model=DeletedOut,
    dependencies=[Depends(require("admin"))],
)
async def delete_document(
    document_id: Annotated[
        str, PathParam(description="the document's public id (doc_..., as listed)")
    ],
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
    collection: Collection = DEFAULT_COLLECTION,
) -> DeletedOut:
    """Delete one document (its chunks, postings and vectors) the caller sees from the
    collection, by its public id (``doc_...``, as listed); one it does not see (another
    tenant's, hidden by an ACL) is 404, as one that does not exist."""
    return await run_in_threadpool(_delete, state, scope, collection, document_id)


def _delete(state: ApiState, scope: AccessScope, collection: str, document_id: str) -> DeletedOut:
    store = state.container.store
    with state.write_lock:
        internal = internal_id(store, state.id_key, scope, collection, document_id)
        info = store.document_info(collection, internal, scope=scope) if internal else None
        if internal is None or info is None:
            raise NotFoundError(
                f"no document {document_id!r} in collection {collection!r}",
                code="DOCUMENT_NOT_FOUND",
                hint="GET /v1/documents lists the ids",
            )
        store.delete_documents(collection, [internal], scope=scope)
        area = upload_area(state)
        area.discard_unused(store, scope.tenant, collection, [Path(info.source)])
    return DeletedOut(collection=collection, id=document_id, deleted=True)
