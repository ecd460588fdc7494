"""Real answers for the answer-metric and trace-case tests: a tiny index (SQLite on a temporary
directory, the hashing embedder, the hybrid retriever) and an ``Answerer`` over it whose model is
the scripted fake, so every ``Answer`` here comes out of the real answer flow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corpus import KEYS_AND_OUTAGE, TEST_GATE, index_corpus
from corpus import OFF_TOPIC as OFF_TOPIC
from corpus import ON_TOPIC as ON_TOPIC
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel
from ragkeel.generation.answer import Answer
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore


@contextmanager
def answer_index(root: Path) -> Iterator[HybridRetriever]:
    """Ingest ``KEYS_AND_OUTAGE`` under ``root`` into collection "kb"; yields the retriever."""
    store = SqliteDocumentStore(root / "db" / "ragkeel.db")
    retriever = index_corpus(store, root / "docs", KEYS_AND_OUTAGE)
    try:
        yield retriever
    finally:
        retriever.close()
        store.close()


def ask(retriever: HybridRetriever, question: str, reply: Reply) -> Answer:
    """The answer flow's ``Answer`` to ``question`` when the model replies ``reply``."""
    model = ScriptedChatModel([reply])
    return Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE)).answer(question)
