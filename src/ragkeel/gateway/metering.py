"""``MeteredChatModel``: the innermost policy around one deployment. It records every call made
to the provider in the ``CallLog`` being recorded (``calllog.current_log()``) as an ``Attempt``: the outcome, the error's code and
HTTP status, the latency, the usage and its cost from the price table. Everything above it
(retry, breaker, fallback, budget, the ledger) reads spend and history from that one log, so a
request's cost is the sum over the attempts that actually reached a provider.

Usage of a failed call: a provider that fails before answering bills nothing (usage 0); a stream
interrupted after some text bills the tokens it sent, estimated with ``count_tokens`` (prompt
plus the partial text). A stream closed early by the consumer is recorded as ``interrupted``
with its estimated usage (the tokens generated so far were paid for), unless the chunk with
``finish_reason`` had already gone out: then the answer was complete and it is ``ok``.

Each attempt is also a span (``observability/tracing.py``), a child of the request's current
span: GenAI ``chat {model}`` with the usage, cost, finish reason and outcome
(``observability/genai.py``). The provider is called with that span current, so an HTTP provider
sends its ``traceparent`` (``providers/http_client.py``). Tracing off: a ``ContextVar`` read.

Cleanup order: a stream closed by the consumer closes the provider's stream *before* anything
else calls into the provider (the usage estimate counts tokens): an open provider stream may
hold a resource that the call needs (one llama.cpp context is held for the whole stream).
"""

from __future__ import annotations

from collections.abc import Generator

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError, StreamInterruptedError
from ragkeel.gateway.base import ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, Usage
from ragkeel.gateway.calllog import Attempt, CallLog, Outcome, current_log
from ragkeel.gateway.pricing import Price
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.tracing import NULL_SPAN, Span


class MeteredChatModel:
    def __init__(
        self,
        inner: ChatModel,
        *,
        deployment: str | None = None,
        price: Price | None = None,
        clock: Clock = SYSTEM_CLOCK,
        model: str | None = None,
        provider: str = names.PROVIDER_LOCAL,
    ) -> None:
        """``model``: the provider's model name (default: ``inner.name``); ``provider``: its
        ``gen_ai.provider.name`` (both for the attempt's span)."""
        self.inner = inner
        self.deployment = deployment or inner.name
        self.price = price
        self._clock = clock
        self.model = model or inner.name
        self.provider = provider

    @property
    def name(self) -> str:
        return self.inner.name

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def cost(self, usage: Usage) -> float:
        return self.price.cost(usage) if self.price else 0.0

    def complete(self, request: ChatRequest) -> ChatResponse:
        log, started, span = current_log(), self._clock.now(), self._span(request)
        try:
            with tracing.active(span):
                response = self.inner.complete(request)
        except ChatModelError as exc:
            self._record(log, started, "error", Usage(), exc, span=span)
            raise
        self._record(
            log,
            started,
            "ok",
            response.usage,
            span=span,
            finish=response.finish_reason,
            text=response.text,
            response_model=response.model,
        )
        return response

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        log, started, span = current_log(), self._clock.now(), self._span(request)
        parts: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        chunks: ChatStream | None = None
        try:
            with tracing.active(span):  # the provider's call (and its traceparent) in the span
                chunks = self.inner.stream(request)
            while True:
                with tracing.active(span):
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                parts.append(chunk.text_delta)
                usage = chunk.usage or usage
                finish = finish or chunk.finish_reason
                yield chunk
        except ChatModelError as exc:
            spent = self._estimate(request, "".join(parts)) if parts else Usage()
            outcome: Outcome = "interrupted" if isinstance(exc, StreamInterruptedError) else "error"
            self._record(log, started, outcome, spent, exc, span=span, text="".join(parts))
            raise
        except GeneratorExit:  # closed by the consumer: after the last chunk that is a success
            # close the provider's stream FIRST: until it is closed it may hold resources the
            # estimate needs (the local model's generation lock: counting tokens while its stream
            # was still open deadlocked the answer thread, issue 9)
            if chunks is not None:
                chunks.close()
            spent = usage or self._estimate(request, "".join(parts))
            outcome = "ok" if finish else "interrupted"
            self._record(
                log, started, outcome, spent, span=span, finish=finish, text="".join(parts)
            )
            raise
        spent = usage or self._estimate(request, "".join(parts))
        self._record(log, started, "ok", spent, span=span, finish=finish, text="".join(parts))

    def _estimate(self, request: ChatRequest, text: str) -> Usage:
        prompt = sum(self.inner.count_tokens(m.content) for m in request.messages)
        return Usage(prompt, self.inner.count_tokens(text) if text else 0)

    def _span(self, request: ChatRequest) -> Span:
        """The attempt's span, started now under the current one (none when not tracing)."""
        parent = tracing.current()
        if parent is NULL_SPAN:
            return NULL_SPAN
        attrs = (
            genai.attempt_attributes(
                deployment=self.deployment,
                model=self.model,
                provider=self.provider,
                messages=[(m.role, m.content) for m in request.messages],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                content=parent.capture_content,
            )
            if parent.recording
            else {}
        )
        return parent.child(f"{names.SPAN_ATTEMPT} {self.model}", attrs, kind="client")

    def _record(
        self,
        log: CallLog | None,
        started: float,
        outcome: Outcome,
        usage: Usage,
        error: ChatModelError | None = None,
        *,
        span: Span = NULL_SPAN,
        finish: str | None = None,
        text: str = "",
        response_model: str | None = None,
    ) -> None:
        cost = self.cost(usage)
        if span.recording:
            result = genai.attempt_result(
                outcome=outcome,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cost=cost,
                finish_reason=finish,
                response_model=response_model,
                output=text if span.capture_content else None,
            )
            span.set(result)
        span.end(error=error.code if error else None)
        if log is None:
            return
        log.attempt(
            Attempt(
                deployment=self.deployment,
                outcome=outcome,
                latency_ms=(self._clock.now() - started) * 1000,
                code=error.code if error else None,
                status=error.status if error else None,
                usage=usage,
                cost=cost,
            )
        )
