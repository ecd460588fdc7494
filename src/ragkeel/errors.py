"""The ragkeel error tree: every error raised on purpose, in one place. Each carries a stable
``code``; the HTTP edge (``ragkeel.api.problems``) maps classes to statuses, nothing else does.

Sections::

    RagkeelError                      code            meaning
    │ ── settings, input and data ──
    ├── ConfigError                   CONFIG_INVALID  a setting has a bad value (names key and value)
    │   ├── EnvVarMissingError        CONFIG_ENV_MISSING  a ${VAR} reference to a variable unset or empty
    │   └── StoreLocationError        STORE_LOCATION_INVALID  a store named by a bad URL or path (collections copy)
    ├── FilterError                   FILTER_INVALID
    │   └── TraceFilterError          TRACE_FILTER_INVALID  a trace or cost query with a bad filter or cursor
    ├── NameInvalidError              NAME_INVALID    a tenant or collection name the store cannot hold
    ├── LanguageError                 LANGUAGE_UNSUPPORTED  a keyword-analyzer language PyStemmer lacks (lists them)
    ├── LanguageMismatchError         LANGUAGE_MISMATCH  a write in another language than the collection's
    ├── QueryError                    QUERY_INVALID
    ├── DatasetError                  DATASET_INVALID  an evaluation data set is missing or malformed
    │   ├── DatasetMismatchError      DATASET_MISMATCH two runs compared on different data
    │   └── MetricMismatchError       METRIC_MISMATCH  the runs lack a metric the gate compares
    ├── KeySpecError                  KEY_INVALID     an API key asked for with a bad tenant, scope, expiry...
    ├── FeedbackInvalidError          FEEDBACK_INVALID  a rating that is not up/down/1-5, a comment too long
    │ ── ingestion ──
    ├── IngestError                   (per subclass)  one file/record could not be ingested
    │   ├── UnsupportedTypeError      UNSUPPORTED_TYPE
    │   ├── ParseError                PARSE_ERROR
    │   ├── DecodeError               DECODE_ERROR
    │   ├── EmptyDocumentError        EMPTY
    │   ├── TooLargeError             TOO_LARGE       over a size bound (bytes, inflated bytes, pages...)
    │   │   └── ParseTimeoutError     PARSE_TIMEOUT   parsing ran past ingestion.max_parse_seconds
    │   ├── EncryptedError            ENCRYPTED
    │   ├── ReadError                 READ_ERROR      the file exists but cannot be read (permissions, I/O)
    │   └── OutsideRootError          SYMLINK_OUTSIDE_ROOT  a symlink leaving the ingested roots (skipped)
    │ ── infrastructure: model files, embedders, stores ──
    ├── ModelError                    MODEL_MISSING
    │   └── ModelChecksumError        MODEL_CHECKSUM
    ├── EmbeddingError                EMBEDDING_FAILED  an embedder (usually remote) failed
    ├── StorageError                  STORE_ERROR
    │   └── EmbeddingModelMismatchError EMBEDDING_MODEL_MISMATCH  vectors of another model than the collection's
    ├── CollectionNotFoundError       COLLECTION_NOT_FOUND  no such collection in the tenant (copy, re-embed)
    ├── TraceNotFoundError            TRACE_NOT_FOUND
    ├── TraceIdAmbiguousError         TRACE_ID_AMBIGUOUS
    ├── TraceStoreError               TRACE_STORE_ERROR
    ├── CostLedgerError               COST_LEDGER_ERROR
    ├── KeyStoreError                 KEY_STORE_ERROR the API key file cannot be read or written
    ├── QueueError                    QUEUE_ERROR     the ingestion job queue cannot be reached or used
    │ ── model calls: chat models and rerankers (every provider maps its failures here) ──
    ├── ChatModelError                MODEL_ERROR         the model answered with an error or garbage
    │   ├── RerankResponseError       RERANK_RESPONSE_INVALID  a reranker's 2xx body is no ranking of the documents sent
    │   ├── ModelRequestError         MODEL_REQUEST_REJECTED  4xx other than 429: the request itself is wrong
    │   ├── ModelTimeoutError         MODEL_TIMEOUT       no (complete) answer within the attempt's timeout
    │   │   └── DeadlineExceededError DEADLINE_EXCEEDED   the request's overall deadline ran out
    │   ├── ModelUnavailableError     MODEL_UNAVAILABLE   cannot be reached or loaded right now (5xx, reset)
    │   │   ├── ModelRateLimitedError MODEL_RATE_LIMITED  the provider said 429 (``retry_after_s`` if sent)
    │   │   ├── StreamInterruptedError MODEL_STREAM_INTERRUPTED  the stream broke after some tokens
    │   │   ├── ModelBusyError        MODEL_BUSY          the local model's queue is full (``retry_after_s``)
    │   │   ├── CircuitOpenError      CIRCUIT_OPEN        the breaker refuses calls to this deployment
    │   │   └── BudgetUnavailableError BUDGET_UNAVAILABLE the shared budget accounts (Redis) cannot be reached: paid calls refused
    │   ├── BudgetExceededError       BUDGET_EXCEEDED     the call would exceed max_cost / max_tokens
    │   └── RateLimitedError          RATE_LIMITED        admission: a tenant is over its limit
    │       └── TooManyStreamsError   TOO_MANY_STREAMS    the tenant has api_limits.max_streams_per_tenant open
    │ ── answers ──
    ├── TemplateError                 TEMPLATE_INVALID    a prompt template is missing or malformed
    │ ── requests at the HTTP edge (``status`` is the HTTP status) ──
    └── ApiError
        ├── NotFoundError             NOT_FOUND (or a more specific *_NOT_FOUND code)
        ├── QuestionTooLongError      QUESTION_TOO_LONG
        ├── RequestTooLargeError      REQUEST_TOO_LARGE
        ├── UnsupportedMediaTypeError UNSUPPORTED_MEDIA_TYPE
        ├── JsonInvalidError          JSON_INVALID
        ├── JsonTooDeepError          JSON_TOO_DEEP
        ├── BodyNotUtf8Error          BODY_NOT_UTF8
        ├── MultipartInvalidError     MULTIPART_INVALID
        ├── OutputSchemaUnsupportedError OUTPUT_SCHEMA_UNSUPPORTED
        ├── InvalidUploadError        INVALID_UPLOAD
        ├── AnswerCancelledError      CANCELLED
        ├── ShuttingDownError         SHUTTING_DOWN
        ├── UnauthenticatedError      UNAUTHENTICATED  401: no API key, or one that is unknown, revoked, expired
        ├── ForbiddenError            FORBIDDEN        403: the key's scope does not allow the route
        ├── CrossOriginError          CROSS_ORIGIN     403: a state-changing request from another web origin
        └── ProblemError              (its cause's code)

Chat model errors carry the ``model`` (deployment name), and where known the provider's HTTP
``status``, the ``provider`` and ``retry_after_s``. ``retryable`` says whether sending the *same
request to the same deployment* again may succeed: timeouts, 429, 5xx and resets are; a rejected
request, an open circuit (go elsewhere), an exceeded deadline or budget are not. Model failures
are not raised out of the answer flow: the answerer degrades to an extractive answer instead.

Messages say what went wrong *and* what to do. Errors are never swallowed: the ingestion
pipeline records per-file errors in its report (and the CLI exit status), it does not drop them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RagkeelError(Exception):
    """Root of every error ragkeel raises on purpose."""

    code: str = "RAGKEEL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class ConfigError(RagkeelError):
    code = "CONFIG_INVALID"


class EnvVarMissingError(ConfigError):
    """A ``${VAR}`` reference in the configuration to a variable that is not set, or empty, or
    not a reference at all (``ragkeel.env_refs``); ``variable`` names it (never its value)."""

    code = "CONFIG_ENV_MISSING"

    def __init__(self, message: str, *, variable: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.variable = variable


class IngestError(RagkeelError):
    """A single source (file or record) could not be ingested; the rest of the batch goes on."""

    code = "INGEST_ERROR"


class UnsupportedTypeError(IngestError):
    code = "UNSUPPORTED_TYPE"


class ParseError(IngestError):
    code = "PARSE_ERROR"


class DecodeError(IngestError):
    code = "DECODE_ERROR"


class EmptyDocumentError(IngestError):
    code = "EMPTY"


class TooLargeError(IngestError):
    code = "TOO_LARGE"


class ParseTimeoutError(TooLargeError):
    """Parsing one file took longer than its bound: too much work, like a file too large."""

    code = "PARSE_TIMEOUT"


class EncryptedError(IngestError):
    code = "ENCRYPTED"


class ReadError(IngestError):
    code = "READ_ERROR"


class OutsideRootError(IngestError):
    """A symlink found while expanding ingest arguments leads outside them; it is skipped
    (reported, not failed) unless symlinks are followed on purpose."""

    code = "SYMLINK_OUTSIDE_ROOT"


class ModelError(RagkeelError):
    code = "MODEL_MISSING"


class ModelChecksumError(ModelError):
    code = "MODEL_CHECKSUM"


class EmbeddingError(RagkeelError):
    code = "EMBEDDING_FAILED"


class StorageError(RagkeelError):
    code = "STORE_ERROR"


class EmbeddingModelMismatchError(StorageError):
    """Vectors of one embedding model written into a collection indexed with another (or of
    another dimension): re-embed the collection, or use another one (issue 13)."""

    code = "EMBEDDING_MODEL_MISMATCH"


class CollectionNotFoundError(RagkeelError):
    """An operator command named a collection the tenant does not have (issue 13)."""

    code = "COLLECTION_NOT_FOUND"


class StoreLocationError(ConfigError):
    """A store named by a URL or path that is malformed, missing, or of a backend this install
    cannot open (``ragkeel collections copy``, issue 13)."""

    code = "STORE_LOCATION_INVALID"


class FilterError(RagkeelError):
    code = "FILTER_INVALID"


class TraceFilterError(FilterError):
    """A trace search or cost query with a bad filter: an unknown outcome, ``since`` after
    ``until``, a limit out of range, a malformed paging cursor (issue 11, 12)."""

    code = "TRACE_FILTER_INVALID"


class QueryError(RagkeelError):
    code = "QUERY_INVALID"


class NameInvalidError(RagkeelError):
    """A tenant or collection name that is empty or holds control characters."""

    code = "NAME_INVALID"


class LanguageError(RagkeelError):
    """A language the keyword analyzer does not have (``retrieval.language``, ``--language``,
    an upload's ``language``); the hint lists the supported ones (issue 15)."""

    code = "LANGUAGE_UNSUPPORTED"


class LanguageMismatchError(RagkeelError):
    """Documents written in another language than the one the collection's keyword index was
    built with: ingest without a language (the collection's is used), into another collection,
    or change the collection's language first (``ragkeel collections reindex``, issue 15)."""

    code = "LANGUAGE_MISMATCH"


class DatasetError(RagkeelError):
    code = "DATASET_INVALID"


class DatasetMismatchError(DatasetError):
    """Baseline and current runs were not evaluated on the same data."""

    code = "DATASET_MISMATCH"


class MetricMismatchError(DatasetError):
    """The runs do not compute the metrics the gate compares: evaluated differently, or on
    different data, or the config names a metric neither run has."""

    code = "METRIC_MISMATCH"


class KeySpecError(RagkeelError):
    """An API key asked for with a bad tenant, scope, principal or expiry (``ragkeel keys``)."""

    code = "KEY_INVALID"


class FeedbackInvalidError(RagkeelError):
    """Feedback on a trace with a rating other than ``up``, ``down`` or 1-5, or a comment over
    the bound (``observability/feedback.py``)."""

    code = "FEEDBACK_INVALID"


class TraceNotFoundError(RagkeelError):
    code = "TRACE_NOT_FOUND"


class TraceIdAmbiguousError(RagkeelError):
    code = "TRACE_ID_AMBIGUOUS"


class TraceStoreError(RagkeelError):
    code = "TRACE_STORE_ERROR"


class CostLedgerError(RagkeelError):
    code = "COST_LEDGER_ERROR"


class KeyStoreError(RagkeelError):
    """The API key file (``$RAGKEEL_HOME/keys.db``) cannot be opened, read or written: no
    request is let in on a key that cannot be checked."""

    code = "KEY_STORE_ERROR"


class QueueError(RagkeelError):
    """The ingestion job queue (``ingestion.queue``, issue 13) is misconfigured, or its database
    cannot be reached or used: nothing was enqueued."""

    code = "QUEUE_ERROR"


# --- chat model calls -----------------------------------------------------------------------


class ChatModelError(RagkeelError):
    """A chat model call failed. ``model`` names the model (for the trace and the message)."""

    code = "MODEL_ERROR"
    retryable = False
    counts_as_failure = True  # does the circuit breaker count it? (client errors do not)

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        hint: str | None = None,
        status: int | None = None,
        provider: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.model = model
        self.status = status
        self.provider = provider
        self.retry_after_s = retry_after_s


class ModelRequestError(ChatModelError):
    """The provider rejected the request (400/401/403/404/413/422...): never retried, and it
    says nothing about the provider's health, so breakers ignore it."""

    code = "MODEL_REQUEST_REJECTED"
    retryable = False
    counts_as_failure = False


class ModelTimeoutError(ChatModelError):
    code = "MODEL_TIMEOUT"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        timeout_s: float | None = None,
        hint: str | None = "raise the model timeout or lower max_tokens / the context budget",
        provider: str | None = None,
    ) -> None:
        super().__init__(message, model=model, hint=hint, provider=provider)
        self.timeout_s = timeout_s


class DeadlineExceededError(ModelTimeoutError):
    """The request's overall deadline ran out (or too little of it is left to start an attempt)."""

    code = "DEADLINE_EXCEEDED"
    retryable = False
    counts_as_failure = False  # the deadline is the caller's, not the provider's fault


class ModelUnavailableError(ChatModelError):
    code = "MODEL_UNAVAILABLE"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        retry_after_s: float | None = None,
        hint: str | None = "check that the model server is running or the model file is installed",
        status: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(
            message,
            model=model,
            hint=hint,
            status=status,
            provider=provider,
            retry_after_s=retry_after_s,
        )


class ModelRateLimitedError(ModelUnavailableError):
    """HTTP 429 from the provider; ``retry_after_s`` when it sent ``Retry-After``."""

    code = "MODEL_RATE_LIMITED"


class StreamInterruptedError(ModelUnavailableError):
    """The stream broke after ``partial`` was delivered: never a silent truncation."""

    code = "MODEL_STREAM_INTERRUPTED"
    retryable = False  # the caller already has tokens: fallback decides (continue or error)

    def __init__(self, message: str, *, model: str | None = None, partial: str = "") -> None:
        super().__init__(message, model=model, hint="the answer so far is incomplete")
        self.partial = partial


class ModelBusyError(ModelUnavailableError):
    """The local model is generating and its queue (``generation.local.max_queue``) is full:
    refused at once rather than left to wait behind work that cannot finish in time. Not the
    model's fault (breakers ignore it); the API answers 503 with ``Retry-After``."""

    code = "MODEL_BUSY"
    retryable = False
    counts_as_failure = False
    # a refused caller may come back after about one short generation
    DEFAULT_RETRY_AFTER_S = 5.0

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        super().__init__(
            message,
            model=model,
            retry_after_s=retry_after_s,
            hint="retry after Retry-After seconds",
            status=503,
        )


class CircuitOpenError(ModelUnavailableError):
    """The breaker (or a Retry-After cool-down) refuses calls to this deployment until
    ``retry_after_s`` from now; fallback moves on to the next deployment."""

    code = "CIRCUIT_OPEN"
    retryable = False
    counts_as_failure = False


class BudgetUnavailableError(ModelUnavailableError):
    """The tenant's daily account lives in Redis (``redis.url``) and Redis cannot be reached:
    a paid call is refused rather than let spend what nobody can count (accounts fail closed,
    ``admission/redis_accounts.py``); the answer flow degrades to the extractive answer. Not
    the model's fault (breakers ignore it); 503 with ``Retry-After`` at the HTTP edge."""

    code = "BUDGET_UNAVAILABLE"
    retryable = False
    counts_as_failure = False

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(
            message,
            retry_after_s=retry_after_s,
            hint="the shared state (Redis) is unreachable; retry after Retry-After seconds",
            status=503,
        )


class RerankResponseError(ChatModelError):
    """A reranker (``retrieval.rerank``, issue 15) answered 2xx with a body that is not a
    ranking of the documents sent: not JSON, no results list, an index out of range or
    repeated, a score that is not a finite number, fewer results than asked for. Not retried
    (the same request gets the same body); the breaker counts it. The retrieval keeps the
    fused order (``retrieval/rerank.py``): never an error to the user."""

    code = "RERANK_RESPONSE_INVALID"
    retryable = False
    counts_as_failure = True

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(
            message,
            model=model,
            hint="check retrieval.rerank.shape (cohere, jina or tei) against the server's API",
        )


class BudgetExceededError(ChatModelError):
    code = "BUDGET_EXCEEDED"
    retryable = False
    counts_as_failure = False


class RateLimitedError(ChatModelError):
    """Admission refused: the tenant is over a limit; try again after ``retry_after_s``."""

    code = "RATE_LIMITED"
    retryable = False
    counts_as_failure = False


class TooManyStreamsError(RateLimitedError):
    """Admission refused a streamed answer: the tenant already has as many streams open as
    ``api_limits.max_streams_per_tenant`` allows (429 with ``Retry-After``)."""

    code = "TOO_MANY_STREAMS"


# --- answers --------------------------------------------------------------------------------


class TemplateError(RagkeelError):
    code = "TEMPLATE_INVALID"


# --- requests at the HTTP edge --------------------------------------------------------------


class ApiError(RagkeelError):
    """An error only the HTTP edge raises; ``status`` is its HTTP status."""

    status = 400


class NotFoundError(ApiError):
    code = "NOT_FOUND"
    status = 404

    def __init__(self, message: str, *, code: str = "NOT_FOUND", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class QuestionTooLongError(ApiError):
    code = "QUESTION_TOO_LONG"
    status = 422


class RequestTooLargeError(ApiError):
    code = "REQUEST_TOO_LARGE"
    status = 413


class UnsupportedMediaTypeError(ApiError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class JsonInvalidError(ApiError):
    code = "JSON_INVALID"
    status = 400


class JsonTooDeepError(ApiError):
    code = "JSON_TOO_DEEP"
    status = 400


class BodyNotUtf8Error(ApiError):
    code = "BODY_NOT_UTF8"
    status = 400


class MultipartInvalidError(ApiError):
    code = "MULTIPART_INVALID"
    status = 400


class OutputSchemaUnsupportedError(ApiError):
    """An ``output_schema`` asked of an extractive answer (quoted sentences are never JSON)."""

    code = "OUTPUT_SCHEMA_UNSUPPORTED"
    status = 422


class InvalidUploadError(ApiError):
    code = "INVALID_UPLOAD"
    status = 422


class AnswerCancelledError(ApiError):
    """The answer stopped early: the client closed the connection (or the server is stopping).
    Nobody reads the response; the status is for the trace and the access log."""

    code = "CANCELLED"
    status = 499  # nginx's "client closed request"


class ShuttingDownError(ApiError):
    """The server is stopping: a new answer is refused, and an answer still running when the
    drain period ends is ended with this error (a terminal event on a stream, never a cut
    connection). Another replica, or this one after its restart, can take the retry."""

    code = "SHUTTING_DOWN"
    status = 503

    def __init__(self, message: str = "the server is shutting down") -> None:
        super().__init__(message, hint="retry: another instance (or this one, restarted) answers")
        self.retry_after_s = 1.0


class UnauthenticatedError(ApiError):
    """No usable API key: none sent, not ``Authorization: Bearer rk_...``, unknown, wrong
    secret, revoked or expired (``api.auth: required``). The response says
    ``WWW-Authenticate: Bearer``."""

    code = "UNAUTHENTICATED"
    status = 401


class ForbiddenError(ApiError):
    """The key is valid but its scope does not allow the route (``query`` < ``ingest`` <
    ``admin``), or it sent a header only a ``trusted_proxy`` key may send."""

    code = "FORBIDDEN"
    status = 403


class CrossOriginError(ApiError):
    """A state-changing request (POST, PUT, PATCH, DELETE) sent by a page on another web origin
    (``Origin`` not this host, ``Sec-Fetch-Site: cross-site``) and not in ``api.cors_origins``:
    a browser form may post across origins without a preflight."""

    code = "CROSS_ORIGIN"
    status = 403


class ProblemError(ApiError):
    """A problem the edge composes itself (a failed upload's first error, with the report), with
    the status its cause's class has (``status_for``) and optional extra members for the body."""

    def __init__(
        self, code: str, message: str, *, status: int, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.extra = dict(extra or {})
