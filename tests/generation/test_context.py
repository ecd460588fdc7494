"""Packing: rank order, numbering, budget, duplicates, truncation, labels."""

from __future__ import annotations

from ragkeel.generation.context import ELLIPSIS, pack_context, source_label

from .conftest import count, hit

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


def words(n: int, offset: int = 0) -> str:
    return " ".join(
        f"{WORDS[(i + offset) % len(WORDS)]}{(i + offset) // len(WORDS)}" for i in range(n)
    )


def test_numbers_sources_in_rank_order_with_provenance() -> None:
    hits = [
        hit("a", "Keys rotate every ninety days.", title="Keys", page=3, document_id="k"),
        hit("b", "Outages fall back to other models.", title="Outage", document_id="o"),
    ]
    packed = pack_context(hits, count, 1000)
    assert [s.number for s in packed.sources] == [1, 2]
    first = packed.source(1)
    assert first is not None and first.chunk.id == "a"
    assert (first.chunk.title, first.chunk.page, first.chunk.document_id) == ("Keys", 3, "k")
    assert packed.source(3) is None and packed.source(0) is None
    assert packed.render() == (
        "[1] Keys, p. 3\nKeys rotate every ninety days.\n\n[2] Outage\nOutages fall back to other models."
    )
    assert packed.tokens == sum(count(s.render()) for s in packed.sources) <= 1000


def test_stops_at_the_first_hit_that_does_not_fit() -> None:
    hits = [hit(f"c{i}", words(30, 100 * i), document_id=f"d{i}") for i in range(5)]
    one = count(pack_context(hits[:1], count, 10_000).render())
    packed = pack_context(hits, count, 2 * one + 5)
    assert [s.chunk.id for s in packed.sources] == ["c0", "c1"]
    assert packed.left_out == ("c2", "c3", "c4")
    assert packed.tokens <= 2 * one + 5
    assert not any(s.truncated for s in packed.sources)


def test_a_later_small_hit_is_not_packed_past_a_big_one() -> None:
    hits = [
        hit("a", words(10), document_id="a"),
        hit("b", words(200, 50), document_id="b"),
        hit("c", "tiny", document_id="c"),
    ]
    packed = pack_context(hits, count, 100)
    assert [s.chunk.id for s in packed.sources] == ["a"]


def test_truncates_a_first_hit_that_alone_exceeds_the_budget() -> None:
    long = words(500)
    packed = pack_context([hit("a", long), hit("b", "short text")], count, 120)
    (only,) = packed.sources
    assert only.truncated and only.text.endswith(ELLIPSIS)
    assert long.startswith(only.text.removesuffix(ELLIPSIS))
    assert 110 <= only.tokens <= 120 and packed.tokens == only.tokens
    assert packed.left_out == ("b",)


def test_drops_same_chunk_id_and_near_duplicates_keeping_the_better_ranked() -> None:
    base = words(40)
    overlapping = words(40, 2)  # a window shifted by two words: 38 of 40 terms shared
    different = words(40, 30)  # shares 10 of 40 terms: kept
    hits = [
        hit("a", base, document_id="d"),
        hit("a", base, document_id="d"),
        hit("b", overlapping, document_id="d"),
        hit("c", different, document_id="d"),
        hit("e", base, document_id="copy"),  # same text in another document
    ]
    packed = pack_context(hits, count, 10_000)
    assert [s.chunk.id for s in packed.sources] == ["a", "c"]
    assert [s.number for s in packed.sources] == [1, 2]
    assert packed.duplicates == ("a", "b", "e")


def test_a_bigger_chunk_containing_a_packed_one_is_kept() -> None:
    packed = pack_context([hit("a", words(10)), hit("b", words(40))], count, 10_000)
    assert [s.chunk.id for s in packed.sources] == ["a", "b"]


def test_label_falls_back_to_file_name_and_drops_a_repeated_heading_line() -> None:
    plain = hit("a", "Body text.").chunk
    assert source_label(plain) == "doc.md"
    titled = hit("t", "Pricing\n\nEach query costs tokens.", title="Pricing")
    packed = pack_context([titled], count, 1000)
    assert packed.render() == "[1] Pricing\nEach query costs tokens."


def test_empty_hits_and_blank_chunks_pack_nothing() -> None:
    assert pack_context([], count, 100).sources == ()
    assert pack_context([hit("a", "   ")], count, 100).sources == ()
