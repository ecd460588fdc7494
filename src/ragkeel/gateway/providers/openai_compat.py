"""``OpenAICompatChatModel``: a chat model behind an OpenAI-compatible ``/chat/completions`` API
(OpenAI, vLLM, llama.cpp server, Ollama's ``/v1``, LiteLLM...).

* ``complete`` POSTs ``{"model", "messages", "max_tokens", "temperature", "stop"?}`` and reads
  ``choices[0].message.content``, ``choices[0].finish_reason`` (``"length"`` stays
  ``"length"``, anything else is ``"stop"``) and ``usage.prompt_tokens/completion_tokens``.
* ``stream`` adds ``"stream": true, "stream_options": {"include_usage": true}`` and reads the
  server-sent events ``data: {...}`` up to ``data: [DONE]``: one ``ChatChunk`` per non-empty
  content delta, then a final ``ChatChunk("", finish_reason, usage)``. ``usage`` comes from the
  last event that carries one; a server that sends none gets an estimate from ``count_tokens``.
  Closing the iterator closes the HTTP response (the server sees the hang-up and stops).
* Timeouts: ``request.timeout_s`` (else the model's ``timeout_s``) is httpx's per-operation
  timeout, and the stream also checks the clock between events, so a trickling server cannot
  exceed it by much.
* Errors (all carry ``status`` when there is one, ``provider="openai_compat"``): timeouts ->
  ``ModelTimeoutError``; connect, reset and other transport failures and 5xx ->
  ``ModelUnavailableError``; 429 -> ``ModelRateLimitedError`` (``retry_after_s`` from
  ``Retry-After``); any other non-2xx -> ``ModelRequestError`` with a body excerpt; a stream that
  breaks after delivering text -> ``StreamInterruptedError`` with the partial text; a malformed
  body -> ``ChatModelError``. The API key is never put in a message (and is redacted if echoed).
  No retries here: retry/breaker/fallback are wrappers over the ``ChatModel`` protocol.
* ``count_tokens`` is an approximation: the server's tokenizer is unknown, so
  ``RegexTokenCounter`` (words and punctuation marks) stands in for it. Close to BPE counts for
  English prose, an under-count for code and non-Latin scripts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
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

_EXCERPT = 200
PROVIDER = "openai_compat"


class OpenAICompatChatModel:
    """``ChatModel`` client; one ``httpx.Client`` (connection pool) per instance, thread-safe."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._secret = api_key or None
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)
        self._url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self._name = name or model
        self._counter = RegexTokenCounter()

    @property
    def name(self) -> str:
        return self._name

    def count_tokens(self, text: str) -> int:
        """Approximate (``RegexTokenCounter``): the server's tokenizer is not known here."""
        return self._counter.count(text)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAICompatChatModel:
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
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise ChatModelError(
                f"{self._url} returned no choices[0].message.content: {exc!r}", model=self._name
            ) from exc
        usage = _usage(body.get("usage")) or self._estimate(request, text)
        return ChatResponse(text, usage, self._name, _finish(choice.get("finish_reason")))

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
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage: Usage | None = None
        done = False
        try:
            for line in response.iter_lines():
                if time.monotonic() - started > timeout:
                    raise self._timeout_error(timeout)
                if not line.startswith("data:"):
                    continue  # blank separators, comments (": keep-alive"), event/id fields
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = self._json(data)
                usage = _usage(event.get("usage")) or usage
                for choice in event.get("choices") or ():
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(content, str) and content:
                        parts.append(content)
                        yield ChatChunk(content)
                    if choice.get("finish_reason"):
                        finish = _finish(choice["finish_reason"])
        except httpx.HTTPError as exc:
            if parts and not isinstance(exc, httpx.TimeoutException):
                raise self._interrupted(f"{type(exc).__name__}: {exc}", parts) from exc
            raise self._transport_error(exc, timeout) from exc
        if not done:
            raise self._interrupted("closed the stream before [DONE]", parts)
        yield ChatChunk("", finish, usage or self._estimate(request, "".join(parts)))

    # -- helpers --------------------------------------------------------------------------

    def _payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _timeout(self, request: ChatRequest) -> float:
        return request.timeout_s if request.timeout_s is not None else self.timeout_s

    def _estimate(self, request: ChatRequest, text: str) -> Usage:
        prompt = sum(self.count_tokens(m.content) for m in request.messages)
        return Usage(prompt, self.count_tokens(text))

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

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{self._url} returned HTTP {status}: {self._excerpt(response.text)}"
        retry_after = retry_after_seconds(response)
        if status == 429:
            raise ModelRateLimitedError(
                message,
                model=self._name,
                retry_after_s=retry_after,
                status=status,
                provider=PROVIDER,
            )
        if status >= 500:
            raise ModelUnavailableError(
                message,
                model=self._name,
                retry_after_s=retry_after,
                status=status,
                provider=PROVIDER,
            )
        raise ModelRequestError(
            message, model=self._name, hint=_hint_for(status), status=status, provider=PROVIDER
        )

    def _interrupted(self, why: str, parts: list[str]) -> StreamInterruptedError:
        return StreamInterruptedError(
            self._redact(f"{self._url} {why} after {len(parts)} chunks"),
            model=self._name,
            partial="".join(parts),
        )

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

    def _excerpt(self, text: str) -> str:
        flat = self._redact(" ".join(text.split()))
        return flat[:_EXCERPT] + ("..." if len(flat) > _EXCERPT else "")

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check the chat model's API key"
    if status == 404:
        return "check the chat model's base_url (it usually ends in /v1) and the model name"
    return "check the request limits and the model name"
