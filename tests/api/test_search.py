"""GET /v1/search: ranked hits with scores, ranks and confidence."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import COLLECTION


def test_hybrid_search(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "rotate API key", "k": 2, "collection": COLLECTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "hybrid" and [h["rank"] for h in body["hits"]] == [1, 2]
    top = body["hits"][0]
    assert top["title"] == "API keys" and top["source"] == "keys.md"
    assert top["keyword_rank"] == 1 and top["dense_rank"] is not None and top["score"] > 0
    assert body["confidence"]["top_dense_score"] is not None
    assert {"keyword_ms", "dense_ms", "total_ms"} <= set(body["timings_ms"])


def test_bm25_search_and_unknown_collection(client: TestClient) -> None:
    body = client.get("/v1/search", params={"q": "outage", "mode": "bm25"}).json()
    assert body["hits"] and all(h["dense_rank"] is None for h in body["hits"])
    assert (
        client.get("/v1/search", params={"q": "outage", "collection": "nope"}).json()["hits"] == []
    )


def test_bad_search_parameters(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "x", "mode": "fuzzy"})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"
    assert r.json()["detail"].startswith("mode:")
    assert client.get("/v1/search").json()["code"] == "VALIDATION_ERROR"
    assert client.get("/v1/search", params={"q": "  "}).json()["code"] == "QUERY_INVALID"
