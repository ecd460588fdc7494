"""Hostile files (issues 9 and 11): build each one on the fly, ingest it in a fresh subprocess
through both paths — the ingestion pipeline ``ragkeel ingest`` runs, and ``POST /v1/documents``
over the ASGI app — and record the outcome (status and error code), wall time, peak memory, and
whether what was stored before is still there (and, over HTTP, whether ``/healthz`` and
``/readyz`` still answer 200).

    .venv/bin/python bench/hostile_files.py [--before /work/main/src] [--timeout 180]
        [--cap-gib 4] [--only NAME,...] [--via pipeline|http]

Each measurement is its own process (``PYTHONPATH`` = the code tree measured): the parsers,
python-docx and pdfplumber are imported and an untimed warm-up ingest runs first (it is the
"stored before" document), then the file is ingested once; time is the ``pipeline.ingest`` call
(or the ``POST /v1/documents`` round trip), memory is ``ru_maxrss`` (peak RSS) of the process,
with the RSS before the timed call alongside. ``--before SRC`` measures another code tree the
same way (e.g. main before the fix). Children run with ``RLIMIT_AS`` = ``--cap-gib`` GiB so a
bomb cannot take the machine (it gets ``MemoryError`` instead) and are killed after
``--timeout`` seconds. Files are written to bench/out/hostile/ (ignored by git; the largest is
50 MB); rows print as a markdown table and go to bench/out/hostile_files.json. Upload names
that are attacks themselves (path traversal, absolute paths, NUL) are sent over HTTP only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import DATASETS, REPO, commit, machine, today

OUT = REPO / "bench" / "out" / "hostile"
MIB = 1024 * 1024

_CHILD = r"""
import io, json, os, resource, sys, tempfile, time
from pathlib import Path

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, mode, upload_name = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
home = Path(tempfile.mkdtemp(prefix="hostile-home-"))
os.environ["RAGKEEL_HOME"] = str(home)
from ragkeel.container import Container
from ragkeel.settings import load_settings
import ragkeel.ingestion.parsers.docx, ragkeel.ingestion.parsers.pdf  # noqa: imports untimed
import ragkeel.ingestion.parsers.html, ragkeel.ingestion.parsers.jsonfmt  # noqa
settings = load_settings(home=home, embedding={"provider": "hashing", "cache": False})
container = Container(settings)
warm = home / "warm.md"
warm.write_text("# Warm-up\n\nOne paragraph so every component is built before timing.\n")
out = {}
if mode == "http":
    from fastapi.testclient import TestClient
    from ragkeel.api import create_app
    with TestClient(create_app(container)) as client:
        client.post("/v1/documents", files=[("files", ("warm.md", warm.read_bytes()))])
        data = path.read_bytes()
        before = rss_mib()
        t0 = time.perf_counter()
        try:
            r = client.post("/v1/documents", files=[("files", (upload_name, data))])
            body = r.json()
            files = body.get("files") or [{}]
            code = body.get("code") or files[0].get("error_code") or files[0].get("status")
            out = {"status": r.status_code, "code": code, "message": body.get("detail", ""),
                   "stored_as": Path(files[0].get("source") or "-").name}
        except MemoryError:
            out = {"status": "-", "code": "MemoryError", "message": "MemoryError"}
        seconds = time.perf_counter() - t0
        listed = client.get("/v1/documents").json()
        out["kept"] = any(d["filename"] == "warm.md" for d in listed.get("documents", []))
        out["healthy"] = (client.get("/healthz").status_code == 200
                          and client.get("/readyz").status_code == 200)
else:
    container.pipeline.ingest([str(warm)], "warm")
    before = rss_mib()
    t0 = time.perf_counter()
    try:
        report = container.pipeline.ingest([str(path)])
        (f,) = [f for f in report.files if f.path.endswith(path.name)]
        out = {"status": f.status, "code": f.error_code or f.status, "message": f.error_message or ""}
    except MemoryError:
        out = {"status": "-", "code": "MemoryError", "message": "MemoryError"}
    seconds = time.perf_counter() - t0
    out["kept"] = bool(container.store.documents_by_source("warm"))
out.update(seconds=seconds, rss_before_mib=before, peak_rss_mib=rss_mib())
print("RESULT " + json.dumps(out), flush=True)
os._exit(0)
"""


Case = tuple[Callable[[], bytes], tuple[str, ...], str | None]  # build, paths, upload name
BOTH = ("pipeline", "http")


def _files() -> dict[str, Case]:
    from ragkeel.ingestion import testing as hostile

    def docx_25mb() -> bytes:  # 7 members of ~3.4 GB each: ~24 MB, under the 25 MiB body limit
        return hostile.docx_bomb(3400 * MIB, members=7)

    def csv_line(size: int) -> Callable[[], bytes]:
        return lambda: b"region,notes\nEurope," + b"x" * size + b"\n"

    note = b"# Notes\n\nRotate every API key every ninety days.\n"
    lone = (
        b'{"_id": "\\ud800", "text": "a lone surrogate id"}\n'
        b'{"_id": "a\\u0000b", "text": "a NUL in the id"}\n'
        b'{"_id": "fine", "text": "kept", "tag": "x\\u0000\\udc00y", "n": NaN}\n'
    )
    return {
        "docx-bomb-1GiB.docx": (lambda: hostile.docx_bomb(1024 * MIB), BOTH, None),
        "docx-bomb-25MB.docx": (docx_25mb, BOTH, None),
        "docx-lying-header.docx": (
            lambda: hostile.docx_lying_header(1024 * MIB, declared_bytes=20_000),
            BOTH,
            None,
        ),
        "docx-lying-header-prefix-crc.docx": (
            lambda: hostile.docx_lying_header(1024 * MIB, declared_bytes=20_000, prefix_crc=True),
            ("pipeline",),
            None,
        ),
        "pdf-10000-pages.pdf": (lambda: hostile.pdf_pages(10_000), BOTH, None),
        "pdf-nested-array-100k.pdf": (
            lambda: hostile.pdf_nested(100_000, kind="array"),
            BOTH,
            None,
        ),
        "pdf-nested-dict-100k.pdf": (lambda: hostile.pdf_nested(100_000, kind="dict"), BOTH, None),
        "pdf-page-tree-5000.pdf": (
            lambda: hostile.pdf_nested(5_000, kind="page-tree"),
            BOTH,
            None,
        ),
        "deep-100k.json": (lambda: hostile.nested_json(100_000), BOTH, None),
        "deep-100k.html": (lambda: hostile.nested_html(100_000), BOTH, None),
        "csv-line-20MB.csv": (csv_line(20 * MIB), BOTH, None),
        "csv-line-50MB.csv": (csv_line(50 * MIB), BOTH, None),  # over the 25 MiB body limit
        "nul-bytes.txt": (lambda: b"Rotate\x00every\x00key.\n" * 1000, BOTH, None),
        "lone-surrogates.jsonl": (lambda: lone, BOTH, None),
        "traversal.md": (lambda: note, ("http",), "../../../../etc/cron.d/evil.md"),
        "absolute.md": (lambda: note, ("http",), "/etc/passwd.md"),
        "windows-traversal.md": (lambda: note, ("http",), "..\\..\\C:\\evil.md"),
        "nul-in-name.md": (lambda: note, ("http",), "evil\x00.md"),
        "on-call-handbook.docx": (
            lambda: (REPO / "examples" / "on-call-handbook.docx").read_bytes(),
            BOTH,
            None,
        ),
        "quarterly-report-q2-2024.pdf": (
            lambda: (REPO / "examples" / "quarterly-report-q2-2024.pdf").read_bytes(),
            BOTH,
            None,
        ),
        "2022 Q3 AAPL.pdf": (  # a real 10-Q, the controls' heavy case
            lambda: (DATASETS / "sec-10q-sample" / "docs" / "2022 Q3 AAPL.pdf").read_bytes(),
            ("pipeline",),
            None,
        ),
    }


def _measure(
    path: Path, mode: str, upload_name: str, src: Path, timeout: float, cap_gib: float
) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("RAGKEEL_CONFIG", None)
    cap = int(cap_gib * 1024**3)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    t0 = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), mode, json.dumps(upload_name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"code": f"killed after {timeout:.0f} s", "seconds": timeout, "peak_rss_mib": None}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, object] = json.loads(line[len("RESULT ") :])
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "code": f"crashed (exit {done.returncode}): {tail[:120]}",
        "seconds": time.perf_counter() - t0,
        "peak_rss_mib": None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, help="another src/ tree to measure the same way")
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--cap-gib", type=float, default=4.0)
    ap.add_argument("--only", default="", help="comma-separated file names")
    ap.add_argument("--via", choices=["pipeline", "http"], help="one path only")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    trees = [("after", REPO / "src")] + ([("before", args.before)] if args.before else [])
    wanted = {n for n in args.only.split(",") if n}
    rows = []
    for name, (build, modes, upload_name) in _files().items():
        if wanted and name not in wanted:
            continue
        path = OUT / name
        if not path.exists():
            path.write_bytes(build())
        for mode in modes:
            if args.via and mode != args.via:
                continue
            row: dict[str, object] = {
                "file": name if upload_name is None else repr(upload_name),
                "bytes": path.stat().st_size,
                "mode": mode,
            }
            for label, src in trees:
                row[label] = _measure(
                    path, mode, upload_name or name, src, args.timeout, args.cap_gib
                )
                print(name, mode, label, row[label], file=sys.stderr, flush=True)
            rows.append(row)
    (REPO / "bench" / "out" / "hostile_files.json").write_text(
        json.dumps(
            {"date": today(), "commit": commit(), "machine": machine(), "rows": rows}, indent=2
        )
    )
    _print_table(rows, [label for label, _ in trees])


def _print_table(rows: list[dict[str, object]], labels: list[str]) -> None:
    head = "| file | size | via |"
    rule = "|---|---:|---|"
    for label in labels:
        head += f" {label}: outcome | time (s) | peak RSS (MiB) | kept | healthy |"
        rule += "---|---:|---:|---|---|"
    print(head)
    print(rule)
    for row in rows:
        size = int(str(row["bytes"]))
        shown = f"{size / MIB:.2f} MB" if size >= MIB // 100 else f"{size} B"
        line = f"| {row['file']} | {shown} | {row['mode']} |"
        for label in labels:
            r = row[label]
            assert isinstance(r, dict)
            peak = r.get("peak_rss_mib")
            status, code = r.get("status"), r.get("code")
            code = f"{status} {code}" if status and status != code else code
            if r.get("stored_as") and r.get("code") in ("ingested", "partial"):
                code = f"{code} as {r['stored_as']}"
            healthy = {True: "yes", False: "**no**"}.get(r.get("healthy"), "—")
            kept = {True: "yes", False: "**no**"}.get(r.get("kept"), "—")
            line += (
                f" {code} | {float(r.get('seconds') or 0):.3f} |"
                f" {f'{peak:.0f}' if isinstance(peak, int | float) else '—'} |"
                f" {kept} | {healthy} |"
            )
        print(line)


if __name__ == "__main__":
    main()
