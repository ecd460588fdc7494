"""Reading HTTP response headers that both remote clients (embeddings, chat) honour."""

from __future__ import annotations

import httpx


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, if the server sent a number (HTTP dates are ignored)."""
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None
