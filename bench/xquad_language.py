"""German retrieval and answers with the English vs the German keyword analyzer (issue 15).

    nice -n 19 .venv/bin/python bench/xquad_language.py [--out bench/out/xquad-language]
        [--llm-sample 60] [--llm-model qwen2.5-coder-1.5b-instruct-q4_k_m] [--seed 15]
        [--runs de/english,de/german,en/english]

XQuAD German (``../shared/datasets/xquad-de``: 240 paragraphs, 1,190 questions, ids matching
``xquad-en``) is ingested twice into fresh homes, once per keyword analyzer (``retrieval.
language`` english, german), and XQuAD English once with the English analyzer for reference.
The embedder is the default ONNX all-MiniLM-L6-v2, English-only: dense-de next to dense-en is
what it costs on German (the analyzer does not touch dense, so dense-de is the same for both
German runs).

Every question is searched in bm25, dense and hybrid mode (the configured defaults: weighted
fusion 0.5/0.5, 100 candidates per retriever, nothing tuned here); a hit is a chunk of the
question's paragraph; hit@1, hit@5 and MRR@10 are over paragraphs (a paragraph's second chunk
does not count twice). The German-vs-English-analyzer difference per metric is paired by
question: mean delta, 95% bootstrap interval, sign-flip permutation p.

Answers: ``--mode extractive`` for every question (no model: the answer is the best sentences
of the retrieved context), scored by "contains a gold span" and token F1 after SQuAD-style
normalisation (lowercase, punctuation and the language's articles removed). ``--llm-sample N``
also asks a seeded sample of N questions (the same ids in every run) with the local GGUF model
(``generation.mode: generative``, provider local; gate 0 so it always asks the model; an
answer that fell back to extractive is counted in ``llm_generative_answers``).

Nothing is tuned, so there is no dev/test split: every figure is on all questions. Writes
``results.json`` and ``summary.md`` under ``--out``.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import DATASETS, REPO, commit, machine, today
from ragkeel.container import Container
from ragkeel.evaluation.metrics.stats import bootstrap_ci, paired_permutation_test
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter

COLLECTION = "xquad"
MODES = ("bm25", "dense", "hybrid")
RUNS = (("de", "english"), ("de", "german"), ("en", "english"))  # (data, analyzer)
ARTICLES = {
    "en": {"a", "an", "the"},
    "de": {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer"},
}
_CITE = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")
_PUNCT = set(string.punctuation) | {"„", "“", "”", "‚", "‘", "’", "–", "—"}


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: tuple[str, ...]
    paragraph: str


def load(lang: str) -> tuple[list[dict[str, str]], list[Question]]:
    data = json.loads((DATASETS / f"xquad-{lang}" / f"xquad.{lang}.json").read_text("utf-8"))
    docs: list[dict[str, str]] = []
    questions: list[Question] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            pid = f"p{len(docs):03d}"
            docs.append({"_id": pid, "title": article["title"], "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                golds = tuple(a["text"] for a in qa["answers"])
                questions.append(Question(qa["id"], qa["question"], golds, pid))
    return docs, questions


def normalize(text: str, lang: str) -> list[str]:
    text = "".join(ch for ch in text.casefold() if ch not in _PUNCT)
    return [w for w in text.split() if w not in ARTICLES[lang]]


def f1(pred: str, gold: str, lang: str) -> float:
    p, g = normalize(pred, lang), normalize(gold, lang)
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if not p or not g or not same:
        return float(p == g)
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def contains(pred: str, gold: str, lang: str) -> bool:
    return " ".join(normalize(gold, lang)) in " ".join(normalize(pred, lang))


def ingest(home: Path, lang: str, analyzer: str, docs: list[dict[str, str]]) -> dict[str, Any]:
    if home.exists():
        shutil.rmtree(home)
    corpus = home / "corpus" / "corpus.jsonl"
    corpus.parent.mkdir(parents=True)
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    with Container(load_settings(home=home, retrieval={"language": analyzer})) as c:
        t0 = time.perf_counter()
        report = c.pipeline.ingest([str(corpus)], COLLECTION)
        seconds = time.perf_counter() - t0
        assert c.store.collection_language(COLLECTION) == analyzer
    assert report.exit_code == 0, report.to_dict()
    return {
        "documents": report.documents_written,
        "chunks": report.chunks_written,
        "seconds": round(seconds, 1),
    }


def paragraph_of(document_id: str) -> str:
    return document_id.rsplit("#", 1)[-1]


def retrieval(home: Path, questions: list[Question]) -> dict[str, list[dict[str, float]]]:
    """Per mode, per question: hit@1, hit@5, rr@10 over paragraphs."""
    out: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    flt = Filter(collection=COLLECTION)
    with Container(load_settings(home=home)) as c:
        for mode in MODES:
            for q in questions:
                result = c.retriever.search(q.text, 10, mode=mode, flt=flt)
                ranked = list(dict.fromkeys(paragraph_of(h.chunk.document_id) for h in result.hits))
                rank = ranked.index(q.paragraph) + 1 if q.paragraph in ranked else 0
                out[mode].append(
                    {
                        "hit@1": float(rank == 1),
                        "hit@5": float(0 < rank <= 5),
                        "mrr@10": 1.0 / rank if rank else 0.0,
                    }
                )
    return out


def answers(
    home: Path,
    lang: str,
    questions: list[Question],
    mode: str,
    model: str | None,
    threads: int = 0,
) -> list[dict[str, Any]]:
    generation: dict[str, Any] = {"mode": mode, "gate_threshold": 0.0}
    if model is not None:
        # quality, not latency, is measured: a slow answer on a shared machine is not cut short
        generation["local"] = {"model": model} | ({"threads": threads} if threads else {})
        generation["model_timeout_s"] = 900
    rows = []
    gateway = {"request_deadline_s": 1200} if model is not None else {}
    with Container(load_settings(home=home, generation=generation, gateway=gateway)) as c:
        for i, q in enumerate(questions):
            answer = c.answerer.answer(q.text, collection=COLLECTION)
            text = _CITE.sub("", answer.text).strip()
            rows.append(
                {
                    "id": q.id,
                    "mode": answer.mode,
                    "degraded": answer.degraded_reason,
                    "contains": float(any(contains(text, g, lang) for g in q.gold)),
                    "f1": max(f1(text, g, lang) for g in q.gold),
                    "total_ms": answer.latency_ms.get("total"),
                }
            )
            if model is not None:
                print(f"  llm {i + 1}/{len(questions)} f1={rows[-1]['f1']:.2f}", flush=True)
    return rows


def mean(rows: list[dict[str, float]], key: str) -> float:
    return round(sum(r[key] for r in rows) / len(rows), 3) if rows else float("nan")


def paired(a: list[dict[str, float]], b: list[dict[str, float]], key: str) -> dict[str, float]:
    xs, ys = [r[key] for r in a], [r[key] for r in b]
    test = paired_permutation_test(xs, ys, seed=15)
    ci = bootstrap_ci([y - x for x, y in zip(xs, ys, strict=True)], seed=15)
    return {
        "delta": round(test.delta, 3),
        "ci_low": round(ci.low, 3),
        "ci_high": round(ci.high, 3),
        "p": round(test.p_value, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "xquad-language")
    parser.add_argument("--llm-sample", type=int, default=0, help="questions for the local model")
    parser.add_argument("--llm-model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="local model threads (0: auto)")
    parser.add_argument(
        "--runs", default=",".join(f"{d}/{a}" for d, a in RUNS), help="data/analyzer pairs"
    )
    args = parser.parse_args()
    runs = [tuple(r.split("/")) for r in args.runs.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    data = {lang: load(lang) for lang in ("de", "en")}
    assert [q.id for q in data["de"][1]] == [q.id for q in data["en"][1]], "ids must match"
    sample_ids = {q.id for q in random.Random(args.seed).sample(data["de"][1], args.llm_sample)}
    results: dict[str, Any] = {
        "date": today(),
        "commit": commit(),
        "machine": machine(),
        "llm_sample": args.llm_sample,
        "runs": {},
    }
    per_run: dict[str, dict[str, Any]] = {}
    for lang, analyzer in runs:
        name = f"{lang}/{analyzer}"
        docs, questions = data[lang]
        home = args.out / f"home-{lang}-{analyzer}"
        print(f"{name}: ingest", flush=True)
        indexed = ingest(home, lang, analyzer, docs)
        print(f"{name}: retrieval ({len(questions)} questions x {len(MODES)} modes)", flush=True)
        hits = retrieval(home, questions)
        print(f"{name}: extractive answers", flush=True)
        extractive = answers(home, lang, questions, "extractive", None)
        llm: list[dict[str, Any]] = []
        if args.llm_sample:
            sample = [q for q in questions if q.id in sample_ids]
            print(f"{name}: local model on {len(sample)} questions", flush=True)
            llm = answers(home, lang, sample, "generative", args.llm_model, args.threads)
        per_run[name] = {"hits": hits, "extractive": extractive, "llm": llm}
        results["runs"][name] = {
            "index": indexed,
            "retrieval": {
                m: {k: mean(hits[m], k) for k in ("hit@1", "hit@5", "mrr@10")} for m in MODES
            },
            "extractive": {k: mean(extractive, k) for k in ("contains", "f1")},
            "llm": {k: mean(llm, k) for k in ("contains", "f1")} if llm else None,
            "llm_generative_answers": sum(r["mode"] == "generative" for r in llm) if llm else None,
        }
        print(json.dumps(results["runs"][name], indent=1), flush=True)
    if {"de/english", "de/german"} <= per_run.keys():
        compare(results, per_run["de/english"], per_run["de/german"])
    (args.out / "results.json").write_text(json.dumps(results, indent=2), "utf-8")
    (args.out / "summary.md").write_text(summary(results), "utf-8")
    print(summary(results))


def compare(results: dict[str, Any], en_an: dict[str, Any], de_an: dict[str, Any]) -> None:
    """German vs English analyzer on the same German questions, paired."""
    results["german_vs_english_analyzer_on_de"] = {
        m: {k: paired(en_an["hits"][m], de_an["hits"][m], k) for k in ("hit@1", "hit@5", "mrr@10")}
        for m in ("bm25", "hybrid")
    }
    results["german_vs_english_analyzer_on_de"]["extractive"] = {
        k: paired(en_an["extractive"], de_an["extractive"], k) for k in ("contains", "f1")
    }
    if en_an["llm"] and de_an["llm"]:
        results["german_vs_english_analyzer_on_de"]["local model"] = {
            k: paired(en_an["llm"], de_an["llm"], k) for k in ("contains", "f1")
        }


def summary(results: dict[str, Any]) -> str:
    lines = ["| data / analyzer | mode | hit@1 | hit@5 | MRR@10 |", "|---|---|---|---|---|"]
    for name, run in results["runs"].items():
        for mode, m in run["retrieval"].items():
            lines.append(
                f"| {name} | {mode} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['mrr@10']:.3f} |"
            )
    lines += [
        "",
        "| data / analyzer | extractive contains | extractive F1 | local model "
        "contains | local model F1 |",
        "|---|---|---|---|---|",
    ]
    for name, run in results["runs"].items():
        llm = run["llm"] or {"contains": float("nan"), "f1": float("nan")}
        lines.append(
            f"| {name} | {run['extractive']['contains']:.3f} | "
            f"{run['extractive']['f1']:.3f} | {llm['contains']:.3f} | {llm['f1']:.3f} |"
        )
    lines += [
        "",
        "German vs English analyzer on xquad-de (paired by question):",
        "",
        "| mode | metric | delta | 95% CI | p |",
        "|---|---|---|---|---|",
    ]
    for mode, metrics in results.get("german_vs_english_analyzer_on_de", {}).items():
        for key, d in metrics.items():
            lines.append(
                f"| {mode} | {key} | {d['delta']:+.3f} | "
                f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] | {d['p']:.4f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
