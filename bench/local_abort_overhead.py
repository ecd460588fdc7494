"""What the local model's abort callback costs per answer (issue 10): 64 answer tokens after a
~170-token prompt, the KV cache reset before each run, alternating with and without the
callback in one process so that machine noise falls on both.

    .venv/bin/python bench/local_abort_overhead.py [--rounds 3]

Needs the installed local model (`make setup`).
"""

from __future__ import annotations

import argparse
import time

import llama_cpp

from common import machine, today
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, pinned_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = LocalChatModel(pinned_file(default_models_dir(), MODELS[DEFAULT_MODEL]), n_ctx=2048)
    model.load()
    llm = model._llm
    request = ChatRequest(
        (ChatMessage("user", "Write a long essay about rivers. " * 20),), max_tokens=64
    )
    without = llama_cpp.ggml_abort_callback(0)  # a NULL callback: llama.cpp's default
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.rounds):
        for label, callback in (("with", model._abort_callback), ("without", without)):
            llama_cpp.llama_set_abort_callback(llm._ctx.ctx, callback, None)
            llm.reset()
            started = time.perf_counter()
            model.complete(request)
            seconds[label].append(round(time.perf_counter() - started, 2))
    print(f"{today()}, {machine()}")
    for label, values in seconds.items():
        print(f"{label} the abort callback: {values} s")


if __name__ == "__main__":
    main()
