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

What does not depend on the protocol is ``MeteredDeployment``'s, shared with ``MeteredReranker``
(``rerank_policies.py``): the attempt's span and, when the call ends, the span ended and the
``Attempt`` logged (an ``Ending``); a call that returns at once goes through ``_metered``.

Cleanup order: a stream closed by the consumer closes the provider's stream *before* anything
else calls into the provider (the usage estimate counts tokens): an open provider stream may
hold a resource that the call needs (one llama.cpp context is held for the whole stream).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError, StreamInterruptedError
from ragkeel.gateway.base import ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, Usage
from ragkeel.gateway.calllog import Attempt, CallLog, Outcome, current_log
from ragkeel.gateway.pricing import Price
from ragkeel.gateway.wrapper import D, Wrapper
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.tracing import NULL_SPAN, Attributes, Span

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ending:
    """How one provider call ended, as its span and its ``Attempt`` record it: ``usage`` is
    what was billed (none for a failed call or a reranker); ``finish``, ``text`` and
    ``response_model`` are a chat answer's."""

    outcome: Outcome
    error: ChatModelError | None = None
    usage: Usage = field(default_factory=Usage)
    finish: str | None = None
    text: str = ""
    response_model: str | None = None


def _ok(result: object) -> Ending:
    return Ending("ok")


class MeteredDeployment(Wrapper[D]):
    """Metering around one deployment, whatever it serves (see the module doc)."""

    def __init__(
        self,
        inner: D,
        *,
        deployment: str | None = None,
        price: Price | None = None,
        clock: Clock = SYSTEM_CLOCK,
        model: str | None = None,
        provider: str = names.PROVIDER_LOCAL,
    ) -> None:
        """``deployment`` names the attempts (default: ``inner.name``); ``price`` costs their
        usage (none: free); ``model``: the provider's model name (default: ``inner.name``);
        ``provider``: its ``gen_ai.provider.name`` (both for the attempt's span)."""
        super().__init__(inner)
        self.deployment = deployment or inner.name
        self.price = price
        self._clock = clock
        self.model = model or inner.name
        self.provider = provider

    def cost(self, usage: Usage) -> float:
        return self.price.cost(usage) if self.price else 0.0

    def _metered(
        self,
        span: Callable[[], Span],
        call: Callable[[], T],
        ending: Callable[[T], Ending] = _ok,
    ) -> T:
        """``call()`` with its attempt's span (``span()``, started now) current; recorded as
        ``ending(result)`` says, or as an ``error`` without usage when it raises one."""
        log, started, attempt = current_log(), self._clock.now(), span()
        try:
            with tracing.active(attempt):
                result = call()
        except ChatModelError as exc:
            self._record(log, started, attempt, Ending("error", exc))
            raise
        self._record(log, started, attempt, ending(result))
        return result

    @staticmethod
    def _child(name: str, attributes: Callable[[Span], Attributes]) -> Span:
        """The attempt's client span, started now under the current one (none when not
        tracing); ``attributes(parent)`` are built only when the parent records."""
        parent = tracing.current()
        if parent is NULL_SPAN:
            return NULL_SPAN
        attrs = attributes(parent) if parent.recording else {}
        return parent.child(name, attrs, kind="client")

    def _record(self, log: CallLog | None, started: float, span: Span, end: Ending) -> None:
        """Ends the attempt: ``span`` with its result, and an ``Attempt`` in ``log``."""
        cost = self.cost(end.usage)
        if span.recording:
            span.set(self._result(span, end, cost))
        span.end(error=end.error.code if end.error else None)
        if log is None:
            return
        log.attempt(
            Attempt(
                deployment=self.deployment,
                outcome=end.outcome,
                latency_ms=(self._clock.now() - started) * 1000,
                code=end.error.code if end.error else None,
                status=end.error.status if end.error else None,
                usage=end.usage,
                cost=cost,
            )
        )

    def _result(self, span: Span, end: Ending, cost: float) -> Attributes:
        """What the attempt's span says when it ends: its outcome (a chat attempt says more)."""
        return {names.GATEWAY_OUTCOME: end.outcome}


class MeteredChatModel(MeteredDeployment[ChatModel]):
    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self._metered(
            lambda: self._span(request), lambda: self.inner.complete(request), _ended
        )

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
            self._record(log, started, span, Ending(outcome, exc, spent, text="".join(parts)))
            raise
        except GeneratorExit:  # closed by the consumer: after the last chunk that is a success
            # close the provider's stream FIRST: until it is closed it may hold resources the
            # estimate needs (the local model's generation lock: counting tokens while its stream
            # was still open deadlocked the answer thread, issue 9)
            if chunks is not None:
                chunks.close()
            spent = usage or self._estimate(request, "".join(parts))
            outcome = "ok" if finish else "interrupted"
            end = Ending(outcome, None, spent, finish, "".join(parts))
            self._record(log, started, span, end)
            raise
        spent = usage or self._estimate(request, "".join(parts))
        self._record(log, started, span, Ending("ok", None, spent, finish, "".join(parts)))

    def _estimate(self, request: ChatRequest, text: str) -> Usage:
        prompt = sum(self.inner.count_tokens(m.content) for m in request.messages)
        return Usage(prompt, self.inner.count_tokens(text) if text else 0)

    def _span(self, request: ChatRequest) -> Span:
        """The attempt's span, started now under the current one (none when not tracing)."""
        return self._child(
            f"{names.SPAN_ATTEMPT} {self.model}",
            lambda parent: genai.attempt_attributes(
                deployment=self.deployment,
                model=self.model,
                provider=self.provider,
                messages=[(m.role, m.content) for m in request.messages],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                content=parent.capture_content,
            ),
        )

    def _result(self, span: Span, end: Ending, cost: float) -> Attributes:
        return genai.attempt_result(
            outcome=end.outcome,
            input_tokens=end.usage.prompt_tokens,
            output_tokens=end.usage.completion_tokens,
            cost=cost,
            finish_reason=end.finish,
            response_model=end.response_model,
            output=end.text if span.capture_content else None,
        )


def _ended(response: ChatResponse) -> Ending:
    return Ending("ok", None, response.usage, response.finish_reason, response.text, response.model)
