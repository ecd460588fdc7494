"""Server-sent events framing (``text/event-stream``, WHATWG HTML §9.2).

One event is an optional ``event:`` line, one ``data:`` line per line of the payload, and a blank
line. Payloads are compact JSON (a JSON text never holds a raw newline, but the framing splits
on them anyway). OpenAI-style streams use ``data:`` lines only and end with ``data: [DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell reverse proxies not to buffer the stream
}


def frame(data: Any, event: str | None = None) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    lines = [f"event: {event}"] if event else []
    lines.extend(f"data: {line}" for line in payload.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that calls ``on_close`` however it ends: finished,
    failed, or cancelled because the client went away."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
