"""Hostile request bodies, sent raw over the app: every one gets a problem with a stable code
(never the generic HTTP_400, never a 500), nothing already stored is lost, and the server goes
on answering.

- non-finite numbers (``Infinity``, ``NaN``, ``1e309``: Python's json reads them all) in any
  numeric field or free-form part of a body: 422 VALIDATION_ERROR naming the field;
- escaped lone surrogates (``"\\ud800"``) in any string or key: 422 VALIDATION_ERROR (or 400
  JSON_INVALID where pydantic parses the body itself); NUL in an uploaded record's id: that
  record refused, the others kept; NUL and non-finite numbers in its metadata: stored safely;
- malformed JSON: 400 JSON_INVALID; nesting deeper than MAX_JSON_DEPTH (or deeper than the
  parser can go): 400 JSON_TOO_DEEP; bytes that are not UTF-8: 400 BODY_NOT_UTF8;
- a broken multipart form: 400 MULTIPART_INVALID;
- a body that is not JSON (text/plain, a form, no Content-Type) on a JSON route: 415
  UNSUPPORTED_MEDIA_TYPE.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api.request_limits import MAX_JSON_DEPTH

from .conftest import COLLECTION, ON_TOPIC

JSON = {"content-type": "application/json"}
QUESTION = json.dumps(ON_TOPIC)
CHAT_MESSAGES = '[{"role": "user", "content": ' + QUESTION + "}]"
ROUTES = ("/v1/query", "/v1/chat/completions")
NON_FINITE = ("Infinity", "-Infinity", "NaN", "1e309", "-1e309")


def _body(route: str, **members: str) -> bytes:
    """A JSON object for ``route`` with ``members`` written as raw JSON text."""
    base = {"question": QUESTION} if route == "/v1/query" else {"messages": CHAT_MESSAGES}
    items = {**base, **members}
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in items.items()) + "}").encode()


def _problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status, body
    return body


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_are_validation_errors(client: TestClient, value: str) -> None:
    for route, field in [
        ("/v1/query", "max_cost"),
        ("/v1/query", "k"),
        ("/v1/query", "max_tokens"),
        ("/v1/chat/completions", "k"),
    ]:
        r = client.post(route, content=_body(route, **{field: value}), headers=JSON)
        body = _problem(r, 422, "VALIDATION_ERROR")
        assert [e["loc"] for e in body["errors"]] == [["body", field]], (route, field, body)
        assert "finite number" in body["detail"]


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_in_free_form_json_are_validation_errors(
    client: TestClient, value: str
) -> None:
    schema = '{"type": "object", "properties": {"n": {"type": "number", "maximum": ' + value + "}}}"
    r = client.post("/v1/query", content=_body("/v1/query", output_schema=schema), headers=JSON)
    body = _problem(r, 422, "VALIDATION_ERROR")
    assert "output_schema" in body["detail"] and "properties.n.maximum" in body["detail"]
    chat = "/v1/chat/completions"
    for members, where in [
        ({"temperature": value}, "temperature"),  # an OpenAI option ragkeel ignores
        ({"top_p": f"[0.5, {value}]"}, "top_p.1"),
        (
            {
                "messages": '[{"role": "user", "content": [{"type": "text", "text": '
                + QUESTION
                + f', "weight": {value}}}]}}]'
            },
            "content.0.weight",
        ),
    ]:
        r = client.post(chat, content=_body(chat, **members), headers=JSON)
        body = _problem(r, 422, "VALIDATION_ERROR")
        assert where in body["detail"] and "finite number" in body["detail"], body


def test_finite_numbers_still_pass(client: TestClient) -> None:
    r = client.post("/v1/query", content=_body("/v1/query", max_cost="1e300", k="3"), headers=JSON)
    assert r.status_code == 200, r.text
    chat = "/v1/chat/completions"
    r = client.post(chat, content=_body(chat, temperature="0.2", top_p="1e-300"), headers=JSON)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_json_is_json_invalid(client: TestClient, route: str) -> None:
    body = _problem(
        client.post(route, content=b'{"question":\n  ', headers=JSON), 400, "JSON_INVALID"
    )
    assert "not valid JSON" in body["detail"] and "line 2" in body["detail"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 100_000])
def test_deep_json_is_json_too_deep(client: TestClient, route: str, depth: int) -> None:
    """Past the limit, and past what Python's json parser can read at all (RecursionError)."""
    deep = "[" * depth + "]" * depth
    r = client.post(route, content=_body(route, collection=deep), headers=JSON)
    assert "nests" in _problem(r, 400, "JSON_TOO_DEEP")["detail"]


@pytest.mark.parametrize("route", ROUTES)
def test_json_at_the_depth_limit_is_read(client: TestClient, route: str) -> None:
    schema = '{"type": "object", "x": ' + "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    extra = {"output_schema": schema + "}"} if route == "/v1/query" else {"x": schema + "}"}
    r = client.post(route, content=_body(route, **extra), headers=JSON)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_that_is_not_utf8_is_body_not_utf8(client: TestClient, route: str) -> None:
    latin1 = _body(route, collection='"caf\u00e9"').decode().encode("latin-1")
    body = _problem(client.post(route, content=latin1, headers=JSON), 400, "BODY_NOT_UTF8")
    assert "0xe9" in body["detail"] and body["hint"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_body_that_is_not_json_is_415(
    client: TestClient, route: str, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(route, content=_body(route), headers=headers)
    body = _problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in body["detail"]


BROKEN_FORMS = [
    pytest.param(b"--x\r\n\r\nhi\r\n--x--\r\n", "multipart/form-data", id="no-boundary"),
    pytest.param(b"not a form at all", "multipart/form-data; boundary=x", id="garbage"),
    pytest.param(
        b"--x\r\nContent-Disposition form-data\r\n\r\nhi\r\n--x--\r\n",
        "multipart/form-data; boundary=x",
        id="bad-part-header",
    ),
]


@pytest.mark.parametrize(("raw", "content_type"), BROKEN_FORMS)
def test_a_broken_multipart_upload_is_multipart_invalid(
    client: TestClient, raw: bytes, content_type: str
) -> None:
    before = client.get("/v1/documents", params={"collection": COLLECTION}).json()["total"]
    r = client.post("/v1/documents", content=raw, headers={"content-type": content_type})
    assert "multipart" in _problem(r, 400, "MULTIPART_INVALID")["detail"]
    after = client.get("/v1/documents", params={"collection": COLLECTION}).json()["total"]
    assert after == before > 0  # nothing stored is lost


def test_hostile_json_documents_get_stable_codes(client: TestClient) -> None:
    deep = b'{"text": "a", "metadata": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}"
    cases = [
        (deep, 400, "JSON_TOO_DEEP"),
        ('{"text": "caf\u00e9"}'.encode("latin-1"), 400, "BODY_NOT_UTF8"),
        (b'{"text": ', 400, "JSON_INVALID"),
        (b'{"text": "a", "metadata": {"x": Infinity}}', 422, "VALIDATION_ERROR"),
        (b'{"text": "a", "metadata": {"x": 1e309}}', 422, "VALIDATION_ERROR"),
    ]
    for raw, status, code in cases:
        _problem(client.post("/v1/documents", content=raw, headers=JSON), status, code)
    assert client.post("/v1/query", json={"question": ON_TOPIC}).status_code == 200


LONE = ['"\\ud800"', '"a\\udfffb"']


@pytest.mark.parametrize("value", LONE)
def test_lone_surrogates_in_json_are_validation_errors(client: TestClient, value: str) -> None:
    """Python's json reads an escaped lone surrogate; no store, log or UTF-8 response can hold
    one (a collection named so crashed the answer with a 500 before, issue 11)."""
    chat = "/v1/chat/completions"
    cases = [
        ("/v1/query", _body("/v1/query", collection=value)),
        ("/v1/query", _body("/v1/query", question=value)),
        ("/v1/query", b'{"question": ' + QUESTION.encode() + b", " + value.encode() + b": 1}"),
        (chat, _body(chat, collection=value)),
        (chat, _body(chat, messages='[{"role": "user", "content": ' + value + "}]")),
        (chat, _body(chat, user=value)),  # an OpenAI field ragkeel ignores
        ("/v1/documents", b'{"text": "ok", "metadata": {"k": ' + value.encode() + b"}}"),
    ]
    for route, raw in cases:
        r = client.post(route, content=raw, headers=JSON)
        assert r.status_code in (400, 422), (route, raw, r.text)
        body = r.json()
        assert body["code"] in ("VALIDATION_ERROR", "JSON_INVALID"), (route, raw, body)
    assert client.post("/v1/query", json={"question": ON_TOPIC}).status_code == 200


def test_nul_and_non_finite_values_in_uploaded_records_are_stored_safely(
    client: TestClient,
) -> None:
    """A JSONL record whose id holds a NUL is refused (the others are kept); NUL in metadata is
    dropped and a non-finite number kept as text (it was sent as null before, issue 11).
    The id with a NUL was stored as is before."""
    records = (
        b'{"_id": "a\\u0000b", "text": "first"}\n'
        b'{"_id": "ok", "text": "second", "score": NaN, "big": 1e999, "tag": "x\\u0000y"}\n'
    )
    r = client.post(
        "/v1/documents", params={"collection": "odd"}, files=[("files", ("r.jsonl", records))]
    )
    assert r.status_code == 200, r.text
    (report,) = r.json()["files"]
    assert report["status"] == "partial" and len(report["document_ids"]) == 1
    assert "cannot be stored" in report["record_errors"][0]["message"]
    listed = client.get("/v1/documents", params={"collection": "odd"})
    assert listed.status_code == 200, listed.text
    (document,) = listed.json()["documents"]
    assert (document["id"], document["source"]) == (report["document_ids"][0], "r.jsonl#ok")
    assert document["metadata"] == {"score": "nan", "big": "inf", "tag": "xy"}
