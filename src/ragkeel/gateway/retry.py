"""The gateway's one retry loop, ``RetryLoop``, around ONE deployment (fallback to other
deployments is ``fallback.py``'s job; providers never retry on their own): ``RetryingChatModel``
wraps a chat model with it, ``RetryingReranker`` (``rerank_policies.py``) a reranker, both a
``RetryingDeployment``. What the loop reads off a call is its ``CallLimits`` (attempt timeout,
deadline, next rung).

Which errors: only those with ``retryable=True`` (429, 5xx, timeouts, connect errors, resets).
A rejected request (400/401/403/404/422), an open circuit, an exceeded deadline or budget, and
an interrupted stream are raised at once.

How long between attempts: retry ``n`` (1-based) sleeps ``uniform(0, min(max_delay_s,
base_delay_s * 2**(n-1)))`` ("full jitter": spreads a herd of clients that failed together; the
schedule is ``ragkeel.http_retry.Backoff``, shared with the remote embedder). A
``Retry-After`` on the error replaces that delay when it is within the request's patience and
fits the deadline; a longer one is not waited for: the error is raised so the fallback serves
and the breaker cools the deployment down. The patience is ``max_retry_after_s`` per retry when
this is the last (or only) rung; when the fallback chain has another rung for the request
(``request.next_rung``), it is ``fallback_patience_s`` (1 s by default) *in total*: the seconds
this request may still sleep on ``Retry-After`` at this deployment before the next rung is
quicker. A provider that asks for 10 s while a healthy fallback exists is not waited for.

Moving on instead of retrying: with a ``next_rung``, a timeout (``ModelTimeoutError``: no
answer, or no complete answer, within the attempt's timeout; a connect timeout too) is raised
at once instead of retried. Retrying it would cost another whole attempt timeout on a deployment
that just failed to answer in one, while the next rung may answer at once; the breaker still
counts the failure, so a black-holed deployment is soon skipped without a call. On the last
rung, timeouts are retried as any retryable error. The other retryable errors (5xx and 429
without ``Retry-After``, connection refused or reset) keep their retries even with a rung left:
they usually fail fast, so a retry costs only its backoff (at most 0.25 s, then 0.5 s by
default), and a blip (a restart, one overloaded replica) does not send the request to another,
maybe pricier, deployment. Each move-on is a ``"retry"`` decision in the call log.

Deadlines: ``request.deadline`` is absolute on the gateway clock. Each attempt gets
``min(policy.attempt_timeout_s, request.timeout_s, time left)`` as its ``timeout_s``
(``stack.py`` sets ``attempt_timeout_s`` to the deployment's ``timeout_s``, or to
``gateway.attempt_timeout_s`` if smaller); no attempt starts with less than ``min_attempt_s``
left and no backoff is slept that would leave less than that. Both raise
``DeadlineExceededError`` chained to the last error.

Streams: retried only while nothing has been yielded; once text went out an error propagates
unchanged (the fallback decides whether to continue elsewhere). Closing the returned iterator
closes the inner stream, so its HTTP connection is released.

Retry budget: a ``RetryBudget`` (one per deployment, shared by every request) caps retries to a
share of requests over a sliding window, so a failing provider sees at most ~1.2x its normal
load instead of 3x. Every retry, and every retry not taken for lack of budget, is logged in
the call log as a ``"retry"`` decision.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import TypeVar

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError, DeadlineExceededError, ModelTimeoutError
from ragkeel.gateway.base import ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream
from ragkeel.gateway.calllog import current_log
from ragkeel.gateway.wrapper import D, Wrapper
from ragkeel.http_retry import Backoff

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2  # attempts = 1 + max_retries at most
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0  # the cap of the exponential
    max_retry_after_s: float = 10.0  # longer Retry-After: raise (fallback serves) instead of wait
    fallback_patience_s: float = 1.0  # with a next rung: total Retry-After slept here, at most
    attempt_timeout_s: float | None = None  # per attempt (also capped by request.timeout_s)
    min_attempt_s: float = 0.05  # never start an attempt with less time left than this

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {self.max_retries}")
        delays = (self.base_delay_s, self.max_delay_s, self.max_retry_after_s)
        if min(*delays, self.fallback_patience_s) < 0:
            raise ValueError("retry delays must not be negative")
        if self.attempt_timeout_s is not None and self.attempt_timeout_s <= 0:
            raise ValueError(f"attempt_timeout_s must be positive, got {self.attempt_timeout_s}")
        if self.min_attempt_s <= 0:
            raise ValueError(f"min_attempt_s must be positive, got {self.min_attempt_s}")


class RetryBudget:
    """Allows a retry while ``retries < min_retries + ratio * requests``, both counted over the
    last ``window_s`` seconds (Finagle's retry budget). ``min_retries`` lets a quiet service
    retry at all; ``ratio`` bounds the extra load a failing provider gets. Thread-safe."""

    def __init__(
        self,
        ratio: float = 0.2,
        window_s: float = 10.0,
        min_retries: int = 3,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if ratio < 0 or window_s <= 0 or min_retries < 0:
            raise ValueError("ratio and min_retries must not be negative, window_s positive")
        self.ratio = ratio
        self.window_s = window_s
        self.min_retries = min_retries
        self._clock = clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def record_request(self) -> None:
        with self._lock:
            now = self._clock.now()
            self._prune(now)
            self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` (nothing taken) when it is exhausted."""
        with self._lock:
            now = self._clock.now()
            self._prune(now)
            if len(self._retries) >= self.min_retries + self.ratio * len(self._requests):
                return False
            self._retries.append(now)
            return True

    def counts(self) -> tuple[int, int]:
        """``(requests, retries)`` in the current window."""
        with self._lock:
            self._prune(self._clock.now())
            return len(self._requests), len(self._retries)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What the retry loop reads off one call: ``timeout_s`` per attempt (``None``: the
    provider's default), the absolute ``deadline`` on the gateway clock and the fallback's
    ``next_rung`` (see the module doc). A ``ChatRequest`` carries all three; a rerank request
    (``gateway/rerank.py``) the first two."""

    timeout_s: float | None = None
    deadline: float | None = None
    next_rung: str | None = None


@dataclass(slots=True)
class Tries:
    """One call's way through the retry loop."""

    retry: int = 0  # the number of the next retry (0: the first attempt is next)
    last: ChatModelError | None = None  # the last attempt's error
    waited_s: float = 0.0  # slept on the provider's Retry-After so far

    def failed(self, error: ChatModelError) -> None:
        self.last = error
        self.retry += 1


class RetryLoop:
    """The retry policy of one deployment, whatever is called on it (a chat completion, a chat
    stream, a rerank): ``run`` retries one call, ``before_attempt`` is one step of that loop
    (decide, sleep the backoff, return the attempt's timeout) for a caller that loops itself
    (a stream). ``name`` is the deployment's, for the call log. Thread-safe."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy = RetryPolicy(),
        *,
        budget: RetryBudget | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.budget = budget
        self._clock = clock
        self._schedule = Backoff(policy.base_delay_s, policy.max_delay_s, rng)

    def bounds(self, retry_number: int) -> tuple[float, float]:
        """The full-jitter interval retry ``retry_number`` (1-based) sleeps within."""
        return self._schedule.bounds(retry_number)

    def run(self, limits: CallLimits, call: Callable[[float | None], T]) -> T:
        """``call(timeout_s)`` until it returns, retried as the policy says; raises the last
        error or ``DeadlineExceededError``."""
        self.started()
        tries = Tries()
        while True:
            timeout = self.before_attempt(limits, tries)
            try:
                return call(timeout)
            except ChatModelError as exc:
                tries.failed(exc)

    def started(self) -> None:
        """A call starts (counted by the retry budget)."""
        if self.budget is not None:
            self.budget.record_request()

    def before_attempt(self, limits: CallLimits, tries: Tries) -> float | None:
        """Decide whether the next attempt happens, sleep its backoff, and return its timeout;
        raises the last error or ``DeadlineExceededError`` instead."""
        if tries.last is not None:
            self._backoff(limits, tries, tries.last)
        return self._attempt_timeout(limits, tries.last)

    def _backoff(self, limits: CallLimits, tries: Tries, last: ChatModelError) -> None:
        retry = tries.retry
        if not last.retryable or retry > self.policy.max_retries:
            raise last
        if limits.next_rung is not None and isinstance(last, ModelTimeoutError):
            # another attempt timeout here would be wasted: the next rung may answer at once
            self._log(f"{self.name}: {_why(last)}, not retried: {limits.next_rung} next")
            raise last
        delay, told = self._delay(limits, tries, last)
        left = self._time_left(limits)
        if left is not None and delay > left - self.policy.min_attempt_s:
            if told:  # the provider's own Retry-After does not fit: let the fallback serve
                self._log(f"{self.name}: Retry-After {delay:g} s does not fit the deadline")
                raise last
            raise self._deadline_error(left, last, f"a {delay:.3f} s backoff") from last
        if self.budget is not None and not self.budget.try_spend():
            self._log(f"{self.name}: retry budget exhausted, not retrying ({_why(last)})")
            raise last
        self._log(
            f"{self.name}: retry {retry}/{self.policy.max_retries} after {delay:.3f} s"
            f" ({_why(last)})",
        )
        if told:
            tries.waited_s += delay
        self._clock.sleep(delay)

    def _delay(self, limits: CallLimits, tries: Tries, last: ChatModelError) -> tuple[float, bool]:
        """The backoff before the next retry and whether the provider asked for it: its
        Retry-After when there is one (raising ``last`` when past the patience, see the module
        doc), else full jitter."""
        retry_after = last.retry_after_s
        if retry_after is None:
            return self._schedule.delay(tries.retry), False
        patience = self.policy.max_retry_after_s
        if limits.next_rung is not None:
            patience = min(patience, self.policy.fallback_patience_s - tries.waited_s)
        if retry_after > patience:  # too long to wait here: the fallback serves, and the
            # breaker cools the deployment down
            self._log(
                f"{self.name}: Retry-After {retry_after:g} s is longer than the"
                f" {max(patience, 0.0):g} s left to wait here ({_why(last)})",
            )
            raise last
        return retry_after, True

    def _attempt_timeout(self, limits: CallLimits, last: ChatModelError | None) -> float | None:
        bounds = [t for t in (self.policy.attempt_timeout_s, limits.timeout_s) if t is not None]
        left = self._time_left(limits)
        if left is not None:
            if left < self.policy.min_attempt_s:
                raise self._deadline_error(left, last, "another attempt") from last
            bounds.append(left)
        return min(bounds) if bounds else None

    def _time_left(self, limits: CallLimits) -> float | None:
        return None if limits.deadline is None else limits.deadline - self._clock.now()

    def _deadline_error(
        self, left: float, last: ChatModelError | None, what: str
    ) -> DeadlineExceededError:
        message = f"{self.name}: {max(left, 0.0):.3f} s left before the deadline"
        message += f", too little for {what}"
        if last is not None:
            message += f" (last error: {_why(last)})"
        self._log(message)
        return DeadlineExceededError(
            message, model=self.name, hint="raise the request deadline or lower the retries"
        )

    @staticmethod
    def _log(reason: str) -> None:
        if (log := current_log()) is not None:
            log.decide("retry", reason)


class RetryingDeployment(Wrapper[D]):
    """One deployment behind its ``RetryLoop``, whatever it serves: ``RetryingChatModel`` and
    ``RetryingReranker`` (``rerank_policies.py``) add only their protocol's methods."""

    def __init__(
        self,
        inner: D,
        policy: RetryPolicy = RetryPolicy(),
        *,
        budget: RetryBudget | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self.policy = policy
        self.budget = budget
        self._loop = RetryLoop(inner.name, policy, budget=budget, clock=clock, rng=rng)

    def delay_bounds(self, retry_number: int) -> tuple[float, float]:
        """The full-jitter interval retry ``retry_number`` (1-based) sleeps within."""
        return self._loop.bounds(retry_number)


class RetryingChatModel(RetryingDeployment[ChatModel]):
    """``ChatModel`` that retries one deployment's retryable failures (see the module doc)."""

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self._loop.run(
            _limits(request), lambda t: self.inner.complete(replace(request, timeout_s=t))
        )

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Nothing is sent until the iterator is first advanced."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        self._loop.started()
        tries, limits = Tries(), _limits(request)
        while True:
            attempt = replace(request, timeout_s=self._loop.before_attempt(limits, tries))
            yielded = False
            chunks: ChatStream | None = None
            try:
                chunks = self.inner.stream(attempt)
                for chunk in chunks:
                    yielded = True
                    yield chunk
                return
            except ChatModelError as exc:
                if yielded:
                    raise  # text went out: not ours to retry
                tries.failed(exc)
            finally:
                if chunks is not None:
                    chunks.close()  # releases the inner stream's connection (also on GeneratorExit)


def _limits(request: ChatRequest) -> CallLimits:
    return CallLimits(request.timeout_s, request.deadline, request.next_rung)


def _why(error: ChatModelError) -> str:
    return error.code if error.status is None else f"{error.code}, HTTP {error.status}"
