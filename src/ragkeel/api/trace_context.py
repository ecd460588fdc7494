"""``TraceContextMiddleware``: every HTTP request (but the probes and ``/metrics``) in a root
span, current while the request is handled (``observability/tracing.py``).

A W3C ``traceparent`` header from the caller makes the request a child of the caller's trace
(an invalid one is ignored: a new trace starts); the answer flow's spans and the gateway's
provider calls hang under it, and the providers send it on (``gateway/providers/
http_client.py``). The span is named ``{method} {path}`` and carries the HTTP method, path,
route template and status (a 5xx marks it failed); the answer routes add the request's facts
when they record its trace (``api/tracing.py``). The tracer is read from
``app.state.ragkeel`` per request; tracing off (the ``NullTracer``), the request passes
straight through.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeel.api.state import ApiState
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.tracing import NullTracer

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # polled: noise, not requests


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp, untraced: Collection[str] = UNTRACED_PATHS) -> None:
        self.app = app
        self.untraced = frozenset(untraced)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        state: ApiState = scope["app"].state.ragkeel
        tracer = state.container.tracer
        if isinstance(tracer, NullTracer):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        attrs = {
            **genai.root_attributes(path),
            names.HTTP_REQUEST_METHOD: method,
            names.URL_PATH: path,
        }
        status = 500  # what the span says if the app fails before it starts a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        parent = _traceparent(scope)
        name = f"{method} {path}"
        with tracing.request(tracer, name, attrs, traceparent=parent, kind="server") as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                span.set({names.HTTP_RESPONSE_STATUS_CODE: status})
                if isinstance(route, str):
                    span.set({names.HTTP_ROUTE: route})
                if status >= 500:
                    span.fail(str(status))


def _traceparent(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"traceparent":
            return bytes(value).decode("latin-1")
    return None
