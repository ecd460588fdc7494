"""The reranker contract: what every ``Reranker`` (``gateway/rerank.py``, issue 15) must do —
the remote client in each HTTP shape, and the client behind the gateway's policies.

* Without ``top_n`` the ranking is a permutation of the documents' indices; with ``top_n`` it
  is ``min(top_n, len(documents))`` distinct indices, the best of the full ranking in its order.
* Scores are finite floats, best first (non-increasing); the same request ranks the same way.
* A passage that answers the query ranks above passages about something else.
* No documents: an empty ranking. A blank query or ``top_n < 1`` is refused when the request is
  built (``QueryError``, ``QUERY_INVALID``).
* ``name`` and the response's ``model`` are non-empty strings.
* A backend that cannot answer raises a ``ChatModelError`` subclass with its stable code (the
  ``failing_reranker`` fixture: a backend whose server is down or answers garbage; the test is
  skipped where the backend cannot be made to fail).

A backend subclasses ``RerankerContract`` as ``Test...`` and overrides the fixtures (closing
what it opened after the ``yield``)::

    class TestTeiReranker(RerankerContract):
        @pytest.fixture
        def reranker(self, server: FaultServer) -> Iterator[Reranker]:
            with RemoteReranker(server.origin + "/rerank", shape="tei") as client:
                yield client

Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import math

import pytest

from ragkeel.errors import ChatModelError, QueryError
from ragkeel.gateway.rerank import Reranker, RerankRequest

QUERY = "how often should an api key be rotated"
DOCUMENTS = (
    "The weather in Paris is mild in spring.",
    "Rotate an API key every 90 days; a key should be rotated at once when leaked.",
    "Bread rises because yeast ferments sugar.",
    "An API gateway routes requests to services.",
    "Tides follow the moon.",
)
ANSWER = 1  # the passage that answers QUERY


class RerankerContract:
    @pytest.fixture
    def reranker(self) -> Reranker:
        raise NotImplementedError("override the reranker fixture: build the backend under test")

    @pytest.fixture
    def failing_reranker(self) -> Reranker:
        pytest.skip("this backend cannot be made to fail here")

    def test_the_ranking_is_a_permutation(self, reranker: Reranker) -> None:
        ranking = reranker.rerank(RerankRequest(QUERY, DOCUMENTS)).ranking
        assert sorted(r.index for r in ranking) == list(range(len(DOCUMENTS)))

    def test_scores_are_finite_and_best_first(self, reranker: Reranker) -> None:
        scores = [r.score for r in reranker.rerank(RerankRequest(QUERY, DOCUMENTS)).ranking]
        assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
        assert scores == sorted(scores, reverse=True)

    def test_the_answering_passage_comes_first(self, reranker: Reranker) -> None:
        assert reranker.rerank(RerankRequest(QUERY, DOCUMENTS)).ranking[0].index == ANSWER

    @pytest.mark.parametrize("top_n", [1, 3, len(DOCUMENTS), len(DOCUMENTS) + 4])
    def test_top_n_keeps_the_best(self, reranker: Reranker, top_n: int) -> None:
        full = reranker.rerank(RerankRequest(QUERY, DOCUMENTS)).ranking
        cut = reranker.rerank(RerankRequest(QUERY, DOCUMENTS, top_n=top_n)).ranking
        assert len(cut) == min(top_n, len(DOCUMENTS))
        assert [r.index for r in cut] == [r.index for r in full[: len(cut)]]

    def test_deterministic(self, reranker: Reranker) -> None:
        request = RerankRequest(QUERY, DOCUMENTS)
        assert reranker.rerank(request).ranking == reranker.rerank(request).ranking

    def test_no_documents_no_ranking(self, reranker: Reranker) -> None:
        assert reranker.rerank(RerankRequest(QUERY, ())).ranking == ()

    def test_one_document(self, reranker: Reranker) -> None:
        ranking = reranker.rerank(RerankRequest(QUERY, DOCUMENTS[:1])).ranking
        assert [r.index for r in ranking] == [0]

    def test_identity(self, reranker: Reranker) -> None:
        assert isinstance(reranker.name, str) and reranker.name
        model = reranker.rerank(RerankRequest(QUERY, DOCUMENTS[:2])).model
        assert isinstance(model, str) and model

    @pytest.mark.parametrize("query,top_n", [("   ", None), (QUERY, 0)])
    def test_bad_requests_are_refused(self, query: str, top_n: int | None) -> None:
        with pytest.raises(QueryError) as info:
            RerankRequest(query, DOCUMENTS, top_n=top_n)
        assert info.value.code == "QUERY_INVALID"

    def test_a_failure_is_typed(self, failing_reranker: Reranker) -> None:
        with pytest.raises(ChatModelError) as info:
            failing_reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
        assert info.value.code not in ("", "RAGKEEL_ERROR")
