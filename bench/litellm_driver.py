"""LiteLLM's side of ``bench/litellm_compare.py``: runs in LiteLLM's own venv
(``bench/out/litellm-venv/bin/python``), never in ragkeel's, and imports nothing from ragkeel.

Protocol: one JSON command a line on stdin, one JSON result a line on stdout prefixed with
``@@`` (LiteLLM may print to stdout itself; those lines are not results). Commands:

* ``{"op": "router", "primary": URL, "fallback": URL, "router": {...}, "continuation": bool}``
  builds a fresh ``litellm.Router`` (fresh cool-down state) over two OpenAI-compatible
  deployments, model groups ``primary`` and ``fallback``, ``fallbacks=[{"primary": ["fallback"]}]``;
  ``router`` holds further ``Router`` arguments (``num_retries``, ``allowed_fails``,
  ``cooldown_time``...), ``continuation`` sets ``enable_mid_stream_fallback_continuation``.
* ``{"op": "overhead", "n": N, "rate": R}`` alternates a direct ``httpx`` POST to the primary
  and ``router.completion(model="primary")``, one call at a time, at most R calls a second:
  latencies in ms of both.
* ``{"op": "complete", "n": N, "threads": T}``: N ``router.completion`` calls on T threads;
  per call ``ok``, ``ms``, ``api_base`` (which deployment answered) or ``error`` (its class).
* ``{"op": "stream", "n": N}``: N streamed calls one after the other; per call the text
  received, whether the iteration raised (``error``) and the chunks' ``finish_reason``.
* ``{"op": "quit"}``.

Offline: ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no model-price download at import), telemetry
off; every URL it is given is on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before importing litellm

import httpx
import litellm
from litellm import Router

litellm.telemetry = False
litellm.suppress_debug_info = True
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def deployment(group: str, url: str, timeout: float) -> dict[str, Any]:
    params = {
        "model": "openai/fault-model",
        "api_base": url,
        "api_key": "sk-local",
        "timeout": timeout,
    }
    return {"model_name": group, "litellm_params": params}


def build_router(cmd: dict[str, Any]) -> Router:
    timeout = float(cmd.get("timeout", 5.0))
    model_list = [
        deployment("primary", cmd["primary"], timeout),
        deployment("fallback", cmd["fallback"], timeout),
    ]
    return Router(
        model_list=model_list,
        fallbacks=[{"primary": ["fallback"]}],
        enable_mid_stream_fallback_continuation=bool(cmd.get("continuation", False)),
        **cmd.get("router", {}),
    )


def overhead(router: Router, primary: str, n: int, rate: float) -> dict[str, list[float]]:
    direct: list[float] = []
    routed: list[float] = []
    body = {"model": "fault-model", "messages": MESSAGES, "max_tokens": 64}
    with httpx.Client(timeout=5.0) as client:
        for i in range(n):
            due = time.perf_counter() + 1.0 / rate
            start = time.perf_counter()
            if i % 2 == 0:
                client.post(primary.rstrip("/") + "/chat/completions", json=body).raise_for_status()
                direct.append((time.perf_counter() - start) * 1000)
            else:
                router.completion(model="primary", messages=MESSAGES, max_tokens=64)
                routed.append((time.perf_counter() - start) * 1000)
            time.sleep(max(due - time.perf_counter(), 0.0))
    return {"direct": direct, "router": routed}


def complete_one(router: Router) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        response = router.completion(model="primary", messages=MESSAGES, max_tokens=64)
    except Exception as exc:  # the caller sees this error: count it by class
        return {
            "ok": False,
            "ms": (time.perf_counter() - start) * 1000,
            "error": type(exc).__name__,
        }
    hidden = getattr(response, "_hidden_params", {}) or {}
    return {
        "ok": True,
        "ms": (time.perf_counter() - start) * 1000,
        "api_base": hidden.get("api_base"),
    }


def stream_one(router: Router) -> dict[str, Any]:
    text: list[str] = []
    finish: list[str] = []
    error = None
    try:
        for chunk in router.completion(
            model="primary", messages=MESSAGES, max_tokens=256, stream=True
        ):
            choice = chunk.choices[0] if chunk.choices else None
            if choice is not None:
                text.append(choice.delta.content or "")
                if choice.finish_reason:
                    finish.append(str(choice.finish_reason))
    except Exception as exc:  # an explicit error the caller sees mid-stream
        error = f"{type(exc).__name__}: {str(exc)[:160]}"
    return {"text": "".join(text), "error": error, "finish_reasons": finish}


def handle(cmd: dict[str, Any], state: dict[str, Any]) -> Any:
    op = cmd["op"]
    if op == "router":
        state["router"] = build_router(cmd)
        state["primary"] = cmd["primary"]
        return {"ok": True}
    router: Router = state["router"]
    if op == "overhead":
        return overhead(router, state["primary"], int(cmd["n"]), float(cmd["rate"]))
    if op == "complete":
        with ThreadPoolExecutor(max_workers=int(cmd.get("threads", 1))) as pool:
            return list(pool.map(lambda _: complete_one(router), range(int(cmd["n"]))))
    if op == "stream":
        return [stream_one(router) for _ in range(int(cmd["n"]))]
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    state: dict[str, Any] = {}
    print("@@" + json.dumps({"ready": True, "version": metadata.version("litellm")}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        print("@@" + json.dumps(handle(cmd, state)), flush=True)


if __name__ == "__main__":
    main()
