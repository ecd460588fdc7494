"""Prompt tokens/s of two llama-cpp-python builds side by side (issue 14): the portable wheel
(``-DGGML_NATIVE=OFF``, in the venv) and the one built for this machine's instruction set.

    .venv/bin/python bench/llama_build.py --native /tmp/lat-native [--rounds 3] [--tokens 512]

``--native``: a directory the native wheel was installed into (``pip install --no-deps
--target DIR wheel``); it goes first on ``PYTHONPATH`` of its runs. Each round runs both builds,
alternately, in fresh processes (load the default 1.5B model, read one prompt of ``--tokens``
tokens from an empty KV cache, then generate 32 tokens), so a change in the machine's load hits
both alike; the load average is recorded beside each run. Figures: llama.cpp's own perf
counters (prompt eval ms / tokens; generation ms / tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import commit, machine, pct, today

WORKER = """
import json, sys, time
import llama_cpp
from llama_cpp import Llama
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, verify
path = verify(default_models_dir(), MODELS[DEFAULT_MODEL])
llm = Llama(model_path=str(path), n_ctx=2048, verbose=False)
words = ("the quick brown fox jumps over a lazy dog while rain falls on old roofs " * 200).split()
tokens = llm.tokenize(" ".join(words).encode(), add_bos=True)[: int(sys.argv[1])]
out = 0
for token in llm.generate(tokens, temp=0.0):
    out += 1
    if out >= 32:
        break
perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
print(json.dumps({"llama_cpp": llama_cpp.__file__, "p_ms": perf.t_p_eval_ms,
    "p_n": perf.n_p_eval, "g_ms": perf.t_eval_ms, "g_n": perf.n_eval}))
"""


def run(build: str, native: Path, tokens: int) -> dict[str, object]:
    env = dict(os.environ)
    if build == "native":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(native), env.get("PYTHONPATH")]))
    load = round(os.getloadavg()[0], 2)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tokens)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "build": build,
        "load_avg": load,
        "prompt_tok_s": round(row["p_n"] / row["p_ms"] * 1000, 1),
        "gen_tok_s": round(row["g_n"] / row["g_ms"] * 1000, 1),
        "llama_cpp": row["llama_cpp"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=512)
    args = ap.parse_args()
    rows = []
    for _ in range(args.rounds):
        for build in ("portable", "native"):
            rows.append(run(build, args.native, args.tokens))
            print(json.dumps(rows[-1]), flush=True)
    summary = {
        b: {
            key: round(pct([float(r[key]) for r in rows if r["build"] == b], 50), 1)  # type: ignore[arg-type]
            for key in ("prompt_tok_s", "gen_tok_s", "load_avg")
        }
        for b in ("portable", "native")
    }
    print(json.dumps({"machine": machine(), "date": today(), "commit": commit(), **summary}))


if __name__ == "__main__":
    main()
