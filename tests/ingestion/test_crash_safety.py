"""kill -9 a real ingest process at several points: the store stays consistent, and a re-run
finishes the rest without duplicates and without re-embedding what was already committed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragkeel.storage.sqlite import SqliteDocumentStore

N_DOCS = 1500


def _corpus(path: Path) -> Path:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta"]
    with path.open("w") as f:
        for i in range(N_DOCS):
            text = " ".join(words[(i * 7 + j) % len(words)] + str(j % 13) for j in range(120))
            f.write(json.dumps({"_id": f"doc{i}", "title": f"Doc {i}", "text": text}) + "\n")
    return path


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _ingest(corpus: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "ingest", str(corpus), "--collection", "crash", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.timeout(240)
def test_kill_9_at_several_points_then_resume(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl")
    home = tmp_path / "home"
    db = home / "ragkeel.db"
    env = {
        **os.environ,
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_EMBEDDING__CACHE": "false",
        "RAGKEEL_INGESTION__EMBED_BATCH_CHUNKS": "8",
    }
    kills = 0
    seen_counts = []
    # kill points: while the store is still being created, then after ~10%, ~35% and ~60% committed
    for target in (0, N_DOCS // 10, N_DOCS * 35 // 100, N_DOCS * 60 // 100):
        before = _committed(db)
        proc = _ingest(corpus, env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _committed(db) >= max(target, before + 1) or (target == 0 and db.exists()):
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
        store = SqliteDocumentStore(db)
        try:
            assert store.check_integrity() == [], f"inconsistent after kill at {target}"
            seen_counts.append(store.stats().documents)
        finally:
            store.close()
    assert kills >= 3, "the ingest finished too fast to be killed; raise N_DOCS"
    assert seen_counts[-1] < N_DOCS
    done = subprocess.run(
        [sys.executable, "-m", "ragkeel", "ingest", str(corpus), "--collection", "crash", "--json"],
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["documents_unchanged"] == seen_counts[-1]  # committed work is not redone
    assert report["documents_written"] == N_DOCS - seen_counts[-1]
    store = SqliteDocumentStore(db)
    try:
        assert store.check_integrity() == []
        stats = store.stats()
        assert stats.documents == N_DOCS
        conn = sqlite3.connect(db)
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT document_id, ordinal FROM chunks "
            "GROUP BY collection, document_id, ordinal HAVING count(*) > 1)"
        ).fetchone()[0]
        conn.close()
        assert dupes == 0
        assert len(store.keyword.search("doc", 10_000)) == stats.chunks
    finally:
        store.close()
