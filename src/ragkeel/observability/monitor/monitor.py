"""``Monitor``: evaluates the alert rules over rolling windows of the trace store, keeps which
alerts are firing, and tells the operator.

One evaluation (``evaluate``) at Unix time ``now`` reads two windows (``windows.py``): the
current one, ``[now - window_s, now)``, and the reference, the ``reference_window_s`` just
before it; asks the cost ledger what was spent today (when the ``spend_per_day`` rule is on);
and applies every rule (``rules.py``). It changes nothing: ``ragkeel monitor check`` calls it
once.

``tick`` is one step of the background loop: an evaluation fed to the ``AlertBook``
(``state.py``: fire after ``fire_after`` breaches in a row, resolve after ``resolve_after``
clear ones); every transition is logged at WARNING on ``ragkeel.monitor`` (structured: the
alert's fields as ``extra={"alert": {...}}``) and POSTed to the webhook (``webhook.py``,
retried with backoff) when one is configured. ``start``/``stop`` run ``tick`` every
``interval_s`` on a daemon thread (``ragkeel serve``'s lifespan): a slow webhook or trace
store delays the next evaluation, never a request. An evaluation that fails (the trace store
unreadable) is logged and the loop goes on.

Several processes on one home (``serve --workers N``, replicas): each evaluates, but only the
one that ``speaks`` (``lease.py``: ``FileLease.held``) logs and sends the transitions, so an
alert reaches the operator once (``speaks`` None: always).

``firing()`` is the alerts firing now (the dashboard's banner, the ``ragkeel_alert_firing``
gauge); ``last()`` the latest evaluation with every rule's value and statistics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ragkeel.clock import WALL_CLOCK, Clock
from ragkeel.errors import RagkeelError
from ragkeel.observability.cost_ledger import SqliteCostLedger, utc_day
from ragkeel.observability.monitor.rules import RuleResult, evaluate
from ragkeel.observability.monitor.state import Alert, AlertBook
from ragkeel.observability.monitor.webhook import WebhookNotifier
from ragkeel.observability.monitor.windows import TraceWindows, Window
from ragkeel.settings import MonitorSettings

logger = logging.getLogger("ragkeel.monitor")


@dataclass(frozen=True, slots=True)
class Evaluation:
    at: float  # Unix seconds
    current: Window
    reference: Window
    results: tuple[RuleResult, ...]

    @property
    def breached(self) -> list[RuleResult]:
        return [r for r in self.results if r.breached]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "window": self.current.span() | {"requests": self.current.requests},
            "reference": self.reference.span() | {"requests": self.reference.requests},
            "rules": [r.to_dict() for r in self.results],
        }


def ledger_spend(ledger: SqliteCostLedger) -> Callable[[date], float]:
    """What every tenant's model calls cost on a UTC day, from the cost ledger."""

    def spent_on(day: date) -> float:
        return sum(t.cost for t in ledger.totals("day", since=day) if t.key == day.isoformat())

    return spent_on


class Monitor:
    def __init__(
        self,
        settings: MonitorSettings,
        windows: TraceWindows,
        *,
        spent_on: Callable[[date], float] | None = None,
        notifier: WebhookNotifier | None = None,
        speaks: Callable[[], bool] | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        """``clock`` gives Unix seconds (traces' ``created_at`` scale); ``spent_on(day)`` what
        was spent on a UTC day (``ledger_spend``; None: the ``spend_per_day`` rule has no
        data); ``speaks()`` whether this process tells the operator (see the module)."""
        self.config = settings
        self.windows = windows
        self.spent_on = spent_on
        self.notifier = notifier
        self.speaks = speaks
        self.clock = clock
        self.book = AlertBook(fire_after=settings.fire_after, resolve_after=settings.resolve_after)
        self._lock = threading.Lock()
        self._last: Evaluation | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def evaluate(self, now: float | None = None) -> Evaluation:
        s = self.config
        at = self.clock.now() if now is None else now
        current = self.windows.read(at - s.window_s, at)
        reference = self.windows.read(at - s.window_s - s.reference_window_s, at - s.window_s)
        spent = (
            self.spent_on(utc_day(at))
            if self.spent_on is not None and s.rules.spend_per_day_usd is not None
            else None
        )
        results = evaluate(
            s.rules, current, reference, min_samples=s.min_samples, spent_today=spent
        )
        return Evaluation(at, current, reference, tuple(results))

    def tick(self, now: float | None = None) -> list[Alert]:
        """Evaluate, update the alerts, notify their changes (when this process speaks); the
        changes."""
        evaluation = self.evaluate(now)
        with self._lock:
            changes = self.book.update(
                evaluation.results, window=evaluation.current.span(), at=evaluation.at
            )
            self._last = evaluation
        if changes and (self.speaks is None or self.speaks()):
            for alert in changes:
                self._notify(alert)
        return changes

    def firing(self) -> list[Alert]:
        with self._lock:
            return self.book.firing()

    def last(self) -> Evaluation | None:
        with self._lock:
            return self._last

    def start(self) -> None:
        """Run ``tick`` now and every ``interval_s`` on a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ragkeel-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.windows.close()
        if self.notifier is not None:
            self.notifier.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except RagkeelError as exc:
                logger.warning("monitor evaluation failed: %s [%s]", exc, exc.code)
            except Exception:  # the loop must outlive one bad evaluation; the trace says why
                logger.exception("monitor evaluation failed")
            self._stop.wait(self.config.interval_s)

    def _notify(self, alert: Alert) -> None:
        body = alert.to_dict()
        logger.warning(
            "alert %s %s (%s): %s",
            alert.rule,
            alert.status,
            alert.severity,
            alert.summary,
            extra={"alert": body},
        )
        if self.notifier is not None:
            self.notifier.send(body)
