"""``POST /v1/documents`` with a ``language`` (issue 15): as a query parameter, a form field or
the JSON body's field; a mismatch is 409 ``LANGUAGE_MISMATCH`` and keeps nothing, an unknown
language 422 ``LANGUAGE_UNSUPPORTED``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ragkeel.storage.filters import Filter

from .conftest import Api

GERMAN = "Die alten Häuser der Stadt stehen zwischen hohen Bäumen.".encode()


def german_hits(api: Api, collection: str) -> int:
    return len(api.container.store.keyword.search("Haus", 5, Filter(collection=collection)))


def kept_files(api: Api) -> list[str]:
    return [p.name for p in api.container.uploads_dir.rglob("*") if p.is_file()]


def test_upload_in_german_by_form_field_and_query(client: TestClient, api: Api) -> None:
    r = client.post(
        "/v1/documents",
        data={"collection": "de", "language": "German"},
        files=[("files", ("stadt.txt", GERMAN))],
    )
    assert r.status_code == 200, r.text
    assert api.container.store.collection_language("de") == "german"
    assert german_hits(api, "de") == 1
    r = client.post(
        "/v1/documents",
        params={"collection": "de2", "language": "german"},
        files=[("files", ("stadt.txt", GERMAN))],
    )
    assert r.status_code == 200 and german_hits(api, "de2") == 1


def test_json_text_in_german(client: TestClient, api: Api) -> None:
    body = {"text": GERMAN.decode(), "id": "stadt", "collection": "de", "language": "german"}
    assert client.post("/v1/documents", json=body).status_code == 200
    assert german_hits(api, "de") == 1


def test_a_mismatch_is_409_and_keeps_nothing(client: TestClient, api: Api) -> None:
    files = [("files", ("stadt.txt", GERMAN))]
    ok = client.post(
        "/v1/documents", params={"collection": "de", "language": "german"}, files=files
    )
    assert ok.status_code == 200
    before = sorted(kept_files(api))
    files = [("files", ("neu.txt", b"Neue Hauser."))]
    r = client.post(
        "/v1/documents", params={"collection": "de", "language": "english"}, files=files
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "LANGUAGE_MISMATCH" and "german" in r.json()["detail"]
    assert sorted(kept_files(api)) == before  # the refused upload is not kept
    assert api.container.store.stats().collections["de"] == 1


def test_an_unknown_language_is_422_naming_the_supported_ones(client: TestClient) -> None:
    body = {"text": "text", "collection": "x", "language": "klingon"}
    r = client.post("/v1/documents", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "LANGUAGE_UNSUPPORTED" and "german" in r.json()["hint"]
