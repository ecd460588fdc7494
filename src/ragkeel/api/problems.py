"""The only place that maps errors to HTTP: every error response is ``application/problem+json``
(RFC 9457) with the error's stable ``code``::

    {"type": "urn:ragkeel:problem:question-too-long", "title": "Unprocessable Content",
     "status": 422, "detail": "the question has 5000 characters; at most 4000 are allowed",
     "code": "QUESTION_TOO_LONG", "instance": "/v1/query"}

=============================================  ======  ==========================================
error                                          status  code
=============================================  ======  ==========================================
TooLargeError, RequestTooLargeError            413     TOO_LARGE, REQUEST_TOO_LARGE
a body that cannot be read                     400     JSON_INVALID (not JSON), JSON_TOO_DEEP
                                                       (nested too deeply), BODY_NOT_UTF8,
                                                       MULTIPART_INVALID (a broken form)
a body that is not JSON on a JSON route        415     UNSUPPORTED_MEDIA_TYPE (text/plain, a form,
                                                       no Content-Type)
QueryError, FilterError, IngestError           422     QUERY_INVALID, FILTER_INVALID, (per kind)
NameInvalidError                               422     NAME_INVALID (a tenant or collection name)
LanguageError                                  422     LANGUAGE_UNSUPPORTED (no analyzer for it)
LanguageMismatchError                          409     LANGUAGE_MISMATCH (documents in another
                                                       language than the collection's)
KeySpecError                                   422     KEY_INVALID (a key asked for with a bad spec)
FeedbackInvalidError                           422     FEEDBACK_INVALID (a bad rating, a long comment)
UnauthenticatedError                           401     UNAUTHENTICATED (+ ``WWW-Authenticate: Bearer``)
ForbiddenError, CrossOriginError               403     FORBIDDEN (scope), CROSS_ORIGIN (a browser
                                                       form from another origin)
QuestionTooLongError, request validation       422     QUESTION_TOO_LONG, VALIDATION_ERROR
OutputSchemaUnsupportedError                   422     OUTPUT_SCHEMA_UNSUPPORTED (JSON asked of an
                                                       extractive answer)
ConfigError, DatasetError                      400     CONFIG_INVALID, DATASET_INVALID
any code ending in NOT_FOUND                   404     DOCUMENT_NOT_FOUND, TRACE_NOT_FOUND, ...
ModelError, ModelUnavailableError              503     MODEL_MISSING, MODEL_CHECKSUM, MODEL_UNAVAILABLE
                                                       (BUDGET_UNAVAILABLE: shared accounts unreachable)
EmbeddingError, StorageError, KeyStoreError    503     EMBEDDING_FAILED, STORE_ERROR, KEY_STORE_ERROR
QueueError                                     503     QUEUE_ERROR (the ingestion job queue)
TraceStoreError, CostLedgerError               503     TRACE_STORE_ERROR, COST_LEDGER_ERROR
TraceIdAmbiguousError                          422     TRACE_ID_AMBIGUOUS (a trace id prefix that
                                                       matches more than one of the caller's traces)
RateLimitedError                               429     RATE_LIMITED (admission: a tenant's limit, or
                                                       the server at capacity)
TooManyStreamsError                            429     TOO_MANY_STREAMS (admission: the caller has
                                                       api_limits.max_streams_per_tenant open)
BudgetExceededError                            402     BUDGET_EXCEEDED (the request costs more than
                                                       its max_cost / the tenant's budget allows)
ModelTimeoutError / ChatModelError             504/502 MODEL_TIMEOUT / MODEL_ERROR
Starlette HTTPException (404 route, 405...)    its own NOT_FOUND, METHOD_NOT_ALLOWED, ...
anything else                                  500     INTERNAL (no stack trace in the body; logged)
=============================================  ======  ==========================================

What clients read of a failure *behind* the service (a model provider, a model file, the store,
the embedder) is a fixed sentence per code (``client_message``): those errors' messages name
internal URLs, hosts and paths. The full message stays in the trace and the log. Other messages
(the client's own errors, budgets) are sent as they are, with URLs and IP addresses redacted.
This covers problem details, ``degraded_detail`` and the error events of answer streams. A
problem's ``detail`` also has the server's home and upload area paths replaced (an uploaded
file by its name, anything else by ``[server]``; ``public_ids.scrub_paths``).

An error that carries ``retry_after_s`` gets a ``Retry-After`` header in whole seconds, rounded
up (at least 1). BUDGET_EXCEEDED is 402, not 429: the request *as asked* does not fit, so
sending it again cannot succeed (change ``max_cost``, ``max_tokens`` or ``k``), and clients that
retry 429 on their own (the OpenAI SDKs do) would only repeat it; a tenant whose *daily* budget
is spent is refused at admission as RATE_LIMITED (429, ``Retry-After`` until 00:00 UTC).
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from ragkeel.api.public_ids import scrub_paths
from ragkeel.errors import (
    ApiError,
    BodyNotUtf8Error,
    BudgetExceededError,
    ChatModelError,
    ConfigError,
    CostLedgerError,
    DatasetError,
    EmbeddingError,
    FeedbackInvalidError,
    FilterError,
    IngestError,
    JsonInvalidError,
    JsonTooDeepError,
    KeySpecError,
    KeyStoreError,
    LanguageError,
    LanguageMismatchError,
    ModelError,
    ModelTimeoutError,
    ModelUnavailableError,
    MultipartInvalidError,
    NameInvalidError,
    ProblemError,
    QueryError,
    QueueError,
    RagkeelError,
    RateLimitedError,
    StorageError,
    TooLargeError,
    TraceIdAmbiguousError,
    TraceStoreError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)

log = logging.getLogger("ragkeel.api")

PROBLEM_JSON = "application/problem+json"
INTERNAL = "INTERNAL"
VALIDATION_ERROR = "VALIDATION_ERROR"


# most specific first: the first matching class decides
_STATUS_BY_TYPE: tuple[tuple[type[RagkeelError], int], ...] = (
    (TooLargeError, 413),
    (IngestError, 422),
    (QueryError, 422),
    (FilterError, 422),
    (NameInvalidError, 422),
    (LanguageError, 422),
    (LanguageMismatchError, 409),
    (KeySpecError, 422),
    (FeedbackInvalidError, 422),
    (ConfigError, 400),
    (DatasetError, 400),
    (RateLimitedError, 429),
    (BudgetExceededError, 402),
    (ModelTimeoutError, 504),
    (ModelUnavailableError, 503),
    (ChatModelError, 502),
    (ModelError, 503),
    (EmbeddingError, 503),
    (StorageError, 503),
    (KeyStoreError, 503),
    (QueueError, 503),
    (TraceStoreError, 503),
    (CostLedgerError, 503),
    (TraceIdAmbiguousError, 422),
)
_CODE_BY_STATUS = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: VALIDATION_ERROR,
}


def status_for(error: RagkeelError | type[RagkeelError]) -> int:
    """The HTTP status of an error, from its class (most specific entry of the table first)."""
    cls = error if isinstance(error, type) else type(error)
    if isinstance(error, ApiError) or (isinstance(error, type) and issubclass(error, ApiError)):
        return error.status
    if cls.code.endswith("NOT_FOUND"):
        return 404
    return next((status for base, status in _STATUS_BY_TYPE if issubclass(cls, base)), 500)


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:ragkeel:problem:{code.lower().replace('_', '-')}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_CLIENT_MESSAGES = {  # failures behind the service: their messages are for operators only
    "MODEL_ERROR": "the model answered with an error",
    "MODEL_REQUEST_REJECTED": "the model provider rejected the request",
    "MODEL_TIMEOUT": "the model did not answer in time",
    "DEADLINE_EXCEEDED": "the request's deadline ran out before the model answered",
    "MODEL_UNAVAILABLE": "the model could not be reached",
    "MODEL_RATE_LIMITED": "the model provider is limiting its request rate",
    "MODEL_STREAM_INTERRUPTED": "the model's answer broke off",
    "CIRCUIT_OPEN": "the model is not called for now after repeated failures",
    "MODEL_MISSING": "the local model is not installed",
    "MODEL_CHECKSUM": "the local model file does not match its checksum",
    "EMBEDDING_FAILED": "the embedding model failed",
    "STORE_ERROR": "the document store failed",
    "KEY_STORE_ERROR": "the API key store failed",
    "QUEUE_ERROR": "the ingestion job queue failed",
    "TRACE_STORE_ERROR": "the trace store failed",
    "COST_LEDGER_ERROR": "the cost ledger failed",
    INTERNAL: "internal error",
}
_SEE_TRACE = "; the trace has the details"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\[[0-9a-fA-F:]+\](?::\d+)?")


def client_message(code: str, message: str) -> str:
    """What a client may read of an error ``code`` with ``message``: a fixed sentence for a
    failure behind the service, else ``message`` with URLs and IP addresses redacted."""
    fixed = _CLIENT_MESSAGES.get(code)
    if fixed is not None:
        return fixed + _SEE_TRACE
    return _IP.sub("[address]", _URL.sub("[url]", message))


def error_payload(exc: BaseException) -> dict[str, Any]:
    """``{code, message, status}`` of an error raised mid-stream (the status line is sent)."""
    if isinstance(exc, RagkeelError):
        message = client_message(exc.code, str(exc))
        return {"code": exc.code, "message": message, "status": status_for(exc)}
    log.error("unexpected error in a stream", exc_info=exc)
    return {"code": INTERNAL, "message": "internal error; see the server log", "status": 500}


_TITLES = {  # RFC 9110 names (Python's HTTPStatus phrases differ between versions)
    413: "Content Too Large",
    422: "Unprocessable Content",
    499: "Client Closed Request",
}


def _title(status: int) -> str:
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _ragkeel_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagkeelError)
    extra = exc.extra if isinstance(exc, ProblemError) else None
    if exc.hint:
        extra = {**(extra or {}), "hint": exc.hint}
    status = status_for(exc)
    return problem(
        status,
        exc.code,
        _without_paths(request, client_message(exc.code, exc.message)),
        instance=request.url.path,
        extra=extra,
        headers=error_headers(exc),
    )


def _without_paths(request: Request, detail: str) -> str:
    """``detail`` with the server's home and upload area paths replaced (``scrub_paths``)."""
    container = getattr(getattr(request.app.state, "ragkeel", None), "container", None)
    if container is None:
        return detail
    return scrub_paths(detail, container.uploads_dir, container.home)


def error_headers(exc: RagkeelError) -> dict[str, str] | None:
    """The headers a problem carries: ``Retry-After`` (``retry_after_header``), and
    ``WWW-Authenticate: Bearer`` on a 401 (RFC 6750: the scheme a client must use)."""
    if isinstance(exc, UnauthenticatedError):
        return {"WWW-Authenticate": 'Bearer realm="ragkeel"'}
    return retry_after_header(exc)


def retry_after_header(exc: RagkeelError) -> dict[str, str] | None:
    """``{"Retry-After": "<whole seconds, at least 1>"}`` when ``exc`` says when: the time it
    gives plus a random spread (``retry_after_spread``), rounded up, so that clients refused
    together and honouring the header do not all come back in the same second."""
    seconds = getattr(exc, "retry_after_s", None)
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        return None
    jittered = seconds + random.uniform(0.0, retry_after_spread(seconds))
    return {"Retry-After": str(max(math.ceil(jittered), 1))}


def retry_after_spread(seconds: float) -> float:
    """How much later than ``seconds`` a refused client may be told to come back: half of it,
    at least 1 s (a 1 s wait becomes 1 or 2 s) and at most 60 s (a wait until midnight UTC
    stays within a minute of it)."""
    return min(max(1.0, seconds / 2), 60.0)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    unreadable = _unreadable_body(exc) if exc.status_code == 400 else None
    if unreadable is not None:
        return await _ragkeel_error(request, unreadable)
    code = _CODE_BY_STATUS.get(exc.status_code, f"HTTP_{exc.status_code}")
    return problem(
        exc.status_code,
        code,
        str(exc.detail),
        instance=request.url.path,
        headers=exc.headers,
    )


def _unreadable_body(exc: HTTPException) -> ApiError | None:
    """What the 400 that FastAPI ("There was an error parsing the body") or Starlette (a broken
    multipart form) raised while reading a body really was, from the error behind it."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, RecursionError):  # json.loads of very deep nesting
        return JsonTooDeepError(
            "the JSON body nests objects and arrays too deeply to be read",
            hint="send a flatter body",
        )
    if isinstance(cause, UnicodeDecodeError):
        return _not_utf8(cause)
    if isinstance(cause, MultiPartException):
        return MultipartInvalidError(
            f"the multipart/form-data body cannot be read: {cause.message}",
            hint='send a well-formed form with the files in the "files" field',
        )
    if exc.detail == _FASTAPI_BODY_ERROR:
        return JsonInvalidError(f"the body cannot be read as JSON ({type(cause).__name__})")
    return None


_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _not_utf8(error: UnicodeDecodeError) -> BodyNotUtf8Error:
    byte = error.object[error.start : error.start + 1].hex()
    return BodyNotUtf8Error(
        f"the body is not valid UTF-8: byte 0x{byte} at offset {error.start}",
        hint="send JSON encoded as UTF-8",
    )


def _unreadable_json(exc: RequestValidationError) -> ApiError | None:
    """The problem of a JSON body that cannot be read (FastAPI's and pydantic's ``json_invalid``,
    ``check_json_depth``'s ``json_too_deep``), or a body that is not JSON at all (415)."""
    for err in exc.errors():
        kind = err.get("type")
        if kind == "json_too_deep":
            return JsonTooDeepError(str(err.get("msg")), hint="send a flatter body")
        if kind != "json_invalid":
            continue
        reason = str((err.get("ctx") or {}).get("error", "")) or "invalid JSON"
        if "recursion limit" in reason:  # pydantic's parser of model_validate_json
            return JsonTooDeepError(
                f"the JSON body nests too deeply to be read: {reason}", hint="send a flatter body"
            )
        if "unicode" in reason.lower():
            return BodyNotUtf8Error(
                f"the body is not valid UTF-8: {reason}", hint="send JSON encoded as UTF-8"
            )
        return JsonInvalidError(
            f"the body is not valid JSON: {reason}{_position(err, exc.body)}",
            hint="send one JSON object",
        )
    if isinstance(exc.body, bytes | bytearray):  # FastAPI reads a body as JSON only if it says so
        return UnsupportedMediaTypeError(
            "the body must be JSON (Content-Type: application/json)",
            hint="send the body as JSON with Content-Type: application/json",
        )
    return None


def _position(err: Mapping[str, Any], doc: object) -> str:
    """`` at line L, column C`` of FastAPI's decode error (``loc`` = ("body", offset))."""
    loc = tuple(err.get("loc", ()))
    if len(loc) != 2 or not isinstance(loc[1], int) or not isinstance(doc, str):
        return ""
    offset = loc[1]
    line, column = doc.count("\n", 0, offset) + 1, offset - doc.rfind("\n", 0, offset)
    return f" at line {line}, column {column}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unreadable = _unreadable_json(exc)
    if unreadable is not None:
        return await _ragkeel_error(request, unreadable)
    errors = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem(
        422, VALIDATION_ERROR, detail, instance=request.url.path, extra={"errors": errors}
    )


def _where(loc: Sequence[str]) -> str:
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    return ".".join(parts) or (loc[0] if loc else "request")


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, INTERNAL, "internal error; see the server log", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RagkeelError, _ragkeel_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
