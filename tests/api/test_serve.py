"""``ragkeel serve``: builds the app from the settings and runs it under uvicorn."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from ragkeel.cli import serve


def test_serve_command_runs_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_GENERATION__PROVIDER", "none")
    ran: dict[str, Any] = {}

    def fake_run(server: uvicorn.Server, sockets: Any = None) -> None:
        with TestClient(server.config.app) as client:  # the lifespan opens and closes it
            ran["ready"] = client.get("/readyz").json()
        ran.update(host=server.config.host, port=server.config.port)
        ran["graceful"] = server.config.timeout_graceful_shutdown

    monkeypatch.setattr("uvicorn.Server.run", fake_run)
    serve.serve_command()
    assert (ran["host"], ran["port"]) == ("127.0.0.1", 8000)
    assert ran["graceful"] == 13  # server.drain_s (10) + the flush allowance (3)
    assert ran["ready"]["ready"] and ran["ready"]["degraded_reason"] == "NO_MODEL"
