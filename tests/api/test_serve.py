"""``ragkeel serve``: builds the app from the settings and runs it under uvicorn."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ragkeel.cli import serve


def test_serve_command_runs_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_GENERATION__PROVIDER", "none")
    ran: dict[str, Any] = {}

    def fake_run(app: FastAPI, **options: Any) -> None:
        with TestClient(app) as client:  # the lifespan opens and closes the container
            ran["ready"] = client.get("/readyz").json()
        ran.update(options)

    monkeypatch.setattr("uvicorn.run", fake_run)
    serve.serve_command()
    assert (ran["host"], ran["port"]) == ("127.0.0.1", 8000)
    assert ran["ready"]["ready"] and ran["ready"]["degraded_reason"] == "NO_MODEL"
