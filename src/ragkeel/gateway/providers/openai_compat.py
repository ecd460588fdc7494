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

The HTTP plumbing (client, timeouts, status and transport errors, redaction) is ``ProviderHttp``
(``http_client.py``), shared with the Anthropic client.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from typing import Any

import httpx

from ragkeel.errors import ChatModelError
from ragkeel.gateway.base import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage
from ragkeel.gateway.providers.http_client import HttpChatModel, ProviderHttp, bearer_headers

PROVIDER = "openai_compat"


class OpenAICompatChatModel(HttpChatModel):
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
        http = ProviderHttp(
            base_url.rstrip("/") + "/chat/completions",
            name=name or model,
            provider=PROVIDER,
            headers=bearer_headers(api_key),
            secret=api_key,
            timeout_s=timeout_s,
            transport=transport,
            hint_for=_hint_for,
        )
        super().__init__(model, http)

    # -- complete -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResponse:
        timeout = self._http.timeout_for(request)
        body = self._http.post_json(self._payload(request, stream=False), timeout)
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise ChatModelError(
                f"{self._http.url} returned no choices[0].message.content: {exc!r}",
                model=self._name,
            ) from exc
        usage = _usage(body.get("usage")) or self._estimate(request, text)
        return ChatResponse(text, usage, self._name, _finish(choice.get("finish_reason")))

    # -- stream ---------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Sends the request when the iterator is first advanced."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        timeout = self._http.timeout_for(request)
        payload = self._payload(request, stream=True)
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage: Usage | None = None
        with closing(self._http.stream_data(payload, timeout, parts)) as lines:
            for data in lines:
                if data == "[DONE]":
                    break
                event = self._http.json(data)
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
            else:
                raise self._http.interrupted("closed the stream before [DONE]", parts)
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
        if request.json_schema is not None:  # structured output (OpenAI, vLLM, llama.cpp server)
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.json_schema)},
            }
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload


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
