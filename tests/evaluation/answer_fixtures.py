"""Real answers for the answer-metric and trace-case tests: a tiny index (SQLite on a temporary
directory, the hashing embedder, the hybrid retriever) and an ``Answerer`` over it whose model is
the scripted fake, so every ``Answer`` here comes out of the real answer flow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel
from ragkeel.generation.answer import Answer
from ragkeel.generation.answerer import Answerer
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore

CORPUS = {
    "keys.md": (
        "# API keys\n\nRotate every API key every ninety days. Rotation is done from the admin "
        "console under Security.\n\n## Revoking keys\n\nRevoke a leaked key at once. A revoked "
        "key stops working within one minute.\n"
    ),
    "outage.txt": (
        "Upstream outage postmortem.\n\nOn 3 March the model provider failed for forty minutes. "
        "Fallback models served answers during the outage.\n"
    ),
}
ON_TOPIC = "How often should I rotate an API key?"
OFF_TOPIC = "recipe for banana bread with walnuts"
TEST_GATE = 0.2  # hashing-embedder cosines here: ON_TOPIC ~0.28, OFF_TOPIC ~0.08


@contextmanager
def answer_index(root: Path) -> Iterator[HybridRetriever]:
    """Ingest ``CORPUS`` under ``root`` into collection "kb"; yields the retriever."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = SqliteDocumentStore(root / "db" / "ragkeel.db")
    embedder = HashingEmbedder(256)
    pipeline = IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**6
    )
    report = pipeline.ingest([str(docs)], "kb")
    assert report.exit_code == 0, report.to_dict()
    retriever = HybridRetriever(store, store.keyword, store.vectors, embedder)
    try:
        yield retriever
    finally:
        retriever.close()
        store.close()


def ask(retriever: HybridRetriever, question: str, reply: Reply) -> Answer:
    """The answer flow's ``Answer`` to ``question`` when the model replies ``reply``."""
    model = ScriptedChatModel([reply])
    return Answerer(retriever, model, gate_threshold=TEST_GATE).answer(question)
