"""The small corpus the answer-flow tests share (generation, api, observability, evaluation):
three short documents, a question they answer and one they do not, and the gate threshold that
tells the two apart with the hashing embedder.

Not a conftest: a plain module, imported as ``corpus``. ``tests/`` has no ``__init__.py``, so
pytest (``rootdir``-relative "prepend" import mode) puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py``; that holds for test packages (``tests/api``) and plain test folders
(``tests/evaluation``) alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ragkeel.embeddings.hashing import HashingEmbedder
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
    "pricing.md": (
        "# Pricing\n\nEach query costs tokens. The monthly budget is set per tenant and alerts "
        "fire at eighty percent of it.\n"
    ),
}
# the observability and evaluation tests were written against these two documents only
KEYS_AND_OUTAGE = {name: CORPUS[name] for name in ("keys.md", "outage.txt")}
ON_TOPIC = "How often should I rotate an API key?"
OFF_TOPIC = "recipe for banana bread with walnuts"
TEST_GATE = 0.2  # hashing-embedder cosines on either corpus: ON_TOPIC ~0.28, OFF_TOPIC ~0.08
COLLECTION = "kb"


def write_corpus(root: Path, corpus: Mapping[str, str] = CORPUS) -> Path:
    """Writes ``corpus`` (file name -> text) into ``root`` (created if needed); returns it."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in corpus.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def index_corpus(
    store: SqliteDocumentStore, root: Path, corpus: Mapping[str, str] = CORPUS
) -> HybridRetriever:
    """Writes ``corpus`` into ``root`` and ingests it into ``store``'s collection ``COLLECTION``
    (hashing embedder, 256 dimensions; 64-token chunks). The caller closes the retriever and
    the store."""
    embedder = HashingEmbedder(256)
    pipeline = IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**6
    )
    report = pipeline.ingest([str(write_corpus(root, corpus))], COLLECTION)
    assert report.exit_code == 0, report.to_dict()
    return HybridRetriever(store, store.keyword, store.vectors, embedder)
