"""The answer gate's threshold sweep (issue 3): XQuAD questions (not answerable from SciFact)
and SciFact test queries (answerable) against the SciFact index; retrieval only, no model calls.

    .venv/bin/python bench/gate_sweep.py [--home bench/out/scifact-fresh] [--n-xquad 100]
        [--n-scifact 100] [--seed 3]

For each question it records the gate's signals (top dense cosine, top BM25) of a hybrid k=8
search, then sweeps the dense-cosine threshold 0.00..0.80 in steps of 0.02: share of XQuAD
questions refused (true negatives) and share of SciFact queries answered (true positives).
Prints the table, the threshold with the best balanced accuracy and the smallest threshold that
refuses at least 90 % of XQuAD, then the whole result as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter

XQUAD = DATASETS / "xquad-en" / "xquad.en.json"
COLLECTION = "beir-scifact"
K = 8
MAX_SECONDS = 600.0  # hard stop for the retrieval loop


def xquad_questions(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    return [
        qa["question"]
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def signals(container: Container, questions: list[str], deadline: float) -> list[dict]:
    flt = Filter(collection=COLLECTION)
    out = []
    for q in questions:
        if time.monotonic() > deadline:
            break
        r = container.retriever.search(q, K, mode="hybrid", flt=flt)
        out.append(
            {
                "dense": r.confidence.top_dense_score,
                "keyword": r.confidence.top_keyword_score,
                "ms": r.timings_ms.get("total_ms"),
            }
        )
    return out


def passes(sig: dict, threshold: float) -> bool:
    return bool(sig["dense"] is not None and sig["dense"] >= threshold)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact-fresh")
    ap.add_argument("--n-xquad", type=int, default=100)
    ap.add_argument("--n-scifact", type=int, default=100)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    xq_all = xquad_questions(XQUAD)
    xq = rng.sample(xq_all, min(args.n_xquad, len(xq_all)))
    scifact = load_beir(DATASETS / "scifact", "test")
    qids = sorted(scifact.qrels)
    sf = [scifact.queries[q] for q in rng.sample(qids, min(args.n_scifact, len(qids)))]

    container = Container(load_settings(home=args.home))
    deadline = time.monotonic() + MAX_SECONDS
    neg = signals(container, xq, deadline)
    pos = signals(container, sf, deadline)
    container.close()

    rows = []
    for step in range(41):  # 0.00 .. 0.80
        t = round(step * 0.02, 2)
        refused = sum(not passes(s, t) for s in neg) / len(neg)
        answered = sum(passes(s, t) for s in pos) / len(pos)
        rows.append(
            {
                "threshold": t,
                "refused_xquad": round(refused, 3),
                "answered_scifact": round(answered, 3),
                "balanced": round((refused + answered) / 2, 3),
            }
        )
    best = max(rows, key=lambda r: (r["balanced"], -r["threshold"]))
    ninety = next((r for r in rows if r["refused_xquad"] >= 0.9), None)

    print("| dense threshold | XQuAD refused | SciFact answered | balanced |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['threshold']:.2f} | {r['refused_xquad']:.2f} | "
            f"{r['answered_scifact']:.2f} | {r['balanced']:.3f} |"
        )

    def dist(sigs: list[dict], key: str) -> dict[str, float]:
        vals = [s[key] for s in sigs if s[key] is not None]
        return {q: round(pct(vals, p), 3) for q, p in (("p5", 5), ("p50", 50), ("p95", 95))}

    out = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "home": str(args.home),
        "k": K,
        "seed": args.seed,
        "n_xquad": len(neg),
        "n_scifact": len(pos),
        "xquad_dense": dist(neg, "dense"),
        "scifact_dense": dist(pos, "dense"),
        "xquad_keyword": dist(neg, "keyword"),
        "scifact_keyword": dist(pos, "keyword"),
        "search_ms_p50": round(pct([s["ms"] for s in neg + pos if s["ms"] is not None], 50), 2),
        "best_balanced": best,
        "smallest_refusing_90pct_xquad": ninety,
        "sweep": rows,
    }
    print(json.dumps({k: v for k, v in out.items() if k != "sweep"}, indent=2))
    (args.home / "gate-sweep.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
