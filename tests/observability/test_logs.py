"""``observability/logs.py``: what ``redact`` masks (and leaves alone), the context on every
line, a traceback's secrets, and replacing the handler on a second call."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ragkeel.observability.context import request_context
from ragkeel.observability.logs import configure_logging, redact
from ragkeel.redaction import MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /v1/search?q=a&api_key=k1 HTTP/1.1", f"GET /v1/search?q=a&api_key={MASK} HTTP/1.1"),
        ("/x?token=zzz&q=1", f"/x?token={MASK}&q=1"),
        ("https://u:pw@host/p?sig=abc", f"https://u:{MASK}@host/p?sig={MASK}"),
        ("Authorization: Bearer sk-123", f"Authorization: Bearer {MASK}"),
        ("key rk_0a1b2c_s3cr3t-_x used", f"key rk_0a1b2c_{MASK} used"),
        ("max_tokens=5 and ?max_tokens=7", "max_tokens=5 and ?max_tokens=7"),
        ("no secrets here", "no secrets here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # masking twice changes nothing


def test_every_line_is_json_with_the_context(log_buffer: io.StringIO) -> None:
    configure_logging("text", stream=io.StringIO())
    configure_logging("json", stream=log_buffer)  # replaces the first handler
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_ragkeel", False)]
    assert len(ours) == 1
    log = logging.getLogger("ragkeel.test")
    log.info("outside")
    with request_context("/v1/query", tenant="acme") as ctx:
        log.warning("inside %s", "https://a:b@h", extra={"detail": "rk_ab_cd"})
        try:
            raise ValueError("password in http://x:hunter2@db")
        except ValueError:
            log.exception("failed")
    got = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    assert [g["trace_id"] for g in got] == [None, ctx.trace_id, ctx.trace_id]
    assert got[1]["tenant"] == "acme" and got[1]["route"] == "/v1/query"
    assert got[1]["message"] == f"inside https://a:{MASK}@h" and got[1]["detail"] == f"rk_ab_{MASK}"
    assert "hunter2" not in log_buffer.getvalue() and "ValueError" in got[2]["exc_info"]
    assert got[0]["level"] == "INFO" and got[0]["logger"] == "ragkeel.test"
