"""Sentence packing (issue 14): the sentences that matter for the question, numbered sources
that still name their chunks, original order, the budget, and what the citation check reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.citations import check_answer
from ragkeel.generation.context import Packing, pack_context
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.text import sentence_spans, split_sentences
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import load_settings

from .conftest import ON_TOPIC, TEST_GATE, count, hit

SENTENCES = Packing("sentences", max_sentences=4, neighbours=0)
FILLER = [
    "The committee met in the spring to review the annual report.",
    "Several members raised questions about the printing costs.",
    "A new logo was proposed by the design group.",
    "Lunch was served in the main hall after the session.",
    "The minutes were approved without changes.",
    "Visitors toured the library in the afternoon.",
    "The treasurer presented the budget for the coming year.",
    "Parking remained a concern for the evening events.",
]
ANSWER = "The lighthouse on Kestrel Point was completed in 1889 by the harbour board."


def long_chunk() -> str:
    """The answer sentence in the middle of eight unrelated ones."""
    return " ".join([*FILLER[:4], ANSWER, *FILLER[4:]])


def test_the_answer_in_the_middle_of_a_long_chunk_is_kept_and_the_rest_dropped() -> None:
    hits = [hit("a", long_chunk(), title="Harbour history", document_id="h")]
    question = "When was the Kestrel Point lighthouse completed?"
    whole = pack_context(hits, count, 1000)
    packed = pack_context(hits, count, 1000, question=question, packing=SENTENCES)
    assert packed.packing == "sentences"
    (source,) = packed.sources
    assert ANSWER in source.text
    assert not any(f in source.text for f in FILLER)
    assert source.truncated
    assert packed.tokens < whole.tokens / 3
    assert source.text == f"… {ANSWER} …"  # verbatim, the gaps marked


def test_neighbours_come_along_for_coherence() -> None:
    hits = [hit("a", long_chunk(), document_id="h")]
    packing = Packing("sentences", max_sentences=4, neighbours=1)
    packed = pack_context(hits, count, 1000, question="Kestrel lighthouse?", packing=packing)
    assert packed.sources[0].text == f"… {FILLER[3]} {ANSWER} {FILLER[4]} …"


def test_kept_sentences_stay_in_their_original_order() -> None:
    text = (
        "Wind turbines need regular gearbox inspection. The visitor centre opens at nine. "
        "Cafe prices rose last year. Turbine blades are inspected for cracks every spring."
    )
    hits = [hit("a", text, document_id="w")]
    question = "How often are turbine blades and gearbox inspected?"
    packed = pack_context(hits, count, 1000, question=question, packing=SENTENCES)
    body = packed.sources[0].text
    # the last sentence scores best, yet the first one is shown first
    assert body.index("gearbox") < body.index("blades")
    assert "Cafe" not in body and "visitor" not in body
    assert body == (
        "Wind turbines need regular gearbox inspection. … "
        "Turbine blades are inspected for cracks every spring."
    )


def test_sources_are_numbered_in_rank_order_and_each_names_its_chunk() -> None:
    hits = [
        hit("c1", "Rotation of API keys happens every 90 days. Coffee is free.", document_id="d1"),
        hit("c2", "Nothing here shares a single word with it.", document_id="d2"),
        hit("c3", "Old API keys stay valid for one day after rotation.", document_id="d3"),
    ]
    question = "How often are API keys rotated?"
    packed = pack_context(hits, count, 1000, question=question, packing=SENTENCES)
    assert [s.number for s in packed.sources] == [1, 2]
    assert [s.chunk.id for s in packed.sources] == ["c1", "c3"]
    assert packed.left_out == ("c2",)
    source = packed.source(2)
    assert source is not None and source.hit is hits[2]


def test_the_citation_check_reads_what_the_model_saw() -> None:
    hits = [hit("a", long_chunk(), title="Harbour history", document_id="h")]
    packed = pack_context(
        hits, count, 1000, question="When was the Kestrel lighthouse completed?", packing=SENTENCES
    )
    good = check_answer("The Kestrel Point lighthouse was completed in 1889 [1].", packed)
    assert good.grounded and good.cited == (1,)
    # a fact of the chunk the model was not shown is not supported by [1]
    dropped = check_answer("The treasurer presented the coming year's budget [1].", packed)
    assert not dropped.grounded
    assert check_answer("Completed in 1889 [2].", packed).invalid == (2,)


@pytest.mark.parametrize("budget", [40, 60, 90, 150])
def test_the_budget_is_respected(budget: int) -> None:
    hits = [
        hit(f"c{i}", long_chunk().replace("Kestrel", f"Kestrel{i} Kestrel"), document_id=f"d{i}")
        for i in range(6)
    ]
    packed = pack_context(
        hits, count, budget, question="Kestrel lighthouse 1889?", packing=SENTENCES
    )
    assert packed.sources
    assert packed.tokens <= budget
    assert sum(count(s.render()) for s in packed.sources) <= budget


def test_max_sentences_caps_each_source() -> None:
    text = " ".join(f"Lighthouse fact number {i} is about the lamp." for i in range(10))
    hits = [hit("a", text, document_id="l")]
    packing = Packing("sentences", max_sentences=3, neighbours=1, min_relative=0.0)
    packed = pack_context(hits, count, 10_000, question="lighthouse lamp", packing=packing)
    assert len(split_sentences(packed.sources[0].text.replace("…", ""))) == 3


def test_a_question_sharing_no_term_falls_back_to_whole_chunks() -> None:
    hits = [hit("a", long_chunk(), document_id="h")]
    packed = pack_context(hits, count, 1000, question="Zebra quantum?", packing=SENTENCES)
    assert packed.packing == "chunks"
    assert packed.sources[0].text == long_chunk()
    no_question = pack_context(hits, count, 1000, packing=SENTENCES)
    assert no_question.packing == "chunks"


def test_whole_chunks_stay_the_default() -> None:
    hits = [hit("a", long_chunk(), document_id="h")]
    packed = pack_context(hits, count, 1000, question="Kestrel lighthouse?")
    assert packed.packing == "chunks" and packed.sources[0].text == long_chunk()


def test_a_table_row_is_kept_as_its_own_line() -> None:
    text = (
        "Quarterly revenue by segment:\n"
        "| Segment | Q3 2022 |\n"
        "| Cloud | 20,325 |\n"
        "| Gaming | 3,610 |\n"
        "| Devices | 1,448 |"
    )
    hits = [hit("t", text, document_id="t")]
    packing = Packing("sentences", max_sentences=4, neighbours=0)
    packed = pack_context(hits, count, 1000, question="Gaming revenue Q3 2022?", packing=packing)
    assert "| Gaming | 3,610 |" in packed.sources[0].text
    assert "Devices" not in packed.sources[0].text


def test_sentence_spans_point_back_into_wrapped_text() -> None:
    text = "First sentence wraps\nover two lines. Second one.\n\n- a list item\nHeading\nBody text."
    spans = sentence_spans(text)
    assert len(spans) == len(split_sentences(text))
    assert [" ".join(text[a:b].split()) for a, b in spans] == split_sentences(text)


def test_packing_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Packing("paragraphs")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Packing("sentences", max_sentences=0)


def test_the_answer_flow_prompts_with_the_sentences_and_checks_against_them(
    retriever: HybridRetriever,
) -> None:
    model = ScriptedChatModel(["Rotate every API key every ninety days [1]."])
    policy = AnswerPolicy(gate_threshold=TEST_GATE, packing=SENTENCES, template_version="answer_v1")
    answer = Answerer(retriever, model, policy).answer(ON_TOPIC)
    assert answer.grounded and [c.number for c in answer.citations] == [1]
    (request,) = model.requests
    prompt = request.messages[-1].content
    assert "Rotate every API key every ninety days." in prompt
    # the keys document's other sentences share no term with the question: not sent
    assert "Revoke a leaked key at once" not in prompt
    assert answer.citations[0].snippet == "Rotate every API key every ninety days."


def test_the_setting_reaches_the_answerer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_HOME", str(tmp_path / "home"))
    (tmp_path / "ragkeel.yaml").write_text(
        "generation:\n  provider: none\n  packing: {mode: sentences, max_sentences: 3}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGKEEL_GENERATION__PACKING__NEIGHBOURS", "0")
    settings = load_settings(embedding={"provider": "hashing"})
    container = Container(settings)
    try:
        packing = container.answerer.policy.packing
    finally:
        container.close()
    assert packing == Packing("sentences", max_sentences=3, neighbours=0)
    assert load_settings().generation.packing.mode == "sentences"  # the yaml, no override
