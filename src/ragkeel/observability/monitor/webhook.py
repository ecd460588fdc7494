"""``WebhookNotifier``: POSTs an alert as JSON to the configured URL, retried with backoff.

Each notification is one POST of ``Alert.to_dict()`` (``rule``, ``severity``, ``status``
firing/resolved, ``value``, ``threshold``, ``window``, ``since``, ``at``, ``summary``,
``details``) with the configured headers. A network error, a timeout, 429 or any 5xx is
retried up to ``max_attempts`` in all, sleeping the full-jitter schedule of
``http_retry.Backoff`` between attempts (a ``Retry-After`` in seconds is honoured up to the
schedule's cap); any other status is final. ``send`` never raises: a notification that cannot
be delivered is logged (the URL is a secret: only its scheme and host appear) and counted in
``failed``. It runs on the monitor's thread, never on a request's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.http_retry import Backoff, is_retryable_status, retry_after_seconds

logger = logging.getLogger(__name__)


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = url
        parts = urlsplit(url)
        self.target = f"{parts.scheme}://{parts.hostname or ''}"  # what logs may show
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(1.0, 30.0)
        self.clock = clock
        self._client = httpx.Client(
            headers={"Content-Type": "application/json", **dict(headers or {})},
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def send(self, payload: dict[str, Any]) -> bool:
        """POST ``payload``; whether it was delivered (a 2xx) within ``max_attempts``."""
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                response = self._client.post(self._url, json=payload)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    self._count(ok=True)
                    return True
                problem = f"HTTP {response.status_code}"
                if not is_retryable_status(response.status_code):
                    break
                wait = retry_after_seconds(response)
            if attempt < self.max_attempts:
                delay = self.backoff.delay(attempt)
                if wait is not None:  # the server's wish, up to the schedule's cap
                    delay = max(delay, min(wait, self.backoff.max_delay_s))
                self.clock.sleep(delay)
        self._count(ok=False)
        logger.warning(
            "alert %s (%s) not delivered to the webhook at %s: %s",
            payload.get("rule"),
            payload.get("status"),
            self.target,
            problem,
        )
        return False

    def close(self) -> None:
        self._client.close()

    def _count(self, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1
