"""``RemoteReranker`` against ``FaultServer``'s ``/rerank`` on 127.0.0.1: the reranker contract
in each shape (Cohere v1 and v2 paths, Jina, TEI), the request bodies each shape sends, and
every way a server can fail — HTTP statuses and malformed 200 bodies — as typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragkeel.errors import (
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    RerankResponseError,
)
from ragkeel.gateway.providers.rerank_http import RemoteReranker
from ragkeel.gateway.providers.rerank_shapes import SHAPES, Shape
from ragkeel.gateway.rerank import Reranker, RerankRequest
from ragkeel.testing import FaultServer
from ragkeel.testing.contracts.reranker import DOCUMENTS, QUERY, RerankerContract
from ragkeel.testing.faults import RERANK_FAULTS, RerankFault

KEY = "rk-test-secret-0123456789"
PATHS: dict[str, str] = {"cohere": "/v2/rerank", "jina": "/v1/rerank", "tei": "/rerank"}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


def client(
    server: FaultServer, shape: Shape, path: str | None = None, **kw: object
) -> RemoteReranker:
    url = f"http://127.0.0.1:{server.port}{path or PATHS[shape]}"
    model = "" if shape == "tei" else f"{shape}-rerank-model"
    return RemoteReranker(url, shape=shape, model=model, **kw)  # type: ignore[arg-type]


class _OverFaultServer(RerankerContract):
    shape: Shape
    path: str | None = None

    @pytest.fixture
    def reranker(self, server: FaultServer) -> Iterator[Reranker]:
        with client(server, self.shape, self.path, api_key=KEY, timeout_s=2.0) as reranker:
            yield reranker

    @pytest.fixture
    def failing_reranker(self, server: FaultServer) -> Iterator[Reranker]:
        server.set(rerank_fault="index_twice")
        with client(server, self.shape, self.path) as reranker:
            yield reranker


class TestCohereV2Reranker(_OverFaultServer):
    shape = "cohere"


class TestCohereV1Reranker(_OverFaultServer):
    shape = "cohere"
    path = "/v1/rerank"


class TestJinaReranker(_OverFaultServer):
    shape = "jina"


class TestTeiReranker(_OverFaultServer):
    shape = "tei"


# -- what each shape sends ----------------------------------------------------------------------


def test_cohere_and_jina_bodies(server: FaultServer) -> None:
    for shape in ("cohere", "jina"):
        with client(server, shape, api_key=KEY) as reranker:
            reranker.rerank(RerankRequest(QUERY, DOCUMENTS[:3], top_n=2))
    (v2_path, cohere), (v1_path, jina) = server.rerank_requests
    assert (v2_path, v1_path) == ("/v2/rerank", "/v1/rerank")
    assert cohere == {
        "model": "cohere-rerank-model",
        "query": QUERY,
        "documents": list(DOCUMENTS[:3]),
        "top_n": 2,
    }
    assert jina == {**cohere, "model": "jina-rerank-model", "return_documents": False}


def test_tei_body_has_texts_and_no_model(server: FaultServer) -> None:
    with client(server, "tei") as reranker:
        ranking = reranker.rerank(RerankRequest(QUERY, DOCUMENTS[:3], top_n=2)).ranking
    [(path, body)] = server.rerank_requests
    assert path == "/rerank"
    assert body == {
        "query": QUERY,
        "texts": list(DOCUMENTS[:3]),
        "raw_scores": False,
        "truncate": True,
    }
    assert len(ranking) == 2  # TEI scores every text; the ranking is cut here


def test_no_documents_makes_no_call(server: FaultServer) -> None:
    with client(server, "cohere") as reranker:
        assert reranker.rerank(RerankRequest(QUERY, ())).ranking == ()
    assert server.stats.requests == 0


def test_the_key_is_sent_and_never_shown(server: FaultServer) -> None:
    server.set(error_rate=1.0, error="401")
    with (
        client(server, "cohere", api_key=KEY) as reranker,
        pytest.raises(ModelRequestError) as info,
    ):
        reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert info.value.status == 401
    assert KEY not in str(info.value)
    assert "retrieval.rerank.api_key" in str(info.value)


# -- failures: typed, with stable codes -----------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fault", RERANK_FAULTS)
def test_a_malformed_body_is_a_rerank_response_error(
    server: FaultServer, shape: Shape, fault: RerankFault
) -> None:
    server.set(rerank_fault=fault)
    with client(server, shape) as reranker, pytest.raises(RerankResponseError) as info:
        reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
    error = info.value
    assert error.code == "RERANK_RESPONSE_INVALID"
    assert (error.retryable, error.counts_as_failure) == (False, True)
    assert error.model == reranker.name


@pytest.mark.parametrize(
    "kind,error",
    [
        ("503", ModelUnavailableError),
        ("500", ModelUnavailableError),
        ("429", ModelRateLimitedError),
        ("400", ModelRequestError),
        ("reset", ModelUnavailableError),
    ],
)
def test_http_failures_map_like_a_chat_provider(
    server: FaultServer, kind: str, error: type[Exception]
) -> None:
    server.set(error_rate=1.0, error=kind, retry_after_s=3)  # type: ignore[arg-type]
    with client(server, "tei") as reranker, pytest.raises(error) as info:
        reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
    if kind in ("503", "429"):
        assert info.value.retry_after_s == 3  # type: ignore[attr-defined]


def test_a_hung_server_times_out(server: FaultServer) -> None:
    server.set(error_rate=1.0, error="hang")
    with client(server, "jina", timeout_s=0.2) as reranker, pytest.raises(ModelTimeoutError):
        reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert server.wait_idle()


def test_a_wrong_path_is_a_rejected_request(server: FaultServer) -> None:
    reranker = client(server, "cohere", path="/v2/nothing-here")
    with reranker, pytest.raises(ModelRequestError) as info:
        reranker.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert info.value.status == 404
    assert "whole endpoint" in str(info.value)
