"""The monitor (issue 12): alert rules over rolling windows of the trace store, quality drift
with real statistical tests, alerts logged, POSTed to a webhook and shown.

``monitor.py`` (``Monitor``: evaluate, tick, the background thread, ``firing()``) ←
``state.py`` (``AlertBook``: fire/resolve without flapping) ← ``rules.py`` (the rules and
their thresholds) ← ``stats.py`` (KS, PSI, Fisher's exact, percentiles) and ``windows.py``
(``TraceWindows``: the trace store read one window at a time); ``webhook.py``
(``WebhookNotifier``); ``lease.py`` (``FileLease``: one process on a home speaks);
``gauge.py`` (``alert_readings``: the ``ragkeel_alert_firing`` samples for ``/metrics``). Built by ``Container.monitor``; ``ragkeel monitor check`` is
``cli/monitor.py``.
"""

from ragkeel.observability.monitor.monitor import Evaluation, Monitor
from ragkeel.observability.monitor.rules import RULES, RuleResult
from ragkeel.observability.monitor.state import Alert, AlertBook
from ragkeel.observability.monitor.webhook import WebhookNotifier
from ragkeel.observability.monitor.windows import TraceWindows, Window

__all__ = [
    "RULES",
    "Alert",
    "AlertBook",
    "Evaluation",
    "Monitor",
    "RuleResult",
    "TraceWindows",
    "WebhookNotifier",
    "Window",
]
