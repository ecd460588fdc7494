"""Request limits: the largest request body (uploads included) and the longest question.

``BodyLimitMiddleware`` answers 413 ``REQUEST_TOO_LARGE`` before reading a body whose
``Content-Length`` is over the limit, and stops a body sent without one (chunked) as soon as
it grows past the limit (raising a 413 ``HTTPException`` from ``receive``: FastAPI's body parsing
passes those through, and ``errors.py`` renders it with the same code).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeel.api.errors import QuestionTooLongError, RequestTooLargeError, problem
from ragkeel.errors import QueryError

MAX_BODY_BYTES = 25 * 1024 * 1024  # uploads: a few documents per request
MAX_QUESTION_CHARS = 4_000  # well past any real question, far below the context budget


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = MAX_BODY_BYTES
    max_question_chars: int = MAX_QUESTION_CHARS

    def check_question(self, text: str, *, name: str = "question") -> str:
        """``text`` stripped; ``QueryError`` when empty, ``QuestionTooLongError`` when long."""
        stripped = text.strip()
        if not stripped:
            raise QueryError(f"the {name} is empty", hint=f"send some text in {name!r}")
        if len(stripped) > self.max_question_chars:
            raise QuestionTooLongError(
                f"the {name} has {len(stripped)} characters; "
                f"at most {self.max_question_chars} are allowed",
                hint="shorten it",
            )
        return stripped


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is larger than {limit} bytes",
        hint="send fewer or smaller files per request",
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = _too_large(limit)
            response = problem(413, error.code, str(error), instance=scope.get("path"))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # an HTTPException: FastAPI's body parsing re-raises it as is
                    raise HTTPException(413, str(_too_large(limit)))
            return message

        await self.app(scope, limited_receive, send)
