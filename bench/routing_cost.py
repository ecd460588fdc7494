"""Cost per answered query with routing on vs always-strong, and the answer quality of both
(issue 5, "Figures"), on a replayed mixed workload with the evaluation harness's pieces.

There is no paid model here, so the two local GGUF models stand in, **priced as the paid models
they stand for** (``ragkeel.gateway.pricing.DEFAULT_PRICES``): qwen2.5-coder-0.5b as "cheap"
(priced as gpt-4o-mini) and qwen2.5-coder-1.5b as "strong" (priced as gpt-4o). Tokens are the
local tokenizer's counts (prompt and completion, ``Answer.usage``). The costs are therefore
what these token counts would cost at those list prices, not a bill.

Method (the cheapest honest one; the 1.5B model takes ~10 s an answer on 2 cores):

1. Workload: a seeded sample of XQuAD-en (``--n-xquad``) and SciFact test claims
   (``--n-scifact``) plus the answerable cases of a seeded sample of the curated set, loaded with
   ``ragkeel.evaluation.run.loading.load_dataset`` and ingested into their ``eval-<name>``
   collections of ``--home`` (ONNX MiniLM; the SciFact vectors come from the embedding cache of
   ``bench/out/scifact-fresh`` when the home has none yet).
2. Always-strong: every question is answered ONCE by the 1.5B model through the normal answer
   flow (``Container.answerer``, gate and citation checks on), scored with
   ``ragkeel.evaluation.metrics.answers.score_answer``.
3. Each question's route is the pure ``route(hints, rules)`` with default ``RoutingRules`` on
   the retrieval confidence that answer recorded (top dense cosine from its gate decision,
   margin = top minus second fused score of its hits: exactly ``RoutingHints`` as the answerer
   builds them).
4. The 0.5B model answers only the cheap-routed questions. Routing on = those 0.5B answers +
   the 1.5B answers of the strong-routed questions (temperature 0, the same retrieval: asking
   the 1.5B model again would give the same answer).

Quality per arm: contains / token F1 (XQuAD, over its gold spans), grounded share, citation
validity, answered share; strong vs routing-on compared per question with
``ragkeel.evaluation.metrics.stats.paired_permutation_test`` (per-query scores, 10,000 sign flips).

    .venv/bin/python bench/routing_cost.py [--n-xquad 12] [--n-scifact 8] [--n-curated 12]
        [--seed 3] [--home bench/out/routing-home]

The defaults keep a run near 25 minutes on 2 cores shared with other work (~30 s per 1.5B
answer then); 30 / 20 / all curated is the fuller workload when the machine is free.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from common import DATASETS, REPO, commit, machine, today
from ragkeel.container import Container
from ragkeel.evaluation.cases import EvalDataset
from ragkeel.evaluation.metrics.answers import score_answer
from ragkeel.evaluation.metrics.stats import paired_permutation_test
from ragkeel.evaluation.run.config import DatasetConfig
from ragkeel.evaluation.run.loading import load_dataset
from ragkeel.gateway.base import RoutingHints, Usage
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.router import RoutingRules, route
from ragkeel.settings import load_settings

STRONG, CHEAP = "qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m"
PRICED_AS = {STRONG: "gpt-4o", CHEAP: "gpt-4o-mini"}
METRICS = ("contains", "f1", "grounded_share", "citation_validity", "answered")
SCIFACT_CACHE = REPO / "bench" / "out" / "scifact-fresh" / "cache" / "embeddings.db"


def prepare_home(home: Path) -> None:
    """The SciFact embedding cache reused once (the model files are in the user-level models
    directory, which every home sees)."""
    cache = home / "cache" / "embeddings.db"
    if not cache.exists() and SCIFACT_CACHE.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCIFACT_CACHE, cache)


def workload(args: argparse.Namespace) -> list[EvalDataset]:
    entries = [
        DatasetConfig(
            name="xquad",
            kind="squad",
            path=DATASETS / "xquad-en" / "xquad.en.json",
            limit=args.n_xquad,
            seed=args.seed,
        ),
        DatasetConfig(
            name="scifact",
            kind="beir",
            path=DATASETS / "scifact",
            split="test",
            limit=args.n_scifact,
            seed=args.seed,
        ),
        DatasetConfig(
            name="curated",
            kind="testset",
            path=REPO / "evals" / "cases" / "curated.jsonl",
            corpus=(REPO / "examples",),
            limit=args.n_curated,
            seed=args.seed,
        ),
    ]
    datasets = [load_dataset(e, args.home / "eval-data") for e in entries]
    return [
        dataclasses.replace(d, cases=tuple(c for c in d.cases if c.expect == "answer"))
        for d in datasets
    ]


def settings_for(home: Path, model: str) -> Any:
    return load_settings(
        home=home, generation={"provider": "local", "mode": "generative", "local": {"model": model}}
    )


def ingest(home: Path, datasets: list[EvalDataset]) -> None:
    container = Container(settings_for(home, STRONG))
    try:
        for d in datasets:
            if d.corpus is not None:
                t0 = time.perf_counter()
                done = container.pipeline.ingest(
                    list(d.corpus.paths), d.corpus.collection, prune=True
                )
                print(
                    f"ingest {d.name}: {done.documents_written} written, {done.documents_unchanged} unchanged, {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
    finally:
        container.close()


def ask(
    home: Path, model: str, jobs: list[tuple[EvalDataset, Any]], started: float
) -> dict[str, dict[str, Any]]:
    """Answer each (data set, case) with ``model``; per case key: scores, usage, hints."""
    container = Container(settings_for(home, model))
    out: dict[str, dict[str, Any]] = {}
    try:
        for i, (d, case) in enumerate(jobs, start=1):
            collection = d.corpus.collection if d.corpus else None
            answer = container.answerer.answer(case.question, collection=collection)
            hits = answer.hits
            margin = hits[0].score - hits[1].score if len(hits) > 1 else 0.0
            top_dense = answer.gate.top_dense if answer.gate else None
            out[f"{d.name}/{case.id}"] = {
                "dataset": d.name,
                "scores": dict(score_answer(case, answer)),
                "usage": [answer.usage.prompt_tokens, answer.usage.completion_tokens],
                "hints": [case.question, top_dense, margin],
                "mode": answer.mode,
                "gate_passed": bool(answer.gate and answer.gate.passed),
            }
            print(
                f"[{time.monotonic() - started:6.0f} s] {model} {i}/{len(jobs)} {d.name} {answer.mode}",
                flush=True,
            )
    finally:
        container.close()
    return out


def arm_summary(rows: list[dict[str, Any]], prices: PriceTable) -> dict[str, Any]:
    cost = sum(prices.price(PRICED_AS[r["model"]]).cost(Usage(*r["usage"])) for r in rows)
    answered = sum(r["scores"]["answered"] or 0 for r in rows)
    means = {}
    for m in METRICS:
        values = [r["scores"][m] for r in rows if r["scores"].get(m) is not None]
        means[m] = sum(values) / len(values) if values else None
    return {
        "questions": len(rows),
        "answered_count": answered,
        "cost_usd": cost,
        "cost_per_answered_usd": cost / answered if answered else None,
        **means,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    prepare_home(args.home)
    datasets = workload(args)
    ingest(args.home, datasets)
    jobs = [(d, c) for d in datasets for c in d.cases]
    strong = ask(args.home, STRONG, jobs, started)
    rules = RoutingRules()
    decisions = {key: route(RoutingHints(*row["hints"]), rules) for key, row in strong.items()}
    cheap_jobs = [  # a gate refusal calls no model on either arm: nothing to route
        (d, c)
        for d, c in jobs
        if decisions[f"{d.name}/{c.id}"].choice == "cheap"
        and strong[f"{d.name}/{c.id}"]["gate_passed"]
    ]
    cheap = ask(args.home, CHEAP, cheap_jobs, started) if cheap_jobs else {}
    always = [{**row, "model": STRONG} for row in strong.values()]
    routed = [
        {**cheap[k], "model": CHEAP} if k in cheap else {**row, "model": STRONG}
        for k, row in strong.items()
    ]
    prices = PriceTable.with_defaults()
    tests = {}
    for m in METRICS:
        try:
            t = paired_permutation_test(
                [r["scores"][m] for r in always], [r["scores"][m] for r in routed]
            )
            tests[m] = dataclasses.asdict(t)
        except ValueError:
            tests[m] = None
    return {
        "questions": {d.name: len(d.cases) for d in datasets},
        "share_routed_cheap": len(cheap_jobs) / len(jobs),
        "always_strong": arm_summary(always, prices),
        "routing_on": arm_summary(routed, prices),
        "paired_tests_strong_vs_routed": tests,
        "cheap_routed_by_dataset": {
            d.name: sum(1 for dd, _ in cheap_jobs if dd.name == d.name) for d in datasets
        },
        "reasons": {k: v.reason for k, v in decisions.items()},
        "rows": {"strong": strong, "cheap": cheap},
        "elapsed_s": time.monotonic() - started,
    }


def report(r: dict[str, Any]) -> str:
    a, b, t = r["always_strong"], r["routing_on"], r["paired_tests_strong_vs_routed"]
    lines = ["| | always strong (1.5B as gpt-4o) | routing on | Δ (p) |", "|---|---:|---:|---:|"]
    lines.append(
        f"| cost per answered query (USD) | {a['cost_per_answered_usd']:.6f} | {b['cost_per_answered_usd']:.6f} | {b['cost_per_answered_usd'] / a['cost_per_answered_usd'] - 1:+.0%} |"
    )
    for m in METRICS:
        p = f"{t[m]['delta']:+.3f} (p={t[m]['p_value']:.2f}, n={t[m]['n']})" if t[m] else "–"
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {m} | {fmt(a[m])} | {fmt(b[m])} | {p} |")
    return (
        "\n".join(lines)
        + f"\n\nshare routed cheap {r['share_routed_cheap']:.2f} {json.dumps(r['cheap_routed_by_dataset'])}; questions {json.dumps(r['questions'])}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-xquad", type=int, default=12)
    parser.add_argument("--n-scifact", type=int, default=8)
    parser.add_argument(
        "--n-curated", type=int, default=12, help="sampled before keeping answerable"
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "routing-home")
    args = parser.parse_args()
    print(f"{today()}, {machine()}, commit {commit()}\n", flush=True)
    results = run(args)
    (args.home / "routing-cost.json").write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    print(f"(full results: {args.home / 'routing-cost.json'}; {results['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
