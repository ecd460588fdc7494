"""``alert_readings(monitor)``: the samples of the gauge ``ragkeel_alert_firing{rule,
severity}`` for ``GET /metrics``, read at scrape time from ``Monitor.firing()``: 1 while a
rule's alert is firing, 0 otherwise, one sample per rule (a Prometheus rule over it then sees a
resolved alert as 0, not as a vanished series). ``deploy/prometheus/ragkeel-alerts.yml``
forwards it (``RagkeelMonitorAlert``). Plain ``((rule, severity), value)`` pairs, the shape a
scrape-time gauge reads; the metrics registry wraps them (``GAUGE``, ``LABELS``, ``HELP``).
"""

from __future__ import annotations

from typing import Final

from ragkeel.observability.monitor.monitor import Monitor
from ragkeel.observability.monitor.rules import RULES, SEVERITY

GAUGE: Final = "ragkeel_alert_firing"
LABELS: Final = ("rule", "severity")
HELP: Final = "1 while the ragkeel monitor's alert for the rule is firing, else 0."


def alert_readings(monitor: Monitor) -> list[tuple[tuple[str, str], float]]:
    firing = {a.rule for a in monitor.firing()}
    return [((rule, SEVERITY[rule]), 1.0 if rule in firing else 0.0) for rule in RULES]
