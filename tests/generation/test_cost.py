"""An answer's cost comes from the price table for the model that produced it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore


def test_answer_cost_uses_the_price_table(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keys.md").write_text(
        "# Keys\n\nProduction API keys must be rotated every 90 days.\n"
    )
    store = SqliteDocumentStore(tmp_path / "db.sqlite")
    emb = HashingEmbedder(64)
    IngestionPipeline(store, emb, Chunker(emb.tokenizer, 64), max_file_bytes=10**6).ingest(
        [str(tmp_path / "docs")], "kb"
    )
    retriever = HybridRetriever(store, store.keyword, store.vectors, emb)
    model = ScriptedChatModel(
        ("Production API keys are rotated every 90 days [1].",), name="remote-x"
    )
    table = PriceTable.from_mapping({"remote-x": Price(2.0, 8.0)})
    answer = Answerer(
        retriever, model, AnswerPolicy(gate_threshold=0.1), cost_of=table.cost
    ).answer("How often are keys rotated?", collection="kb")
    assert answer.mode == "generative" and answer.usage.completion_tokens > 0
    expected = (answer.usage.prompt_tokens * 2.0 + answer.usage.completion_tokens * 8.0) / 1e6
    assert answer.cost == pytest.approx(expected) and answer.cost > 0
    free = Answerer(retriever, model, AnswerPolicy(gate_threshold=0.1)).answer(
        "How often are keys rotated?", collection="kb"
    )
    assert free.cost == 0.0
    store.close()
