"""``CircuitBreakerChatModel``: stop calling a deployment that keeps failing, and one that asked
us (429 + ``Retry-After``) to wait. The breaker itself is ``Breaker`` (one per deployment,
whatever is called on it): ``CircuitBreakerReranker`` (``rerank_policies.py``) puts a reranker
behind one too, both a ``CircuitBreakerDeployment``.

States, per deployment (the ``deployment`` key, default the inner model's name)::

    closed --N consecutive failures, or failure rate >= X over >= M calls in window_s--> open
    open --after the open period--> half_open: exactly ONE probe call is let through
    half_open --probe succeeds--> closed (the open period resets to open_s)
    half_open --probe fails--> open for twice as long as last time (capped at max_open_s)

While open, and while a probe runs, calls are refused at once with ``CircuitOpenError`` (not
retryable, so the retry wrapper gives up and the fallback chain moves on) and logged in
the call log (``calllog.current_log()``) as a ``rejected`` attempt with code ``CIRCUIT_OPEN``; nothing reaches the inner
model. Independently of the phase, a ``ModelRateLimitedError`` with ``retry_after_s`` puts the
deployment in a cool-down: no call until ``now + retry_after_s``.

Only errors with ``counts_as_failure`` count: 429, 5xx, timeouts, resets, interrupted streams.
A rejected request (4xx), an exceeded deadline or budget says nothing about the deployment's
health: it moves nothing, and a probe that ends with one gives its slot to the next caller.
``stream`` knows the outcome only when the iteration ends: an error raised mid-stream is a
failure, a stream the consumer closes early is neither (once the chunk with ``finish_reason``
went out, it is a success even if the consumer never asks for more). The state is admitted and recorded
through one atomic ``BreakerStore.update`` each (``breaker_store``), so the breaker is
thread-safe and its state can live in a store shared by replicas (``RedisBreakerStore``);
every transition is logged as a ``breaker`` decision on the request that caused it.

A probe holds its slot for at most ``probe_lease_s`` (a replica that dies mid-probe must not
keep the breaker half-open forever). ``snapshot()`` is plain data for ``/readyz`` and traces.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError, CircuitOpenError, ModelRateLimitedError
from ragkeel.gateway.base import ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream
from ragkeel.gateway.breaker_store import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerStore,
    InMemoryBreakerStore,
    Outcome,
    Ticket,
    admit,
    record,
    snapshot,
)
from ragkeel.gateway.calllog import Attempt, CallLog, current_log
from ragkeel.gateway.wrapper import D, Wrapper

__all__ = [
    "Breaker",
    "BreakerPolicy",
    "BreakerSnapshot",
    "CircuitBreakerChatModel",
    "CircuitBreakerDeployment",
    "InMemoryBreakerStore",
]
T = TypeVar("T")


class Breaker:
    """One deployment's breaker, whatever is called on it (a chat model, a reranker): ``call``
    runs one call through it; ``admit`` and ``record`` are its two halves for a caller that
    learns the outcome later (a stream). Thread-safe; the state lives in ``store``."""

    def __init__(
        self,
        deployment: str,
        *,
        policy: BreakerPolicy = BreakerPolicy(),
        store: BreakerStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.deployment = deployment
        self.policy = policy
        self._store: BreakerStore = store if store is not None else InMemoryBreakerStore()
        self._clock = clock

    def call(self, call: Callable[[], T]) -> T:
        """``call()`` if the breaker admits it (else ``CircuitOpenError``), its outcome
        recorded: a counted ``ChatModelError`` is a failure, anything else raised is neutral."""
        log = current_log()
        ticket = self.admit(log)
        try:
            result = call()
        except ChatModelError as exc:
            self.record(log, ticket, _outcome(exc), exc)
            raise
        except BaseException:
            self.record(log, ticket, "neutral", None)
            raise
        self.record(log, ticket, "success", None)
        return result

    def snapshot(self) -> BreakerSnapshot:
        state = self._store.get(self.deployment)
        return snapshot(self.deployment, state, self._clock.now(), self.policy)

    def admit(self, log: CallLog | None) -> Ticket:
        """The ticket of a call let through; ``CircuitOpenError`` (and a ``rejected`` attempt
        in ``log``) when the breaker refuses it."""
        now = self._clock.now()
        verdict = self._store.update(
            self.deployment, lambda state: admit(state, now, self.policy, self.deployment)
        )
        if verdict.ticket is not None:
            if verdict.reason and log is not None:
                log.decide("breaker", verdict.reason)
            return verdict.ticket
        if log is not None:
            log.attempt(Attempt(self.deployment, "rejected", 0.0, code="CIRCUIT_OPEN"))
        raise CircuitOpenError(
            f"{self.deployment} is not called: {verdict.reason}",
            model=self.deployment,
            retry_after_s=verdict.retry_after_s,
        )

    def record(
        self, log: CallLog | None, ticket: Ticket, outcome: Outcome, error: ChatModelError | None
    ) -> None:
        """The outcome of the call admitted with ``ticket``; transitions are logged."""
        now = self._clock.now()
        retry_after = error.retry_after_s if isinstance(error, ModelRateLimitedError) else None
        reasons = self._store.update(
            self.deployment,
            lambda state: record(
                state, ticket, outcome, now, retry_after, self.policy, self.deployment
            ),
        )
        if log is not None:
            for reason in reasons:
                log.decide("breaker", reason)


class CircuitBreakerDeployment(Wrapper[D]):
    """One deployment behind its ``Breaker``, whatever it serves: ``CircuitBreakerChatModel``
    and ``CircuitBreakerReranker`` (``rerank_policies.py``) add only their protocol's methods."""

    def __init__(
        self,
        inner: D,
        *,
        deployment: str | None = None,
        policy: BreakerPolicy = BreakerPolicy(),
        store: BreakerStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(inner)
        self.deployment = deployment or inner.name
        self.policy = policy
        self.breaker = Breaker(self.deployment, policy=policy, store=store, clock=clock)

    def snapshot(self) -> BreakerSnapshot:
        return self.breaker.snapshot()


class CircuitBreakerChatModel(CircuitBreakerDeployment[ChatModel]):
    """``ChatModel`` wrapper with a circuit breaker and a Retry-After cool-down; thread-safe."""

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self.breaker.call(lambda: self.inner.complete(request))

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Admission happens when the iterator is first advanced, like the providers' call."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        log = current_log()
        ticket = self.breaker.admit(log)
        outcome: Outcome = "neutral"  # closed early by the consumer (or a bug): neither
        error: ChatModelError | None = None
        chunks: ChatStream | None = None
        try:
            chunks = self.inner.stream(request)
            for chunk in chunks:
                if chunk.finish_reason is not None:
                    outcome = "success"  # the answer is complete even if the consumer stops here
                yield chunk
            outcome = "success"
        except ChatModelError as exc:
            outcome, error = _outcome(exc), exc
            raise
        finally:
            if chunks is not None:
                chunks.close()  # the inner stream first (a consumer that left early)
            self.breaker.record(log, ticket, outcome, error)


def _outcome(error: ChatModelError) -> Outcome:
    return "failure" if error.counts_as_failure else "neutral"
