"""Ingest the five SEC 10-Q PDFs of ../shared/datasets/sec-10q-sample with the default embedder:
parse time per file, chunks, total time, and a table row as it comes out in a chunk.

    .venv/bin/python bench/sec_pdfs.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, peak_rss_mib, today
from ragkeel.container import Container
from ragkeel.ingestion.parsers import parse_source
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter

DOCS = DATASETS / "sec-10q-sample" / "docs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "sec-home")
    args = ap.parse_args()
    if args.home.exists():
        shutil.rmtree(args.home)
    pdfs = sorted(DOCS.glob("*.pdf"))
    parse: dict[str, dict[str, float]] = {}
    for pdf in pdfs:
        t0 = time.perf_counter()
        outcome = parse_source(pdf, max_bytes=100 * 2**20)
        doc = outcome.documents[0]
        parse[pdf.name] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "pages": int(doc.metadata.get("pages", 0)),
            "tables": sum(1 for b in doc.blocks if b.kind == "table"),
        }
        print(pdf.name, parse[pdf.name], flush=True)
    container = Container(load_settings(home=args.home))
    t0 = time.perf_counter()
    report = container.pipeline.ingest([str(p) for p in pdfs], "sec")
    total = time.perf_counter() - t0
    result = container.retriever.search(
        "Total net sales Products Services three months ended",
        3,
        mode="bm25",
        flt=Filter(collection="sec"),
    )
    rows = [
        line for h in result.hits for line in h.chunk.text.splitlines() if "Total net sales" in line
    ]
    out = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "parse": parse,
        "ingest_seconds": round(total, 1),
        "embed_seconds": round(report.embed_seconds, 1),
        "documents": report.documents_written,
        "chunks": report.chunks_written,
        "exit_code": report.exit_code,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "example_table_rows": rows[:3],
    }
    print(json.dumps(out, indent=2))
    container.close()


if __name__ == "__main__":
    main()
