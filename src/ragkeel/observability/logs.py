"""Log lines: one JSON object a line (``python-json-logger``) or plain text, every line with the
current request's trace id, and no secrets.

``configure_logging(fmt, level=...)`` installs one handler on the root logger (``ragkeel
serve`` calls it with ``observability.log_format``/``log_level``; uvicorn is started with
``log_config=None``, so its own loggers, the access log included, propagate to the same
handler and come out in the same format). Calling it again replaces the handler it installed.

A JSON line::

    {"time": "2026-12-06T17:02:11.123Z", "level": "INFO", "logger": "uvicorn.access", "pid": 4242,
     "message": "127.0.0.1:50312 - \\"POST /v1/query HTTP/1.1\\" 200",
     "trace_id": "0193a4...", "tenant": "acme", "route": "/v1/query",
     "client": "127.0.0.1:50312", "method": "POST", "path": "/v1/query", "status": 200}

- ``pid``: the process that wrote the line (which worker of ``serve --workers N``).
- ``trace_id``, ``tenant``, ``route``: from the request context (``context.py``; ``null``
  outside a request). The trace id is the ``X-Trace-Id`` the client got and, for an answer,
  the id of its trace.
- uvicorn's access lines also carry ``client``, ``method``, ``path`` and ``status`` as fields.
- extra fields a call passes (``log.info("...", extra={"outcome": ...})``) become keys.
- secrets: every message and string field is masked on the way out (``redact``): credentials
  in URLs (``redaction.strip_url_credentials``), secret-named query parameters in URLs and in
  bare request paths (``/v1/search?api_key=...``; ``redaction.is_secret_name``), bearer tokens,
  and ragkeel API keys (``rk_<id>_<secret>`` keeps its id).
- the question text is not logged unless ``observability.log_questions`` is on: the one line
  that would carry it (``api/tracing.py``, one per answer) only adds the ``question`` field
  then.

Text lines (``log_format: text``) put the same facts on one line:
``2026-12-06T17:02:11.123Z INFO ragkeel.api [trace 0193a4...] message``.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from ragkeel.observability.context import current
from ragkeel.redaction import MASK, is_secret_name, strip_url_credentials

LogFormat = Literal["json", "text"]
CONTEXT_FIELDS: Final = ("trace_id", "tenant", "route")
ACCESS_FIELDS: Final = ("client", "method", "path", "status")
ACCESS_LOGGER: Final = "uvicorn.access"
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_API_KEY = re.compile(r"\b(rk_[0-9a-fA-F]+_)[A-Za-z0-9_-]+")
# a query parameter anywhere (a request path has no scheme: /v1/search?api_key=...)
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s?]+)=(?P<value>[^&;#\s\"']*)")
# LogRecord attributes that are not a caller's extra fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str) -> str:
    """``text`` with credentials masked: URL user-info and secret query parameters, bearer
    tokens, ragkeel API key secrets."""
    text = strip_url_credentials(text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _API_KEY.sub(lambda m: m.group(1) + MASK, text)


def _mask_param(match: re.Match[str]) -> str:
    name, value = match.group("name"), match.group("value")
    if not value or value == MASK or not is_secret_name(name):
        return match.group(0)
    return f"{match.group('lead')}{name}={MASK}"


class ContextFilter(logging.Filter):
    """Puts the request context (``trace_id``, ``tenant``, ``route``) on every record, and the
    access log's parts (``client``, ``method``, ``path``, ``status``) on uvicorn's."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current()
        record.trace_id = ctx.trace_id if ctx is not None else None
        record.tenant = ctx.tenant if ctx is not None else None
        record.route = ctx.route if ctx is not None else None
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            record.client, record.method, record.path = client, method, path
            record.status = status
        return True


class RedactFilter(logging.Filter):
    """Masks secrets in the formatted message and in string extra fields (``redact``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True  # tracebacks are masked where they are formatted (``formatException``)


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: ``time`` (UTC, ms), ``level``, ``logger``, ``message``, the
    context fields, any extra fields, ``exc_info`` when there is a traceback."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI-coloured copy
            json_ensure_ascii=False,
        )

    def formatException(self, ei: Any) -> str:  # logging's name
        text = super().formatException(ei)  # a traceback may quote a URL or a key: masked
        return redact(text if isinstance(text, str) else "\n".join(text))

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _iso(record.created)
        super().add_fields(log_data, record, message_dict)
        log_data["pid"] = record.process
        for key in CONTEXT_FIELDS:
            log_data.setdefault(key, getattr(record, key, None))


class TextLineFormatter(logging.Formatter):
    """``time level logger [trace id] message``, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        trace_id = getattr(record, "trace_id", None)
        where = f" [trace {trace_id}]" if trace_id else ""
        line = (
            f"{_iso(record.created)} {record.levelname} {record.name}{where} {record.getMessage()}"
        )
        if record.exc_info:  # formatted here, not from another handler's cached exc_text
            return f"{line}\n{redact(self.formatException(record.exc_info))}"
        return f"{line}\n{redact(record.exc_text)}" if record.exc_text else line


def _iso(created: float) -> str:
    when = datetime.fromtimestamp(created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(
    fmt: LogFormat, *, level: str = "info", stream: TextIO | None = None
) -> logging.Handler:
    """One handler on the root logger writing ``fmt`` lines to ``stream`` (stderr), at
    ``level``; replaces the one a previous call installed. Returns the handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ragkeel", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._ragkeel = True  # type: ignore[attr-defined]  # ours to replace next time
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else TextLineFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
