"""The semantic cache's matcher (issue 14): may a new question be served the answer cached for
an earlier one?

The exact cache misses "What did Apple report as revenue?" after "what did apple report as
revenue" only if normalisation fails; the semantic cache also serves rephrasings. Given the new
question (text + its embedding, the vector retrieval already computed) and the cached questions
of the *same* scope, collection and index revision (the cache selects those; this module does no
I/O), ``SemanticMatcher.match`` returns the most similar cached question only if

1. cosine similarity >= ``threshold`` (default ``DEFAULT_SIMILARITY_THRESHOLD``), and
2. no guard objects (``caching/guards.py``: negation, numbers, dates, units, named entities,
   comparatives, polarity, comparison order, question word, content words; ``guards`` chooses
   which, all by default, none for the measurements without guards).

Candidates at or above the threshold are tried in order of similarity, at most ``max_checks``
of them; the first that every guard accepts is the match. A candidate a guard rejects is never
served, whatever its similarity; the outcome names the guards that rejected, for traces.

``Candidates`` holds the cached questions stacked in one float32 matrix (rows L2-normalised once
when it is built), so a match is one matrix-vector product over a few thousand rows (well
under a millisecond at 384 dimensions, ``bench/semantic_cache_sweep.py``) plus the guards on the
few candidates above the threshold (0.25 ms over 3,000 rows). A plain sequence of cached
questions (``QuestionLike``, e.g. ``CachedQuestion``) is stacked on every call: 0.6 ms CPU for
512 of them here, against 0.04 ms when the caller keeps the built ``Candidates`` for as long as
its list is unchanged (the answer cache does: ``semantic_index.py``). A vector of another
dimension than the candidates' (another embedder) never matches.

The threshold was chosen by ``bench/semantic_cache_sweep.py`` on pairs built from the evaluation
data (XQuAD, SciFact, the SEC sample; train splits) for the default embedder (all-MiniLM-L6-v2):
among the thresholds whose false-hit rate with every guard is <= 1 % (overall and for each kind
of hard negative), the highest whose recall is within one point of the best. 0.89: on train
recall 0.755 and false-hit rate 0.05 %; on the held-out split recall 0.788 and no false hit in
3,024 hard negatives. The embedding alone reaches no false-hit rate <= 1 % at any threshold (a
swapped year or an antonym sits at cosine 0.99). Another embedder needs its own sweep; the
figures are in docs/benchmarks.md ("Issue 14: the semantic cache's matcher").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.caching.guards import ALL_GUARDS, Guard, conflict
from ragkeel.embeddings.base import Matrix, Vector, l2_normalise
from ragkeel.errors import ConfigError

Scores = npt.NDArray[np.float32]  # shape (n,): one cosine similarity per candidate

DEFAULT_SIMILARITY_THRESHOLD: Final = 0.89
"""Cosine similarity a cached question needs (all-MiniLM-L6-v2; see the module docstring)."""
DEFAULT_MAX_CHECKS: Final = 8
"""Candidates above the threshold the guards look at before the matcher gives up (a miss)."""


class QuestionLike(Protocol):
    """Whatever a caller keeps per question (``CachedQuestion``, what ``semantic_index.py``
    stores): the key of its answer, its text, its embedding."""

    @property
    def key(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def vector(self) -> Vector: ...


@dataclass(frozen=True)
class CachedQuestion:
    """One cached question: the cache's own key for its entry, its text and its embedding."""

    key: str
    text: str
    vector: Vector


class Candidates:
    """Cached questions stacked for matching; build once per cache revision, match many times."""

    __slots__ = ("keys", "matrix", "texts")

    def __init__(self, keys: Sequence[str], texts: Sequence[str], matrix: Matrix) -> None:
        rows = np.asarray(matrix, dtype=np.float32)
        if rows.ndim != 2 or not len(keys) == len(texts) == rows.shape[0]:
            raise ValueError("keys, texts and matrix rows must have the same length")
        self.keys = tuple(keys)
        self.texts = tuple(texts)
        self.matrix = l2_normalise(rows)

    @classmethod
    def of(cls, questions: Sequence[QuestionLike]) -> Candidates:
        if not questions:
            return cls((), (), np.zeros((0, 0), dtype=np.float32))
        matrix = np.stack([np.asarray(q.vector, dtype=np.float32) for q in questions])
        return cls([q.key for q in questions], [q.text for q in questions], matrix)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[1])


@dataclass(frozen=True)
class SemanticMatch:
    key: str
    text: str
    similarity: float


@dataclass(frozen=True)
class MatchOutcome:
    """What the matcher decided: the match (or None), the best similarity it saw, and the guard
    that rejected each candidate above the threshold, most similar first."""

    match: SemanticMatch | None
    nearest: float | None
    rejected_by: tuple[Guard, ...] = ()

    @property
    def hit(self) -> bool:
        return self.match is not None

    def attributes(self) -> dict[str, str | float | bool]:
        """Flat values for a trace or a log line."""
        out: dict[str, str | float | bool] = {"hit": self.hit}
        if self.nearest is not None:
            out["nearest"] = round(self.nearest, 4)
        if self.match is not None:
            out["similarity"] = round(self.match.similarity, 4)
        if self.rejected_by:
            out["rejected_by"] = ",".join(g.value for g in self.rejected_by)
        return out


MISS: Final = MatchOutcome(None, None)


class SemanticMatcher:
    """``match(question, vector, candidates)``: pure and thread-safe (no state but settings)."""

    def __init__(
        self,
        threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
        *,
        guards: Collection[Guard] = ALL_GUARDS,
        max_checks: int = DEFAULT_MAX_CHECKS,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(
                f"semantic cache threshold {threshold} is not a cosine similarity in (0, 1]",
                hint=f"the default is {DEFAULT_SIMILARITY_THRESHOLD}",
            )
        if max_checks < 1:
            raise ConfigError(f"semantic cache max_checks {max_checks} must be at least 1")
        self.threshold = threshold
        self.guards = frozenset(guards)
        self.max_checks = max_checks

    def similarities(self, vector: Vector, candidates: Candidates) -> Scores:
        """Cosine similarity of ``vector`` to every candidate (empty on a dimension mismatch)."""
        query = np.asarray(vector, dtype=np.float32).ravel()
        if len(candidates) == 0 or query.shape[0] != candidates.dimension:
            return np.zeros(0, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return np.zeros(0, dtype=np.float32)
        # einsum, not ``@``: a threaded BLAS matrix-vector product waits for its threads on a
        # busy machine (p95 30 ms over 3,000 rows with the cores shared); this stays ~0.2 ms
        sims: Scores = np.einsum("ij,j->i", candidates.matrix, query / norm)
        return sims

    def match(
        self,
        question: str,
        vector: Vector,
        candidates: Candidates | Sequence[QuestionLike],
    ) -> MatchOutcome:
        """The best cached question for ``question`` above the threshold that the guards accept."""
        stacked = candidates if isinstance(candidates, Candidates) else Candidates.of(candidates)
        sims = self.similarities(vector, stacked)
        if sims.shape[0] == 0:
            return MISS
        above = np.flatnonzero(sims >= self.threshold)
        nearest = float(sims.max())
        if above.shape[0] == 0:
            return MatchOutcome(None, nearest)
        if above.shape[0] > self.max_checks:
            above = above[np.argpartition(-sims[above], self.max_checks - 1)[: self.max_checks]]
        order = above[np.argsort(-sims[above], kind="stable")]
        rejected: list[Guard] = []
        for i in order:
            guard = conflict(question, stacked.texts[i], self.guards)
            if guard is None:
                found = SemanticMatch(stacked.keys[i], stacked.texts[i], float(sims[i]))
                return MatchOutcome(found, nearest, tuple(rejected))
            rejected.append(guard)
        return MatchOutcome(None, nearest, tuple(rejected))
