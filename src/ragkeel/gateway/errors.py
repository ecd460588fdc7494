"""Errors a chat model call can raise. Every provider maps its failures onto this tree, so the
answer flow, the policies (retry, breaker, fallback, budget) and admission can tell a slow model
from a missing one without knowing the provider::

    RagkeelError
    └── ChatModelError                 MODEL_ERROR         the model answered with an error or garbage
        ├── ModelRequestError          MODEL_REQUEST_REJECTED  4xx other than 429: the request itself is wrong
        ├── ModelTimeoutError          MODEL_TIMEOUT       no (complete) answer within the attempt's timeout
        │   └── DeadlineExceededError  DEADLINE_EXCEEDED   the request's overall deadline ran out
        ├── ModelUnavailableError      MODEL_UNAVAILABLE   cannot be reached or loaded right now (5xx, reset)
        │   ├── ModelRateLimitedError  MODEL_RATE_LIMITED  the provider said 429 (``retry_after_s`` if sent)
        │   ├── StreamInterruptedError MODEL_STREAM_INTERRUPTED  the stream broke after some tokens
        │   ├── ModelBusyError         MODEL_BUSY          the local model's queue is full (``retry_after_s``)
        │   └── CircuitOpenError       CIRCUIT_OPEN        the breaker refuses calls to this deployment
        ├── BudgetExceededError        BUDGET_EXCEEDED     the call would exceed max_cost / max_tokens
        └── RateLimitedError           RATE_LIMITED        admission: a tenant is over its limit

Every error carries the ``model`` (deployment name), and where known the HTTP ``status``, the
``provider`` and ``retry_after_s``. ``retryable`` says whether sending the *same request to the
same deployment* again may succeed: timeouts, 429, 5xx and resets are; a rejected request, an
open circuit (go elsewhere), an exceeded deadline or budget are not.
"""

from __future__ import annotations

from ragkeel.errors import RagkeelError


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

    def __init__(self, message: str, *, model: str | None = None, retry_after_s: float) -> None:
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


class BudgetExceededError(ChatModelError):
    code = "BUDGET_EXCEEDED"
    retryable = False
    counts_as_failure = False


class RateLimitedError(ChatModelError):
    """Admission refused: the tenant is over a limit; try again after ``retry_after_s``."""

    code = "RATE_LIMITED"
    retryable = False
    counts_as_failure = False
