"""Errors a chat model call can raise. Every provider maps its failures onto this tree, so the
answer flow (and later the retry, breaker and fallback wrappers) can tell a slow model from a
missing one without knowing the provider::

    RagkeelError
    └── ChatModelError            MODEL_ERROR        the model answered with an error or garbage
        ├── ModelTimeoutError     MODEL_TIMEOUT      no (complete) answer within the request's timeout
        └── ModelUnavailableError MODEL_UNAVAILABLE  the model cannot be reached or loaded right now

``retryable`` says whether the same request may succeed if sent again (timeouts and
unavailability usually are; a malformed request is not).
"""

from __future__ import annotations

from ragkeel.errors import RagkeelError


class ChatModelError(RagkeelError):
    """A chat model call failed. ``model`` names the model (for the trace and the message)."""

    code = "MODEL_ERROR"
    retryable = False

    def __init__(self, message: str, *, model: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.model = model


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
    ) -> None:
        super().__init__(message, model=model, hint=hint)
        self.timeout_s = timeout_s


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
    ) -> None:
        super().__init__(message, model=model, hint=hint)
        self.retry_after_s = retry_after_s
