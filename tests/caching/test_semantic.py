"""The semantic cache's matcher (issue 14): threshold, guards, candidate order, bounds; and on
the installed embedder, a rephrasing served and the classic false hits refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ragkeel.caching.guards import Guard
from ragkeel.caching.semantic import (
    DEFAULT_SIMILARITY_THRESHOLD,
    CachedQuestion,
    Candidates,
    SemanticMatcher,
)
from ragkeel.embeddings.onnx import OnnxEmbedder
from ragkeel.errors import ConfigError

DIM = 8


def at_cosine(cosine: float, axis: int = 1) -> np.ndarray:
    """A unit vector at ``cosine`` to ``e0`` (the question's vector in these tests)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[0] = cosine
    v[axis] = math.sqrt(max(0.0, 1 - cosine**2))
    return v


QUESTION = "Who won Super Bowl 50?"
E0 = at_cosine(1.0)


def cached(key: str, text: str, cosine: float) -> CachedQuestion:
    return CachedQuestion(key, text, at_cosine(cosine))


def test_best_candidate_above_the_threshold_is_the_match() -> None:
    candidates = [
        cached("a", "who won super bowl 50", 0.93),
        cached("b", "Who won Super Bowl 50, please?", 0.97),
        cached("c", "Who sang at Super Bowl 50?", 0.50),
    ]
    outcome = SemanticMatcher(0.9).match(QUESTION, E0, candidates)
    assert outcome.match is not None
    assert (outcome.match.key, outcome.match.text) == ("b", "Who won Super Bowl 50, please?")
    assert outcome.match.similarity == pytest.approx(0.97, abs=1e-5)
    assert outcome.hit and outcome.rejected_by == ()


def test_below_the_threshold_is_a_miss_that_reports_the_nearest() -> None:
    outcome = SemanticMatcher(0.9).match(QUESTION, E0, [cached("a", QUESTION, 0.89)])
    assert outcome.match is None
    assert outcome.nearest == pytest.approx(0.89, abs=1e-5)


def test_a_guard_rejects_the_nearest_and_the_next_candidate_is_served() -> None:
    candidates = [
        cached("swapped", "Who won Super Bowl 51?", 0.99),
        cached("negated", "Who did not win Super Bowl 50?", 0.98),
        cached("same", "who won super bowl 50", 0.95),
    ]
    outcome = SemanticMatcher(0.9).match(QUESTION, E0, candidates)
    assert outcome.match is not None and outcome.match.key == "same"
    assert outcome.rejected_by == (Guard.NUMBER, Guard.NEGATION)
    assert outcome.attributes() == {
        "hit": True,
        "nearest": 0.99,
        "similarity": 0.95,
        "rejected_by": "number,negation",
    }


def test_every_candidate_rejected_is_a_miss() -> None:
    candidates = [cached("x", "Who won Super Bowl 51?", 0.99)]
    outcome = SemanticMatcher(0.9).match(QUESTION, E0, candidates)
    assert outcome.match is None and outcome.rejected_by == (Guard.NUMBER,)
    assert outcome.attributes() == {"hit": False, "nearest": 0.99, "rejected_by": "number"}


def test_without_guards_the_classic_false_hit_is_served() -> None:
    """What the guards are for: at cosine 0.99 the embedding alone would serve it."""
    candidates = [cached("x", "Who won Super Bowl 51?", 0.99)]
    outcome = SemanticMatcher(0.9, guards=()).match(QUESTION, E0, candidates)
    assert outcome.match is not None and outcome.match.key == "x"


def test_only_max_checks_candidates_are_tried() -> None:
    rejected = [
        cached(f"r{i}", f"Who won Super Bowl {51 + i}?", 0.99 - i * 0.001) for i in range(5)
    ]
    candidates = [*rejected, cached("same", QUESTION, 0.95)]
    assert SemanticMatcher(0.9, max_checks=6).match(QUESTION, E0, candidates).hit
    outcome = SemanticMatcher(0.9, max_checks=5).match(QUESTION, E0, candidates)
    assert outcome.match is None and len(outcome.rejected_by) == 5


def test_candidates_are_normalised_once_and_reused() -> None:
    rows = np.stack([at_cosine(0.95) * 7.0, at_cosine(0.2) * 0.01])  # not unit length
    candidates = Candidates(["a", "b"], [QUESTION, "Who sang?"], rows)
    assert np.allclose(np.linalg.norm(candidates.matrix, axis=1), 1.0)
    matcher = SemanticMatcher(0.9)
    for _ in range(3):
        outcome = matcher.match(QUESTION, E0 * 3.0, candidates)
        assert outcome.match is not None and outcome.match.key == "a"
        assert outcome.match.similarity == pytest.approx(0.95, abs=1e-5)


def test_nothing_to_match_is_a_miss() -> None:
    matcher = SemanticMatcher()
    assert matcher.match(QUESTION, E0, []).match is None
    assert matcher.match(QUESTION, E0, Candidates.of([])).nearest is None
    other_dimension = [CachedQuestion("a", QUESTION, np.ones(DIM + 1, dtype=np.float32))]
    assert matcher.match(QUESTION, E0, other_dimension).match is None  # another embedder
    assert (
        matcher.match(
            QUESTION, np.zeros(DIM, dtype=np.float32), [cached("a", QUESTION, 1.0)]
        ).nearest
        is None
    )


def test_mismatched_candidate_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        Candidates(["a", "b"], ["only one"], np.ones((2, DIM), dtype=np.float32))


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.01, math.nan])
def test_a_threshold_outside_0_1_is_a_config_error(threshold: float) -> None:
    with pytest.raises(ConfigError, match="threshold") as err:
        SemanticMatcher(threshold)
    assert err.value.code == "CONFIG_INVALID"


def test_max_checks_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_checks"):
        SemanticMatcher(max_checks=0)


def test_default_threshold_is_a_cosine() -> None:
    assert 0.0 < DEFAULT_SIMILARITY_THRESHOLD < 1.0
    assert SemanticMatcher().threshold == DEFAULT_SIMILARITY_THRESHOLD


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    models: Path = tmp_path_factory.mktemp("models")
    return OnnxEmbedder.from_installed_packages(models, threads=2, batch_size=8)


@pytest.mark.model
def test_on_the_installed_embedder_rephrasing_hits_and_false_hits_miss(
    embedder: OnnxEmbedder,
) -> None:
    cached_texts = [
        "How many points did the Panthers defense surrender in 2015?",
        "What was Apple's cash flow from operating activities in Q3 2022?",
        "Oxidative DNA damage activates STING signalling.",
    ]
    vectors = embedder.embed_documents(cached_texts)
    candidates = Candidates([f"k{i}" for i in range(3)], cached_texts, vectors)
    matcher = SemanticMatcher()

    def served(question: str) -> str | None:
        outcome = matcher.match(question, embedder.embed_query(question), candidates)
        return None if outcome.match is None else outcome.match.key

    assert served("In 2015, how many points did the Panthers defense surrender?") == "k0"
    assert (
        served("can you tell me what apple's cash flow from operating activities was in q3 2022")
        == "k1"
    )
    assert served("Is it true that oxidative DNA damage activates STING signalling?") == "k2"
    assert served("How many points did the Panthers defense surrender in 2016?") is None
    assert served("What was Amazon's cash flow from operating activities in Q3 2022?") is None
    assert served("What was Apple's cash flow from operating activities in Q2 2022?") is None
    assert served("Oxidative DNA damage inhibits STING signalling.") is None
    assert served("Oxidative DNA damage does not activate STING signalling.") is None


def test_the_cache_s_own_candidates_are_matched_as_they_are() -> None:
    """The answer cache keeps ``CachedQuestion`` records (``semantic_index.py``): no
    conversion needed."""
    candidates = [CachedQuestion("k", "who won super bowl 50", at_cosine(0.95))]
    outcome = SemanticMatcher(0.9).match(QUESTION, E0, candidates)
    assert outcome.match is not None and outcome.match.key == "k"
