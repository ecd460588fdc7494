"""The gateway's policies around a ``Reranker`` (issue 15): the same retry loop, breaker and
metering as a chat deployment's, each a wrapper implementing the ``Reranker`` protocol.
``stack.build_reranker`` composes them in the chat stack's order (outermost first)::

    RetryingReranker        retry.RetryLoop: full-jitter backoff, Retry-After, the deadline,
    │                       a retry budget (only retryable errors: 429, 5xx, timeouts, resets)
    └── CircuitBreakerReranker   breaker.Breaker: open after repeated failures, half-open probe
        └── MeteredReranker      one Attempt in the call log and one span per provider call
            └── RemoteReranker   the /rerank HTTP shapes (providers/rerank_http.py)

What the policies decide lands in the call log being recorded (``calllog.recording``): the
retrieval records each rerank call into a log of its own and keeps it with the rerank outcome
in the trace (``retrieval/rerank.py``), apart from the answer's model calls. There is no
fallback reranker: when the stack raises, the retrieval keeps the fused order.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError
from ragkeel.gateway.breaker import Breaker, BreakerPolicy, BreakerSnapshot
from ragkeel.gateway.breaker_store import BreakerStore
from ragkeel.gateway.calllog import Attempt, Outcome, current_log
from ragkeel.gateway.rerank import Reranker, RerankRequest, RerankResponse
from ragkeel.gateway.retry import CallLimits, RetryBudget, RetryLoop, RetryPolicy
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.tracing import NULL_SPAN, Span


class RetryingReranker:
    """Retries one reranker deployment's retryable failures (``retry.py``'s loop)."""

    def __init__(
        self,
        inner: Reranker,
        policy: RetryPolicy = RetryPolicy(),
        *,
        budget: RetryBudget | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self._loop = RetryLoop(inner.name, policy, budget=budget, clock=clock, rng=rng)

    @property
    def name(self) -> str:
        return self.inner.name

    def rerank(self, request: RerankRequest) -> RerankResponse:
        limits = CallLimits(request.timeout_s, request.deadline)
        return self._loop.run(limits, lambda t: self.inner.rerank(replace(request, timeout_s=t)))


class CircuitBreakerReranker:
    """A reranker deployment behind its circuit breaker (``breaker.py``'s ``Breaker``)."""

    def __init__(
        self,
        inner: Reranker,
        *,
        deployment: str | None = None,
        policy: BreakerPolicy = BreakerPolicy(),
        store: BreakerStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.inner = inner
        self.breaker = Breaker(deployment or inner.name, policy=policy, store=store, clock=clock)

    @property
    def name(self) -> str:
        return self.inner.name

    def rerank(self, request: RerankRequest) -> RerankResponse:
        return self.breaker.call(lambda: self.inner.rerank(request))

    def snapshot(self) -> BreakerSnapshot:
        return self.breaker.snapshot()


class MeteredReranker:
    """Records every call that reaches the reranker: an ``Attempt`` (outcome, error code and
    status, latency) in the current call log, and a ``rerank {deployment}`` span under the
    current one (OpenInference RERANKER; the provider sends its ``traceparent``)."""

    def __init__(self, inner: Reranker, *, provider: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.inner = inner
        self.provider = provider
        self._clock = clock

    @property
    def name(self) -> str:
        return self.inner.name

    def rerank(self, request: RerankRequest) -> RerankResponse:
        started, span = self._clock.now(), self._span(request)
        try:
            with tracing.active(span):
                response = self.inner.rerank(request)
        except ChatModelError as exc:
            self._record(started, "error", span, exc)
            raise
        self._record(started, "ok", span)
        return response

    def _span(self, request: RerankRequest) -> Span:
        parent = tracing.current()
        if parent is NULL_SPAN:
            return NULL_SPAN
        attrs = (
            genai.rerank_attributes(
                deployment=self.name,
                provider=self.provider,
                query=request.query,
                documents=len(request.documents),
                top_n=request.top_n,
                content=parent.capture_content,
            )
            if parent.recording
            else {}
        )
        return parent.child(f"{names.SPAN_RERANK} {self.name}", attrs, kind="client")

    def _record(
        self, started: float, outcome: Outcome, span: Span, error: ChatModelError | None = None
    ) -> None:
        if span.recording:
            span.set({names.GATEWAY_OUTCOME: outcome})
        span.end(error=error.code if error else None)
        if (log := current_log()) is not None:
            log.attempt(
                Attempt(
                    deployment=self.name,
                    outcome=outcome,
                    latency_ms=(self._clock.now() - started) * 1000,
                    code=error.code if error else None,
                    status=error.status if error else None,
                )
            )
