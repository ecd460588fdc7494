"""What public document ids cost (issue 11): the API names documents by keyed-hash ids
(``api/public_ids.py``), and ``DELETE /v1/documents/{id}`` maps one back by hashing the ids
of the collection's listing within the caller's scope (no index of public ids is stored).

For each collection size N (``--sizes``, default 1,000 and 10,000), one JSON-lines file of N
records is ingested into a fresh home (hashing embedder), then through the whole app in process
(FastAPI ``TestClient``), in milliseconds (p50/p95 over ``--requests`` each):

- ``GET /v1/documents?limit=100`` (every id of the collection is hashed to sort by public id);
- ``DELETE`` of an id that is not there (the whole listing is hashed: the worst case);
- ``DELETE`` of a real document (then re-ingested untimed, so N stays N) — only for the
  first few requests, as each one rewrites the collection's index.

Also ``internal_id`` alone, and ``public_id`` per call in µs. Prints one JSON object.

    PYTHONPATH=src:bench .venv/bin/python bench/public_ids.py [--sizes 1000,10000] [--requests 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from common import commit, machine, pct, today
from ragkeel.api import create_app
from ragkeel.api.public_ids import internal_id, load_key, public_id
from ragkeel.container import Container
from ragkeel.settings import load_settings
from ragkeel.types import AccessScope

COLLECTION = "bench"


def _ms(fn: Callable[[], Any], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50": round(pct(samples, 50), 2), "p95": round(pct(samples, 95), 2)}


def _records(n: int) -> str:
    return "".join(
        json.dumps({"text": f"Record {i} says the parcel {i} ships on day {i % 28 + 1}."}) + "\n"
        for i in range(n)
    )


def measure(n: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = load_settings(
            home=home, embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False}
        )
        container = Container(settings)
        source = Path(tmp) / "rows.jsonl"
        source.write_text(_records(n))
        started = time.perf_counter()
        report = container.pipeline.ingest([str(source)], COLLECTION)
        ingest_s = time.perf_counter() - started
        assert report.exit_code == 0, report.to_dict()
        key, scope = load_key(home), AccessScope(all_principals=True)
        ids = [i for v in container.store.documents_by_source(COLLECTION).values() for i in v]
        assert len(ids) == n, len(ids)
        started = time.perf_counter()
        for i in ids:
            public_id(key, scope.tenant, i)
        hash_us = (time.perf_counter() - started) / n * 1e6
        missing = "doc_" + "0" * 32
        lookup = _ms(lambda: internal_id(container.store, key, scope, COLLECTION, missing), 5)
        with TestClient(create_app(container)) as client:
            params = {"collection": COLLECTION}

            def listing() -> None:
                r = client.get("/v1/documents", params={**params, "limit": 100})
                assert r.status_code == 200 and r.json()["total"] == n

            def delete_missing() -> None:
                r = client.delete(f"/v1/documents/{missing}", params=params)
                assert r.status_code == 404

            listed = client.get("/v1/documents", params={**params, "limit": 5}).json()
            victims = [d["id"] for d in listed["documents"]]

            def delete_real() -> None:
                r = client.delete(f"/v1/documents/{victims.pop()}", params=params)
                assert r.status_code == 200

            out = {
                "documents": n,
                "ingest_s": round(ingest_s, 1),
                "public_id_us": round(hash_us, 2),
                "internal_id_missing_ms": lookup,
                "list_100_ms": _ms(listing, requests),
                "delete_missing_ms": _ms(delete_missing, requests),
                "delete_real_ms": _ms(delete_real, len(victims)),
            }
        container.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    rows = [measure(int(n), args.requests) for n in args.sizes.split(",")]
    print(
        json.dumps(
            {"date": today(), "commit": commit(), "machine": machine(), "rows": rows}, indent=1
        )
    )


if __name__ == "__main__":
    main()
