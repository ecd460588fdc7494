"""Confidence signals for the answer gate: is there something worth answering from?"""

from __future__ import annotations

from collections.abc import Sequence

from ragkeel.types import Confidence, ScoredChunk, SearchHit


def confidence_of(
    hits: Sequence[SearchHit], keyword: Sequence[ScoredChunk], dense: Sequence[ScoredChunk]
) -> Confidence:
    top = hits[0].score if hits else 0.0
    second = hits[1].score if len(hits) > 1 else 0.0
    return Confidence(
        top_score=top,
        margin=top - second if len(hits) > 1 else 0.0,
        top_dense_score=dense[0].score if dense else None,
        top_keyword_score=keyword[0].score if keyword else None,
        agreement=bool(keyword and dense and keyword[0].chunk_id == dense[0].chunk_id),
    )
