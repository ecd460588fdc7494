"""Crash safety across processes (issue 13): a worker ``kill -9``-ed at a seeded random moment
while it writes documents → procrastinate's stalled-job recovery (the killed worker's heartbeat
stops) runs the job again in another worker → the SQLite store holds exactly what a synchronous
ingest of the same files holds: every document with the same content hash and chunk count, no
chunk, vector or postings row twice. One trial in the default suite; ten in the slow run (the
figures: ``bench/ingest_queue.py --kill-trials``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ragkeel.container import Container
from ragkeel.jobs.model import JobQueue
from ragkeel.settings import load_settings
from ragkeel.testing.jobs import StoreDigest, crash_trial, store_digest

from .conftest import write_docs


def reference(corpus: Path, home: Path) -> tuple[StoreDigest, float]:
    with Container(load_settings(home=home)) as c:
        started = time.perf_counter()
        assert c.pipeline.ingest([str(corpus)]).exit_code == 0
        took = time.perf_counter() - started
    return store_digest(home / "ragkeel.db"), took


def trials(seeds: range, queue: JobQueue, env: dict[str, str], tmp_path: Path, home: Path) -> None:
    corpus = write_docs(tmp_path / "docs", 100, words=200)
    ref, took = reference(corpus, tmp_path / "reference")
    for seed in seeds:
        db = home / "ragkeel.db"
        for path in home.glob("ragkeel.db*"):
            path.unlink()
        result = crash_trial(
            queue,
            env,
            corpus,
            db,
            ref,
            seed=seed,
            max_kill_after_s=took * 0.8,
            log=tmp_path / "workers.log",
        )
        assert result.ok, result
        assert result.runs >= 2 or not result.killed_mid_run, result


def test_kill_9_mid_ingest_loses_and_duplicates_nothing(
    queue: JobQueue, queue_env: dict[str, str], tmp_path: Path, _isolated_home: Path
) -> None:
    trials(range(1), queue, queue_env, tmp_path, _isolated_home)


@pytest.mark.slow
def test_kill_9_ten_seeded_trials(
    queue: JobQueue, queue_env: dict[str, str], tmp_path: Path, _isolated_home: Path
) -> None:
    trials(range(10), queue, queue_env, tmp_path, _isolated_home)
