"""``ragkeel.http_retry``: what the chat providers and the remote embedder share (Retry-After,
retryable statuses, the full-jitter schedule, redacted excerpts)."""

from __future__ import annotations

import random

import httpx
import pytest

from ragkeel.http_retry import (
    EXCERPT,
    Backoff,
    excerpt,
    is_retryable_status,
    redact,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), ("1.5", 1.5), ("-1", None), ("soon", None), (None, None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after_seconds(httpx.Response(429, headers=headers)) == seconds


def test_an_http_date_retry_after_is_ignored() -> None:
    response = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(response) is None


def test_retryable_statuses() -> None:
    assert [s for s in (400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 529) if
            is_retryable_status(s)] == [429, 500, 502, 503, 529]  # fmt: skip


def test_bounds_double_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.bounds(n) for n in (1, 2, 3, 4, 1000)] == [
        (0.0, 0.5),
        (0.0, 1.0),
        (0.0, 2.0),
        (0.0, 3.0),
        (0.0, 3.0),
    ]
    with pytest.raises(ValueError, match="start at 1"):
        backoff.bounds(0)
    with pytest.raises(ValueError, match="negative"):
        Backoff(-1.0, 1.0)


def test_delays_are_full_jitter_and_reproducible() -> None:
    delays = [Backoff(0.1, 1.0, random.Random(seed)).delay(3) for seed in range(300)]
    assert all(0.0 <= d <= 0.4 for d in delays)
    # the whole interval, not "half + jitter": some waits are near zero, some near the top
    assert min(delays) < 0.04 and max(delays) > 0.36
    again = [Backoff(0.1, 1.0, random.Random(seed)).delay(3) for seed in range(300)]
    assert again == delays


def test_excerpt_collapses_redacts_and_cuts() -> None:
    key = "sk-secret-123"
    assert excerpt(f"bad  key\n {key}", key) == "bad key ***"
    assert redact(f"{key} again {key}", key) == "*** again ***"
    assert redact("nothing to hide", None) == "nothing to hide"
    long = excerpt("x" * (EXCERPT + 50), None)
    assert long == "x" * EXCERPT + "..."
