"""``RedisBreakerStore``: the circuit breakers' state in Redis, shared by every replica
(``redis.url``; issue 13), so failures seen by replica A open the breaker replica B consults,
and a half-open breaker hands its one probe to one caller across all processes.

``update(key, change)`` is ``BreakerStore``'s one atomic read-modify-write done with Redis'
optimistic concurrency: ``WATCH`` the key, ``GET`` the state, run ``change`` (a pure function,
``breaker_store.py``), then ``MULTI``/``SET``/``EXEC``; if another process wrote the key in
between, ``EXEC`` fails and the loop reads and runs ``change`` again (at most ``MAX_TRIES``
times, with a jittered pause after the first conflicts; past that, the call uses the process's
own state and a warning is logged — a crowd on one key is not an outage). A ``change`` that
leaves the state as it was (a closed breaker admitting a call, the common case) writes nothing:
one ``GET``. A ``change`` that raises changes nothing and its error reaches the caller.

The state is one JSON string per deployment (``<prefix>breaker:<deployment>``) that expires
``TTL_S`` after its last write (a breaker nobody called for a day is closed anyway). Its times
are Unix seconds: the breakers sharing it must run on ``clock.WALL_CLOCK`` (the container does),
since monotonic clocks of two machines do not compare.

Redis unreachable (``shared_state.py``): the store falls back to an in-process
``InMemoryBreakerStore`` of its own, i.e. each replica protects the deployment by itself as it
did before Redis, counted in ``ragkeel_shared_state_errors_total{use="breakers"}``; once Redis
answers again the shared state is used again (what the fallback learnt meanwhile is not
copied back: a ticket admitted by the fallback and recorded on the shared state carries an
epoch the shared state may not have, and is then ignored like any stale ticket).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import redis

from ragkeel.gateway.breaker_store import BreakerState, Bucket, InMemoryBreakerStore
from ragkeel.shared_state import SharedState

R = TypeVar("R")
log = logging.getLogger(__name__)
TTL_S: Final = 24 * 3600
MAX_TRIES: Final = 200


def encode(state: BreakerState) -> str:
    fields: dict[str, Any] = {n: getattr(state, n) for n in BreakerState.__dataclass_fields__}
    fields["buckets"] = [[b.start, b.calls, b.failures] for b in state.buckets]
    return json.dumps(fields, separators=(",", ":"))


def decode(raw: bytes | str | None) -> BreakerState:
    if raw is None:
        return BreakerState()
    fields = json.loads(raw)
    fields["buckets"] = tuple(Bucket(float(s), int(c), int(f)) for s, c, f in fields["buckets"])
    return BreakerState(**fields)


class RedisBreakerStore:
    """``BreakerStore`` shared through Redis; thread-safe (one pooled connection a call)."""

    def __init__(self, shared: SharedState) -> None:
        self._shared = shared
        self._fallback = InMemoryBreakerStore()

    def update(self, key: str, change: Callable[[BreakerState], tuple[BreakerState, R]]) -> R:
        outage = self._shared.outage
        if not outage.available():
            outage.failed("breakers")
            return self._fallback.update(key, change)
        try:
            result = self._update(self._shared.key("breaker", key), change)
        except _Contention:  # Redis is fine, the key is crowded: not an outage (no pause)
            log.warning(
                "breaker %r: no shared write in %d tries; this call used the process's own state",
                key,
                MAX_TRIES,
            )
            return self._fallback.update(key, change)
        except (redis.RedisError, OSError) as exc:
            outage.failed("breakers", exc)
            return self._fallback.update(key, change)
        outage.succeeded()
        return result

    def get(self, key: str) -> BreakerState:
        outage = self._shared.outage
        if not outage.available():
            return self._fallback.get(key)  # a read (/readyz, /metrics): not counted
        try:
            raw = self._shared.client.get(self._shared.key("breaker", key))
        except (redis.RedisError, OSError) as exc:
            outage.failed("breakers", exc)
            return self._fallback.get(key)
        return decode(raw)

    def _update(self, name: str, change: Callable[[BreakerState], tuple[BreakerState, R]]) -> R:
        with self._shared.client.pipeline() as pipe:
            for attempt in range(MAX_TRIES):
                try:
                    pipe.watch(name)  # type: ignore[no-untyped-call]
                    state = decode(pipe.get(name))
                    new, result = change(state)
                    if new == state:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    pipe.set(name, encode(new), ex=TTL_S)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    if attempt >= 2:  # a crowd on one key: spread it out
                        time.sleep(random.uniform(0, 0.001 * min(attempt, 20)))
        raise _Contention(name)


class _Contention(Exception):
    """Every optimistic write of one key lost to another writer ``MAX_TRIES`` times."""
