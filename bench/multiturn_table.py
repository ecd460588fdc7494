"""The multi-turn tables of docs/benchmarks.md ("Issue 15: multi-turn") from finished runs of
``evals/multiturn-*.yaml`` (retrieval) or ``evals/multiturn-answers-*.yaml`` (answers by the
local model): per data set and condensation mode, hit@1 / hit@5 / MRR@10 / answered / contains,
and each mode against the first (``off``) paired per follow-up (95 % bootstrap interval,
sign-flip permutation p) — the same statistics as ``ragkeel eval compare``.

    PYTHONPATH=src .venv/bin/python bench/multiturn_table.py bench/out/multiturn/{off,rules,model,standalone}
    PYTHONPATH=src .venv/bin/python bench/multiturn_table.py bench/out/multiturn/answers-{off,rules,model}

hit@k is read off MRR@10 (a hit at rank ≤ k is 1/rank ≥ 1/k).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragkeel.evaluation.metrics.stats import bootstrap_ci, paired_permutation_test

METRICS = ("hit@1", "hit@5", "mrr@10", "answered", "contains")


def scores(row: dict[str, object]) -> dict[str, float | None]:
    m = row["metrics"]
    assert isinstance(m, dict)
    mrr = m.get("mrr@10")
    out: dict[str, float | None] = {
        "hit@1": None if mrr is None else float(mrr >= 1.0),
        "hit@5": None if mrr is None else float(mrr >= 0.2 - 1e-9),
        "mrr@10": mrr,
        "answered": m.get("answered"),
        "contains": m.get("contains"),
    }
    return out


def load(run: Path) -> dict[tuple[str, str], dict[str, float | None]]:
    data = json.loads((run / "results.json").read_text())
    return {(r["dataset"], r["id"]): scores(r) for r in data["rows"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="result directories; the first is the base")
    args = ap.parse_args()
    runs = {p.name: load(p) for p in args.runs}
    base_name, base = next(iter(runs.items()))
    datasets = sorted({d for d, _ in base})
    print("| data set | mode | n | " + " | ".join(METRICS) + " |")
    print("|---|---|---:|" + "---:|" * len(METRICS))
    for ds in datasets:
        for name, rows in runs.items():
            keys = [k for k in rows if k[0] == ds]
            cells = []
            for metric in METRICS:
                vals = [v for k in keys if (v := rows[k][metric]) is not None]
                cells.append(f"{sum(vals) / len(vals):.3f}" if vals else "–")
            print(f"| {ds} | {name} | {len(keys)} | " + " | ".join(cells) + " |")
    print()
    print(f"| data set | mode vs {base_name} | metric | Δ | 95 % CI | p | n |")
    print("|---|---|---|---:|---|---:|---:|")
    for ds in datasets:
        for name, rows in list(runs.items())[1:]:
            keys = [k for k in base if k[0] == ds and k in rows]
            for metric in METRICS:
                a = [base[k][metric] for k in keys]
                b = [rows[k][metric] for k in keys]
                pairs = [
                    (x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None
                ]
                if not pairs:
                    continue
                test = paired_permutation_test([x for x, _ in pairs], [y for _, y in pairs])
                ci = bootstrap_ci([y - x for x, y in pairs])
                print(
                    f"| {ds} | {name} | {metric} | {test.delta:+.3f} | "
                    f"[{ci.low:+.3f}, {ci.high:+.3f}] | {test.p_value:.3g} | {test.n} |"
                )


if __name__ == "__main__":
    main()
