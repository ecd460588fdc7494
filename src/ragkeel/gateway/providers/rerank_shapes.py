"""The ``/rerank`` HTTP shapes a ``RemoteReranker`` speaks (``retrieval.rerank.shape``): how a
``RerankRequest`` becomes a request body, and how a response body becomes a ranking. Pure
functions; the client that sends them is ``rerank_http.py``.

``cohere`` — Cohere's ``POST /v1/rerank`` and ``/v2/rerank`` (and the many servers that copy
it: LiteLLM, Infinity, vLLM's ``/rerank``)::

    {"model", "query", "documents": [str], "top_n"?}  ->  {"results": [{"index", "relevance_score"}]}

``jina`` — Jina's ``POST /v1/rerank``: the same, plus ``"return_documents": false`` (Jina echoes
every document's text back unless told not to).

``tei`` — Hugging Face text-embeddings-inference's ``POST /rerank``: no model (one per server)
and no ``top_n`` (every text is scored; the ranking is cut here)::

    {"query", "texts": [str], "raw_scores": false, "truncate": true}  ->  [{"index", "score"}]

``truncate`` lets TEI cut a passage longer than the model's window instead of refusing the
request (Cohere and Jina truncate by themselves).

Reading a response (``ranking``): the entries are checked — an ``index`` that is an integer
within the documents sent and not repeated, a score that is a finite number — then ordered by
score (ties by index: the server's own order is not trusted) and cut to ``request.expected``.
Fewer entries than that, or anything else unexpected, is a ``RerankResponseError``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, get_args

from ragkeel.errors import RerankResponseError
from ragkeel.gateway.rerank import Ranked, RerankRequest, best_first

Shape = Literal["cohere", "jina", "tei"]
SHAPES: tuple[Shape, ...] = get_args(Shape)
_SCORE: dict[Shape, str] = {"cohere": "relevance_score", "jina": "relevance_score", "tei": "score"}


def request_body(shape: Shape, model: str, request: RerankRequest) -> dict[str, Any]:
    """The JSON body of ``request`` in ``shape``."""
    documents = list(request.documents)
    if shape == "tei":
        return {"query": request.query, "texts": documents, "raw_scores": False, "truncate": True}
    body: dict[str, Any] = {"model": model, "query": request.query, "documents": documents}
    if request.top_n is not None:
        body["top_n"] = request.top_n
    if shape == "jina":
        body["return_documents"] = False
    return body


def parse_body(text: str, *, where: str, model: str) -> Any:
    """``text`` as JSON (``NaN``/``Infinity`` tokens are read, and refused by ``ranking``)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RerankResponseError(f"{where} returned invalid JSON", model=model) from exc


def ranking(
    shape: Shape, body: Any, request: RerankRequest, *, where: str, model: str
) -> tuple[Ranked, ...]:
    """The ranking in ``body`` (a parsed response in ``shape``) of ``request``'s documents."""

    def bad(what: str) -> RerankResponseError:
        return RerankResponseError(f"{where} returned {what} ({shape} shape)", model=model)

    items = body if shape == "tei" else body.get("results") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise bad("no list of results" if shape == "tei" else "no 'results' list")
    n, key = len(request.documents), _SCORE[shape]
    scores: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict):
            raise bad(f"a result that is not an object: {str(item)[:40]}")
        index, score = _index(item.get("index"), n), _score(item.get(key))
        if index is None:
            raise bad(f"index {item.get('index')!r}, not one of the {n} documents sent")
        if index in scores:
            raise bad(f"index {index} twice")
        if score is None:
            raise bad(f"{key} {item.get(key)!r} for index {index}, not a finite number")
        scores[index] = score
    if len(scores) < request.expected:
        raise bad(f"{len(scores)} results for {n} documents (top_n {request.top_n})")
    return best_first(list(scores.items()), request.expected)


def _index(value: object, n: int) -> int | None:
    """``value`` as an index into ``n`` documents (an integer, not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    return None


def _score(value: object) -> float | None:
    """``value`` as a finite score (an int or float, not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
