"""RemoteEmbedder against a real HTTP server on 127.0.0.1 (see conftest.FakeEmbeddingServer);
the retry waits on a ``ManualClock`` where a test checks them (the schedule is the gateway's,
``ragkeel.http_retry``)."""

from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
from pydantic import SecretStr

from ragkeel.clock import ManualClock
from ragkeel.embeddings.remote import RemoteEmbedder
from ragkeel.errors import EmbeddingError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.retry import RetryingChatModel, RetryPolicy
from ragkeel.http_retry import Backoff
from ragkeel.settings import RemoteEmbeddingSettings

from .conftest import FakeEmbeddingServer, Reply

KEY = "sk-test-0123456789abcdef"


def client(server: FakeEmbeddingServer, **kwargs: object) -> RemoteEmbedder:
    options: dict[str, object] = {
        "api_key": KEY,
        "dimension": server.dimension,
        "timeout_s": 1.0,
        "max_retries": 3,
        "batch_size": 2,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
    }
    options.update(kwargs)
    return RemoteEmbedder(server.base_url, "fake-embed", **options)  # type: ignore[arg-type]


def test_embeds_in_batches_and_restores_order_by_index(fake_server: FakeEmbeddingServer) -> None:
    texts = ["alpha key", "beta rotation", "gamma", "delta weather", "epsilon"]
    with client(fake_server) as embedder:
        vectors = embedder.embed_documents(texts)
    expected = fake_server.embedder.embed_documents(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert vectors.dtype == np.float32
    assert fake_server.count == 3  # batches of 2, 2, 1
    seen = fake_server.requests[0]
    assert seen.path == "/v1/embeddings"
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.payload == {"model": "fake-embed", "input": ["alpha key", "beta rotation"]}
    assert (embedder.calls, embedder.texts_embedded) == (1, 5)


def test_no_authorization_header_without_key(fake_server: FakeEmbeddingServer) -> None:
    with client(fake_server, api_key=None) as embedder:
        embedder.embed_query("hello")
    assert fake_server.requests[0].authorization is None


def test_retries_5xx_then_succeeds(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(status=500), Reply(status=503))
    with client(fake_server) as embedder:
        vector = embedder.embed_query("retry me")
    assert fake_server.count == 3
    np.testing.assert_allclose(vector, fake_server.embedder.embed_query("retry me"), atol=1e-6)


def test_gives_up_after_max_retries(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(*[Reply(status=502)] * 5)
    with client(fake_server, max_retries=2) as embedder, pytest.raises(EmbeddingError) as info:
        embedder.embed_query("down")
    assert fake_server.count == 3
    assert "3 attempt(s)" in str(info.value)
    assert "HTTP 502" in str(info.value)
    assert info.value.code == "EMBEDDING_FAILED"


def test_429_honours_retry_after_instead_of_backoff(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(status=429, headers={"Retry-After": "0"}))
    started = time.monotonic()
    with client(fake_server, backoff_s=30.0, max_backoff_s=30.0) as embedder:
        embedder.embed_query("busy")
    assert time.monotonic() - started < 1.0
    assert fake_server.count == 2


def test_retry_after_is_capped(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(status=429, headers={"Retry-After": "120"}))
    started = time.monotonic()
    with client(fake_server, max_retry_after_s=0.05) as embedder:
        embedder.embed_query("busy")
    assert time.monotonic() - started < 1.0
    assert fake_server.count == 2


def test_retry_after_is_slept_exactly_on_the_injected_clock(
    fake_server: FakeEmbeddingServer,
) -> None:
    fake_server.then(
        Reply(status=429, headers={"Retry-After": "2.5"}),
        Reply(status=503, headers={"Retry-After": "0.75"}),
        Reply(status=502),  # no Retry-After: the jittered backoff, within its bounds
    )
    clock = ManualClock()
    with client(fake_server, clock=clock, backoff_s=4.0, max_backoff_s=100.0) as embedder:
        embedder.embed_query("busy")
    assert fake_server.count == 4
    assert clock.sleeps[:2] == [2.5, 0.75]
    assert 0.0 <= clock.sleeps[2] <= Backoff(4.0, 100.0).bounds(3)[1] == 16.0


def test_a_long_retry_after_is_waited_up_to_the_cap(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(status=429, headers={"Retry-After": "120"}))
    clock = ManualClock()
    with client(fake_server, clock=clock, max_retry_after_s=30.0) as embedder:
        embedder.embed_query("busy")
    assert (fake_server.count, clock.sleeps) == (2, [30.0])


def test_backoff_is_the_shared_full_jitter_draw_for_draw(
    fake_server: FakeEmbeddingServer,
) -> None:
    for seed in range(3):
        fake_server.then(*[Reply(status=500)] * 3)
        clock = ManualClock()
        with client(
            fake_server, clock=clock, rng=random.Random(seed), backoff_s=0.5, max_backoff_s=1.5
        ) as embedder:
            embedder.embed_query("flaky")
        shared = Backoff(0.5, 1.5, random.Random(seed))
        assert clock.sleeps == [shared.delay(n) for n in (1, 2, 3)]
        # the gateway's retry loop, on the same schedule and seed, waits exactly as long
        gateway_clock = ManualClock()
        failing = ScriptedChatModel([ScriptedFailure("unavailable")] * 3 + ["ok"])
        gateway = RetryingChatModel(
            failing,
            RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=1.5),
            clock=gateway_clock,
            rng=random.Random(seed),
        )
        assert gateway.complete(ChatRequest((ChatMessage("user", "hi"),))).text == "ok"
        assert gateway_clock.sleeps == clock.sleeps
    assert fake_server.count == 3 * 4


def test_full_jitter_spreads_over_the_whole_interval(fake_server: FakeEmbeddingServer) -> None:
    sleeps: list[float] = []
    for seed in range(40):
        fake_server.then(Reply(status=503))
        clock = ManualClock()
        with client(
            fake_server, clock=clock, rng=random.Random(seed), backoff_s=1.0, max_backoff_s=1.0
        ) as embedder:
            embedder.embed_query("flaky")
        sleeps.extend(clock.sleeps)
    assert len(sleeps) == 40 and all(0.0 <= s <= 1.0 for s in sleeps)
    assert min(sleeps) < 0.25 and max(sleeps) > 0.75  # not "half + jitter"


def test_401_fails_at_once_without_leaking_the_key(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(status=401, echo_auth=True))
    with client(fake_server) as embedder, pytest.raises(EmbeddingError) as info:
        embedder.embed_query("secret")
    assert fake_server.count == 1
    message = str(info.value)
    assert "HTTP 401" in message
    assert "bad key in header" in message  # body excerpt is shown...
    assert KEY not in message  # ...with the key redacted
    assert "api_key" in (info.value.hint or "")


def test_malformed_json_is_an_error(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(body=b"{not json"))
    with client(fake_server) as embedder, pytest.raises(EmbeddingError, match="invalid JSON"):
        embedder.embed_query("x")
    assert fake_server.count == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": "nope"}',
        b'{"data": [{"index": 0}]}',
        b'{"data": [{"index": 5, "embedding": [1]}]}',
    ],
)
def test_malformed_data_is_an_error(fake_server: FakeEmbeddingServer, body: bytes) -> None:
    fake_server.then(Reply(body=body))
    with client(fake_server, dimension=None) as embedder, pytest.raises(EmbeddingError):
        embedder.embed_query("x")


def test_wrong_number_of_vectors_is_an_error(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(drop_vectors=1))
    with client(fake_server) as embedder, pytest.raises(EmbeddingError, match="1 vectors for 2"):
        embedder.embed_documents(["one", "two"])
    assert fake_server.count == 1


def test_wrong_dimension_is_an_error(fake_server: FakeEmbeddingServer) -> None:
    with client(fake_server, dimension=64) as embedder, pytest.raises(EmbeddingError) as info:
        embedder.embed_query("x")
    assert "dimension 32, expected 64" in str(info.value)


def test_dimension_is_learned_from_the_server(fake_server: FakeEmbeddingServer) -> None:
    with client(fake_server, dimension=None) as embedder:
        assert embedder.dimension == fake_server.dimension
        assert embedder.embed_documents([]).shape == (0, fake_server.dimension)
    assert fake_server.count == 1


def test_timeout_is_retried_then_reported(fake_server: FakeEmbeddingServer) -> None:
    fake_server.then(Reply(delay_s=5.0), Reply(delay_s=5.0))
    started = time.monotonic()
    with (
        client(fake_server, timeout_s=0.2, max_retries=1) as embedder,
        pytest.raises(EmbeddingError, match="Timeout"),
    ):
        embedder.embed_query("slow")
    assert time.monotonic() - started < 1.5
    assert fake_server.count == 2


def test_connect_error_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before use: nothing listens there
    embedder = RemoteEmbedder(
        f"http://127.0.0.1:{port}/v1", "m", dimension=4, max_retries=2, backoff_s=0.01
    )
    with embedder, pytest.raises(EmbeddingError, match="ConnectError") as info:
        embedder.embed_query("x")
    assert "3 attempt(s)" in str(info.value)


def test_from_settings_uses_the_secret(fake_server: FakeEmbeddingServer) -> None:
    settings = RemoteEmbeddingSettings(
        base_url=fake_server.base_url + "/", api_key=SecretStr(KEY), model="m", max_retries=0
    )
    assert KEY not in repr(settings)
    with RemoteEmbedder.from_settings(settings, batch_size=8) as embedder:
        assert embedder.name == "m"
        assert embedder.embed_documents(["a", "b"]).shape == (2, fake_server.dimension)
    assert fake_server.requests[-1].authorization == f"Bearer {KEY}"
