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

The HTTP plumbing (client, timeouts, status and transport errors, redaction) is ``ProviderHttp``
(``http_client.py``), shared with the OpenAI-compatible client; reading bodies and events is
``anthropic_events.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from typing import Any

import httpx

from ragkeel.errors import ChatModelError
from ragkeel.gateway.base import ChatChunk, ChatRequest, ChatResponse
from ragkeel.gateway.providers.anthropic_events import (
    StreamState,
    describe_error,
    event_error,
    finish_reason,
    usage_of,
)
from ragkeel.gateway.providers.http_client import HttpChatModel, ProviderHttp

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicChatModel(HttpChatModel):
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
        headers = {"Accept": "application/json", "anthropic-version": anthropic_version}
        if api_key:
            headers["x-api-key"] = api_key
        http = ProviderHttp(
            base_url.rstrip("/") + "/v1/messages",
            name=name or model,
            provider=PROVIDER,
            headers=headers,
            secret=api_key,
            timeout_s=timeout_s,
            transport=transport,
            hint_for=_hint_for,
            describe=describe_error,
        )
        super().__init__(model, http)

    # -- complete -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResponse:
        timeout = self._http.timeout_for(request)
        body = self._http.post_json(self._payload(request, stream=False), timeout)
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise ChatModelError(f"{self._http.url} returned no content[] list", model=self._name)
        text = "".join(
            b["text"]
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        usage = usage_of(body.get("usage")) or self._estimate(request, text)
        return ChatResponse(text, usage, self._name, finish_reason(body.get("stop_reason")))

    # -- stream ---------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Sends the request when the iterator is first advanced."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        timeout = self._http.timeout_for(request)
        payload = self._payload(request, stream=True)
        state = StreamState()
        # "event:" names are skipped: each data payload repeats its type
        with closing(self._http.stream_data(payload, timeout, state.parts)) as lines:
            for data in lines:
                event = self._http.json(data)
                if event.get("type") == "error":
                    raise event_error(self._http, event.get("error"), state.parts)
                text = state.apply(event)
                if text:
                    yield ChatChunk(text)
                if state.stopped:
                    break
            else:
                raise self._http.interrupted("closed the stream before message_stop", state.parts)
            usage = state.usage(self._estimate(request, "".join(state.parts)))
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


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check the Anthropic API key (x-api-key) and its workspace permissions"
    if status == 404:
        return "check the base_url (without /v1) and the model name"
    if status == 413:
        return "the request is too large: lower the context budget"
    return "check the request limits (max_tokens, temperature 0..1) and the model name"
