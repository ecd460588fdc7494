"""Answer quality on XQuAD (English; issue 3): index its 240 paragraphs, ask a seeded sample of its
questions, score the answers against the gold spans.

    .venv/bin/python bench/answer_quality.py [--n 30] [--seed 3] [--home bench/out/xquad-home]
        [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--modes generative,extractive]
        [--max-seconds 900]

The paragraphs are written as a BEIR-style <home>/corpus/corpus.jsonl and ingested into
collection "xquad" of a fresh RAGKEEL_HOME (ONNX embedder; the model file is read from the
user-level models directory, where `make setup` installs it). The same questions are asked in each mode. One untimed warm-up question
per mode loads the embedder and the model first. The answer gate is set to 0.0 so it never refuses here: this measures the answer step, not the gate (see gate_sweep.py).

Scores: exact match and token F1 with SQuAD normalisation (lowercase, punctuation and the
articles a/an/the removed, whitespace collapsed; max over the gold answers), computed on the
answer text with its [n] citation markers stripped; share whose answer contains a normalised
gold span (EM is harsh on sentence answers, F1 penalises their length); share grounded, share with at least one valid
citation, share "cannot answer", and p50/p95 of answer.latency_ms total and first_token.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import shutil
import string
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.models.cache import default_models_dir
from ragkeel.settings import load_settings

XQUAD = DATASETS / "xquad-en" / "xquad.en.json"
MODELS = default_models_dir()  # every home sees it: nothing to link
COLLECTION = "xquad"
_CITE = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact(pred: str, gold: str) -> float:
    return float(normalize(pred) == normalize(gold))


def f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if not p or not g:
        return float(p == g)
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def load_xquad() -> tuple[list[dict], list[dict]]:
    data = json.loads(XQUAD.read_text())
    docs, questions = [], []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            pid = f"p{len(docs):03d}"
            docs.append({"_id": pid, "title": article["title"], "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                questions.append({"id": qa["id"], "q": qa["question"], "gold": golds, "doc": pid})
    return docs, questions


def index(home: Path, model: str, docs: list[dict]) -> dict:
    container = Container(load_settings(home=home))
    # A stable path, not a temp dir: re-ingesting the same corpus.jsonl from a *different* path
    # with prune=True reported 240 documents unchanged and left the store with 0 documents.
    corpus = home / "corpus" / "corpus.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    t0 = time.perf_counter()
    report = container.pipeline.ingest([str(corpus)], COLLECTION, prune=True)
    seconds = time.perf_counter() - t0
    container.close()
    return {
        "documents": report.documents_written + report.documents_unchanged,
        "chunks_written": report.chunks_written,
        "seconds": round(seconds, 2),
    }


def run_mode(
    home: Path, model: str, mode: str, sample: list[dict], warmup: str, deadline: float
) -> dict:
    settings = load_settings(
        home=home,
        generation={"mode": mode, "gate_threshold": 0.0, "local": {"model": model}},
    )
    container = Container(settings)
    container.answerer.answer(warmup, collection=COLLECTION)  # loads embedder / model; untimed
    rows = []
    for item in sample:
        if time.monotonic() > deadline:
            break
        answer = container.answerer.answer(item["q"], collection=COLLECTION)
        text = _CITE.sub("", answer.text).strip()
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        rows.append(
            {
                "id": item["id"],
                "question": item["q"],
                "gold": item["gold"],
                "answer": answer.text,
                "mode": answer.mode,
                "degraded": answer.degraded_reason,
                "em": max(exact(text, g) for g in item["gold"]),
                "f1": max(f1(text, g) for g in item["gold"]),
                "contains_gold": any(normalize(g) in normalize(text) for g in item["gold"]),
                "grounded": answer.grounded,
                "cited": bool(answer.citations),
                "cited_gold_doc": any(
                    c.document_id.endswith(item["doc"]) for c in answer.citations
                ),
                "top_hit_gold_doc": bool(answer.hits)
                and answer.hits[0].chunk.document_id.endswith(item["doc"]),
                "invalid_citations": len(answer.invalid_citations),
                "total_ms": answer.latency_ms.get("total"),
                "first_token_ms": answer.latency_ms.get("first_token"),
                "answer_tokens": answer.usage.completion_tokens if answer.usage else None,
            }
        )
        print(mode, len(rows), f"f1={rows[-1]['f1']:.2f}", repr(answer.text[:100]), flush=True)
    container.close()
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    n = len(rows)

    def share(key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / n, 3) if n else float("nan")

    totals = [r["total_ms"] for r in rows if r["total_ms"] is not None]
    firsts = [r["first_token_ms"] for r in rows if r["first_token_ms"] is not None]
    answered = [r for r in rows if r["mode"] != "cannot_answer"]
    return {
        "n": n,
        "exact_match": round(sum(r["em"] for r in rows) / n, 3) if n else None,
        "f1": round(sum(r["f1"] for r in rows) / n, 3) if n else None,
        "f1_answered_only": round(sum(r["f1"] for r in answered) / len(answered), 3)
        if answered
        else None,
        "contains_gold": share("contains_gold"),  # a gold span appears inside the answer
        "grounded": share("grounded"),
        "with_valid_citation": share("cited"),
        "cites_gold_paragraph": share("cited_gold_doc"),
        "top_hit_is_gold_paragraph": share("top_hit_gold_doc"),
        "cannot_answer": round(sum(r["mode"] == "cannot_answer" for r in rows) / n, 3)
        if n
        else None,
        "degraded": round(sum(r["degraded"] is not None for r in rows) / n, 3) if n else None,
        "any_invalid_citation": round(sum(r["invalid_citations"] > 0 for r in rows) / n, 3)
        if n
        else None,
        "total_ms_p50": round(pct(totals, 50), 1),
        "total_ms_p95": round(pct(totals, 95), 1),
        "first_token_ms_p50": round(pct(firsts, 50), 1),
        "first_token_ms_p95": round(pct(firsts, 95), 1),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "xquad-home")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    ap.add_argument("--modes", default="generative,extractive")
    ap.add_argument("--fresh", action="store_true", help="delete --home first")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="per mode")
    args = ap.parse_args()
    out: dict = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "model": args.model,
        "seed": args.seed,
        "gate_threshold": 0.0,
    }
    modes = args.modes.split(",")
    if "generative" in modes and not (MODELS / f"{args.model}.gguf").exists():
        out["skipped"] = f"{MODELS / (args.model + '.gguf')} does not exist: generative skipped"
        modes = [m for m in modes if m != "generative"]
    if args.fresh and args.home.exists():
        shutil.rmtree(args.home)
    docs, questions = load_xquad()
    sample = random.Random(args.seed).sample(questions, min(args.n, len(questions)))
    warmup = next(q["q"] for q in questions if q not in sample)
    out["index"] = index(args.home, args.model, docs)
    print(json.dumps(out, indent=2), flush=True)
    results = {}
    for mode in modes:
        results[mode] = run_mode(
            args.home, args.model, mode, sample, warmup, time.monotonic() + args.max_seconds
        )
    out["results"] = results
    name = f"answer-quality-{args.model}.json"
    (args.home / name).write_text(json.dumps(out, indent=2))
    brief = {
        **out,
        "results": {m: {k: v for k, v in r.items() if k != "rows"} for m, r in results.items()},
    }
    print(json.dumps(brief, indent=2))


if __name__ == "__main__":
    main()
