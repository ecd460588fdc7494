"""What the remote HTTP clients share to judge a failed call and to wait before the next one:
the chat providers (``gateway/providers/http_client.py``, retried by ``gateway/retry.py``) and
the remote embedder (``embeddings/remote.py``). In the core layer, so both infrastructure
packages use it and neither imports the other.

* ``retry_after_seconds(response)``: the ``Retry-After`` header in seconds when the server sent
  a non-negative number (HTTP dates are ignored: no provider we know sends one).
* ``is_retryable_status(status)``: 429 and every 5xx (Anthropic's 529 too) may succeed if the
  same request is sent again later; any other non-2xx status rejects the request itself.
* ``Backoff``: the one backoff schedule. Retry ``n`` (1-based) sleeps
  ``uniform(0, min(max_delay_s, base_delay_s * 2**(n-1)))``, "full jitter" (spreads a herd of
  clients that failed together over the whole interval). What a ``Retry-After`` does to it is
  each caller's policy: the gateway raises instead of waiting past its patience (a fallback
  can serve), the embedder waits at most its cap (nothing else can embed).
* ``redact(text, secret)`` and ``excerpt(text, secret)``: how an error message quotes a
  response body: whitespace collapsed, the API key replaced by ``***`` if the server echoed
  it, credentials in a URL (``https://user:password@host``) masked, at most ``EXCERPT``
  characters.

The sleeps themselves go through the caller's ``ragkeel.clock.Clock``, so tests run the
schedule on a ``ManualClock``.
"""

from __future__ import annotations

import random
import threading

import httpx

from ragkeel.redaction import strip_url_credentials

EXCERPT = 200  # characters of a response body quoted in an error message


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, if the server sent a number (HTTP dates are ignored)."""
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def is_retryable_status(status: int) -> bool:
    """429 and 5xx: worth sending again later (a 2xx is no failure at all)."""
    return status == 429 or status >= 500


class Backoff:
    """The full-jitter schedule (see the module doc); thread-safe. ``rng`` makes the draws
    reproducible in tests."""

    def __init__(
        self, base_delay_s: float, max_delay_s: float, rng: random.Random | None = None
    ) -> None:
        if base_delay_s < 0 or max_delay_s < 0:
            raise ValueError("backoff delays must not be negative")
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # random.Random is not safe to share across threads

    def bounds(self, retry_number: int) -> tuple[float, float]:
        """The interval retry ``retry_number`` (1-based) sleeps within."""
        if retry_number < 1:
            raise ValueError(f"retry numbers start at 1, got {retry_number}")
        exponent = min(retry_number - 1, 62)  # 2**62 * base is past any cap; avoids overflow
        return 0.0, min(self.max_delay_s, self.base_delay_s * 2.0**exponent)

    def delay(self, retry_number: int) -> float:
        """A draw from ``bounds(retry_number)``."""
        low, high = self.bounds(retry_number)
        with self._lock:
            return self._rng.uniform(low, high)


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` replaced by ``***`` and credentials in any URL masked."""
    return strip_url_credentials(text.replace(secret, "***") if secret else text)


def excerpt(text: str, secret: str | None) -> str:
    """``text`` (a response body) as quoted in an error message (see the module doc)."""
    flat = redact(" ".join(text.split()), secret)
    return flat[:EXCERPT] + ("..." if len(flat) > EXCERPT else "")
