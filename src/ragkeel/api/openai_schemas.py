"""Bodies of the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` (the shapes the
official clients parse), with ragkeel's own fields under the namespaced ``ragkeel`` member."""

from __future__ import annotations

import time
import uuid
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ragkeel.api.request_limits import check_json_body, non_finite_at
from ragkeel.api.schemas import CacheOut, CitationOut, GenerationModeIn, UsageOut
from ragkeel.errors import QueryError
from ragkeel.generation.answer import Answer
from ragkeel.generation.condense import Turn

MAX_COMPLETION_TOKENS = 1_000_000  # a larger completion limit is refused (422), like max_tokens


def _finite(model: BaseModel) -> None:
    """A validation error naming where the model's free-form parts (extra members, content parts)
    hold a non-finite number: ``Infinity``, ``NaN`` or an overflowing ``1e309``."""
    extra = dict(model.model_extra or {})
    content = getattr(model, "content", None)
    where = non_finite_at({**extra, "content": content} if content is not None else extra)
    if where is not None:
        raise PydanticCustomError(
            "finite_number", "{where}: Input should be a finite number", {"where": where}
        )


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    @model_validator(mode="after")
    def _finite_numbers(self) -> ChatMessageIn:
        _finite(self)
        return self

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The content as text (the text parts of a multi-part content, joined)."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(
            str(p.get("text", "")) for p in parts if p.get("type") in ("text", "input_text")
        )


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; sampling options (temperature, top_p...) are accepted and ignored (but
    must be finite numbers, like every number of the body). ``max_completion_tokens`` (or the
    older ``max_tokens``) caps the answer's tokens, at most the server's
    ``generation.max_answer_tokens``; out of range is 422. ``collection``, ``k``, ``mode`` and
    ``cache`` are ragkeel extensions (``extra_body``)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    collection: str | None = None
    k: int | None = Field(default=None, ge=1, le=100)
    mode: GenerationModeIn | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_COMPLETION_TOKENS)
    max_tokens: int | None = Field(
        default=None, ge=1, le=MAX_COMPLETION_TOKENS, description="deprecated by OpenAI"
    )
    cache: bool = Field(
        default=True, description="false: not from the answer cache (Cache-Control: no-cache)"
    )

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        return check_json_body(data)

    @model_validator(mode="after")
    def _finite_numbers(self) -> ChatCompletionRequest:
        _finite(self)  # the sampling options (temperature, top_p...) are accepted as extras
        return self

    def question(self) -> str:
        """The last user message: the question."""
        return self.messages[self._last_user()].text()

    def history(self) -> tuple[Turn, ...]:
        """The user and assistant messages before the last user message, oldest first: the
        conversation a follow-up is made standalone from (system and tool messages are not
        turns)."""
        return tuple(
            Turn("user" if m.role == "user" else "assistant", m.text())
            for m in self.messages[: self._last_user()]
            if m.role in ("user", "assistant")
        )

    def _last_user(self) -> int:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "user":
                return i
        raise QueryError("no user message", hint='the last message with role "user" is asked')


class RagkeelExtras(BaseModel):
    citations: list[CitationOut]
    mode: str
    grounded: bool
    degraded: bool
    degraded_reason: str | None
    trace_id: str | None
    model: str | None
    template_version: str | None
    cost: float
    latency_ms: dict[str, float]
    served_by: str | None  # as in /v1/query: the deployment, "extractive" or "cannot_answer"
    gateway: dict[str, Any] | None  # as in /v1/query: the gateway's attempts and decisions
    cached: bool = False  # as in /v1/query: served from the answer cache (issue 14)
    cache: CacheOut | None = None  # as in /v1/query: what the answer cache did

    @classmethod
    def from_answer(cls, a: Answer, trace_id: str | None) -> RagkeelExtras:
        return cls(
            citations=[CitationOut.model_validate(c) for c in a.citations],
            mode=a.mode,
            grounded=a.grounded,
            degraded=a.degraded,
            degraded_reason=a.degraded_reason,
            trace_id=trace_id,
            model=a.model,
            template_version=a.template_version,
            cost=a.cost,
            latency_ms=dict(a.latency_ms),
            served_by=a.served_by,
            gateway=dict(a.gateway) if a.gateway is not None else None,
            cached=a.cached,
            cache=CacheOut.model_validate(a.cache) if a.cache is not None else None,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    ragkeel: RagkeelExtras


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def sources_footer(answer: Answer) -> str:
    """``\\n\\nSources:\\n[1] Title, p. 3`` for the cited sources ("" when none is cited)."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        page = f", p. {c.page}" if c.page else ""
        lines.append(f"[{c.number}] {c.title or PurePath(c.source).name}{page}")
    return "\n\nSources:\n" + "\n".join(lines)


def completion(answer: Answer, trace_id: str | None, *, model: str) -> ChatCompletionOut:
    return ChatCompletionOut(
        id=completion_id(),
        created=now(),
        model=model,
        choices=[ChoiceOut(message=AssistantMessage(content=answer.text + sources_footer(answer)))],
        usage=UsageOut.model_validate(answer.usage),
        ragkeel=RagkeelExtras.from_answer(answer, trace_id),
    )


def chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


class ModelOut(BaseModel):
    """One entry of ``GET /v1/models`` (OpenAI's ``Model``)."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix seconds: when this server started")
    owned_by: str


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
