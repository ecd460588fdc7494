"""Parsing in worker processes (issue 14): the same report, error codes and stored chunks as
parsing in the ingesting process; a worker that dies costs no file; settings reach it."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ragkeel.container import Container
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import ConfigError
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.parallel import parse_one, parsed_in_order
from ragkeel.ingestion.parsers import ParseLimits, ParseOutcome
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.settings import load_settings
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import DEFAULT_TENANT, AccessScope

BuildPdf = Callable[..., Path]
MIB = 2**20


def _mixed_files(tmp_path: Path, build_pdf: BuildPdf) -> list[Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Keys\n\nRotate the API key every ninety days.\n")
    (docs / "b.txt").write_text("Upstream outage postmortem.\n\nFallbacks served answers.\n")
    report = build_pdf("c-report.pdf", pages=4)
    (docs / "c-report.pdf").write_bytes(report.read_bytes())
    data = report.read_bytes()
    (docs / "d-cut.pdf").write_bytes(data[: len(data) // 2])  # PARSE_ERROR
    locked = build_pdf("e-locked.pdf", user_password="s3cret")  # ENCRYPTED
    (docs / "e-locked.pdf").write_bytes(locked.read_bytes())
    (docs / "f-empty.txt").write_text("")  # EMPTY
    (docs / "g.json").write_text('[{"id": "x1", "text": "A record about billing."}]')
    return sorted(docs.iterdir())


def _ingest(root: Path, files: list[Path], workers: int) -> tuple[list[tuple[str, ...]], set[str]]:
    store = SqliteDocumentStore(root / "db" / "ragkeel.db")
    try:
        embedder = HashingEmbedder(64)
        pipeline = IngestionPipeline(
            store,
            embedder,
            Chunker(embedder.tokenizer, 64, 0.15),
            max_file_bytes=10 * MIB,
            embed_batch_chunks=4,  # several embedding batches while the workers parse
            parse_workers=workers,
        )
        report = pipeline.ingest([str(f) for f in files], "docs")
        outcome = [
            (Path(f.path).name, f.status, f.error_code or "", str(f.chunks)) for f in report.files
        ]
        scope = AccessScope(DEFAULT_TENANT, all_principals=True)
        stored = {
            f"{Path(d.document.source).name}|{d.document.title}|{c.page}|{c.text}"
            for d in store.iter_documents("docs", scope=scope)
            for c in d.chunks
        }
        return outcome, stored
    finally:
        store.close()


def test_workers_give_the_same_report_and_chunks_as_in_process(
    tmp_path: Path, build_pdf: BuildPdf
) -> None:
    files = _mixed_files(tmp_path, build_pdf)
    here = _ingest(tmp_path / "here", files, workers=0)
    parallel = _ingest(tmp_path / "parallel", files, workers=2)
    assert parallel == here
    codes = {name: code for name, _, code, _ in here[0]}
    assert codes == {
        "a.md": "",
        "b.txt": "",
        "c-report.pdf": "",
        "d-cut.pdf": "PARSE_ERROR",
        "e-locked.pdf": "ENCRYPTED",
        "f-empty.txt": "EMPTY",
        "g.json": "",
    }
    assert any(text.startswith("c-report.pdf|") for text in here[1])
    assert not multiprocessing.active_children()  # the pool is gone with the ingest


def test_parse_limits_and_deadline_apply_in_the_workers(
    tmp_path: Path, build_pdf: BuildPdf
) -> None:
    files = [build_pdf(f"r{i}.pdf", pages=3) for i in range(3)]
    timed_out = list(
        parsed_in_order(
            files, workers=2, max_bytes=10 * MIB, limits=ParseLimits(max_parse_seconds=1e-9)
        )
    )
    assert [(p.name, getattr(o, "code", None)) for p, o in timed_out] == [
        (f"r{i}.pdf", "PARSE_TIMEOUT") for i in range(3)
    ]
    message = str(timed_out[0][1])
    assert "stopped at page 1 of 3" in message and "max_parse_seconds" in message
    too_many = list(
        parsed_in_order(files, workers=2, max_bytes=10 * MIB, limits=ParseLimits(max_pdf_pages=2))
    )
    assert {getattr(o, "code", None) for _, o in too_many} == {"TOO_LARGE"}


def test_a_worker_that_dies_costs_no_file(tmp_path: Path, build_pdf: BuildPdf) -> None:
    """Kill the pool's processes while files are in flight: each of those files is parsed
    again alone, and every file comes out as parsing in-process gives it."""
    files = [build_pdf(f"big{i}.pdf", pages=24) for i in range(4)]
    limits = ParseLimits()
    results: Iterator[tuple[Path, object]] = parsed_in_order(
        files, workers=2, max_bytes=10 * MIB, limits=limits
    )
    got = [next(results)]
    killed = 0
    for child in multiprocessing.active_children():
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
            killed += 1
    got.extend(results)
    assert killed >= 1
    assert [p.name for p, _ in got] == [f.name for f in files]
    for path, outcome in got:
        assert isinstance(outcome, ParseOutcome), outcome
        assert outcome == parse_one(path, 10 * MIB, limits)
    assert not multiprocessing.active_children()


def test_parse_workers_setting(tmp_path: Path) -> None:
    def workers(value: object) -> int:
        settings = load_settings(
            home=tmp_path / str(value),
            embedding={"provider": "hashing", "cache": False},
            ingestion={"parse_workers": value},
        )
        container = Container(settings)
        try:
            return container.pipeline.parse_workers
        finally:
            container.close()

    assert workers(0) == 0 and workers(3) == 3
    assert 1 <= workers("auto") <= 4
    with pytest.raises(ConfigError, match="parse_workers"):
        load_settings(home=tmp_path, ingestion={"parse_workers": -1})
