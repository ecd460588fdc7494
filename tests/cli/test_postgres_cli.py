"""The command line end to end on the PostgreSQL store (issue 13): ``db upgrade``, ingest,
search, an extractive answer, listing — with ``storage.backend: postgres`` set by environment
variables, as a deployment would, against the tests' real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import ragkeel

from ragkeel.storage.postgres.schema import SCHEMA_VERSION


def test_ingest_search_and_ask_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    env = {
        "RAGKEEL_STORAGE__BACKEND": "postgres",
        "RAGKEEL_STORAGE__POSTGRES__URL": postgres_url,
        "RAGKEEL_STORAGE__POSTGRES__MIGRATE_ON_START": "false",
    }
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text(
        "# API keys\n\nRotate an API key by creating a new key, then revoking the old one.\n"
        "The rotation drill runs on Fridays.\n"
    )
    (docs / "outage.txt").write_text("Postmortem\n\nThe upstream provider was down.\n")
    upgraded = ragkeel("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (
        "applied 1:" in upgraded.stdout
        and f"postgres store at schema version {SCHEMA_VERSION}" in upgraded.stdout
    )
    done = ragkeel("ingest", str(docs), "--collection", "kb", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents_written"] == 2
    found = ragkeel("search", "rotate api key", "--collection", "kb", "--k", "1", "--json", env=env)
    assert found.returncode == 0, found.stderr
    hit = json.loads(found.stdout)["hits"][0]
    assert hit["chunk"]["source"].endswith("keys.md") and hit["keyword_rank"] == 1
    asked = ragkeel(
        "ask",
        "When does the rotation drill run?",
        "--collection",
        "kb",
        "--mode",
        "extractive",
        "--json",
        env=env,
    )
    assert asked.returncode == 0, asked.stderr
    assert "Fridays" in json.loads(asked.stdout)["text"]
    listed = json.loads(ragkeel("collections", "list", "--json", env=env).stdout)
    assert listed["kb"]["documents"] == 2
    assert not (tmp_path / "ragkeel-home" / "ragkeel.db").exists()  # nothing went to SQLite
