"""The ``ChatModel`` protocol and the values that cross it.

A provider (local GGUF, OpenAI-compatible HTTP, the scripted fake) implements ``complete`` and
``stream``; policies (retry, breaker, fallback...) are wrappers implementing the same protocol.
Failures are raised as ``ragkeel.gateway.errors.ChatModelError`` subclasses, never returned.

``stream`` yields ``ChatChunk``s whose ``text_delta``s concatenate to the full answer; the last
chunk has ``finish_reason`` set and carries the call's ``usage``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal[
    "stop", "length"
]  # "stop": natural end or a stop sequence; "length": max_tokens


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One model call. ``timeout_s`` bounds the whole call (first token to last), ``None`` = the
    provider's default."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a chat request needs at least one message")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")


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


class ChatModel(Protocol):
    @property
    def name(self) -> str:
        """Model name as reported in answers, traces and the price table."""
        ...

    def complete(self, request: ChatRequest) -> ChatResponse:
        """The whole answer at once; raises a ``ChatModelError`` subclass on failure."""
        ...

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        """The answer as it is generated; may raise a ``ChatModelError`` before or between
        chunks. Closing the iterator early cancels generation."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of prompt tokens ``text`` takes with this model's tokenizer."""
        ...
