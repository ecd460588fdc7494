"""Issue 14: choose the packing and the context budget by a sweep, the cheap proxy first (no
model call): for each packing (whole chunks, the question's sentences) and context budget, pack
the hits the answer flow would pack (``steps.pack`` with the answerer's own prompt template and
the local model's tokenizer) and measure

- XQuAD ``span kept``: share of questions with a gold answer span still in the packed context
  (the harness's ``contains`` test, applied to the context instead of the answer);
- SciFact ``gold citable``: share of claims with a judged abstract among the packed sources;
- SEC ``answer terms``: mean share of the reference answer's content terms in the context (its
  answers are long-form: no span to find);
- prompt tokens: mean of the whole prompt (system + sources + question), and the context alone.

The cases are the tuning cases of ``evals/pack-sweep.yaml`` (SciFact *train*, XQuAD questions),
minus every case of the final comparison (``evals/pack-before.yaml``), so nothing is tuned on
the cases that decide. SEC has 15 questions in all: they inform, they do not decide.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/context_sweep.py \
        [--config evals/pack-sweep.yaml] [--exclude evals/pack-before.yaml] \
        [--budgets 250,400,600,800,1000] [--out bench/out/pack/sweep.json]

``--model-check N --check chunks:1000,sentences:400`` then asks the local model the first N XQuAD
tuning questions per (packing, budget) and reports the harness's ``contains``/F1 of the answers,
grounded share and first-token latency: the bounded check that the proxy's choice holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from common import REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.evaluation.cases import EvalCase, EvalDataset
from ragkeel.evaluation.metrics.answers import contains_reference, token_f1
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.loading import load_dataset
from ragkeel.generation.context import Packing
from ragkeel.generation.policy import NO_BUDGET, AnswerPolicy
from ragkeel.generation.steps import Retrieved, pack
from ragkeel.generation.text import content_terms
from ragkeel.storage.filters import Filter
from ragkeel.types import SearchResult

PACKINGS = {"chunks": Packing("chunks"), "sentences": Packing("sentences")}
K = 8  # generation.k: the hits the answer flow packs
MAX_SECONDS = 1800.0  # hard stop for the model check


def final_ids(path: Path) -> set[str]:
    """The question ids of every case of the final comparison (any data set, any role)."""
    config = load_eval_config(path)
    work = config.build_settings().home / "eval-data"
    return {c.id for d in config.datasets for c in load_dataset(d, work).cases}


def tuning_sets(config_path: Path, exclude: set[str]) -> tuple[list[EvalDataset], Container]:
    config = load_eval_config(config_path)
    settings = config.build_settings()
    work = settings.home / "eval-data"
    sets = []
    for entry in config.datasets:
        ds = load_dataset(entry, work)
        sets.append(replace(ds, cases=tuple(c for c in ds.cases if c.id not in exclude)))
    container = Container(settings)
    for ds in sets:
        if ds.corpus is not None and ds.corpus.paths:
            t0 = time.perf_counter()
            container.pipeline.ingest(list(ds.corpus.paths), ds.corpus.collection, prune=True)
            print(f"ingested {ds.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return sets, container


def proxy(case: EvalCase, kind: str, text: str, doc_ids: set[str]) -> tuple[str, float] | None:
    if kind == "squad" and case.reference_answers:
        return "span kept", contains_reference(text, case.reference_answers)
    if kind == "beir" and case.qrels:
        return "gold citable", float(bool(doc_ids & {d for d, g in case.qrels.items() if g > 0}))
    if kind == "csv_qa" and case.reference_answers:
        wanted = set(content_terms(" ".join(case.reference_answers)))
        have = set(content_terms(text))
        return "answer terms", len(wanted & have) / len(wanted) if wanted else 0.0
    return None


def sweep(
    sets: list[EvalDataset], container: Container, budgets: list[int]
) -> list[dict[str, object]]:
    model = container.chat_model
    assert model is not None, "the sweep counts with the local model's tokenizer"
    template = container.answerer.template
    hits: list[tuple[EvalDataset, EvalCase, SearchResult]] = []
    for ds in sets:
        assert ds.corpus is not None
        flt = Filter(collection=ds.corpus.collection)
        for case in ds.cases:
            result = container.retriever.search(case.question, K, mode="hybrid", flt=flt)
            hits.append((ds, case, result))
    print(f"retrieved {len(hits)} questions", flush=True)
    rows: list[dict[str, object]] = []
    for name, packing in PACKINGS.items():
        for budget in budgets:
            policy = AnswerPolicy(context_budget=budget, packing=packing)
            scores: dict[str, dict[str, list[float]]] = {}
            t0 = time.perf_counter()
            for ds, case, result in hits:
                packed = pack(
                    Retrieved(case.question, result, NO_BUDGET),
                    template,
                    policy,
                    model.count_tokens,
                )
                ctx = packed.context
                text = ctx.render()
                prompt = template.render(case.question, template.format_sources(ctx))
                prompt_tokens = sum(model.count_tokens(m.content) for m in prompt)
                per = scores.setdefault(ds.name, {})
                got = proxy(case, ds.kind, text, {s.chunk.document_id for s in ctx.sources})
                if got is not None:
                    per.setdefault(got[0], []).append(got[1])
                per.setdefault("context tokens", []).append(ctx.tokens)
                per.setdefault("prompt tokens", []).append(prompt_tokens)
                per.setdefault("sources", []).append(len(ctx.sources))
            pack_ms = (time.perf_counter() - t0) * 1000 / len(hits)
            row: dict[str, object] = {
                "packing": name,
                "budget": budget,
                "pack_ms": round(pack_ms, 2),
            }
            for ds_name, metrics in scores.items():
                for metric, values in metrics.items():
                    row[f"{ds_name} {metric}"] = round(statistics.fmean(values), 3)
                row[f"{ds_name} n"] = len(metrics["prompt tokens"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def model_check(
    sets: list[EvalDataset], container: Container, checks: list[tuple[str, int]], n: int
) -> list[dict[str, object]]:
    """The first ``n`` XQuAD tuning questions answered by the local model per (packing, budget)."""
    xquad = next(ds for ds in sets if ds.kind == "squad")
    assert xquad.corpus is not None
    cases = xquad.cases[:n]
    base = container.answerer
    deadline = time.monotonic() + MAX_SECONDS
    rows: list[dict[str, object]] = []
    for name, budget in checks:
        base.policy = replace(base.policy, context_budget=budget, packing=PACKINGS[name])
        found: dict[str, list[float]] = {}
        for case in cases:
            if time.monotonic() > deadline:
                break
            answer = base.answer(
                case.question,
                collection=xquad.corpus.collection,
                flt=Filter(collection=xquad.corpus.collection),
            )
            found.setdefault("contains", []).append(
                contains_reference(answer.text, case.reference_answers)
            )
            found.setdefault("f1", []).append(token_f1(answer.text, case.reference_answers))
            found.setdefault("grounded", []).append(float(answer.grounded))
            found.setdefault("prompt tokens", []).append(answer.usage.prompt_tokens)
            found.setdefault("first token ms", []).append(
                answer.latency_ms.get("first_token", answer.latency_ms["total"])
            )
        ft = found.get("first token ms", [])
        row: dict[str, object] = {"packing": name, "budget": budget, "n": len(ft)}
        for metric, values in found.items():
            row[metric] = round(statistics.fmean(values), 3)
        row["first token p50 ms"] = round(pct(ft, 50), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "evals" / "pack-sweep.yaml")
    parser.add_argument("--exclude", type=Path, default=REPO / "evals" / "pack-before.yaml")
    parser.add_argument("--budgets", default="250,400,600,800,1000")
    parser.add_argument("--model-check", type=int, default=0, metavar="N")
    parser.add_argument("--no-proxy", action="store_true", help="the model check alone")
    parser.add_argument("--check", default="chunks:1000,sentences:400,sentences:600")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pack" / "sweep.json")
    args = parser.parse_args()
    exclude = final_ids(args.exclude)
    sets, container = tuning_sets(args.config, exclude)
    try:
        budgets = [int(b) for b in args.budgets.split(",")]
        out: dict[str, object] = {
            "date": today(),
            "commit": commit(),
            "machine": machine(),
            "cases": {ds.name: len(ds.cases) for ds in sets},
            "excluded_final_ids": len(exclude),
            "proxy": [] if args.no_proxy else sweep(sets, container, budgets),
        }
        if args.model_check:
            check = [(c.split(":")[0], int(c.split(":")[1])) for c in args.check.split(",")]
            out["model_check"] = model_check(sets, container, check, args.model_check)
    finally:
        container.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
