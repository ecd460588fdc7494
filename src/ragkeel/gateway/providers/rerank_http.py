"""``RemoteReranker``: a ``Reranker`` behind a ``/rerank`` HTTP endpoint (issue 15) — Cohere
(v1 or v2), Jina, Hugging Face TEI, or anything that copies one of them. ``shape`` says which
request and response to speak (``rerank_shapes.py``); ``url`` is the endpoint itself, e.g.
``https://api.cohere.com/v2/rerank``, ``https://api.jina.ai/v1/rerank``,
``http://127.0.0.1:8080/rerank`` (nothing is appended to it).

Sending is ``ProviderHttp``'s and the rest of the client (``name``, ``close``, the context
manager) ``HttpDeployment``'s, as for the chat providers: ``Authorization: Bearer <key>`` when a
key is set (never in a message; redacted if echoed), the W3C ``traceparent`` of the current
span, ``request.timeout_s`` (else ``timeout_s``) as the per-operation timeout, and the same
typed errors — ``ModelTimeoutError``, ``ModelUnavailableError`` (5xx, connection failures),
``ModelRateLimitedError`` (429, with ``Retry-After``), ``ModelRequestError`` (other 4xx) — so
the gateway's retry loop and breaker treat a reranker like any deployment
(``rerank_policies.py``). A 2xx body that is no ranking of the documents sent is a
``RerankResponseError``. No retries here.
"""

from __future__ import annotations

import httpx

from ragkeel.gateway.providers.http_client import HttpDeployment, ProviderHttp, bearer_headers
from ragkeel.gateway.providers.rerank_shapes import Shape, parse_body, ranking, request_body
from ragkeel.gateway.rerank import RerankRequest, RerankResponse


class RemoteReranker(HttpDeployment):
    """``Reranker`` client; one ``httpx.Client`` (connection pool) per instance, thread-safe.
    ``name``: the deployment name errors, traces and the breaker use (default: the model, or
    the shape when the server needs no model name, as TEI)."""

    def __init__(
        self,
        url: str,
        *,
        shape: Shape,
        model: str = "",
        api_key: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        self.shape: Shape = shape
        self.model = model
        http = ProviderHttp(
            url,
            name=name or model or shape,
            provider=shape,
            headers=bearer_headers(api_key),
            secret=api_key,
            timeout_s=timeout_s,
            transport=transport,
            hint_for=_hint_for,
        )
        super().__init__(http)

    def rerank(self, request: RerankRequest) -> RerankResponse:
        if not request.documents:
            return RerankResponse((), self.name)
        timeout = self._http.timeout_for(request)
        text = self._http.post_text(request_body(self.shape, self.model, request), timeout)
        where = self._http.url
        body = parse_body(text, where=where, model=self.name)
        order = ranking(self.shape, body, request, where=where, model=self.name)
        return RerankResponse(order, self.name)


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check retrieval.rerank.api_key"
    if status == 404:
        return (
            "check retrieval.rerank.url: the whole endpoint, e.g. https://api.cohere.com/v2/rerank"
        )
    if status in (400, 422):
        return "check retrieval.rerank.shape and model; a passage may be too long (candidates)"
    return "check the reranker's request limits"
