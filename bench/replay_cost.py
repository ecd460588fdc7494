"""The replayed cost workload (issue 14, "Cost effect, replayed"): one request sequence with
realistic repetition, answered by four configurations — cost per answered query, p50/p95
latency and answer quality for each, against naive RAG.

    .venv/bin/python bench/replay_cost.py [--pool 8] [--requests 24] [--zipf-s 1.1]
        [--arms naive,all,caches,routing] [--max-answer-tokens 128] [--seed 14]
        [--home bench/out/replay-home]

**No paid model is used.** "strong" and "cheap" are two OpenAI-compatible deployments on
127.0.0.1 — ``ragkeel model-server`` (llama.cpp's server) on the local qwen2.5-coder-1.5b and
qwen2.5-coder-0.5b GGUF files — named as the cloud models they stand for, so the gateway meters
their calls with its price table (``gateway/pricing.py`` ``DEFAULT_PRICES``): strong as
``gpt-4o`` ($2.50 / $10.00 per million input / output tokens), cheap as ``gpt-4o-mini``
($0.15 / $0.60). Tokens are the llama.cpp server's counts. Costs are what those tokens would
cost at those list prices, not a bill.

Workload: a pool of ``--pool`` answerable questions from the evaluation sets (XQuAD-en and the
curated set, SciFact test claims with ``--n-scifact``; ``routing_cost.workload``), each with three surface forms — as
written; re-cased and re-punctuated (``" what IS … "``: the same question once normalised); a
paraphrase by template ("Could you tell me …", "I would like to know: …"). ``--requests``
requests draw a question by a Zipf law (rank r has weight 1/r^s over a seeded order of the pool)
and a form uniformly; every arm replays the same sequence, one request at a time, through the
answer flow (``Container.answerer``), and each answer is scored against its question's
references (``score_answer``).

Every arm answers with at most ``--max-answer-tokens`` tokens (the same cap for all; short
answers keep a run within the time of a session on 2 shared cores). Arms (settings switches;
an arm whose switch is not in this tree's ``Settings`` is reported
missing, not run):

- ``naive``: strong model always, no cache, top-10 whole chunks (``k`` 10, a context budget
  that holds all ten).
- ``routing``: naive + ``gateway.routing`` (short confident questions to cheap).
- ``caches``: naive + the answer cache (``cache``: exact, and semantic when it exists).
- ``all``: routing + caches + tight context (default ``k`` and budget, and
  ``generation.packing.mode: sentences`` when it exists).

Without a cache, a request whose exact text was already answered in the same arm is charged
the tokens, cost and latency of that earlier real answer instead of being asked again (the same
prompt at temperature 0 gives the same answer; the cloud would bill it again): it keeps a run
within the session's time. Arms with a cache ask every request for real.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import REPO, commit, machine, pct, today, wait_until_up
from ragkeel.container import Container
from ragkeel.evaluation.cases import EvalCase, EvalDataset
from ragkeel.evaluation.metrics.answers import score_answer
from ragkeel.settings import GenerationSettings, Settings, load_settings
from routing_cost import CHEAP, STRONG, ingest, prepare_home, workload

PRICED_AS = {"strong": "gpt-4o", "cheap": "gpt-4o-mini"}
METRICS = ("contains", "f1", "grounded_share", "citation_validity", "answered")
NAIVE_K, NAIVE_BUDGET = 10, 4000  # ten whole chunks (<= ~300 tokens each) fit in 4,000
ARMS = ("naive", "routing", "caches", "all")
START_S = 300.0


@dataclasses.dataclass(frozen=True)
class Request:
    key: str  # data set / case id
    form: str  # "asis", "recased", "paraphrase"
    question: str
    collection: str | None
    case: EvalCase


def forms(question: str, rng: random.Random) -> dict[str, str]:
    """The three surface forms of ``question``."""
    q = question.strip()
    words = q.rstrip("?.").split()
    recased = "  " + " ".join(w.upper() if i % 3 == 1 else w.lower() for i, w in enumerate(words))
    body = q[0].lower() + q[1:] if q[:2] != q[:2].upper() else q
    template = rng.choice(("Could you tell me {q}", "I would like to know: {q}"))
    return {"asis": q, "recased": recased + " ", "paraphrase": template.format(q=body)}


def replayed(datasets: list[EvalDataset], n: int, pool: int, s: float, seed: int) -> list[Request]:
    """``n`` requests over ``pool`` questions, Zipf-distributed, each in a random form."""
    rng = random.Random(seed)
    cases = [(d, c) for d in datasets for c in d.cases]
    rng.shuffle(cases)
    cases = cases[:pool]
    weights = [1.0 / (rank**s) for rank in range(1, len(cases) + 1)]
    shaped = {f"{d.name}/{c.id}": forms(c.question, rng) for d, c in cases}
    out = []
    for d, c in rng.choices(cases, weights=weights, k=n):
        form = rng.choice(("asis", "recased", "paraphrase"))
        key = f"{d.name}/{c.id}"
        collection = d.corpus.collection if d.corpus else None
        out.append(Request(key, form, shaped[key][form], collection, c))
    return out


def datasets_of(args: argparse.Namespace) -> list[EvalDataset]:
    """``routing_cost.workload``'s answerable cases; SciFact only with ``--n-scifact`` > 0 (its
    claims have no reference answers to score, and its whole corpus is ingested)."""
    wanted = argparse.Namespace(**{**vars(args), "n_scifact": max(args.n_scifact, 1)})
    return [d for d in workload(wanted) if d.name != "scifact" or args.n_scifact > 0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


STARTED: list[subprocess.Popen[bytes]] = []  # stopped when main ends, however it ends


def model_server(model: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``ragkeel model-server`` on ``model``; its OpenAI-compatible base URL once it answers."""
    port = free_port()
    env = {**os.environ, "RAGKEEL_HOME": str(home), "RAGKEEL_GENERATION__LOCAL__MODEL": model}
    log = (home / f"model-server-{model}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "model-server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    STARTED.append(proc)
    base = f"http://127.0.0.1:{port}/v1"
    wait_until_up(proc, f"{base}/models", f"model-server {model} (log {log.name})", START_S)
    return proc, base


def arm_settings(arm: str, urls: dict[str, str], max_answer_tokens: int) -> dict[str, Any] | str:
    """The settings of ``arm`` (a string: why it cannot run in this tree)."""
    has = Settings.model_fields
    packing = "packing" in GenerationSettings.model_fields
    routed = arm in ("routing", "all")
    cached = arm in ("caches", "all")
    tight = arm == "all"
    if cached and "cache" not in has:
        return "the answer cache (`cache` settings) is not in this tree"
    deployments = [
        {
            "name": "strong",
            "provider": "openai",
            "model": PRICED_AS["strong"],
            "base_url": urls["strong"],
            "tier": "strong",
            "timeout_s": 600,
        }
    ]
    if routed:
        deployments.append(
            {
                "name": "cheap",
                "provider": "openai",
                "model": PRICED_AS["cheap"],
                "base_url": urls["cheap"],
                "tier": "cheap",
                "timeout_s": 600,
            }
        )
    generation: dict[str, Any] = {
        "provider": "none",
        "model_timeout_s": 600,
        "max_answer_tokens": max_answer_tokens,
    }
    if not tight:
        generation |= {"k": NAIVE_K, "context_budget": NAIVE_BUDGET}
    elif packing:
        generation["packing"] = {"mode": "sentences"}
    out: dict[str, Any] = {
        "generation": generation,
        "gateway": {
            "deployments": deployments,
            "routing": {"enabled": routed},
            "request_deadline_s": 900,
            "retry": {"max_retries": 0},
        },
    }
    if "cache" in has:
        out["cache"] = {"enabled": cached, "backend": "memory"}
        cache_fields = getattr(has["cache"].annotation, "model_fields", {})
        if cached and "semantic" in cache_fields:
            out["cache"]["semantic"] = True
    return out


def run_arm(
    arm: str,
    home: Path,
    overrides: dict[str, Any],
    requests: list[Request],
    started: float,
    rows: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    """Replays ``requests`` through ``arm``, appending a row per request to ``rows`` and calling
    ``save`` after each (a run cut short keeps what it measured)."""
    seen: dict[str, dict[str, Any]] = {}
    memo = "cache" not in overrides or not overrides["cache"]["enabled"]
    with Container(load_settings(home=home, **overrides)) as container:
        for i, r in enumerate(requests, start=1):
            if memo and r.question in seen:
                rows.append({**seen[r.question], "form": r.form, "repeat": True})
                save()
                continue
            t0 = time.perf_counter()
            answer = container.answerer.answer(r.question, collection=r.collection)
            ms = (time.perf_counter() - t0) * 1000
            row = {
                "key": r.key,
                "form": r.form,
                "latency_ms": ms,
                "cost_usd": answer.cost,
                "usage": [answer.usage.prompt_tokens, answer.usage.completion_tokens],
                "served_by": answer.served_by,
                "mode": answer.mode,
                "degraded_reason": answer.degraded_reason,
                "cached": bool(getattr(answer, "cached", False)),
                "scores": dict(score_answer(r.case, answer)),
                "repeat": False,
            }
            seen[r.question] = row
            rows.append(row)
            save()
            print(
                f"[{time.monotonic() - started:6.0f} s] {arm} {i}/{len(requests)} {r.key} "
                f"{r.form} {answer.served_by} {ms:.0f} ms ${answer.cost:.5f}"
                + (" cached" if row["cached"] else ""),
                flush=True,
            )


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = sum(r["scores"]["answered"] or 0 for r in rows)
    cost = sum(r["cost_usd"] for r in rows)
    lat = [r["latency_ms"] for r in rows]
    out: dict[str, Any] = {
        "requests": len(rows),
        "answered_count": answered,
        "cost_usd": cost,
        "cost_per_answered_usd": cost / answered if answered else None,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "model_calls": sum(1 for r in rows if r["usage"][0] and not r["cached"]),  # billed
        "cached": sum(r["cached"] for r in rows),
        "served_by": {
            s: sum(1 for r in rows if r["served_by"] == s) for s in {r["served_by"] for r in rows}
        },
    }
    for m in METRICS:
        values = [r["scores"][m] for r in rows if r["scores"].get(m) is not None]
        out[m] = sum(values) / len(values) if values else None
    return out


def table(results: dict[str, Any]) -> str:
    arms = [a for a in ARMS if isinstance(results["arms"].get(a), dict)]
    naive = results["arms"].get("naive")
    head = "| | " + " | ".join(arms) + " |\n|---|" + "---:|" * len(arms)
    lines = [head]

    def cell(a: str, key: str, fmt: str) -> str:
        v = results["arms"][a][key]
        return "–" if v is None else format(v, fmt)

    lines.append(
        "| cost per answered query (USD) | "
        + " | ".join(cell(a, "cost_per_answered_usd", ".5f") for a in arms)
        + " |"
    )
    if isinstance(naive, dict) and naive["cost_per_answered_usd"]:
        ratios = []
        for a in arms:
            c = results["arms"][a]["cost_per_answered_usd"]
            ratios.append(f"{naive['cost_per_answered_usd'] / c:.1f}×" if c else "–")
        lines.append("| cheaper than naive | " + " | ".join(ratios) + " |")
    for key, label, fmt in (
        ("p50_ms", "p50 latency (ms)", ".0f"),
        ("p95_ms", "p95 latency (ms)", ".0f"),
        ("model_calls", "model calls", "d"),
        ("cached", "answers from the cache", "d"),
        *((m, m, ".3f") for m in METRICS),
    ):
        lines.append(f"| {label} | " + " | ".join(cell(a, key, fmt) for a in arms) + " |")
    missing = {a: v for a, v in results["arms"].items() if isinstance(v, str)}
    tail = "".join(f"\n- {a}: not run — {why}" for a, why in missing.items())
    return "\n".join(lines) + tail


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=8, help="distinct questions")
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--zipf-s", type=float, default=1.1)
    ap.add_argument("--arms", default="naive,all,caches,routing", help="run in this order")
    ap.add_argument("--max-answer-tokens", type=int, default=128, help="every arm alike")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--n-xquad", type=int, default=12, help="drawn before the pool is")
    ap.add_argument("--n-scifact", type=int, default=0)
    ap.add_argument("--n-curated", type=int, default=12)
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "replay-home")
    ap.add_argument("--out", default="replay-cost.json", help="results file, in --home")
    ap.add_argument("--strong-url", help="a running strong deployment (else one is started)")
    ap.add_argument("--cheap-url", help="a running cheap deployment (else one is started)")
    args = ap.parse_args()
    # a SIGTERM (kill PID) unwinds like Ctrl-C, so the model servers this script started stop
    # too (they outlived it before)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    print(f"{today()}, {machine()}, commit {commit()}\n", flush=True)
    args.home.mkdir(parents=True, exist_ok=True)
    prepare_home(args.home)
    datasets = datasets_of(args)
    ingest(args.home, datasets)
    requests = replayed(datasets, args.requests, args.pool, args.zipf_s, args.seed)
    given = {"strong": args.strong_url, "cheap": args.cheap_url}
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for tier, model in (("strong", STRONG), ("cheap", CHEAP)):
            if given[tier] is None:
                servers[tier] = model_server(model, args.home)
        replay(args, given, servers, requests, started)
    finally:
        for proc in STARTED:  # the servers this script started, up or not
            proc.terminate()
            proc.wait(30)


def replay(
    args: argparse.Namespace,
    given: dict[str, str | None],
    servers: dict[str, tuple[subprocess.Popen[bytes], str]],
    requests: list[Request],
    started: float,
) -> None:
    urls = {tier: given[tier] or servers[tier][1] for tier in given}
    out = args.home / args.out
    results: dict[str, Any] = {
        "date": today(),
        "machine": machine(),
        "commit": commit(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "distinct_questions": len({r.key for r in requests}),
        "distinct_texts": len({r.question for r in requests}),
        "arms": {},
        "rows": {},
    }
    for arm in args.arms.split(","):
        overrides = arm_settings(arm, urls, args.max_answer_tokens)
        if isinstance(overrides, str):
            results["arms"][arm] = overrides
            continue
        rows: list[dict[str, Any]] = []
        results["rows"][arm] = rows
        results.setdefault("settings", {})[arm] = overrides

        def save(arm: str = arm, rows: list[dict[str, Any]] = rows) -> None:
            results["arms"][arm] = summary(rows)
            out.write_text(json.dumps(results, indent=2))

        run_arm(arm, args.home, overrides, requests, started, rows, save)
    results["elapsed_s"] = time.monotonic() - started
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\n(full results: {out}; {results['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
