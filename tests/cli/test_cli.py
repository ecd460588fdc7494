"""The real command line, run as a subprocess (exit codes and stderr are part of the contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def ragkeel(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RAGKEEL_EMBEDDING__PROVIDER": "hashing", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "keys.md").write_text(
        "# API keys\n\nRotate an API key by creating a new key, then revoking the old one.\n"
    )
    (root / "outage.txt").write_text(
        "Postmortem\n\nThe upstream provider was down; answers fell back to citations.\n"
    )
    return root


def test_ingest_search_json_roundtrip(docs: Path) -> None:
    done = ragkeel("ingest", str(docs), "--collection", "kb", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["documents_written"] == 2 and report["exit_code"] == 0
    again = json.loads(ragkeel("ingest", str(docs), "--collection", "kb", "--json").stdout)
    assert again["embedded_texts"] == 0 and again["documents_unchanged"] == 2
    found = ragkeel("search", "rotate api key", "--collection", "kb", "--k", "1", "--json")
    assert found.returncode == 0, found.stderr
    hit = json.loads(found.stdout)["hits"][0]
    assert hit["chunk"]["source"].endswith("keys.md") and hit["keyword_rank"] == 1
    table = ragkeel("search", "provider down", "--collection", "kb", "--mode", "bm25")
    assert table.returncode == 0 and "outage.txt" in table.stdout
    listed = json.loads(ragkeel("collections", "list", "--json").stdout)
    assert listed["kb"]["documents"] == 2


def test_exit_codes_for_partial_and_total_failure(docs: Path, tmp_path: Path) -> None:
    (docs / "empty.txt").write_text("")
    partial = ragkeel("ingest", str(docs), "--json")
    assert partial.returncode == 3
    failed = [f for f in json.loads(partial.stdout)["files"] if f["status"] == "failed"]
    assert [f["error_code"] for f in failed] == ["EMPTY"]
    nothing = ragkeel("ingest", str(docs / "empty.txt"))
    assert nothing.returncode == 1 and "EMPTY" in nothing.stdout + nothing.stderr


def test_bad_config_names_key_and_value(tmp_path: Path) -> None:
    (tmp_path / "ragkeel.yaml").write_text("retrieval:\n  k: zero\n")
    done = ragkeel("config", "show", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "CONFIG_INVALID" in done.stderr and "retrieval.k" in done.stderr and "'zero'" in done.stderr
    )


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    done = ragkeel(
        "config", "show", "--json", env={"RAGKEEL_EMBEDDING__REMOTE__API_KEY": "sk-secret-123"}
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["embedding"]["remote"]["api_key"] == "**********"
    assert "sk-secret-123" not in done.stdout


def test_empty_query_is_a_clear_error(docs: Path) -> None:
    ragkeel("ingest", str(docs))
    done = ragkeel("search", "   ")
    assert done.returncode == 1 and "QUERY_INVALID" in done.stderr


def test_ingest_skips_symlinks_out_of_the_directory_unless_asked(
    docs: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("The production database password is hunter2.\n")
    (docs / "leak.txt").symlink_to(secret)
    done = ragkeel("ingest", str(docs), "--collection", "kb")
    assert done.returncode == 0, done.stderr  # skipped, not failed
    assert "skipped [SYMLINK_OUTSIDE_ROOT]" in done.stdout and "leak.txt: a symlink" in done.stdout
    found = ragkeel("search", "database password", "--collection", "kb", "--json")
    assert all("secret" not in h["chunk"]["source"] for h in json.loads(found.stdout)["hits"])
    followed = ragkeel("ingest", str(docs), "--collection", "kb", "--follow-symlinks", "--json")
    assert followed.returncode == 0, followed.stderr
    assert json.loads(followed.stdout)["documents_written"] == 1  # only the link's target is new
    found = ragkeel("search", "database password", "--collection", "kb", "--json")
    assert json.loads(found.stdout)["hits"][0]["chunk"]["source"] == str(secret.resolve())


def test_ingest_search_and_ask_for_a_tenant_with_acl_principals(docs: Path, tmp_path: Path) -> None:
    env = {"RAGKEEL_HOME": str(tmp_path / "home")}
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "plan.md").write_text("# Plan\n\nThe rotation drill for API keys runs on Fridays.\n")
    acme = ("--collection", "kb", "--tenant", "acme")
    done = ragkeel("ingest", str(docs), *acme, "--json", env=env)
    assert done.returncode == 0, done.stderr
    done = ragkeel("ingest", str(secret), *acme, "--principal", "ops,sec", "--json", env=env)
    assert done.returncode == 0, done.stderr

    def sources(*args: str) -> set[str]:
        found = ragkeel("search", "rotate api keys", "--k", "5", *args, "--json", env=env)
        assert found.returncode == 0, found.stderr
        return {Path(h["chunk"]["source"]).name for h in json.loads(found.stdout)["hits"]}

    assert sources(*acme) == {"keys.md", "plan.md", "outage.txt"}  # the operator: every ACL
    assert "plan.md" in sources(*acme, "--principal", "sec")
    assert sources(*acme, "--principal", "intern") == {"keys.md", "outage.txt"}
    other = ragkeel("search", "rotate api keys", "--collection", "kb", "--json", env=env)
    assert other.returncode == 0 and json.loads(other.stdout)["hits"] == []  # default tenant
    asked = ragkeel(
        "ask", "When does the rotation drill run?", *acme, "--mode", "extractive", "--json", env=env
    )
    assert asked.returncode == 0, asked.stderr
    assert "Fridays" in json.loads(asked.stdout)["text"]
    bad = ragkeel("ingest", str(docs), "--principal", "bad\x07name", env=env)
    assert bad.returncode == 1 and "NAME_INVALID" in bad.stderr
