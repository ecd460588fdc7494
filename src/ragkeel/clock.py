"""Monotonic time behind a two-method protocol, for the gateway's policies (breaker, cool-down,
backoff, metering, the local model's queue) and the answer flow's deadline, so their tests run on
a clock the test controls instead of sleeping. In the core layer: anything may use it.

``SystemClock`` is ``time.monotonic`` / ``time.sleep``. ``ManualClock`` only moves when told to:
``advance(s)``, or ``sleep(s)`` (which advances instead of blocking, so a retry loop with
backoff runs instantly and its delays can be checked exactly).

``WALL_CLOCK`` is the same protocol on the Unix-time scale (``time.time``), for what must mean the
same after a restart: an API key's creation and expiry (``identity/keys.py``). Its tests stand
``ManualClock(start=<Unix seconds>)`` in for it.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class WallClock(SystemClock):
    """Unix seconds (``time.time``): comparable across processes and restarts."""

    def now(self) -> float:
        return time.time()


WALL_CLOCK = WallClock()


class ManualClock:
    """A clock that moves only when told to; thread-safe. ``sleeps`` records every sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)
