"""``ProviderHttp``: the HTTP plumbing the remote providers share (OpenAI-compatible and
Anthropic chat models, the remote reranker). Each provider owns one (composition: the provider
maps requests and responses, this object sends them and maps failures), so all fail the same
way. ``HttpChatModel`` is the small base both chat providers extend for the rest of the
``ChatModel`` surface they share (``count_tokens``, the usage estimate), on ``HttpDeployment``,
what every remote deployment (the reranker too) has of its ``ProviderHttp``: ``name``, ``close``
and the context manager. ``bearer_headers`` are the headers of an API that takes its key as
``Authorization: Bearer`` (OpenAI-compatible, the rerankers).

* One ``httpx.Client`` (connection pool, thread-safe) per provider, with the provider's headers
  and ``timeout_s`` as the default per-operation timeout; ``close`` closes it.
* ``timeout_for(request)``: ``request.timeout_s`` if set (a chat or rerank request), else the
  provider's ``timeout_s``.
* ``post_json`` POSTs and returns the body as a JSON object (``post_text``: as text, for a
  client that reads other JSON, e.g. the reranker's lists); ``stream_data`` POSTs with a
  streamed response and yields the payload of every server-sent ``data:`` line (blank
  separators, comments and other fields are skipped), checking the clock between lines. The
  response is closed when the generator ends or is closed (the server sees the hang-up).
* Errors (``provider`` set; ``status`` when there is one): an httpx timeout ->
  ``ModelTimeoutError``; any other transport failure -> ``ModelUnavailableError``, or
  ``StreamInterruptedError`` with the partial text once a stream delivered some; 429 ->
  ``ModelRateLimitedError`` and 5xx (Anthropic's 529 too) -> ``ModelUnavailableError``, both
  with ``retry_after_s`` from ``Retry-After``; any other non-2xx -> ``ModelRequestError`` with the
  provider's hint for the status; a body that is not a JSON object -> ``ChatModelError``.
  Messages quote at most ``EXCERPT`` characters of the body (``describe`` may first pick the
  provider's error text out of it) and never contain the API key: it is redacted if echoed.
  The status kinds, ``Retry-After`` parsing and the excerpt rules are ``ragkeel.http_retry``'s,
  shared with the remote embedder.
  Credentials in the URL (``https://user:password@host``) are masked wherever it is named.
* Every request carries the W3C ``traceparent`` of the current span (the gateway attempt's,
  ``observability/tracing.py``) when a request is being traced; none otherwise.

No retries here: retry, breaker and fallback are wrappers over the ``ChatModel`` protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from typing import Any, Protocol, Self

import httpx

from ragkeel.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    StreamInterruptedError,
)
from ragkeel.gateway.base import ChatRequest, Usage
from ragkeel.http_retry import excerpt, is_retryable_status, redact, retry_after_seconds
from ragkeel.observability.tracing import propagation_headers
from ragkeel.redaction import strip_url_credentials
from ragkeel.tokens import RegexTokenCounter


def _as_is(body: str) -> str:
    return body


def bearer_headers(api_key: str | None) -> dict[str, str]:
    """JSON accepted, and the API key as ``Authorization: Bearer`` when there is one."""
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class Timed(Protocol):
    """A request with an optional per-attempt timeout (``ChatRequest``, ``RerankRequest``)."""

    @property
    def timeout_s(self) -> float | None: ...


class ProviderHttp:
    """Sends one provider's requests to ``url`` and maps its failures onto the gateway's error
    tree. ``name`` is the deployment name the errors carry; ``secret`` (the API key) is redacted
    from every message; ``hint_for(status)`` is the hint of a rejected request (4xx but 429)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        provider: str,
        headers: dict[str, str],
        secret: str | None,
        timeout_s: float,
        transport: httpx.BaseTransport | None,
        hint_for: Callable[[int], str],
        describe: Callable[[str], str] = _as_is,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = strip_url_credentials(url)  # what messages name: never user:password@
        self._target = url  # what requests go to (httpx sends its user-info as Basic auth)
        self.name = name
        self.provider = provider
        self.timeout_s = timeout_s
        self._secret = secret or None
        self._hint_for = hint_for
        self._describe = describe
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def timeout_for(self, request: Timed) -> float:
        return request.timeout_s if request.timeout_s is not None else self.timeout_s

    # -- sending --------------------------------------------------------------------------

    def post_json(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POSTs ``payload``; the 2xx body as a JSON object, else the typed error."""
        return self.json(self.post_text(payload, timeout))

    def post_text(self, payload: dict[str, Any], timeout: float) -> str:
        """POSTs ``payload``; the 2xx body as text (the caller reads it), else the typed error."""
        try:
            response = self._client.post(
                self._target, json=payload, timeout=timeout, headers=propagation_headers()
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, timeout) from exc
        self.check_status(response)
        return response.text

    def stream_data(
        self, payload: dict[str, Any], timeout: float, parts: list[str]
    ) -> Generator[str, None, None]:
        """The ``data:`` payloads of a streamed POST, sent on the first ``next``. ``parts`` is
        the caller's list of the text delivered so far: once it is non-empty, a broken
        connection is a ``StreamInterruptedError`` carrying it. Close the generator (e.g. with
        ``contextlib.closing``) to close the response when the caller stops early."""
        started = time.monotonic()
        http_request = self._client.build_request(
            "POST", self._target, json=payload, timeout=timeout, headers=propagation_headers()
        )
        try:
            response = self._client.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, timeout) from exc
        try:
            if not 200 <= response.status_code < 300:
                try:
                    response.read()
                except httpx.HTTPError as exc:
                    raise self.transport_error(exc, timeout) from exc
                self.check_status(response)
            try:
                for line in response.iter_lines():
                    if time.monotonic() - started > timeout:
                        raise self.timeout_error(timeout)
                    if line.startswith("data:"):
                        yield line[len("data:") :].strip()
            except httpx.HTTPError as exc:
                if parts and not isinstance(exc, httpx.TimeoutException):
                    raise self.interrupted(f"{type(exc).__name__}: {exc}", parts) from exc
                raise self.transport_error(exc, timeout) from exc
        finally:
            response.close()

    # -- reading --------------------------------------------------------------------------

    def json(self, text: str) -> dict[str, Any]:
        """``text`` as a JSON object, else ``ChatModelError`` quoting an excerpt."""
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ChatModelError(
                f"{self.url} returned invalid JSON: {self.excerpt(text)}", model=self.name
            ) from exc
        if not isinstance(body, dict):
            raise ChatModelError(
                f"{self.url} returned JSON that is not an object: {self.excerpt(text)}",
                model=self.name,
            )
        return body

    def describe(self, body: str) -> str:
        """What an error body says (the provider's ``describe``), as a redacted excerpt."""
        return self.excerpt(self._describe(body))

    def excerpt(self, text: str) -> str:
        return excerpt(text, self._secret)

    def redact(self, text: str) -> str:
        return redact(text, self._secret)

    # -- errors ---------------------------------------------------------------------------

    def check_status(self, response: httpx.Response) -> None:
        """Nothing for a 2xx; else raises the status's typed error (see the module doc)."""
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{self.url} returned HTTP {status}: {self.describe(response.text)}"
        if is_retryable_status(status):
            kind = ModelRateLimitedError if status == 429 else ModelUnavailableError
            raise kind(
                message,
                model=self.name,
                retry_after_s=retry_after_seconds(response),
                status=status,
                provider=self.provider,
            )
        raise ModelRequestError(
            message,
            model=self.name,
            hint=self._hint_for(status),
            status=status,
            provider=self.provider,
        )

    def interrupted(self, why: str, parts: list[str]) -> StreamInterruptedError:
        error = StreamInterruptedError(
            self.redact(f"{self.url} {why} after {len(parts)} chunks"),
            model=self.name,
            partial="".join(parts),
        )
        error.provider = self.provider
        return error

    def transport_error(self, exc: httpx.HTTPError, timeout: float) -> ChatModelError:
        if isinstance(exc, httpx.TimeoutException):
            return self.timeout_error(timeout)
        return ModelUnavailableError(
            self.redact(f"{self.url} request failed: {type(exc).__name__}: {exc}"),
            model=self.name,
            provider=self.provider,
        )

    def timeout_error(self, timeout: float) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"{self.name} did not answer within {timeout:g} s",
            model=self.name,
            timeout_s=timeout,
            provider=self.provider,
        )


class HttpDeployment:
    """What a remote deployment (a chat model, a reranker) has of its ``ProviderHttp``: the
    deployment ``name`` (``http.name``) and ``close`` (with the context manager)."""

    def __init__(self, http: ProviderHttp) -> None:
        self._name = http.name
        self._http = http

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpChatModel(HttpDeployment):
    """The part of a remote ``ChatModel`` that does not depend on the provider's API: an
    ``HttpDeployment`` with ``count_tokens``. ``count_tokens`` is an approximation,
    ``RegexTokenCounter`` (words and punctuation marks): a remote server's tokenizer is not
    known here (Claude's is not public); close for English prose, an under-count for code and
    non-Latin scripts."""

    def __init__(self, model: str, http: ProviderHttp) -> None:
        super().__init__(http)
        self.model = model
        self.timeout_s = http.timeout_s
        self._counter = RegexTokenCounter()

    def count_tokens(self, text: str) -> int:
        """Approximate (``RegexTokenCounter``): the server's tokenizer is not known here."""
        return self._counter.count(text)

    def _estimate(self, request: ChatRequest, text: str) -> Usage:
        """Usage by ``count_tokens``, for a server that reports none."""
        prompt = sum(self.count_tokens(m.content) for m in request.messages)
        return Usage(prompt, self.count_tokens(text))
