"""``Admission`` without HTTP: the tenant from header values, the local model's slots, the
release of everything however an answer ends, and the gates ``Container.admission`` builds
from the settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ragkeel.admission.gates import (
    ANONYMOUS,
    Admission,
    closing,
    estimate_tokens,
    tenant_from_headers,
)
from ragkeel.admission.load_shedder import LoadShedder
from ragkeel.admission.stream_limits import StreamLimiter
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits
from ragkeel.container import Container
from ragkeel.errors import ModelBusyError, RateLimitedError, TooManyStreamsError
from ragkeel.settings import load_settings


def test_tenant_from_plain_header_values() -> None:
    digest = "key-" + hashlib.sha256(b"sk-1").hexdigest()[:16]
    assert tenant_from_headers("Bearer sk-1") == digest
    assert tenant_from_headers("bearer  sk-1 ", "team-a") == digest  # a key wins over a claim
    assert tenant_from_headers("", " team-a ") == "team-a"
    assert tenant_from_headers("", "t" * 500) == "t" * 128
    assert tenant_from_headers("Basic abc", "  ") == ANONYMOUS
    assert tenant_from_headers() == ANONYMOUS


def test_local_slots_refuse_with_model_busy_and_free_on_release() -> None:
    admission = Admission(local=LoadShedder(2))  # one generating, one waiting
    first, second = admission.admit("a", local=True), admission.admit("b", local=True)
    with pytest.raises(ModelBusyError, match="1 waits") as busy:
        admission.admit("c", local=True)
    assert busy.value.retry_after_s == ModelBusyError.DEFAULT_RETRY_AFTER_S
    assert admission.admit("c").local_slot is None  # an extractive answer needs no slot
    first.release()
    first.release()  # idempotent: frees one slot, not two
    third = admission.admit("c", local=True)
    with pytest.raises(ModelBusyError):
        admission.admit("d", local=True)
    second.release()
    third.release()
    assert admission.local is not None and admission.local.in_flight == 0


def test_a_tenant_refusal_gives_the_local_slot_back() -> None:
    limiter = TenantLimiter(TenantLimits(requests=1, window_s=60))
    admission = Admission(limiter=limiter, local=LoadShedder(1))
    admitted = admission.admit("a", local=True)
    with pytest.raises(ModelBusyError):
        admission.admit("a", local=True)
    admitted.release()
    with pytest.raises(RateLimitedError):
        admission.admit("a", local=True)  # over the tenant's requests...
    assert admission.local is not None and admission.local.in_flight == 0  # ...slot returned


def test_streams_are_capped_per_tenant_and_freed_on_release() -> None:
    streams = StreamLimiter(2, retry_after_s=0.5)
    admission = Admission(streams=streams)
    held = [admission.admit("a", stream=True) for _ in range(2)]
    with pytest.raises(TooManyStreamsError, match="2 streamed answers open") as refused:
        admission.admit("a", stream=True)
    assert refused.value.code == "TOO_MANY_STREAMS" and refused.value.retry_after_s == 0.5
    assert isinstance(refused.value, RateLimitedError)  # 429 with Retry-After at the edge
    admission.admit("b", stream=True).release()  # another tenant has its own
    admission.admit("a").release()  # an answer that does not stream takes no stream slot
    held[0].release()
    held[0].release()  # idempotent: frees one slot, not two
    assert streams.open_streams("a") == 1
    admission.admit("a", stream=True).release()
    held[1].release()
    assert streams.open_streams("a") == 0 and streams._open == {}  # no entry left behind


def test_a_refusal_after_the_stream_slot_gives_it_back() -> None:
    streams = StreamLimiter(1)
    admission = Admission(streams=streams, local=LoadShedder(1))
    busy = admission.admit("x", local=True)
    with pytest.raises(ModelBusyError):
        admission.admit("a", stream=True, local=True)
    assert streams.open_streams("a") == 0
    busy.release()
    admission.admit("a", stream=True, local=True).release()


def test_release_settles_the_tokens_used_once() -> None:
    limiter = TenantLimiter(TenantLimits(requests=None, tokens=1_000, window_s=60))
    admitted = Admission(limiter=limiter).admit("a", estimated_tokens=800)
    assert limiter.tokens_in_flight("a") == 800
    admitted.used_tokens = 300
    calls: list[str] = []
    close = closing(lambda: calls.append("cancel"), admitted)
    close()
    close()
    assert calls == ["cancel", "cancel"]
    assert limiter.tokens_in_flight("a") == 0 and limiter.tokens_used("a") == 300


def test_the_estimate_is_an_upper_bound() -> None:
    assert estimate_tokens("x" * 30, context_budget=1_000, max_tokens=200) == 1_000 + 10 + 1 + 200


def test_the_container_builds_the_gates_from_the_settings(tmp_path: Path) -> None:
    plain = Container(load_settings(home=tmp_path / "a", generation={"local": {"max_queue": 3}}))
    gates = plain.admission
    assert gates.limiter is None  # no tenant limit configured
    assert gates.shedder is not None and gates.shedder.max_in_flight == 16
    assert gates.local is not None and gates.local.max_in_flight == 4
    assert gates.streams is not None and gates.streams.max_per_tenant == 4
    assert plain.admission is gates  # built once, shared by every request
    limited = Container(
        load_settings(
            home=tmp_path / "b",
            gateway={"limits": {"requests_per_minute": 5, "max_in_flight": 2}},
            api_limits={"max_streams_per_tenant": 7},
        )
    )
    try:
        gates = limited.admission
        assert gates.limiter is not None and gates.limiter.limits == TenantLimits(requests=5)
        assert gates.limiter.accounts is None  # no cost_per_day: no accounts asked
        assert gates.shedder is not None and gates.shedder.max_in_flight == 2
        assert gates.streams is not None and gates.streams.max_per_tenant == 7
    finally:
        plain.close()
        limited.close()
