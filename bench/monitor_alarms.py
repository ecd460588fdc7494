"""The monitor's false-alarm rate on steady traffic and its detection of planted faults
(issue 12), over a real trace store with the default rules.

    .venv/bin/python bench/monitor_alarms.py [--embedder onnx|hashing] [--windows 200]
                                             [--trials 30] [--per-hour 240] [--pools FILE]

Traffic is ``ragkeel.testing.traffic`` with real top retrieval scores: SciFact abstracts (the
judged ones of 300 train claims plus 300 others) indexed with the embedder, the answer gate's
best dense similarity for the 300 SciFact train claims (steady traffic) and for 300 XQuAD
questions (queries from another data set: the planted drift).

* False alarms: one store holding ``windows`` + 24 hours of steady traffic; the monitor
  evaluates at the end of each of the last ``windows`` hours (current window: that hour;
  reference: the 24 hours before it), as ``serve`` would hourly. Reported: the share of
  evaluations in which any rule breached, per rule, and the alerts the AlertBook fired.
``--pools FILE`` keeps the two score pools in a JSON file (written on the first run, read on
the next: the ONNX index of the slice takes minutes on a busy machine).

* Detection: ``trials`` fresh stores, each a steady reference day then one faulty hour;
  reported: the share of trials in which the fault's rule breached at the first evaluation
  (within one window), and what else breached.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from common import REPO, commit, machine, today

sys.path.insert(0, str(REPO / "tests"))
import monitor_data
from ragkeel.clock import ManualClock
from ragkeel.embeddings import build_embedder
from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.models.cache import default_models_dir
from ragkeel.observability.monitor import AlertBook, Monitor, TraceWindows
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import EmbeddingSettings, MonitorSettings
from ragkeel.testing.traffic import TrafficProfile, traffic

HOUR, DAY = 3_600.0, 86_400.0
START = 1_796_000_000.0


def pools(embedder_name: str, root: Path) -> dict[str, tuple[float, ...]]:
    embedder: Embedder = (
        HashingEmbedder(256)
        if embedder_name == "hashing"
        else build_embedder(
            EmbeddingSettings(cache=False), models_dir=default_models_dir(), cache_dir=root
        )
    )
    claims, judged = monitor_data.scifact_train(300)
    t = time.perf_counter()
    retriever = monitor_data.index_scifact(root / "scifact", judged, 300, embedder)
    print(f"indexed {len(judged) + 300} abstracts in {time.perf_counter() - t:.0f} s", flush=True)
    try:
        return {
            "scifact": monitor_data.top_dense(retriever, claims),
            "xquad": monitor_data.top_dense(retriever, monitor_data.xquad_questions(300)),
        }
    finally:
        retriever.close()


def write(
    store: SqliteTraceStore,
    profile: TrafficProfile,
    n: int,
    start: float,
    end: float,
    rng: random.Random,
) -> None:
    for t in traffic(profile, n, start=start, end=end, rng=rng):
        store.record(t)


def false_alarms(steady: TrafficProfile, windows: int, per_hour: int, root: Path) -> None:
    store = SqliteTraceStore(root / "steady.db")
    rng = random.Random(11)
    hours = windows + 24
    write(store, steady, per_hour * hours, START, START + hours * HOUR, rng)
    settings = MonitorSettings()
    monitor = Monitor(settings, TraceWindows(store.path), clock=ManualClock(START))
    book = AlertBook(fire_after=settings.fire_after, resolve_after=settings.resolve_after)
    breaches: Counter[str] = Counter()
    any_breach = fired = 0
    no_data: Counter[str] = Counter()
    for h in range(24, hours):
        at = START + (h + 1) * HOUR
        e = monitor.evaluate(at)
        breached = {r.rule for r in e.breached}
        breaches.update(breached)
        no_data.update(r.rule for r in e.results if r.status == "no_data")
        any_breach += bool(breached)
        fired += sum(
            a.status == "firing" for a in book.update(e.results, window=e.current.span(), at=at)
        )
    store.close()
    print(
        f"\nfalse alarms over {windows} steady hourly windows ({per_hour} requests each, "
        f"reference 24 h = {per_hour * 24}):"
    )
    print("| evaluations with any rule breached | alerts fired (fire_after 1, resolve_after 3) |")
    print("|---|---|")
    print(f"| {any_breach} / {windows} ({any_breach / windows:.1%}) | {fired} |")
    print("\n| rule | breached evaluations | no_data |\n|---|---|---|")
    for rule in [r.rule for r in e.results]:
        print(f"| {rule} | {breaches[rule]} | {no_data[rule]} |")


def detection(
    steady: TrafficProfile,
    faults: dict[str, tuple[str, TrafficProfile]],
    trials: int,
    per_hour: int,
    root: Path,
) -> None:
    print(
        f"\ndetection within one window ({trials} trials each: a steady day, then the faulty hour):"
    )
    print("| fault | rule | detected | other rules breached (trials) |\n|---|---|---|---|")
    for name, (rule, faulty) in faults.items():
        hits = 0
        others: Counter[str] = Counter()
        for trial in range(trials):
            rng = random.Random(1_000 + trial)
            path = root / f"fault-{abs(hash(name))}-{trial}.db"
            store = SqliteTraceStore(path)
            write(store, steady, per_hour * 24, START, START + DAY, rng)
            write(store, faulty, per_hour, START + DAY, START + DAY + HOUR, rng)
            store.close()
            windows = TraceWindows(path)
            e = Monitor(MonitorSettings(), windows, clock=ManualClock(START)).evaluate(
                START + DAY + HOUR
            )
            windows.close()
            breached = {r.rule for r in e.breached}
            hits += rule in breached
            others.update(breached - {rule})
            path.unlink()
        extra = ", ".join(f"{r} ({n})" for r, n in others.most_common()) or "none"
        print(f"| {name} | {rule} | {hits} / {trials} | {extra} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embedder", choices=("onnx", "hashing"), default="onnx")
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--per-hour", type=int, default=240)
    ap.add_argument("--pools", type=Path, help="JSON file caching the score pools")
    args = ap.parse_args()
    print(f"# {today()} {machine()} commit {commit()}; embedder {args.embedder}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.pools is not None and args.pools.exists():
            p = {k: tuple(v) for k, v in json.loads(args.pools.read_text()).items()}
        else:
            p = pools(args.embedder, root)
            if args.pools is not None:
                args.pools.write_text(json.dumps(p))
        sci, xq = p["scifact"], p["xquad"]
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        print(
            f"top dense score: SciFact claims mean {mean(sci):.3f} (n {len(sci)}), "
            f"XQuAD questions mean {mean(xq):.3f} (n {len(xq)})"
        )
        gate = sorted(sci)[len(sci) // 10]  # about 10 % of steady questions cannot be answered
        steady = TrafficProfile(top_scores=sci, gate_threshold=gate)
        faults = {
            "queries from XQuAD (all)": ("score_drift", replace(steady, top_scores=xq)),
            "queries from XQuAD (half)": ("score_drift", replace(steady, top_scores=sci + xq)),
            "price 10x (a dearer model)": (
                "cost_spike",
                replace(steady, input_per_mtok=1.5, output_per_mtok=6.0),
            ),
            "price 2.5x": (
                "cost_spike",
                replace(steady, input_per_mtok=0.375, output_per_mtok=1.5),
            ),
            "latency 3x": ("latency_regression", replace(steady, latency_median_ms=2_700.0)),
            "latency 2x": ("latency_regression", replace(steady, latency_median_ms=1_800.0)),
            "grounded 0.9 -> 0.7": ("grounded_drift", replace(steady, grounded=0.7)),
            "errors 1% -> 10%": ("error_share", replace(steady, error=0.10)),
        }
        t = time.perf_counter()
        false_alarms(steady, args.windows, args.per_hour, root)
        detection(steady, faults, args.trials, args.per_hour, root)
        print(f"\n({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
