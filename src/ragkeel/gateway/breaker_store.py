"""The circuit breaker's state: ``BreakerState`` (one immutable value per deployment), the pure
state machine over it (``admit`` before a call, ``record`` after it, ``snapshot`` to show it),
the ``BreakerPolicy`` that parametrises it, and the ``BreakerStore`` protocol that keeps it.
``ragkeel.gateway.breaker`` wraps a ``ChatModel`` with it and documents the behaviour.

The protocol is one atomic read-modify-write, so that a store shared by several replicas (Redis
with ``WATCH``/``MULTI``, a SQL row with a version column) can implement it with optimistic
concurrency: ``update(key, change)`` reads the state (``BreakerState()`` for an unknown key),
calls ``change(state) -> (new_state, result)``, stores ``new_state`` atomically and returns
``result``. ``change`` must be a pure function of the state it is given (a shared store may call
it again after a conflicting write). ``BreakerState`` holds only numbers and strings so it
serialises to one small record.

``InMemoryBreakerStore`` is the in-process default: a dict under a lock. ``RedisBreakerStore``
(``redis_breaker_store.py``, with ``redis.url``) shares the state between replicas.

The rate window is ten buckets of ``window_s / 10``: the rate covers the last ``window_s`` to
within one bucket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar

Phase = Literal["closed", "open", "half_open"]
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Bucket:
    """Calls and failures that ended in ``[start, start + width)`` (the breaker's window)."""

    start: float
    calls: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One deployment's breaker. ``epoch`` changes on every transition and on every probe
    handed out, so the outcome of a call admitted under an older epoch (a slow call that ends
    after the breaker opened, a probe whose lease ran out) cannot move the current state."""

    phase: Phase = "closed"
    epoch: int = 0
    consecutive: int = 0  # consecutive counted failures while closed
    buckets: tuple[Bucket, ...] = ()  # the failure-rate window while closed
    opened_until: float = 0.0  # open: no call before this
    open_for_s: float = 0.0  # the current (last) open period; 0 = never opened
    reopen_count: int = 0  # re-opens since the last close (failed probes)
    probe_until: float | None = None  # half-open: a probe is running, its lease ends then
    cooldown_until: float = 0.0  # Retry-After: no call before this, whatever the phase


Outcome = Literal["success", "failure", "neutral"]
SnapshotState = Literal["closed", "open", "half_open", "cooling"]
_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    consecutive_failures: int = 5  # closed -> open after N consecutive failures
    failure_rate: float = 0.5  # ... or a failure rate >= X over >= min_calls calls in window_s
    min_calls: int = 20
    window_s: float = 60.0
    open_s: float = 30.0  # first open period; doubles on each re-open ...
    max_open_s: float = 300.0  # ... up to this; reset after a successful probe
    probe_lease_s: float = 120.0  # a probe that has not reported by then frees its slot

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.min_calls < 1:
            raise ValueError("consecutive_failures and min_calls must be at least 1")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        if min(self.window_s, self.open_s, self.probe_lease_s) <= 0:
            raise ValueError("window_s, open_s and probe_lease_s must be positive")
        if self.max_open_s < self.open_s:
            raise ValueError("max_open_s must be at least open_s")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What ``/readyz`` and the trace show. ``retry_after_s``: seconds until a call would be
    let through (``None``: now, or as soon as the running probe reports)."""

    deployment: str
    state: SnapshotState
    failures: int  # consecutive counted failures (closed)
    calls: int  # calls that ended in the rate window
    rate: float  # failure rate over the window (0.0 with no calls)
    opened_until: float | None
    open_for_s: float  # the current or last open period; 0.0 = reset
    reopen_count: int
    cooldown_until: float | None
    retry_after_s: float | None

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Ticket:
    """Admission to call: the epoch it was given under, and whether it is the probe."""

    epoch: int
    probe: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    ticket: Ticket | None  # None: rejected
    retry_after_s: float | None = None
    reason: str = ""  # why rejected, or the transition made (for the log)


class BreakerStore(Protocol):
    def update(self, key: str, change: Callable[[BreakerState], tuple[BreakerState, R]]) -> R:
        """Atomically replace ``key``'s state by ``change(state)[0]``; return ``[1]``."""
        ...

    def get(self, key: str) -> BreakerState:
        """The current state (``BreakerState()`` if ``key`` was never written)."""
        ...


class InMemoryBreakerStore:
    """``BreakerStore`` in a dict; thread-safe; one instance may serve many deployments."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def update(self, key: str, change: Callable[[BreakerState], tuple[BreakerState, R]]) -> R:
        with self._lock:
            state, result = change(self._states.get(key, BreakerState()))
            self._states[key] = state
            return result

    def get(self, key: str) -> BreakerState:
        with self._lock:
            return self._states.get(key, BreakerState())


# -- the state machine: pure functions of (state, now, policy), as BreakerStore.update needs --


def admit(
    state: BreakerState, now: float, policy: BreakerPolicy, name: str
) -> tuple[BreakerState, Verdict]:
    if state.cooldown_until > now:
        left = max(state.cooldown_until, state.opened_until) - now
        return state, Verdict(None, left, f"cooling down (Retry-After) for {left:.3g} s more")
    if state.phase == "open" and now < state.opened_until:
        left = state.opened_until - now
        return state, Verdict(None, left, f"circuit open for {left:.3g} s more")
    if state.phase == "half_open" and state.probe_until is not None and now < state.probe_until:
        return state, Verdict(None, None, "circuit half-open and its one probe is running")
    if state.phase == "closed":
        return state, Verdict(Ticket(state.epoch, probe=False))
    probing = replace(
        state, phase="half_open", epoch=state.epoch + 1, probe_until=now + policy.probe_lease_s
    )
    why = "open period over" if state.phase == "open" else "probe slot free"
    reason = f"{name} half-open ({why}): one probe let through"
    return probing, Verdict(Ticket(probing.epoch, probe=True), None, reason)


def record(
    state: BreakerState,
    ticket: Ticket,
    outcome: Outcome,
    now: float,
    retry_after_s: float | None,
    policy: BreakerPolicy,
    name: str,
) -> tuple[BreakerState, list[str]]:
    reasons: list[str] = []
    if outcome == "failure" and retry_after_s is not None and retry_after_s > 0:
        state = replace(state, cooldown_until=max(state.cooldown_until, now + retry_after_s))
        reasons.append(f"{name} cooling down for {retry_after_s:g} s (Retry-After)")
    if ticket.epoch != state.epoch:  # admitted before the last transition: too late to count
        return state, reasons
    if ticket.probe:
        state, reason = _after_probe(state, outcome, now, policy, name)
    else:
        state, reason = _after_call(state, outcome, now, policy, name)
    return state, reasons + ([reason] if reason else [])


def _after_probe(
    state: BreakerState, outcome: Outcome, now: float, policy: BreakerPolicy, name: str
) -> tuple[BreakerState, str]:
    if outcome == "neutral":
        return replace(state, probe_until=None), f"{name} probe gave no verdict; slot freed"
    if outcome == "success":
        closed = BreakerState(epoch=state.epoch + 1, cooldown_until=state.cooldown_until)
        return closed, f"{name} closed after a successful probe"
    open_for = min(max(state.open_for_s, policy.open_s) * 2, policy.max_open_s)
    reopened = replace(
        state,
        phase="open",
        epoch=state.epoch + 1,
        opened_until=now + open_for,
        open_for_s=open_for,
        reopen_count=state.reopen_count + 1,
        probe_until=None,
    )
    return reopened, f"{name} re-opened for {open_for:g} s after a failed probe"


def _after_call(
    state: BreakerState, outcome: Outcome, now: float, policy: BreakerPolicy, name: str
) -> tuple[BreakerState, str]:
    if outcome == "neutral" or state.phase != "closed":
        return state, ""
    failed = outcome == "failure"
    buckets = _add(_window(state.buckets, now, policy), now, failed, policy)
    consecutive = state.consecutive + 1 if failed else 0
    calls, failures = _totals(buckets)
    if failed and consecutive >= policy.consecutive_failures:
        why = f"{consecutive} consecutive failures"
    elif failed and calls >= policy.min_calls and failures / calls >= policy.failure_rate:
        why = f"failure rate {failures}/{calls} in {policy.window_s:g} s"
    else:
        return replace(state, consecutive=consecutive, buckets=buckets), ""
    opened = BreakerState(
        phase="open",
        epoch=state.epoch + 1,
        opened_until=now + policy.open_s,
        open_for_s=policy.open_s,
        cooldown_until=state.cooldown_until,
    )
    return opened, f"{name} opened for {policy.open_s:g} s after {why}"


def _window(buckets: tuple[Bucket, ...], now: float, policy: BreakerPolicy) -> tuple[Bucket, ...]:
    return tuple(b for b in buckets if b.start > now - policy.window_s)


def _add(
    buckets: tuple[Bucket, ...], now: float, failed: bool, policy: BreakerPolicy
) -> tuple[Bucket, ...]:
    width = policy.window_s / _BUCKETS
    start = now - now % width
    last = buckets[-1] if buckets and buckets[-1].start == start else Bucket(start)
    last = Bucket(start, last.calls + 1, last.failures + int(failed))
    kept = buckets[:-1] if buckets and buckets[-1].start == start else buckets
    return (*kept, last)


def _totals(buckets: tuple[Bucket, ...]) -> tuple[int, int]:
    return sum(b.calls for b in buckets), sum(b.failures for b in buckets)


def snapshot(
    deployment: str, state: BreakerState, now: float, policy: BreakerPolicy
) -> BreakerSnapshot:
    """``state`` as seen at ``now`` (an open period that has run out reads as half-open)."""
    calls, failures = _totals(_window(state.buckets, now, policy))
    phase: SnapshotState = state.phase
    if state.phase == "open" and now >= state.opened_until:
        phase = "half_open"
    cooling = state.cooldown_until > now
    wait = max(state.cooldown_until, state.opened_until if phase == "open" else 0.0) - now
    if cooling and phase == "closed":
        phase = "cooling"
    return BreakerSnapshot(
        deployment=deployment,
        state=phase,
        failures=state.consecutive,
        calls=calls,
        rate=failures / calls if calls else 0.0,
        opened_until=state.opened_until if state.phase == "open" else None,
        open_for_s=state.open_for_s,
        reopen_count=state.reopen_count,
        cooldown_until=state.cooldown_until if cooling else None,
        retry_after_s=wait if wait > 0 else None,
    )
