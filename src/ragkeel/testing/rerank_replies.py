"""What ``FaultServer`` answers on ``POST .../rerank`` (issue 15): a deterministic stand-in for
a cross-encoder in each of the three shapes ``RemoteReranker`` speaks, or the malformed body a
test asks for (``FaultSettings.rerank_fault``).

The score of a passage is the share of the query's distinct words it contains (lower-cased
``\\w+`` runs), so a test can predict the order: no model, microseconds per request — on
loopback, what a client measures is its own overhead.

Shapes, told apart by the request: a body with ``texts`` is TEI's (the answer is a list of
``{"index", "score"}``, every text, best first); otherwise Cohere's or Jina's (``{"results":
[{"index", "relevance_score"}]}``, best first, cut to ``top_n``), with Cohere v2's ``id`` and
``meta`` when the path has ``/v2/``, else Jina's ``model`` and ``usage``. A body without a
string ``query`` or with documents that are not strings is refused with 422, as the real
servers do.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ragkeel.testing.faults import RerankFault

_WORD = re.compile(r"\w+")


def overlap_scores(query: str, documents: list[str]) -> list[float]:
    """Each document's share of the query's distinct words (0.0 when the query has none)."""
    wanted = set(_WORD.findall(query.lower()))
    if not wanted:
        return [0.0] * len(documents)
    return [len(wanted & set(_WORD.findall(d.lower()))) / len(wanted) for d in documents]


def rerank_reply(path: str, payload: dict[str, Any], fault: RerankFault | None) -> tuple[int, str]:
    """``(status, body)`` for one rerank request."""
    tei = "texts" in payload
    query, documents = payload.get("query"), payload.get("texts" if tei else "documents")
    if not isinstance(query, str) or not isinstance(documents, list):
        return 422, json.dumps({"error": "query (string) and documents/texts (list) required"})
    if not all(isinstance(d, str) for d in documents):
        return 422, json.dumps({"error": "documents must be strings"})
    if fault == "not_json":
        return 200, "<html>upstream returned a page</html>"
    if fault == "no_results":
        return 200, json.dumps({"data": []})
    scores = overlap_scores(query, documents)
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    top_n = payload.get("top_n")
    if not tei and isinstance(top_n, int) and top_n > 0:
        order = order[:top_n]
    key = "score" if tei else "relevance_score"
    results = [{"index": i, key: scores[i]} for i in order]
    if fault is not None:
        results = _broken(results, fault, key, len(documents))
    if tei:
        return 200, json.dumps(results)
    if "/v2/" in path:
        meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
        return 200, json.dumps({"id": "rerank-fault", "results": results, "meta": meta})
    words = sum(len(_WORD.findall(d)) for d in documents) + len(_WORD.findall(query))
    body = {"model": "fault-reranker", "usage": {"total_tokens": words}, "results": results}
    return 200, json.dumps(body)


def _broken(
    results: list[dict[str, Any]], fault: RerankFault, key: str, n: int
) -> list[dict[str, Any]]:
    """``results`` spoiled as ``fault`` says (there is at least one result to spoil)."""
    if not results:
        return results
    first, rest = dict(results[0]), results[1:]
    if fault == "index_out_of_range":
        first["index"] = n
    elif fault == "index_twice" and rest:
        rest = [{**rest[0], "index": first["index"]}, *rest[1:]]
    elif fault == "nan_score":
        first[key] = float("nan")  # json.dumps writes the bare NaN token
    elif fault == "too_few":
        return results[:-1]
    return [first, *rest]
