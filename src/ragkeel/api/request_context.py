"""``RequestContextMiddleware``: every HTTP request runs inside a request context
(``observability/context.py``) entered before anything else (authentication included), so each
log line written on its behalf, and the trace an answer route records at the end, carry the
same trace id; the id goes back to the client as the ``X-Trace-Id`` header of every response
(an answer's is the id of its trace: ``GET``-able with ``ragkeel trace ID``).

The id is ragkeel's own; a client cannot choose it (an id it sent could collide with a stored
trace of another tenant).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeel.observability.context import TRACE_ID_HEADER, request_context

_HEADER = TRACE_ID_HEADER.lower().encode("latin-1")


class RequestContextMiddleware:
    """Enters the request context for each HTTP request and adds ``X-Trace-Id`` to its
    response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_context(scope["path"]) as ctx:
            value = ctx.trace_id.encode("latin-1")

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                    message = {**message, "headers": [*headers, (_HEADER, value)]}
                await send(message)

            await self.app(scope, receive, send_with_id)
