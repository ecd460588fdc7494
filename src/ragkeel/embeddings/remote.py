"""An ``Embedder`` over an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

Request ``{"model": ..., "input": [...]}``, with ``Authorization: Bearer <key>`` when a key is
set; the response's ``data[i].embedding`` rows are put in ``data[i].index`` order, checked for
count, dimension and finiteness, and L2-normalised.

Retries (at most ``max_retries`` after the first attempt): connect errors, timeouts and other
transport failures, HTTP 429 and 5xx. The wait is ``Retry-After`` (seconds, capped at
``max_retry_after_s``: with no other embedder to fall back on, a long one is waited for up to
the cap rather than given up on) when the server sends one, otherwise the chat providers' full
jitter, ``uniform(0, min(max_backoff_s, backoff_s * 2**(n-1)))`` before retry ``n``. The status
kinds, the ``Retry-After`` parser, the backoff schedule and the redacted body excerpts are
``ragkeel.http_retry``'s, the same as the gateway's; the waits go through the injectable
``clock`` (``ragkeel.clock``) and the jitter draws through ``rng``. Any other non-2xx status, or
a malformed body, is an ``EmbeddingError`` at once. The API key is never put in a message or a
log line (and is redacted if the server echoes it), nor are credentials in ``base_url``
(``https://user:password@host``: masked wherever the URL is named).

The ``tokenizer`` is ``RegexTokenCounter``: the server's tokenizer is unknown, so word and
punctuation counts stand in for it (close to WordPiece counts for English prose).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.embeddings.base import Matrix, Vector, l2_normalise
from ragkeel.errors import EmbeddingError
from ragkeel.http_retry import Backoff, excerpt, is_retryable_status, redact, retry_after_seconds
from ragkeel.redaction import strip_url_credentials
from ragkeel.settings import RemoteEmbeddingSettings
from ragkeel.tokens import RegexTokenCounter

logger = logging.getLogger(__name__)

_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RemoteEmbedder:
    """``Embedder`` client; one ``httpx.Client`` (connection pool) per instance."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dimension: int | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 64,
        transport: httpx.BaseTransport | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_retry_after_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("need batch_size >= 1, max_retries >= 0 and timeout_s > 0")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._secret = api_key or None
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)
        self._target = base_url.rstrip("/") + "/embeddings"
        self._url = strip_url_credentials(self._target)  # what messages name
        self._model = model
        self._dimension = dimension
        self._max_retries = max_retries
        self._batch_size = batch_size
        self._backoff = Backoff(backoff_s, max_backoff_s, rng)
        self._clock = clock
        self._max_retry_after_s = max_retry_after_s
        self._counter = RegexTokenCounter()
        self.calls = 0
        self.texts_embedded = 0

    @classmethod
    def from_settings(
        cls,
        settings: RemoteEmbeddingSettings,
        *,
        batch_size: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> RemoteEmbedder:
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        return cls(
            settings.base_url,
            settings.model,
            api_key=key,
            dimension=settings.dimension,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            batch_size=batch_size,
            transport=transport,
        )

    @property
    def name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        """The configured dimension, else learned from a response (one probe call if needed)."""
        if self._dimension is None:
            self._post(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    @property
    def tokenizer(self) -> RegexTokenCounter:
        return self._counter

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [
            self._post(texts[i : i + self._batch_size])
            for i in range(0, len(texts), self._batch_size)
        ]
        self.calls += 1
        self.texts_embedded += len(texts)
        return np.concatenate(parts, axis=0)

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, texts: Sequence[str]) -> Matrix:
        payload = {"model": self._model, "input": list(texts)}
        attempts = self._max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(payload, len(texts))
            except _Retryable as failure:
                if attempt == attempts:
                    raise EmbeddingError(
                        f"{self._url} failed after {attempts} attempt(s): {failure.reason}",
                        hint="check that the embedding server is up and reachable",
                    ) from failure.__cause__
                delay = self._delay(attempt, failure.retry_after)
                logger.warning(
                    "embedding request failed (%s); retry %d/%d in %.2fs",
                    failure.reason, attempt, self._max_retries, delay,
                )  # fmt: skip
                self._clock.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, payload: dict[str, Any], expected: int) -> Matrix:
        try:
            response = self._client.post(self._target, json=payload)
        except _TRANSIENT as exc:
            raise _Retryable(self._redact(f"{type(exc).__name__}: {exc}")) from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(self._redact(f"{self._url} request failed: {exc}")) from exc
        status = response.status_code
        if is_retryable_status(status):
            raise _Retryable(
                f"HTTP {status}: {self._excerpt(response)}", retry_after_seconds(response)
            )
        if not 200 <= status < 300:
            raise EmbeddingError(
                f"{self._url} returned HTTP {status}: {self._excerpt(response)}",
                hint=_hint_for(status),
            )
        return self._parse(response, expected)

    def _parse(self, response: httpx.Response, expected: int) -> Matrix:
        try:
            body = response.json()
        except ValueError as exc:
            raise EmbeddingError(
                f"{self._url} returned invalid JSON: {self._excerpt(response)}"
            ) from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbeddingError(f"{self._url} response has no 'data' list")
        if len(data) != expected:
            raise EmbeddingError(f"{self._url} returned {len(data)} vectors for {expected} inputs")
        try:
            items = sorted(data, key=lambda item: int(item["index"]))
            indices = [int(item["index"]) for item in items]
            matrix = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"{self._url} returned malformed data items: {exc}") from exc
        if indices != list(range(expected)):
            raise EmbeddingError(f"{self._url} returned indices {indices[:10]}, not 0..n-1")
        self._check_shape(matrix)
        return l2_normalise(matrix)

    def _check_shape(self, matrix: Matrix) -> None:
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise EmbeddingError(f"{self._url} returned vectors of shape {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise EmbeddingError(f"{self._url} returned non-finite vector values")
        if self._dimension is None:
            self._dimension = int(matrix.shape[1])
        elif matrix.shape[1] != self._dimension:
            raise EmbeddingError(
                f"{self._url} returned dimension {matrix.shape[1]}, expected {self._dimension}",
                hint="set embedding.remote.dimension to the model's dimension",
            )

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """The wait before retry ``retry`` (1-based): see the module doc."""
        if retry_after is not None:
            return min(retry_after, self._max_retry_after_s)
        return self._backoff.delay(retry)

    def _excerpt(self, response: httpx.Response) -> str:
        return excerpt(response.text, self._secret)

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check embedding.remote.api_key (RAGKEEL_EMBEDDING__REMOTE__API_KEY)"
    if status == 404:
        return "check embedding.remote.base_url (it should end in /v1) and the model name"
    return "check the request limits and the model name in embedding.remote"
