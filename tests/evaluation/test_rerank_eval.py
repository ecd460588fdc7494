"""``ragkeel eval retrieval`` with the conditional reranking on (issue 15): the TREC run and its
metrics follow the reranker's order, not the fused scores the hits still carry. The corpus is
made so that BM25 puts a short ``alpha alpha alpha alpha`` first while the reranker
(``FaultServer``'s word-overlap ``/rerank`` on 127.0.0.1) puts the passage with both query
words first."""

from __future__ import annotations

import json
from pathlib import Path

from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.run.retrieval import evaluate_beir
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

QUERY = "alpha beta"


def make_beir(root: Path) -> Path:
    docs = [
        {"_id": "short", "title": "", "text": "alpha alpha alpha alpha."},
        {"_id": "both", "title": "", "text": "alpha beta " + " ".join(f"w{i}" for i in range(60))},
        *({"_id": f"n{i}", "title": "", "text": f"beta noise {i} words here."} for i in range(6)),
    ]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q0", "text": QUERY}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tboth\t1\n")
    return root


def test_a_reranked_run_keeps_the_rerankers_order(tmp_path: Path) -> None:
    dataset = load_beir(make_beir(tmp_path / "tiny"), "test")
    with FaultServer() as server:
        url = f"http://127.0.0.1:{server.port}/rerank"
        rerank = {"provider": "remote", "shape": "tei", "url": url, "always": True}
        settings = load_settings(
            home=tmp_path / "home",
            embedding={"provider": "hashing", "cache": False},
            retrieval={"rerank": rerank},
        )
        with Container(settings) as c:
            outcome = evaluate_beir(dataset, c.pipeline, c.retriever, "bm25", tmp_path / "out")
            hits = c.retriever.search(QUERY, 10, mode="bm25").hits
    assert hits[0].chunk.document_id == "both" and hits[0].score < hits[1].score  # reranked
    run = outcome.run["q0"]
    assert max(run, key=run.__getitem__) == "both"
    assert outcome.report.metrics["ndcg_cut_10"] == 1.0
