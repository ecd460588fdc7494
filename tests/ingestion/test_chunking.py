from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ragkeel.ingestion.chunking import Chunker, assemble_text
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import Block

TOK = RegexTokenCounter()
words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
sentence = st.lists(words, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=12).map(" ".join)
block = st.one_of(
    paragraph.map(lambda t: Block(t)),
    words.map(lambda t: Block(t.title(), kind="heading", level=1)),
    st.lists(st.lists(words, min_size=1, max_size=4).map(" | ".join), min_size=1, max_size=40).map(
        lambda rows: Block("\n".join(rows), kind="table")
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(block, min_size=1, max_size=15),
    st.integers(16, 120),
    st.sampled_from([0.0, 0.15, 0.3]),
)
def test_chunks_are_spans_that_cover_the_text_within_budget(
    blocks: list[Block], max_tokens: int, overlap: float
) -> None:
    chunker = Chunker(TOK, max_tokens, overlap)
    text, spans = chunker.chunk("", tuple(blocks))
    assert text == assemble_text(tuple(blocks))[0]
    covered = [False] * len(text)
    for span in spans:
        piece = text[span.start : span.end]
        assert piece.strip(), "no empty chunks"
        assert piece == piece.strip()
        assert TOK.count(piece) == span.token_count
        # everything fits the budget, except a heading longer than the budget (never split)
        assert span.token_count <= max_tokens or piece in {
            b.text for b in blocks if b.kind == "heading"
        }
        for i in range(span.start, span.end):
            covered[i] = True
    # every word character of the document is in some chunk
    assert all(covered[i] for i, ch in enumerate(text) if ch.isalnum())
    starts = [s.start for s in spans]
    assert starts == sorted(starts)


def test_heading_starts_a_new_chunk_and_sets_heading_path() -> None:
    blocks = (
        Block("Intro", kind="heading", level=1, heading_path=("Intro",)),
        Block("Short intro text.", heading_path=("Intro",)),
        Block("Setup", kind="heading", level=1, heading_path=("Setup",)),
        Block("Install the thing.", heading_path=("Setup",)),
    )
    text, spans = Chunker(TOK, 256).chunk("Doc", blocks)
    assert [text[s.start : s.end] for s in spans] == [
        "Intro\n\nShort intro text.",
        "Setup\n\nInstall the thing.",
    ]
    assert [s.heading_path for s in spans] == [("Intro",), ("Setup",)]


def test_overlap_repeats_trailing_sentences() -> None:
    sentences = [f"Sentence number {i} has some words." for i in range(40)]
    _text, spans = Chunker(TOK, 64, 0.3).chunk("", (Block(" ".join(sentences)),))
    assert len(spans) > 3
    for a, b in itertools.pairwise(spans):
        assert b.start < a.end, "consecutive chunks overlap"
        assert b.start > a.start
    _, no_overlap = Chunker(TOK, 64, 0.0).chunk("", (Block(" ".join(sentences)),))
    assert all(b.start > a.end for a, b in itertools.pairwise(no_overlap))


def test_overlong_sentence_is_cut_into_token_windows() -> None:
    long_sentence = " ".join(f"w{i}" for i in range(500))
    text, spans = Chunker(TOK, 100, 0.1).chunk("", (Block(long_sentence),))
    assert all(s.token_count <= 100 for s in spans)
    assert spans[0].start == 0 and spans[-1].end == len(text)


def test_pages_and_budget_leave_room_for_title() -> None:
    blocks = tuple(Block(f"Paragraph {i} " + "word " * 30, page=i // 2 + 1) for i in range(6))
    title = "A long title " * 5
    _, spans = Chunker(TOK, 80).chunk(title, blocks)
    assert spans[0].page == 1 and spans[-1].page == 3
    assert all(s.token_count + TOK.count(title) + 2 <= 80 for s in spans)
