"""The semantic cache's candidates: for each bucket (``keys.py``: same scope, collections,
revision, configuration and request settings), the questions answered in it, with their
embeddings and the exact keys of their answers — kept in the same ``CacheBackend`` as the
answers, under ``sem-<bucket>``, so replicas sharing Redis share them too.

``semantic.py``'s ``SemanticMatcher`` (cosine threshold plus the guards against the classic
false hits) picks which candidate, if any, may answer a new question; this module only keeps
the candidates (at most ``max_candidates`` per bucket, newest first) and stacks them into the
matcher's ``Candidates`` once per version of the stored list in this process (a lookup then
costs one matrix-vector product).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence

import numpy as np

from ragkeel.caching.backends import CacheBackend
from ragkeel.caching.semantic import CachedQuestion, Candidates


class SemanticIndex:
    def __init__(self, backend: CacheBackend, *, max_candidates: int = 512) -> None:
        self.backend, self.max_candidates = backend, max_candidates
        self._lock = threading.Lock()
        self._stacked: dict[str, tuple[bytes, list[CachedQuestion], Candidates]] = {}

    def candidates(self, bucket: str) -> Candidates:
        return self._read(bucket)[1]

    def add(self, bucket: str, question: CachedQuestion, ttl_s: float) -> None:
        """``question`` first in its bucket (replacing one with the same key), the oldest
        beyond ``max_candidates`` dropped. Two processes adding at once may lose one
        candidate: that only costs a semantic miss."""
        kept = [q for q in self._read(bucket)[0] if q.key != question.key]
        kept = [question, *kept][: self.max_candidates]
        self.backend.set(_key(bucket), _encode(kept), ttl_s)

    def _read(self, bucket: str) -> tuple[list[CachedQuestion], Candidates]:
        raw = self.backend.get(_key(bucket))
        if raw is None:
            return [], Candidates.of([])
        with self._lock:
            seen = self._stacked.get(bucket)
            if seen is not None and seen[0] == raw:
                return seen[1], seen[2]
        questions = _decode(raw)
        stacked = Candidates.of(questions)
        with self._lock:
            if len(self._stacked) >= 4 * self.max_candidates:
                self._stacked.clear()  # bounded: buckets come and go with revisions
            self._stacked[bucket] = (raw, questions, stacked)
        return questions, stacked


def _key(bucket: str) -> str:
    return f"sem-{bucket}"


def _encode(questions: Sequence[CachedQuestion]) -> bytes:
    rows = [
        [q.key, q.text, base64.b64encode(np.asarray(q.vector, np.float32).tobytes()).decode()]
        for q in questions
    ]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(raw: bytes) -> list[CachedQuestion]:
    try:
        rows = json.loads(raw)
        return [
            CachedQuestion(k, t, np.frombuffer(base64.b64decode(v), np.float32)) for k, t, v in rows
        ]
    except (ValueError, TypeError):
        return []  # written by another version: no candidates
