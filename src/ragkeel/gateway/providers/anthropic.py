"""``AnthropicChatModel``: Claude models behind Anthropic's Messages API, over httpx (no SDK, so
no hidden retries: the gateway's retry policy is the only retry loop).

* ``complete`` POSTs ``{base_url}/v1/messages`` with the headers ``x-api-key`` and
  ``anthropic-version`` and the body ``{"model", "messages", "max_tokens", "temperature",
  "system"?, "stop_sequences"?}``. The Messages API has no ``system`` role: system messages are
  joined (blank line between) into the top-level ``system`` field; the others keep their order.
  It reads the ``text`` of every ``content[]`` block of type ``text`` (joined),
  ``stop_reason`` (``"max_tokens"`` -> ``"length"``, anything else -> ``"stop"``) and
  ``usage.input_tokens/output_tokens`` (prompt-cache reads and writes, should a proxy report
  them, are added to the prompt tokens).
* ``stream`` adds ``"stream": true`` and reads the server-sent events by their ``type``:
  ``message_start`` (``message.usage.input_tokens``), ``content_block_delta`` with
  ``delta.type == "text_delta"`` (one ``ChatChunk`` per non-empty ``delta.text``),
  ``message_delta`` (``delta.stop_reason``; ``usage.output_tokens`` is the running total),
  ``message_stop`` (the end: a final ``ChatChunk("", finish_reason, usage)``). ``ping``,
  ``content_block_start/stop`` and unknown event types are skipped. An ``error`` event (e.g.
  ``overloaded_error``) raises the matching typed error, or ``StreamInterruptedError`` with the
  partial text once text was delivered; so does a stream that ends before ``message_stop``.
  Closing the iterator closes the HTTP response (the server sees the hang-up and stops).
* Timeouts: ``request.timeout_s`` (else the model's ``timeout_s``) is httpx's per-operation
  timeout, and the stream also checks the clock between events.
* Errors (``provider="anthropic"``, ``status`` when there is one): timeouts ->
  ``ModelTimeoutError``; connect, reset and other transport failures, 5xx and 529 (overloaded)
  -> ``ModelUnavailableError``; 429 -> ``ModelRateLimitedError`` (``retry_after_s`` from
  ``retry-after``); any other non-2xx -> ``ModelRequestError``; a malformed body ->
  ``ChatModelError``. Messages quote the API's ``error.type: error.message``. The API key is
  never put in a message (and is redacted if echoed).
* ``count_tokens`` is an approximation: Claude's tokenizer is not public (the exact count needs a
  call to ``/v1/messages/count_tokens``), so ``RegexTokenCounter`` (words and punctuation marks)
  stands in. Close for English prose, an under-count for code and non-Latin scripts; the usage
  the API reports is exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ragkeel.gateway.base import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage
from ragkeel.gateway.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    StreamInterruptedError,
)
from ragkeel.http_headers import retry_after_seconds
from ragkeel.tokens import RegexTokenCounter

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
_EXCERPT = 200
# error.type values (of an in-stream ``error`` event) whose HTTP status would be a 4xx other
# than 429; any other type (overloaded_error, api_error, unknown ones) is the server's trouble
_REQUEST_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
    }
)


class AnthropicChatModel:
    """``ChatModel`` client; one ``httpx.Client`` (connection pool) per instance, thread-safe.
    ``base_url`` is the API root without ``/v1`` (a proxy's root works too); ``model`` is
    required (``base_url`` has a default, so it is a keyword in practice)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        model: str = "",
        *,
        api_key: str | None,
        timeout_s: float = 60.0,
        anthropic_version: str = "2023-06-01",
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required, e.g. AnthropicChatModel(model='claude-...')")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        headers = {"Accept": "application/json", "anthropic-version": anthropic_version}
        if api_key:
            headers["x-api-key"] = api_key
        self._secret = api_key or None
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)
        self._url = base_url.rstrip("/") + "/v1/messages"
        self.model = model
        self.timeout_s = timeout_s
        self._name = name or model
        self._counter = RegexTokenCounter()

    @property
    def name(self) -> str:
        return self._name

    def count_tokens(self, text: str) -> int:
        """Approximate (``RegexTokenCounter``): Claude's tokenizer is not public."""
        return self._counter.count(text)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AnthropicChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- complete -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResponse:
        timeout = self._timeout(request)
        try:
            response = self._client.post(
                self._url, json=self._payload(request, stream=False), timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from exc
        self._check_status(response)
        body = self._json(response.text)
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise ChatModelError(f"{self._url} returned no content[] list", model=self._name)
        text = "".join(
            b["text"]
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        usage = _usage(body.get("usage")) or self._estimate(request, text)
        return ChatResponse(text, usage, self._name, _finish(body.get("stop_reason")))

    # -- stream ---------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Sends the request when the iterator is first advanced."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        timeout = self._timeout(request)
        started = time.monotonic()
        http_request = self._client.build_request(
            "POST", self._url, json=self._payload(request, stream=True), timeout=timeout
        )
        try:
            response = self._client.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from exc
        try:
            if not 200 <= response.status_code < 300:
                try:
                    response.read()
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc, timeout) from exc
                self._check_status(response)
            yield from self._events(request, response, started, timeout)
        finally:
            response.close()

    def _events(
        self, request: ChatRequest, response: httpx.Response, started: float, timeout: float
    ) -> Iterator[ChatChunk]:
        state = _StreamState()
        try:
            for line in response.iter_lines():
                if time.monotonic() - started > timeout:
                    raise self._timeout_error(timeout)
                if not line.startswith("data:"):
                    continue  # blank separators, comments, "event:" names (data repeats them)
                event = self._json(line[len("data:") :].strip())
                if event.get("type") == "error":
                    raise self._event_error(event.get("error"), state.parts)
                text = state.apply(event)
                if text:
                    yield ChatChunk(text)
                if state.stopped:
                    break
            else:
                raise self._interrupted("closed the stream before message_stop", state.parts)
        except httpx.HTTPError as exc:
            if state.parts and not isinstance(exc, httpx.TimeoutException):
                raise self._interrupted(f"{type(exc).__name__}: {exc}", state.parts) from exc
            raise self._transport_error(exc, timeout) from exc
        usage = self._estimate(request, "".join(state.parts))  # if the server sent none
        if state.prompt_tokens is not None:
            usage = Usage(state.prompt_tokens, usage.completion_tokens)
        if state.completion_tokens is not None:
            usage = Usage(usage.prompt_tokens, state.completion_tokens)
        yield ChatChunk("", state.finish, usage)

    # -- request mapping ------------------------------------------------------------------

    def _payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if system:
            payload["system"] = "\n\n".join(system)
        if request.stop:
            payload["stop_sequences"] = list(request.stop)
        if stream:
            payload["stream"] = True
        return payload

    def _timeout(self, request: ChatRequest) -> float:
        return request.timeout_s if request.timeout_s is not None else self.timeout_s

    def _prompt_estimate(self, request: ChatRequest) -> int:
        return sum(self.count_tokens(m.content) for m in request.messages)

    def _estimate(self, request: ChatRequest, text: str) -> Usage:
        return Usage(self._prompt_estimate(request), self.count_tokens(text))

    def _json(self, text: str) -> dict[str, Any]:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ChatModelError(
                f"{self._url} returned invalid JSON: {self._excerpt(text)}", model=self._name
            ) from exc
        if not isinstance(body, dict):
            raise ChatModelError(
                f"{self._url} returned JSON that is not an object: {self._excerpt(text)}",
                model=self._name,
            )
        return body

    # -- errors ---------------------------------------------------------------------------

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{self._url} returned HTTP {status}: {self._describe(response.text)}"
        if status == 429 or status >= 500:  # 529 is Anthropic's "overloaded"
            kind = ModelRateLimitedError if status == 429 else ModelUnavailableError
            raise kind(
                message,
                model=self._name,
                retry_after_s=retry_after_seconds(response),
                status=status,
                provider=PROVIDER,
            )
        raise ModelRequestError(
            message, model=self._name, hint=_hint_for(status), status=status, provider=PROVIDER
        )

    def _event_error(self, error: object, parts: list[str]) -> ChatModelError:
        """The ``error`` event inside a 200 stream: no HTTP status, the ``error.type`` decides."""
        kind = error.get("type") if isinstance(error, dict) else None
        what = self._describe(json.dumps({"error": error}))
        if parts:
            return self._interrupted(f"sent an error event ({what})", parts)
        message = f"{self._url} sent an error event before any text: {what}"
        if kind == "rate_limit_error":
            return ModelRateLimitedError(message, model=self._name, provider=PROVIDER)
        if kind in _REQUEST_ERROR_TYPES:
            return ModelRequestError(message, model=self._name, provider=PROVIDER)
        return ModelUnavailableError(message, model=self._name, provider=PROVIDER)

    def _interrupted(self, why: str, parts: list[str]) -> StreamInterruptedError:
        error = StreamInterruptedError(
            self._redact(f"{self._url} {why} after {len(parts)} chunks"),
            model=self._name,
            partial="".join(parts),
        )
        error.provider = PROVIDER
        return error

    def _transport_error(self, exc: httpx.HTTPError, timeout: float) -> ChatModelError:
        if isinstance(exc, httpx.TimeoutException):
            return self._timeout_error(timeout)
        return ModelUnavailableError(
            self._redact(f"{self._url} request failed: {type(exc).__name__}: {exc}"),
            model=self._name,
            provider=PROVIDER,
        )

    def _timeout_error(self, timeout: float) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"{self._name} did not answer within {timeout:g} s",
            model=self._name,
            timeout_s=timeout,
            provider=PROVIDER,
        )

    def _describe(self, body: str) -> str:
        """``error.type: error.message`` from an Anthropic error body, else a body excerpt."""
        try:
            error = json.loads(body).get("error")
            described = f"{error['type']}: {error['message']}"
        except (ValueError, AttributeError, KeyError, TypeError):
            return self._excerpt(body)
        return self._excerpt(described)

    def _excerpt(self, text: str) -> str:
        flat = self._redact(" ".join(text.split()))
        return flat[:_EXCERPT] + ("..." if len(flat) > _EXCERPT else "")

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


@dataclass(slots=True)
class _StreamState:
    """What a stream's events said so far; ``apply`` folds in one event (``error`` events are
    the caller's: they need the model's name and the partial text for the typed error)."""

    parts: list[str] = field(default_factory=list)
    finish: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None  # message_delta's output_tokens is a running total
    stopped: bool = False

    def apply(self, event: dict[str, Any]) -> str:
        """Returns the answer text the event adds ('' for all but text deltas)."""
        kind = event.get("type")
        if kind == "content_block_delta":
            text = _text_delta(event.get("delta"))
            if text:
                self.parts.append(text)
            return text
        if kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            self.prompt_tokens = _or(_prompt_tokens(usage), self.prompt_tokens)
        elif kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finish = _finish(delta["stop_reason"])
            usage = event.get("usage")
            self.prompt_tokens = _or(_prompt_tokens(usage), self.prompt_tokens)
            self.completion_tokens = _or(_int(usage, "output_tokens"), self.completion_tokens)
        elif kind == "message_stop":
            self.stopped = True
        return ""  # ping, content_block_start/stop, unknown types


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "max_tokens" else "stop"


def _text_delta(delta: object) -> str:
    if isinstance(delta, dict) and delta.get("type") == "text_delta":
        text = delta.get("text")
        return text if isinstance(text, str) else ""
    return ""  # input_json_delta, thinking_delta...: not part of the answer text


def _or(value: int | None, default: int | None) -> int | None:
    return value if value is not None else default


def _int(raw: object, key: str) -> int | None:
    if not isinstance(raw, dict) or raw.get(key) is None:
        return None
    try:
        return int(raw[key])
    except (TypeError, ValueError):
        return None


def _prompt_tokens(raw: object) -> int | None:
    """``input_tokens`` plus prompt-cache writes and reads (all of them are prompt)."""
    base = _int(raw, "input_tokens")
    if base is None:
        return None
    cached = ("cache_creation_input_tokens", "cache_read_input_tokens")
    return base + sum(_int(raw, key) or 0 for key in cached)


def _usage(raw: object) -> Usage | None:
    prompt = _prompt_tokens(raw)
    completion = _int(raw, "output_tokens")
    if prompt is None and completion is None:
        return None
    return Usage(prompt or 0, completion or 0)


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check the Anthropic API key (x-api-key) and its workspace permissions"
    if status == 404:
        return "check the base_url (without /v1) and the model name"
    if status == 413:
        return "the request is too large: lower the context budget"
    return "check the request limits (max_tokens, temperature 0..1) and the model name"
