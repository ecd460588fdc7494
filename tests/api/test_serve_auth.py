"""``ragkeel serve`` resolves ``api.auth: auto`` against the address it binds, and says so."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from ragkeel.cli import serve


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_GENERATION__PROVIDER", "none")
    ran: dict[str, Any] = {}

    def fake_run(server: uvicorn.Server, sockets: Any = None) -> None:
        with TestClient(server.config.app) as client:
            ran["documents"] = client.get("/v1/documents").status_code
            ran["docs"] = client.get("/docs").status_code
            ran["healthz"] = client.get("/healthz").status_code

    monkeypatch.setattr("uvicorn.Server.run", fake_run)
    return ran


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "example.internal"])
def test_auto_requires_keys_off_loopback(
    served: dict[str, Any], host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    serve.serve_command(host=host, port=8000)
    assert served == {"documents": 401, "docs": 401, "healthz": 200}
    err = capsys.readouterr().err
    assert "API keys required" in err and "no active API key" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_auto_is_off_on_loopback_without_a_warning(
    served: dict[str, Any], host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    serve.serve_command(host=host, port=8000)
    assert served == {"documents": 200, "docs": 200, "healthz": 200}
    assert "WARNING" not in capsys.readouterr().err


def test_auth_off_on_a_network_address_warns(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGKEEL_API__AUTH", "off")
    serve.serve_command(host="0.0.0.0", port=8000)
    assert served["documents"] == 200
    err = capsys.readouterr().err
    assert "WARNING: api.auth is off on 0.0.0.0" in err


def test_auth_required_on_loopback_too(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGKEEL_API__AUTH", "required")
    serve.serve_command(host="127.0.0.1", port=8000)
    assert served["documents"] == 401
