"""The semantic cache's candidates: for each bucket (``keys.py``: same scope, collections,
revision, configuration and request settings), the questions answered in it, with their
embeddings and the exact keys of their answers — kept in the same ``CacheBackend`` as the
answers, under ``sem-<bucket>``, so replicas sharing Redis share them too.

A ``QuestionMatcher`` (sem's ``caching/semantic.py``: cosine threshold plus guards against the
classic false hits) picks which candidate, if any, may answer a new question; this module only
keeps the candidates (at most ``max_candidates`` per bucket, newest first) and decodes them
once per version of the stored list in this process.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ragkeel.caching.backends import CacheBackend
from ragkeel.embeddings.base import Vector


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cached question: the exact key of its answer, its text, its embedding."""

    key: str
    text: str
    vector: Vector


@dataclass(frozen=True, slots=True)
class Matched:
    key: str
    similarity: float


class QuestionMatcher(Protocol):
    """Which of ``candidates`` may answer ``question`` (None: none may)."""

    def __call__(
        self, question: str, vector: Vector, candidates: Sequence[Candidate]
    ) -> Matched | None: ...


class SemanticIndex:
    def __init__(self, backend: CacheBackend, *, max_candidates: int = 512) -> None:
        self.backend, self.max_candidates = backend, max_candidates
        self._lock = threading.Lock()
        self._decoded: dict[str, tuple[bytes, list[Candidate]]] = {}

    def candidates(self, bucket: str) -> list[Candidate]:
        raw = self.backend.get(_key(bucket))
        if raw is None:
            return []
        with self._lock:
            seen = self._decoded.get(bucket)
            if seen is not None and seen[0] == raw:
                return seen[1]
        found = _decode(raw)
        with self._lock:
            if len(self._decoded) >= 4 * self.max_candidates:
                self._decoded.clear()  # bounded: buckets come and go with revisions
            self._decoded[bucket] = (raw, found)
        return found

    def add(self, bucket: str, candidate: Candidate, ttl_s: float) -> None:
        """``candidate`` first in its bucket (replacing one with the same key), the oldest
        beyond ``max_candidates`` dropped. Two processes adding at once may lose one
        candidate: that only costs a semantic miss."""
        kept = [c for c in self.candidates(bucket) if c.key != candidate.key]
        kept = [candidate, *kept][: self.max_candidates]
        self.backend.set(_key(bucket), _encode(kept), ttl_s)


def _key(bucket: str) -> str:
    return f"sem-{bucket}"


def _encode(candidates: Sequence[Candidate]) -> bytes:
    rows = [
        [c.key, c.text, base64.b64encode(np.asarray(c.vector, np.float32).tobytes()).decode()]
        for c in candidates
    ]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(raw: bytes) -> list[Candidate]:
    try:
        rows = json.loads(raw)
        return [Candidate(k, t, np.frombuffer(base64.b64decode(v), np.float32)) for k, t, v in rows]
    except (ValueError, TypeError):
        return []  # written by another version: no candidates
