"""Reading Anthropic's Messages API responses: what ``AnthropicChatModel`` needs to turn a body
or a stream of server-sent events into text, a finish reason, usage and typed errors.

* ``StreamState`` folds the stream's events in, one at a time: ``message_start``
  (``message.usage.input_tokens``), ``content_block_delta`` with ``delta.type == "text_delta"``
  (the answer text), ``message_delta`` (``delta.stop_reason``; ``usage.output_tokens`` is the
  running total), ``message_stop`` (the end). ``ping``, ``content_block_start/stop`` and unknown
  event types change nothing.
* ``usage_of(body["usage"])``: ``input_tokens`` plus prompt-cache writes and reads (all of them
  are prompt) and ``output_tokens``; ``None`` when the body reports neither.
* ``finish_reason``: ``"max_tokens"`` -> ``"length"``, anything else -> ``"stop"``.
* ``describe_error(body)``: ``error.type: error.message`` from an error body, else the body.
* ``event_error``: the typed error of an ``error`` event inside a 200 stream (no HTTP status:
  ``error.type`` decides; once text was delivered it is ``StreamInterruptedError``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ragkeel.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelUnavailableError,
)
from ragkeel.gateway.base import FinishReason, Usage
from ragkeel.gateway.providers.http_client import ProviderHttp

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


@dataclass(slots=True)
class StreamState:
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
                self.finish = finish_reason(delta["stop_reason"])
            usage = event.get("usage")
            self.prompt_tokens = _or(_prompt_tokens(usage), self.prompt_tokens)
            self.completion_tokens = _or(_int(usage, "output_tokens"), self.completion_tokens)
        elif kind == "message_stop":
            self.stopped = True
        return ""  # ping, content_block_start/stop, unknown types

    def usage(self, estimate: Usage) -> Usage:
        """The usage the events reported, ``estimate``'s figures where they reported none."""
        prompt = _or(self.prompt_tokens, estimate.prompt_tokens)
        completion = _or(self.completion_tokens, estimate.completion_tokens)
        return Usage(prompt or 0, completion or 0)


def event_error(http: ProviderHttp, error: object, parts: list[str]) -> ChatModelError:
    """The ``error`` event inside a 200 stream: no HTTP status, the ``error.type`` decides."""
    kind = error.get("type") if isinstance(error, dict) else None
    what = http.describe(json.dumps({"error": error}))
    if parts:
        return http.interrupted(f"sent an error event ({what})", parts)
    message = f"{http.url} sent an error event before any text: {what}"
    if kind == "rate_limit_error":
        return ModelRateLimitedError(message, model=http.name, provider=http.provider)
    if kind in _REQUEST_ERROR_TYPES:
        return ModelRequestError(message, model=http.name, provider=http.provider)
    return ModelUnavailableError(message, model=http.name, provider=http.provider)


def describe_error(body: str) -> str:
    """``error.type: error.message`` from an Anthropic error body, else the body itself."""
    try:
        error = json.loads(body).get("error")
        return f"{error['type']}: {error['message']}"
    except (ValueError, AttributeError, KeyError, TypeError):
        return body


def finish_reason(reason: object) -> FinishReason:
    return "length" if reason == "max_tokens" else "stop"


def usage_of(raw: object) -> Usage | None:
    prompt = _prompt_tokens(raw)
    completion = _int(raw, "output_tokens")
    if prompt is None and completion is None:
        return None
    return Usage(prompt or 0, completion or 0)


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
