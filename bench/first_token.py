"""Where the time to the first token goes (issue 14): per answer, the stages retrieve / gate /
pack / queue / prompt_eval (the model reading the prompt: llama.cpp's own counters, with the
prompt tokens read and those taken from the KV cache) / first_token (from the request's start)
/ generate, p50 and p95 per configuration, each lever alone and all together, in ONE run.

    .venv/bin/python bench/first_token.py [--n 15] [--configs cold,reuse,warm,native,all]
        [--native /tmp/lat-native] [--home bench/out/first-token]

Questions: ``--n`` seeded SciFact test queries and ``--n`` seeded XQuAD (English) questions,
shuffled together, asked once each per configuration in the same order. Indexes (ONNX
embedder, default settings): the SciFact documents judged for the sampled queries plus
``--distractors`` other SciFact documents (collection ``beir-scifact``; the prompt's size is
set by the top-k chunks and the context budget, not by the corpus size), and all 240 XQuAD
paragraphs (collection ``xquad``). The gate is 0.0 so every question reaches the model.

Each configuration runs in its own process (one model load each; the native llama.cpp build is
put first on ``PYTHONPATH``), loads the model and the embedder before the first question, and
asks every question timed (the first included: it is what a fresh server's first user sees):
- ``cold``: the KV cache emptied before each question (``Llama.reset``): every prompt is read in
  full — what a model that cannot reuse a prefix pays;
- ``reuse``: as shipped before issue 14: llama.cpp's prefix matching reuses what the previous
  prompt shares (the system message), from the second question on;
- ``warm``: ``generation.local.warm_prefix`` — the fixed prefix read once at load (and restored
  when another prompt overwrote it), so the first question reuses it too;
- ``native``: ``reuse`` with the llama.cpp build for this machine's instruction set (``--native``:
  a directory the native wheel was installed into with ``pip install --target``);
- ``routed``: ``warm`` + ``generation.local.cheap_model`` (short confident questions to 0.5B);
- ``sentences``: ``reuse`` + ``generation.packing.mode: sentences`` at the sweep's budget of 600
  prompt tokens (pack's lever, bench/context_sweep.py);
- ``all``: every lever on (warm, native, routed, sentences).
The answer cache is off (``cache.enabled: false``): every question is answered.
The load average is recorded beside each configuration (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from answer_quality import load_xquad
from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.observability import names
from ragkeel.settings import load_settings

SCIFACT = DATASETS / "scifact"
CHEAP = "qwen2.5-coder-0.5b-instruct-q4_k_m"
# name -> (settings generation overrides, native build?, empty the KV cache per question?)
NO_WARM = {"local": {"warm_prefix": False}}
WARM = {"local": {"warm_prefix": True}}
ROUTED = {"local": {"warm_prefix": True, "cheap_model": CHEAP}}
SENTENCES = {"packing": {"mode": "sentences"}, "context_budget": 600}  # the sweep's choice
CONFIGS: dict[str, tuple[dict[str, Any], bool, bool]] = {
    "cold": (NO_WARM, False, True),
    "reuse": (NO_WARM, False, False),
    "warm": (WARM, False, False),
    "native": (NO_WARM, True, False),
    "routed": (ROUTED, False, False),
    "sentences": ({**NO_WARM, **SENTENCES}, False, False),
    "all": ({**ROUTED, **SENTENCES}, True, False),
}
STAGES = (*names.FIRST_TOKEN_STAGES, names.STAGE_GENERATE, names.STAGE_TOTAL)


POOL = 15  # questions sampled per data set; --n asks the first n (the index stays the same)


def questions(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    scifact = load_beir(SCIFACT, "test")
    qids = rng.sample(sorted(scifact.qrels), max(n, POOL))[:n]
    asked = [
        {"q": scifact.queries[q], "collection": "beir-scifact", "set": "scifact"} for q in qids
    ]
    _, xquad = load_xquad()
    picked = rng.sample(xquad, max(n, POOL))[:n]
    asked += [{"q": x["q"], "collection": "xquad", "set": "xquad"} for x in picked]
    random.Random(seed).shuffle(asked)
    return asked


def build_indexes(home: Path, n: int, seed: int, distractors: int) -> dict[str, object]:
    """The two collections, in ``home`` (re-ingesting an unchanged corpus embeds nothing)."""
    rng = random.Random(seed)
    scifact = load_beir(SCIFACT, "test")
    sampled = rng.sample(sorted(scifact.qrels), max(n, POOL))
    judged = {d for q in sampled for d in scifact.qrels[q]}
    lines = (SCIFACT / "corpus.jsonl").read_text().splitlines()
    others = [ln for ln in lines if json.loads(ln)["_id"] not in judged]
    kept = [ln for ln in lines if json.loads(ln)["_id"] in judged]
    kept += random.Random(seed).sample(others, min(distractors, len(others)))
    docs, _ = load_xquad()
    corpora = {
        "beir-scifact": "".join(ln + "\n" for ln in kept),
        "xquad": "".join(json.dumps(d) + "\n" for d in docs),
    }
    container = Container(load_settings(home=home))
    out: dict[str, object] = {}
    for collection, text in corpora.items():
        path = home / "corpus" / collection / "corpus.jsonl"  # a stable path (see answer_quality)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        started = time.perf_counter()
        report = container.pipeline.ingest([str(path)], collection, prune=True)
        out[collection] = {
            "documents": report.documents_written + report.documents_unchanged,
            "chunks_written": report.chunks_written,
            "seconds": round(time.perf_counter() - started, 1),
        }
    container.close()
    return out


def run_config(name: str, home: Path, asked: list[dict[str, str]]) -> dict[str, object]:
    """One configuration, in this process: every question once, its stages and prompt read."""
    generation, _, cold = CONFIGS[name]
    settings = load_settings(
        home=home,
        # no time limit cuts a slow answer short on a loaded machine (it would turn extractive)
        generation={"gate_threshold": 0.0, "model_timeout_s": 900.0, **generation},
        gateway={"request_deadline_s": 900.0},
        cache={"enabled": False},  # every question answered, in every configuration
    )
    container = Container(settings)
    import llama_cpp

    model = container.local_model
    started = time.perf_counter()
    model.load()  # type: ignore[attr-defined]
    load_s = time.perf_counter() - started
    container.retriever.search("warm the embedder", k=1)  # the query embedder's first load
    rows = []
    for item in asked:
        if cold:
            model._llm.reset()  # type: ignore[attr-defined]
        answer = container.answerer.answer(item["q"], collection=item["collection"])
        read = (answer.gateway or {}).get("prompt_eval") or {}
        attempts = (answer.gateway or {}).get("attempts") or [{}]
        rows.append(
            {
                "set": item["set"],
                "model": attempts[-1].get("deployment") or answer.model,  # behind the router too
                "mode": answer.mode,
                "prompt_tokens": answer.usage.prompt_tokens,
                "read_tokens": read.get("tokens"),
                "reused_tokens": read.get("reused_tokens"),
                **{s: answer.latency_ms.get(s) for s in STAGES},
            }
        )
        print(name, json.dumps(rows[-1]), file=sys.stderr, flush=True)
    container.close()
    return {"llama_cpp": llama_cpp.__file__, "load_s": round(load_s, 2), "rows": rows}


def summary(rows: list[dict[str, Any]]) -> dict[str, object]:
    def p(key: str, q: float) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(pct(values, q), 1) if values else None

    out: dict[str, object] = {f"{s}_p50": p(s, 50) for s in STAGES}
    out |= {f"{s}_p95": p(s, 95) for s in STAGES}
    for key in ("prompt_tokens", "read_tokens", "reused_tokens"):
        out[f"{key}_p50"] = p(key, 50)
    models = sorted({str(r["model"]) for r in rows})
    out["models"] = {m: sum(r["model"] == m for r in rows) for m in models}
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    head = ["config", *STAGES, "prompt tok", "read tok", "reused tok", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        s = r["summary"]
        cells = [name]
        cells += [f"{s[f'{x}_p50']} / {s[f'{x}_p95']}" for x in STAGES]
        cells += [str(s[f"{k}_p50"]) for k in ("prompt_tokens", "read_tokens", "reused_tokens")]
        cells.append(f"{r['load_before']} → {r['load_after']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "first-token")
    ap.add_argument("--n", type=int, default=15, help="questions per data set")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--distractors", type=int, default=1000)
    ap.add_argument("--configs", default="cold,reuse,warm,native,routed,sentences,all")
    ap.add_argument("--native", type=Path, default=Path("/tmp/lat-native"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one configuration, in this process
    args = ap.parse_args()
    asked = questions(args.n, args.seed)
    if args.worker:
        print(json.dumps(run_config(args.worker, args.home, asked)))
        return
    out: dict[str, Any] = {"machine": machine(), "date": today(), "commit": commit()}
    out["index"] = build_indexes(args.home, args.n, args.seed, args.distractors)
    print(json.dumps(out), flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in args.configs.split(","):
        env = dict(os.environ)
        if CONFIGS[name][1]:  # the native build first on the path
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(args.native), env.get("PYTHONPATH")])
            )
        load_before = round(os.getloadavg()[0], 2)
        command = [sys.executable, __file__, "--worker", name, "--home", str(args.home)]
        command += ["--n", str(args.n), "--seed", str(args.seed)]
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["load_before"], result["load_after"] = load_before, round(os.getloadavg()[0], 2)
        result["summary"] = summary(result["rows"])
        results[name] = result
        print(name, json.dumps(result["summary"]), flush=True)
    out["results"] = results
    (args.home / "first-token.json").write_text(json.dumps(out, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
