"""Request limits at the HTTP edge: the largest request body (uploads included) and the longest
question (``Limits``, from ``admission/request_limits.py``: ``api_limits`` settings, built by
``Container.request_limits``; re-exported here), and what a JSON body may hold.

``BodyLimitMiddleware`` answers 413 ``REQUEST_TOO_LARGE`` before reading a body whose
``Content-Length`` is over the limit, and stops a body sent without one (chunked) as soon as
it grows past the limit (raising a 413 ``HTTPException`` from ``receive``: FastAPI's body parsing
passes those through, and ``problems.py`` renders it with the same code).

A JSON request body nests at most ``MAX_JSON_DEPTH`` objects and arrays (``json_too_deep``, 400
``JSON_TOO_DEEP``: checked without recursion before anything recursive reads it) and holds only
finite numbers: Python's ``json`` reads ``Infinity``, ``NaN`` and ``1e309`` (which overflows to
infinity), none of which is a number JSON or the answer flow can use (``non_finite_at``), and
only strings of Unicode characters: Python's ``json`` also reads an escaped lone surrogate
(``"\\ud800"``), which no store, log or UTF-8 response can hold (a collection named so crashed
the answer with a 500 before, issue 11); ``check_json_body`` refuses both with 422
``VALIDATION_ERROR`` naming where.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeel.admission.request_limits import MAX_BODY_BYTES as MAX_BODY_BYTES
from ragkeel.admission.request_limits import MAX_QUESTION_CHARS as MAX_QUESTION_CHARS
from ragkeel.admission.request_limits import Limits as Limits
from ragkeel.api.problems import problem
from ragkeel.errors import RequestTooLargeError

MAX_JSON_DEPTH = 64  # objects and arrays: a JSON schema of ~30 nested levels fits
JSON_TOO_DEEP = "json_too_deep"  # the validation error type (problems.py: 400 JSON_TOO_DEEP)
LONE_SURROGATE = "lone_surrogate"  # the validation error type (422 VALIDATION_ERROR)
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """``value`` (a parsed JSON body) as is; a ``json_too_deep`` validation error when objects
    and arrays nest deeper than ``limit``. Iterative: a deep body cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = _children(item)
        if children is None:
            continue
        if depth > limit:
            raise PydanticCustomError(
                JSON_TOO_DEEP,
                "the JSON body nests objects and arrays more than {limit} levels deep",
                {"limit": limit},
            )
        stack.extend((child, depth + 1) for _, child in children)
    return value


def check_json_body(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """``check_json_depth``, then no lone surrogate in any string or key (a
    ``lone_surrogate`` validation error naming where)."""
    check_json_depth(value, limit)
    where = lone_surrogate_at(value)
    if where is not None:
        raise PydanticCustomError(
            LONE_SURROGATE,
            "Input should be a string of Unicode characters: a lone surrogate escape "
            "(\\ud800-\\udfff without its pair) at {where}",
            {"where": where.encode("utf-8", "backslashreplace").decode() or "the body"},
        )
    return value


def lone_surrogate_at(value: Any) -> str | None:
    """Where ``value`` (parsed JSON) holds a string or key with a lone surrogate, as a dotted
    path ("" for the value itself; a key's own surrogates left in); ``None`` when there is
    none. Iterative."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str) and _SURROGATE.search(item):
            return path
        for key, child in _children(item) or ():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return where
            stack.append((child, where))
    return None


def non_finite_at(value: Any) -> str | None:
    """Where ``value`` (parsed JSON) holds a non-finite number, as a dotted path ("" for the
    value itself); ``None`` when every number is finite."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        for key, child in _children(item) or ():
            stack.append((child, f"{path}.{key}" if path else str(key)))
    return None


def _children(item: Any) -> list[tuple[object, Any]] | None:
    if isinstance(item, Mapping):
        return list(item.items())
    if isinstance(item, list | tuple):
        return list(enumerate(item))
    return None


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
