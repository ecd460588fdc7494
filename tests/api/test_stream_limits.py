"""Concurrent streams per caller (issue 11, unbounded consumption): a caller with
``api_limits.max_streams_per_tenant`` streamed answers open is refused another at once (429
``TOO_MANY_STREAMS`` with ``Retry-After``), over real HTTP; other callers, and the same caller's
answers that do not stream, go on; a stream the client closes frees its place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from ragkeel.admission.gates import Admission, tenant_from_headers
from ragkeel.admission.stream_limits import StreamLimiter

from .conftest import ON_TOPIC, MakeApp, serve, wait_for

LONG = " ".join(["Rotate every API key every ninety days [1]."] * 40)  # ~400 pieces
CAP = 2
REFUSAL_BUDGET_S = 0.5  # generous for a loaded 2-core box; a refusal does no retrieval


def _open_stream(stack: ExitStack, client: httpx.Client, route: str, key: str) -> Iterator[str]:
    body: dict[str, object] = {"stream": True}
    if route == "/v1/query":
        body["question"] = ON_TOPIC
    else:
        body["messages"] = [{"role": "user", "content": ON_TOPIC}]
    response = stack.enter_context(
        client.stream("POST", route, json=body, headers={"Authorization": f"Bearer {key}"})
    )
    assert response.status_code == 200, response.read()
    lines = response.iter_lines()
    assert any(line.startswith("data:") for line in lines)  # the answer is under way
    return lines


@pytest.mark.parametrize("route", ["/v1/query", "/v1/chat/completions"])
def test_streams_per_caller_are_capped(make_app: MakeApp, route: str) -> None:
    api = make_app((LONG,), token_delay_s=0.02)
    streams = StreamLimiter(CAP)
    api.app.state.ragkeel.admission = Admission(streams=streams)
    with (
        serve(api.app) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        ExitStack() as others,
    ):
        held = ExitStack()  # the line iterators too: dropping one closes its response
        reading = [_open_stream(held, client, route, "key-a") for _ in range(CAP)]
        assert streams.open_streams(tenant_from_headers("Bearer key-a")) == CAP, reading
        body = (
            {"question": ON_TOPIC, "stream": True}
            if route == "/v1/query"
            else {"messages": [{"role": "user", "content": ON_TOPIC}], "stream": True}
        )
        a = {"Authorization": "Bearer key-a"}
        started = time.perf_counter()
        refused = client.post(route, json=body, headers=a)
        elapsed = time.perf_counter() - started
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "TOO_MANY_STREAMS"
        assert int(refused.headers["retry-after"]) >= 1
        assert elapsed < REFUSAL_BUDGET_S, elapsed
        assert "key-a" not in refused.text  # the key is never echoed
        # another caller streams; the same caller may still ask without streaming
        other = _open_stream(others, client, route, "key-b")
        plain = {**body, "stream": False, "mode": "extractive"}  # quick: no generation
        assert client.post(route, json=plain, headers=a).status_code == 200
        held.close()  # the client closes its streams: their places are freed
        del reading
        key_a = tenant_from_headers("Bearer key-a")
        assert wait_for(lambda: streams.open_streams(key_a) == 0, timeout_s=10)
        assert streams.open_streams(tenant_from_headers("Bearer key-b")) == 1, other
        again = _open_stream(others, client, route, "key-a")
        del again
    assert wait_for(lambda: not streams._open, timeout_s=10)
