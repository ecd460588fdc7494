"""A client that disconnects mid-answer cancels generation: the model stream is closed (the
scripted model counts it) and the answer thread ends."""

from __future__ import annotations

import threading

import httpx

from .conftest import ON_TOPIC, MakeApp, serve, wait_for

LONG = " ".join(["Rotate every API key every ninety days [1]."] * 40)  # ~400 pieces


def _answer_threads() -> int:
    return sum(t.name == "ragkeel-answer" for t in threading.enumerate())


def test_client_disconnect_cancels_generation(make_app: MakeApp) -> None:
    api = make_app([LONG], token_delay_s=0.02)  # ~8 s if it ran to the end
    with serve(api.app) as base, httpx.Client(base_url=base, timeout=10) as http:
        body = {"question": ON_TOPIC, "stream": True}
        with http.stream("POST", "/v1/query", json=body) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            seen = 0
            for line in lines:
                seen += line == "event: token"
                if seen == 3:
                    break
        # leaving the block closed the connection after three tokens
        assert wait_for(lambda: api.model.cancelled == 1), "generation was not cancelled"
        assert wait_for(lambda: _answer_threads() == 0), "the answer thread is still running"
        assert api.model.calls == 1


def test_disconnect_of_a_non_streaming_request_cancels_too(make_app: MakeApp) -> None:
    api = make_app([LONG], token_delay_s=0.02)
    with serve(api.app) as base, httpx.Client(base_url=base, timeout=0.5) as http:
        try:
            http.post("/v1/query", json={"question": ON_TOPIC})
        except httpx.ReadTimeout:
            pass  # the client gave up and closed the connection
        else:  # pragma: no cover
            raise AssertionError("the answer should take longer than the client waits")
        assert wait_for(lambda: api.model.cancelled == 1), "generation was not cancelled"
        assert wait_for(lambda: _answer_threads() == 0)
