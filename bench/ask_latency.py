"""``ask`` latency over the SciFact index (issue 3): time to first token and total, p50/p95, for
each local model and for extractive mode, on the same seeded SciFact test queries.

    .venv/bin/python bench/ask_latency.py [--home bench/out/scifact-fresh] [--n 15]

Needs the SciFact index built by bench/retrieval_scifact.py (same --home) and the model files in
the user-level models directory (`ragkeel models install [--model …]`), which every home sees.
The gate is set to 0.0 so every question reaches the answer step. One untimed warm-up question
per configuration loads the model. Prompt tokens are reported too (the context budget is 1,000).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import MODELS
from ragkeel.settings import load_settings

CONFIGS = [
    ("qwen2.5-coder-1.5b-instruct-q4_k_m", "generative"),
    ("qwen2.5-coder-0.5b-instruct-q4_k_m", "generative"),
    ("qwen2.5-coder-1.5b-instruct-q4_k_m", "extractive"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact-fresh")
    ap.add_argument("--n", type=int, default=15)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    dataset = load_beir(DATASETS / "scifact", "test")
    qids = random.Random(args.seed).sample(sorted(dataset.qrels), args.n + 1)
    out: dict[str, object] = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "n": args.n,
    }
    for model, mode in CONFIGS:
        if not (default_models_dir() / MODELS[model].filename).exists():
            out[f"{model}/{mode}"] = "skipped: model not installed"
            continue
        settings = load_settings(
            home=args.home,
            generation={"mode": mode, "gate_threshold": 0.0, "local": {"model": model}},
        )
        container = Container(settings)
        ask = container.answerer
        ask.answer(dataset.queries[qids[0]], collection="beir-scifact")  # warm-up: loads the model
        first, total, prompt = [], [], []
        for qid in qids[1:]:
            answer = ask.answer(dataset.queries[qid], collection="beir-scifact")
            first.append(answer.latency_ms.get("first_token", answer.latency_ms["total"]))
            total.append(answer.latency_ms["total"])
            prompt.append(answer.usage.prompt_tokens)
        out[f"{model}/{mode}"] = {
            "first_token_p50_ms": round(pct(first, 50)),
            "first_token_p95_ms": round(pct(first, 95)),
            "total_p50_ms": round(pct(total, 50)),
            "total_p95_ms": round(pct(total, 95)),
            "prompt_tokens_p50": round(pct(prompt, 50)),
        }
        print(model, mode, json.dumps(out[f"{model}/{mode}"]), flush=True)
        container.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
