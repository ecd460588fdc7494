"""The ``ChatModel`` protocol and the values that cross it.

A provider (local GGUF, OpenAI-compatible HTTP, the scripted fake) implements ``complete`` and
``stream``; policies (retry, breaker, fallback...) are wrappers implementing the same protocol.
Failures are raised as ``ragkeel.errors.ChatModelError`` subclasses, never returned.

``stream`` returns a ``ChatStream``: an iterator of ``ChatChunk``s whose ``text_delta``s
concatenate to the full answer (the last chunk has ``finish_reason`` set and carries the call's
``usage``) that can be closed by type: ``close()`` cancels generation and releases what the
stream holds (a connection, the local model's generation slot). A generator is one; a wrapper
closes its inner stream first, before anything else calls into that model.

What the gateway did for a request (attempts, decisions, usage) is not on the request: the
policies append it to the call log being recorded in the current context
(``ragkeel.gateway.calllog.recording``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal[
    "stop", "length"
]  # "stop": natural end or a stop sequence; "length": max_tokens


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class RoutingHints:
    """What the router may look at besides the messages: the user's question and how confident
    retrieval was (``top_score``: top dense cosine; ``margin``: top minus second fused score)."""

    question: str = ""
    top_score: float | None = None
    margin: float | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One model call. ``timeout_s`` bounds one attempt (first token to last), ``None`` = the
    provider's default.

    Gateway fields (ignored by providers, read by the policies): ``deadline`` is the absolute
    time on the gateway's clock by which the whole request (all retries and fallbacks) must end;
    ``tenant`` keys rate limits, budgets and the cost ledger; ``max_cost`` (USD) caps what this
    request may spend; ``hints`` feed the router; ``next_rung`` (set by the fallback chain on every rung but the last) names the deployment
    the request goes to if this one fails, so the retry loop can move a timeout or a long
    ``Retry-After`` on to it instead of waiting here.
    """

    messages: tuple[ChatMessage, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    timeout_s: float | None = None
    deadline: float | None = None
    tenant: str | None = None
    max_cost: float | None = None
    hints: RoutingHints | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # the reply must be one JSON value valid against this schema: providers that can constrain
    # decoding do (llama.cpp grammar, OpenAI response_format); the others rely on the prompt
    json_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    next_rung: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a chat request needs at least one message")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ValueError(f"max_cost must not be negative, got {self.max_cost}")


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class ChatResponse:
    text: str
    usage: Usage
    model: str
    finish_reason: FinishReason = "stop"


@dataclass(frozen=True, slots=True)
class ChatChunk:
    text_delta: str
    finish_reason: FinishReason | None = None  # set on the last chunk only
    usage: Usage | None = None  # set on the last chunk only
    model: str | None = None  # last chunk, from policies: the deployment that finished the answer


class ChatStream(Protocol):
    """What ``ChatModel.stream`` returns: the chunks, and ``close()`` to stop early."""

    def __iter__(self) -> Iterator[ChatChunk]: ...

    def __next__(self) -> ChatChunk: ...

    def close(self) -> None:
        """Cancel generation and release what the stream holds; idempotent."""
        ...


class ChatModel(Protocol):
    @property
    def name(self) -> str:
        """Model name as reported in answers, traces and the price table."""
        ...

    def complete(self, request: ChatRequest) -> ChatResponse:
        """The whole answer at once; raises a ``ChatModelError`` subclass on failure."""
        ...

    def stream(self, request: ChatRequest) -> ChatStream:
        """The answer as it is generated; may raise a ``ChatModelError`` before or between
        chunks. Closing the stream early cancels generation."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of prompt tokens ``text`` takes with this model's tokenizer."""
        ...
