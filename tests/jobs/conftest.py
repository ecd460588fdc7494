"""The job queue's tests: the queue on a fresh PostgreSQL database per test (``postgres_url``),
the default SQLite document store under the test's home, the hashing embedder, and real
``ragkeel worker`` processes started with the test's environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ragkeel.container import Container
from ragkeel.jobs.model import JobQueue
from ragkeel.testing.jobs import write_corpus


@pytest.fixture
def queue_env(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``RAGKEEL_*`` for the queue (fast heartbeats and retries); in this process and in the
    workers it starts (they inherit ``os.environ``)."""
    settings = {
        "RAGKEEL_INGESTION__QUEUE": "procrastinate",
        "RAGKEEL_INGESTION__QUEUE_URL": postgres_url,
        "RAGKEEL_INGESTION__JOBS__HEARTBEAT_S": "0.5",
        "RAGKEEL_INGESTION__JOBS__STALLED_AFTER_S": "3",
        "RAGKEEL_INGESTION__JOBS__POLL_S": "0.5",
        "RAGKEEL_INGESTION__JOBS__RETRY_BASE_S": "0",
        "RAGKEEL_INGESTION__JOBS__MAX_ATTEMPTS": "2",
        "RAGKEEL_INGESTION__CHUNK_TOKENS": "64",
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_EMBEDDING__HASHING_DIMENSION": "64",
        "RAGKEEL_GENERATION__PROVIDER": "none",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.fixture
def container(queue_env: dict[str, str]) -> Iterator[Container]:
    with Container.load() as c:
        yield c


@pytest.fixture
def queue(container: Container) -> JobQueue:
    return container.job_queue


write_docs = write_corpus
