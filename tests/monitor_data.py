"""Real top retrieval scores for the monitor's tests: a slice of SciFact indexed with the
hashing embedder (fast, no model files), then the best dense similarity the answer gate sees
for SciFact train claims (the service's steady traffic) and for XQuAD questions (queries from
another data set: the planted drift). Read in place from ../shared/datasets.

Not a conftest: imported as ``monitor_data`` (``tests/`` is on ``sys.path``); also by
``bench/monitor_alarms.py``, with the ONNX embedder."""

from __future__ import annotations

import json
from pathlib import Path

from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SCIFACT = DATASETS / "scifact"
XQUAD = DATASETS / "xquad-en" / "xquad.en.json"


def scifact_train(limit: int) -> tuple[list[str], set[str]]:
    """The first ``limit`` SciFact train claims and the ids of the abstracts judged for them."""
    wanted: dict[str, set[str]] = {}
    for line in (SCIFACT / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        if qid in wanted or len(wanted) < limit:
            wanted.setdefault(qid, set()).add(doc)
    texts = {}
    for line in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["_id"] in wanted:
            texts[q["_id"]] = q["text"]
    return [texts[q] for q in wanted if q in texts], set().union(*wanted.values())


def xquad_questions(limit: int) -> list[str]:
    data = json.loads(XQUAD.read_text(encoding="utf-8"))["data"]
    out = [qa["question"] for art in data for p in art["paragraphs"] for qa in p["qas"]]
    return out[:: max(1, len(out) // limit)][:limit]


def index_scifact(
    root: Path, docs: set[str], extra: int, embedder: Embedder | None = None
) -> HybridRetriever:
    """The judged abstracts plus ``extra`` others, as text files, ingested into ``root``
    (``embedder``: default the hashing embedder, 256 dimensions)."""
    files = root / "docs"
    files.mkdir(parents=True)
    taken = 0
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line in corpus:
            d = json.loads(line)
            if d["_id"] in docs or taken < extra:
                taken += d["_id"] not in docs
                text = f"{d['title']}\n\n{d['text']}\n"
                (files / f"{d['_id']}.txt").write_text(text, encoding="utf-8")
    store = SqliteDocumentStore(root / "ragkeel.db")
    embedder = embedder or HashingEmbedder(256)
    pipeline = IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 256, 0.15), max_file_bytes=10**6
    )
    report = pipeline.ingest([str(files)], "kb")
    assert report.exit_code == 0, report.to_dict()
    return HybridRetriever(store, store.keyword, store.vectors, embedder)


def top_dense(retriever: HybridRetriever, questions: list[str]) -> tuple[float, ...]:
    scores = []
    for q in questions:
        top = retriever.search(q, 5).confidence.top_dense_score
        if top is not None:
            scores.append(round(top, 6))
    return tuple(scores)
