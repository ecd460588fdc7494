"""Copy throughput of ``ragkeel collections copy`` (issue 13): a SciFact-size collection copied
from one SQLite store to a fresh one (and to PostgreSQL with ``--to postgres:URL``), then copied
again (idempotent: nothing written), in chunks/s, with the peak RSS (memory stays bounded by a
batch).

    .venv/bin/python bench/collection_copy.py [--work DIR] [--limit N] [--embedder hashing|onnx]
        [--to sqlite:PATH|postgres:URL] [--batch-size 256]

The source is SciFact's corpus ingested once into ``DIR/source`` (kept between runs). The copy
never embeds, so the vectors' values do not matter to it: the default ``hashing`` embedder
(384 dimensions, as the default ONNX model) builds the source in seconds; ``--embedder onnx``
uses the real model. ``--limit N`` takes the first N documents (a bounded first run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, peak_rss_mib, today
from ragkeel.container import Container
from ragkeel.settings import load_settings
from ragkeel.storage.copy import copy_collections
from ragkeel.storage.locations import open_location, parse_location
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import DEFAULT_TENANT


def build_source(work: Path, limit: int | None, embedder: str) -> Path:
    """The source store (``work/source/ragkeel.db``), ingested once from SciFact's corpus."""
    home = work / "source"
    db = home / "ragkeel.db"
    if db.exists():
        return db
    corpus = DATASETS / "scifact" / "corpus.jsonl"
    if limit is not None:
        part = work / f"corpus-{limit}" / "corpus.jsonl"
        part.parent.mkdir(parents=True, exist_ok=True)
        with corpus.open() as src, part.open("w") as dst:
            for _, line in zip(range(limit), src, strict=False):
                dst.write(line)
        corpus = part
    with Container(load_settings(home=home, embedding={"provider": embedder})) as container:
        t0 = time.perf_counter()
        report = container.pipeline.ingest([str(corpus)], "scifact")
        print(
            f"source: {report.documents_written} documents, {report.chunks_written} chunks "
            f"ingested in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    return db


def copy_once(source_db: Path, target: str, batch_size: int) -> dict[str, float | int]:
    source = SqliteDocumentStore(source_db, segment_cache=False)
    dest = open_location(parse_location(target), must_exist=False)
    try:
        t0 = time.perf_counter()
        (done,) = copy_collections(
            source, dest, tenants=[DEFAULT_TENANT], collection="scifact", batch_size=batch_size
        )
        seconds = time.perf_counter() - t0
    finally:
        source.close()
        dest.close()
    return {
        "documents_written": done.written,
        "documents_unchanged": done.unchanged,
        "chunks_written": done.chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(done.chunks / seconds, 1) if done.chunks else 0.0,
        "documents_per_s": round(done.seen / seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "collection-copy")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--embedder", default="hashing", choices=["hashing", "onnx"])
    ap.add_argument("--to", default=None, help="default: sqlite:WORK/target/ragkeel.db (fresh)")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source_db = build_source(args.work, args.limit, args.embedder)
    target = args.to
    if target is None:
        shutil.rmtree(args.work / "target", ignore_errors=True)
        target = f"sqlite:{args.work / 'target' / 'ragkeel.db'}"
    out: dict[str, object] = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "embedder": args.embedder,
        "target": str(parse_location(target)),
        "batch_size": args.batch_size,
    }
    out["first_copy"] = copy_once(source_db, target, args.batch_size)
    print(json.dumps(out["first_copy"]), flush=True)
    out["second_copy"] = copy_once(source_db, target, args.batch_size)
    out["peak_rss_mib"] = round(peak_rss_mib(), 1)
    (args.work / "result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
