"""What API keys cost a request (issue 11).

1. ``SqliteKeyStore.authenticate`` alone, in microseconds (p50/p95/p99), over N calls each
   (default 5,000) with ``--keys`` keys in the file (default 1,000): a valid key (its row read,
   one HMAC-SHA256, a constant-time compare; ``last_used`` written at most once a minute), a
   wrong secret, an unknown id, a malformed token (refused before SQLite).
2. The same request through the whole app (FastAPI ``TestClient``, in process: no sockets),
   ``GET /v1/documents`` on an empty collection, with ``api.auth: off`` and with
   ``api.auth: required`` and a valid key, alternating in rounds; and how fast a request with no
   key is refused (401, before routing).

Prints one JSON object.

    .venv/bin/python bench/auth_overhead.py [--calls 5000] [--keys 1000] [--requests 2000]
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
from ragkeel.container import Container
from ragkeel.errors import UnauthenticatedError
from ragkeel.identity.keys import SqliteKeyStore
from ragkeel.settings import load_settings


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    return {q: round(pct(samples, p), 1) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}


def _refused(store: SqliteKeyStore, token: str) -> Callable[[], None]:
    def call() -> None:
        try:
            store.authenticate(token)
        except UnauthenticatedError:
            return
        raise AssertionError("accepted")

    return call


def store_figures(home: Path, calls: int, keys: int) -> dict[str, Any]:
    store = SqliteKeyStore(home / "keys.db")
    for i in range(keys - 1):
        store.create(f"tenant-{i % 50}", "query")
    _, token = store.create("bench", "query")
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    unknown = "rk_" + "0" * 16 + token[19:]
    cases = {
        "valid": lambda: store.authenticate(token),
        "wrong_secret": _refused(store, wrong),
        "unknown_id": _refused(store, unknown),
        "malformed": _refused(store, "rk_nope"),
    }
    for fn in cases.values():  # warm-up
        for _ in range(100):
            fn()
    out = {name: _summary(_timed(fn, calls)) for name, fn in cases.items()}
    store.close()
    return out


def app_figures(home: Path, requests: int, rounds: int = 4) -> dict[str, Any]:
    def app(auth: str) -> Any:
        settings = load_settings(
            home=home / auth,
            embedding={"provider": "hashing", "hashing_dimension": 64, "cache": False},
            generation={"provider": "none"},
            api={"auth": auth},
        )
        return create_app(Container(settings))

    samples: dict[str, list[float]] = {"auth_off": [], "auth_required": [], "refused_401": []}
    with TestClient(app("off")) as off, TestClient(app("required")) as on:
        token = on.app.state.ragkeel.container.keys.create("bench", "query")[1]  # type: ignore[attr-defined]
        header = {"Authorization": f"Bearer {token}"}
        per_round = requests // rounds
        for _ in range(50):
            off.get("/v1/documents")
            on.get("/v1/documents", headers=header)
        for _ in range(rounds):
            samples["auth_off"] += _timed(lambda: off.get("/v1/documents"), per_round)
            samples["auth_required"] += _timed(
                lambda: on.get("/v1/documents", headers=header), per_round
            )
            samples["refused_401"] += _timed(lambda: on.get("/v1/documents"), per_round)
        assert on.get("/v1/documents").status_code == 401
        assert on.get("/v1/documents", headers=header).status_code == 200
    return {name: _summary(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragkeel-auth-bench-") as tmp:
        home = Path(tmp)
        result = {
            "date": today(),
            "commit": commit(),
            "machine": machine(),
            "authenticate_us": store_figures(home, args.calls, args.keys),
            "request_us": app_figures(home, args.requests),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
