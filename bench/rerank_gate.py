"""The conditional reranking's gate (issue 15): how often it skips the reranker on SciFact and
XQuAD-en questions, whether the questions it sends to the reranker are the ones the fused
ranking gets wrong, and what a rerank call adds to a search (a loopback fake server).

    .venv/bin/python bench/rerank_gate.py [--scifact-home bench/out/scifact-home]
        [--xquad-home bench/out/xquad-home] [--latency-n 200] [--latency-only]

No reranker model is available offline here, so this measures the GATE, not reranking quality:

1. Signals. Every SciFact test query (against its corpus, collection ``beir-scifact``) and every
   XQuAD-en question (against its 240 paragraphs, collection ``xquad``) is searched once with
   the default settings (hybrid, weighted fusion, ONNX MiniLM, k=10, no reranker); the fused
   ranking's confidence and whether its top hit is relevant (SciFact: a qrels document; XQuAD:
   the question's own paragraph) are kept.
2. Gate sweep. ``RerankGate.decide`` (the production gate) over those signals for several
   ``margin_below`` thresholds, with and without ``on_disagreement``: the skip rate, and the
   fused hit@1 of the skipped and the applied questions. A useful gate skips many questions
   whose fused top hit is already right and applies to those where it is often wrong.
3. Latency. The same SciFact queries through three retrievers over the same index, interleaved
   per query: no reranker, the reranker configured but the gate skipping (margin 0, no
   disagreement rule), and ``always`` against ``FaultServer``'s TEI ``/rerank`` on 127.0.0.1
   (a word-overlap scorer: microseconds), 20 candidates. Loopback with a trivial scorer: what
   is measured is ragkeel's own overhead (fetching the candidates' chunks, HTTP, parsing, the
   policies), not a model's inference time.

Prints the tables and writes ``rerank-gate.json`` into the SciFact home.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from answer_quality import COLLECTION as XQUAD_COLLECTION
from answer_quality import index as index_xquad
from answer_quality import load_xquad
from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.run.retrieval import collection_name, index_corpus
from ragkeel.retrieval.rerank import RerankGate
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.testing import FaultServer
from ragkeel.types import Confidence

K = 10
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
MAX_SECONDS = 1800.0  # hard stop for each loop


def signals(
    home: Path, collection: str, questions: list[tuple[str, Callable[[str], bool]]]
) -> list[tuple[Confidence, int, bool]]:
    """Per question: the fused confidence, the fused candidates, whether the top hit is relevant."""
    container = Container(load_settings(home=home, embedding={"cache": False}))
    flt, out, deadline = Filter(collection=collection), [], time.monotonic() + MAX_SECONDS
    for question, relevant in questions:
        if time.monotonic() > deadline:
            break
        r = container.retriever.search(question, K, mode="hybrid", flt=flt)
        top = bool(r.hits) and relevant(r.hits[0].chunk.document_id)
        out.append((r.confidence, len(r.hits), top))
    container.close()
    return out


def sweep(rows: list[tuple[Confidence, int, bool]]) -> list[dict[str, Any]]:
    table = []
    for disagreement in (True, False):
        for margin in MARGINS:
            gate = RerankGate(margin_below=margin, on_disagreement=disagreement)
            applied = [ok for c, n, ok in rows if gate.decide(c, n)[0]]
            skipped = [ok for c, n, ok in rows if not gate.decide(c, n)[0]]
            table.append(
                {
                    "margin_below": margin,
                    "on_disagreement": disagreement,
                    "skip_rate": round(len(skipped) / len(rows), 3),
                    "skipped": len(skipped),
                    "applied": len(applied),
                    "hit1_skipped": round(sum(skipped) / len(skipped), 3) if skipped else None,
                    "hit1_applied": round(sum(applied) / len(applied), 3) if applied else None,
                }
            )
    return table


def latency(home: Path, queries: list[str]) -> dict[str, dict[str, float]]:
    """Search latency (k=10) without a reranker, with the gate skipping, and always reranked."""
    flt = Filter(collection="beir-scifact")
    with FaultServer() as server:
        url = f"http://127.0.0.1:{server.port}/rerank"
        remote = {"provider": "remote", "shape": "tei", "url": url, "candidates": 20}
        skip = {**remote, "gate": {"margin_below": 0.0, "on_disagreement": False}}
        configs = {"none": None, "gate_skips": skip, "always": {**remote, "always": True}}
        containers = {
            name: Container(
                load_settings(
                    home=home, embedding={"cache": False}, retrieval={"rerank": r} if r else {}
                )
            )
            for name, r in configs.items()
        }
        for q in queries[:10]:  # warm-up: the embedder, the segments, the connection
            for c in containers.values():
                c.retriever.search(q, K, flt=flt)
        total: dict[str, list[float]] = {n: [] for n in configs}
        no_embed: dict[str, list[float]] = {n: [] for n in configs}
        rerank_ms: list[float] = []
        deadline = time.monotonic() + MAX_SECONDS
        for q in queries:
            if time.monotonic() > deadline:
                break
            for name, c in containers.items():
                r = c.retriever.search(q, K, flt=flt)
                total[name].append(r.timings_ms["total_ms"])
                no_embed[name].append(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0))
                if name == "always":
                    assert r.rerank is not None and r.rerank.decision == "applied", r.rerank
                    rerank_ms.append(r.timings_ms["rerank_ms"])
        for c in containers.values():
            c.close()
    out = {
        name: {
            "n": len(total[name]),
            "p50_ms": round(pct(total[name], 50), 2),
            "p95_ms": round(pct(total[name], 95), 2),
            "p50_no_embed_ms": round(pct(no_embed[name], 50), 2),
            "p95_no_embed_ms": round(pct(no_embed[name], 95), 2),
        }
        for name in configs
    }
    out["rerank_step"] = {
        "n": len(rerank_ms),
        "p50_ms": round(pct(rerank_ms, 50), 2),
        "p95_ms": round(pct(rerank_ms, 95), 2),
    }
    return out


def print_sweep(name: str, table: list[dict[str, Any]]) -> None:
    print(f"\n{name}: margin_below | disagreement | skip rate | hit@1 skipped | hit@1 applied")
    for row in table:
        print(
            f"  {row['margin_below']:<5} | {row['on_disagreement']!s:<5} | {row['skip_rate']:.3f}"
            f" ({row['skipped']}/{row['skipped'] + row['applied']}) | {row['hit1_skipped']}"
            f" | {row['hit1_applied']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scifact-home", type=Path, default=REPO / "bench" / "out" / "scifact-home")
    ap.add_argument("--xquad-home", type=Path, default=REPO / "bench" / "out" / "xquad-home")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument(
        "--latency-only", action="store_true", help="re-run part 3 on the existing SciFact index"
    )
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": machine(), "date": today(), "commit": commit(), "k": K}

    scifact = load_beir(DATASETS / "scifact", "test")
    queries = [(scifact.queries[q], scifact.qrels[q]) for q in sorted(scifact.qrels)]
    if args.latency_only:
        out["latency"] = latency(args.scifact_home, [t for t, _ in queries][: args.latency_n])
        print(json.dumps(out, indent=2))
        return
    container = Container(load_settings(home=args.scifact_home))
    report = index_corpus(scifact, container.pipeline)  # a re-run finds it unchanged
    container.close()
    out["scifact_index"] = {"written": report.documents_written, "chunks": report.chunks_written}
    sci = signals(
        args.scifact_home,
        collection_name(scifact),
        [(text, lambda d, rel=rel: rel.get(d, 0) > 0) for text, rel in queries],
    )
    docs, xq = load_xquad()
    out["xquad_index"] = index_xquad(args.xquad_home, "", docs)
    xqs = signals(
        args.xquad_home,
        XQUAD_COLLECTION,
        [(item["q"], lambda d, gold=item["doc"]: d.endswith(gold)) for item in xq],
    )
    out["scifact"] = {"n": len(sci), "hit1_fused": sum(r[2] for r in sci) / len(sci)}
    out["xquad"] = {"n": len(xqs), "hit1_fused": sum(r[2] for r in xqs) / len(xqs)}
    out["scifact"]["sweep"] = sweep(sci)
    out["xquad"]["sweep"] = sweep(xqs)
    print_sweep(f"SciFact test ({len(sci)} queries)", out["scifact"]["sweep"])
    print_sweep(f"XQuAD-en ({len(xqs)} questions)", out["xquad"]["sweep"])

    out["latency"] = latency(args.scifact_home, [text for text, _ in queries][: args.latency_n])
    print(json.dumps(out["latency"], indent=2))
    (args.scifact_home / "rerank-gate.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
