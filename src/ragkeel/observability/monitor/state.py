"""``AlertBook``: which rules are firing, decided from the evaluations in a row.

A pure state machine per rule (no clock, no I/O; ``monitor.py`` feeds it):

* ``ok`` → ``firing`` after ``fire_after`` breaching evaluations in a row (1: the first
  window that breaches fires; more: a for-duration, as Prometheus' ``for:``);
* ``firing`` → ``ok`` (a *resolved* notification) after ``resolve_after`` evaluations in a row
  that do not breach (``ok``, ``no_data`` or ``off``: a rule switched off or starved of traffic
  stops firing too). One clear evaluation inside a run of breaches does not resolve it: no
  flapping notifications around a threshold.

``update`` returns the transitions (an ``Alert`` with status ``firing`` or ``resolved``) the
caller notifies about; ``firing()`` the alerts firing now, for the dashboard's banner and the
``ragkeel_alert_firing`` gauge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ragkeel.observability.monitor.rules import RuleResult, Severity

AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule's alert as notified: the webhook body is ``to_dict()``."""

    rule: str
    severity: Severity
    status: AlertStatus
    value: float | None
    threshold: float | None
    window: dict[str, float]  # start, end (Unix seconds), seconds
    since: float  # when it started firing (Unix seconds)
    at: float  # this evaluation
    summary: str
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "since": _iso(self.since), "at": _iso(self.at)}


@dataclass(slots=True)
class _RuleState:
    breaches: int = 0  # in a row
    clears: int = 0  # in a row
    alert: Alert | None = None  # set while firing


class AlertBook:
    def __init__(self, *, fire_after: int = 1, resolve_after: int = 3) -> None:
        if fire_after < 1 or resolve_after < 1:
            raise ValueError("fire_after and resolve_after must be at least 1")
        self.fire_after = fire_after
        self.resolve_after = resolve_after
        self._states: dict[str, _RuleState] = {}

    def update(
        self, results: Iterable[RuleResult], *, window: dict[str, float], at: float
    ) -> list[Alert]:
        """Take one evaluation; the alerts that started firing or resolved with it."""
        changes: list[Alert] = []
        for r in results:
            s = self._states.setdefault(r.rule, _RuleState())
            if r.breached:
                s.breaches, s.clears = s.breaches + 1, 0
                if s.alert is not None:  # still firing: keep the latest figures
                    s.alert = _alert(r, window, since=s.alert.since, at=at)
                elif s.breaches >= self.fire_after:
                    s.alert = _alert(r, window, since=at, at=at)
                    changes.append(s.alert)
            else:
                s.breaches, s.clears = 0, s.clears + 1
                if s.alert is not None and s.clears >= self.resolve_after:
                    if r.value is None:  # no_data / off: say what fired, not "None"
                        last = replace(s.alert, window=dict(window), at=at)
                    else:
                        last = _alert(r, window, since=s.alert.since, at=at)
                    changes.append(replace(last, status="resolved"))
                    s.alert = None
        return changes

    def firing(self) -> list[Alert]:
        return [s.alert for s in self._states.values() if s.alert is not None]


def _alert(r: RuleResult, window: dict[str, float], *, since: float, at: float) -> Alert:
    return Alert(
        r.rule,
        r.severity,
        "firing",
        r.value,
        r.threshold,
        dict(window),
        since,
        at,
        r.summary,
        dict(r.details),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
