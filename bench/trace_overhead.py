"""What recording a trace costs the request: ``SqliteTraceStore.record`` time, p50/p95/p99/max
in microseconds over N records (default 1,000) into a fresh trace store, after 50 warm-up records.

Each trace is as big as a real ``ask`` trace: 8 retrieved chunks with both retrievers' ranks and
scores, the gate decision, a ~4,000-character packed prompt (kept, or only hashed with
``--no-prompt-text``), a ~400-character answer with 2 citations, 9 stage latencies. The store
file lives on the bench/out disk (``--dir`` to change), WAL mode, ``synchronous=NORMAL``.
Also reported: building the ``Trace`` from an ``Answer`` (``trace_from_answer``), and the file
size per trace. Prints one JSON object. The rare slow records (``over_1ms``) are the WAL
auto-checkpoints (every 1,000 pages, ~4 MB, i.e. every ~500 traces) that SQLite runs in the
committing connection.

    .venv/bin/python bench/trace_overhead.py [--records 1000] [--rounds 3] [--no-prompt-text]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, commit, machine, pct, today
from ragkeel.gateway.base import ChatMessage, Usage
from ragkeel.generation.answer import Answer
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability.names import ROUTE_CLI_ASK
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.types import Chunk, Citation, GateDecision, SearchHit

WARMUP = 50
SENTENCE = "Rotate every API key every ninety days from the admin console under Security. "


def sample_answer(i: int) -> Answer:
    hits = tuple(
        SearchHit(
            chunk=Chunk(f"chunk-{i}-{r:02d}-3f9a2c", f"doc-{r}", "kb", r, SENTENCE * 6, 0, 480),
            score=1.0 - r / 10,
            keyword_rank=r + 1,
            keyword_score=12.5 - r,
            dense_rank=8 - r,
            dense_score=0.61 - r / 50,
        )
        for r in range(8)
    )
    context = "\n\n".join(f"[{n}] Title {n}\n{SENTENCE * 6}" for n in range(1, 9))
    prompt = (
        ChatMessage("system", "Answer only from the numbered sources; cite them like [1]. " * 4),
        ChatMessage("user", f"Sources:\n{context}\n\nQuestion: how often are keys rotated {i}?"),
    )
    citations = tuple(
        Citation(
            n, f"doc-{n}", f"chunk-{i}-{n:02d}-3f9a2c", f"/docs/{n}.md", "Keys", None, SENTENCE
        )
        for n in (1, 2)
    )
    stages = ("embed", "keyword", "dense", "fuse", "retrieve", "pack", "first_token", "generate")
    return Answer(
        question=f"How often should I rotate an API key? ({i})",
        text=(SENTENCE * 5).strip() + " [1][2]",
        mode="generative",
        citations=citations,
        grounded=True,
        usage=Usage(1012, 96),
        latency_ms={**{s: 1.234 * (k + 1) for k, s in enumerate(stages)}, "total": 812.5},
        template_version="answer_v1",
        model="qwen2.5-coder-1.5b-instruct-q4_k_m",
        hits=hits,
        gate=GateDecision(True, "dense", 0.61, 12.5, 0.3, None),
        prompt=prompt,
    )


def summary(us: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(pct(us, 50), 1),
        "p95_us": round(pct(us, 95), 1),
        "p99_us": round(pct(us, 99), 1),
        "max_us": round(max(us), 1),
        "over_1ms": sum(u > 1000 for u in us),
    }


def one_round(directory: Path, records: int, keep_text: bool) -> dict[str, Any]:
    answers = [sample_answer(i) for i in range(records + WARMUP)]
    build_us: list[float] = []
    traces = []
    for a in answers:
        t0 = time.perf_counter_ns()
        traces.append(trace_from_answer(a, route=ROUTE_CLI_ASK, keep_prompt_text=keep_text))
        build_us.append((time.perf_counter_ns() - t0) / 1000)
    path = directory / "traces.db"
    store = SqliteTraceStore(path, keep_prompt_text=keep_text)
    record_us: list[float] = []
    for i, trace in enumerate(traces):
        t0 = time.perf_counter_ns()
        store.record(trace)
        if i >= WARMUP:
            record_us.append((time.perf_counter_ns() - t0) / 1000)
    dropped = store.dropped
    store.close()  # checkpoints the WAL into the file
    size = path.stat().st_size
    path.unlink()
    return {
        "record": summary(record_us),
        "trace_from_answer": summary(build_us[WARMUP:]),
        "bytes_per_trace": round(size / len(traces)),
        "dropped": dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-prompt-text", action="store_true")
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="trace-overhead-", dir=args.dir))
    try:
        rounds = [
            one_round(work, args.records, not args.no_prompt_text) for _ in range(args.rounds)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = min(rounds, key=lambda r: r["record"]["p50_us"])
    print(
        json.dumps(
            {
                "bench": "trace_overhead",
                "date": today(),
                "commit": commit(),
                "machine": machine(),
                "records": args.records,
                "rounds": args.rounds,
                "keep_prompt_text": not args.no_prompt_text,
                "best_round": best,
                "all_rounds_record_p50_p95_us": [
                    [r["record"]["p50_us"], r["record"]["p95_us"]] for r in rounds
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
