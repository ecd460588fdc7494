"""``LoadShedder``: a global cap of ``max_in_flight`` answers at once, with an optional small
queue (``max_queue`` waiting at most ``queue_timeout_s``). Past that, requests are refused at
once (``RateLimitedError``, ``retry_after_s`` set) rather than left to wait behind work the
server cannot finish in time: admitted requests keep their latency under overload. A refusal
takes microseconds. The same class counts the local model's slots (``gates.Admission.local``).
"""

from __future__ import annotations

import math
import threading
from types import TracebackType

from ragkeel.errors import RateLimitedError


class Permit:
    """One answer's place in the ``LoadShedder``; ``release`` (idempotent) when it ends."""

    def __init__(self, shedder: LoadShedder) -> None:
        self._shedder: LoadShedder | None = shedder

    def release(self) -> None:
        shedder, self._shedder = self._shedder, None
        if shedder is not None:
            shedder._release()

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class LoadShedder:
    def __init__(
        self,
        max_in_flight: int,
        *,
        max_queue: int = 0,
        queue_timeout_s: float = 0.1,
        retry_after_s: float = 1.0,
    ) -> None:
        if max_in_flight < 1 or max_queue < 0:
            raise ValueError("max_in_flight must be at least 1 and max_queue not negative")
        if not math.isfinite(queue_timeout_s) or queue_timeout_s < 0:
            raise ValueError("queue_timeout_s must be finite and not negative")
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self.in_flight = 0
        self.waiting = 0
        self.rejected = 0

    def try_acquire(self) -> Permit | None:
        """A permit if a slot is free now; ``None`` if the request may wait in the queue
        (then call ``acquire``, off the event loop); ``RateLimitedError`` if it may not."""
        with self._cond:
            if self.in_flight < self.max_in_flight:
                self.in_flight += 1
                return Permit(self)
            if self.waiting < self.max_queue:
                return None
            raise self._refuse()

    def acquire(self) -> Permit:
        """A permit, waiting in the queue at most ``queue_timeout_s`` if there is room in it."""
        with self._cond:
            if self.in_flight >= self.max_in_flight:
                if self.waiting >= self.max_queue:
                    raise self._refuse()
                self.waiting += 1
                try:
                    free = self._cond.wait_for(
                        lambda: self.in_flight < self.max_in_flight, self.queue_timeout_s
                    )
                finally:
                    self.waiting -= 1
                if not free:
                    raise self._refuse()
            self.in_flight += 1
            return Permit(self)

    def _release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def _refuse(self) -> RateLimitedError:
        self.rejected += 1
        return RateLimitedError(
            f"the server is at capacity ({self.max_in_flight} answers in flight"
            + (f", {self.max_queue} waiting" if self.max_queue else "")
            + ")",
            hint="retry after Retry-After seconds",
            retry_after_s=self.retry_after_s,
        )
