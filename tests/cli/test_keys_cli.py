"""``ragkeel keys create|list|revoke`` as a subprocess, against a server app in this process
sharing the same RAGKEEL_HOME: the key the CLI prints works, ``list`` never shows a secret, and a
key revoked by the CLI is refused on the server's next request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.settings import load_settings


def ragkeel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env={**os.environ, "RAGKEEL_EMBEDDING__PROVIDER": "hashing"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_key_lifecycle_through_the_cli(_isolated_home: Path) -> None:
    assert json.loads(ragkeel("keys", "list", "--json").stdout) == []
    assert not (_isolated_home / "keys.db").exists()  # listing creates nothing

    made = ragkeel(
        "keys", "create", "--tenant", "team-a", "--scope", "ingest", "--expires", "30",
        "--principal", "alice", "--principal", "eng",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("rk_") and "\n" not in token  # stdout holds the key alone
    assert "not shown again" in made.stderr

    listed = ragkeel("keys", "list", "--json")
    assert token not in listed.stdout and token.rsplit("_", 1)[1] not in listed.stdout
    (key,) = json.loads(listed.stdout)
    assert key["id"] == token.split("_")[1]
    assert (key["tenant"], key["scope"], key["principals"]) == (
        "team-a",
        "ingest",
        ["alice", "eng"],
    )
    assert key["status"] == "active" and key["expires"] and key["last_used"] is None
    table = ragkeel("keys", "list")
    assert table.returncode == 0 and key["id"] in table.stdout and token not in table.stdout

    settings = load_settings(api={"auth": "required"})
    with TestClient(create_app(Container(settings))) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/documents", headers=auth).status_code == 200
        revoked = ragkeel("keys", "revoke", key["id"])
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        r = client.get("/v1/documents", headers=auth)
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"

    (after,) = json.loads(ragkeel("keys", "list", "--json").stdout)
    assert after["status"] == "revoked" and after["last_used"] is not None


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("create", "--tenant", "a b", "--scope", "query"), "KEY_INVALID"),
        (("create", "--tenant", "t", "--scope", "query", "--expires", "0"), "KEY_INVALID"),
        (("revoke", "feedfeedfeedfeed"), "KEY_NOT_FOUND"),
    ],
)
def test_bad_key_commands_fail_with_a_stable_code(args: tuple[str, ...], code: str) -> None:
    done = ragkeel("keys", *args)
    assert done.returncode == 1 and f"error [{code}]" in done.stderr, done.stderr


def test_an_unknown_scope_is_a_usage_error() -> None:
    done = ragkeel("keys", "create", "--tenant", "t", "--scope", "root")
    assert done.returncode == 2 and "root" in done.stderr
