"""From a data set entry of the eval config to an :class:`EvalDataset` ready to ingest and ask:
the loader for its ``kind``, then the run's own collection ``eval-<name>`` (so two data sets
never share an index), then, for a BEIR set with ``corpus_sample: N``, a smaller corpus.

The corpus sample keeps every document judged for the sampled queries plus N distractors drawn
with ``random.Random(seed)`` from the other ids sorted, so it is the same for the same file,
cases and seed. It is written (only when it changed) to ``<work_dir>/<name>/corpus.jsonl``:
the run's incremental ingest then skips it entirely on the next run. Retrieval metrics on a
sampled corpus are higher than on the full one (fewer distractors); the config says so.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path

from ragkeel.errors import DatasetError
from ragkeel.evaluation.cases import CorpusSpec, EvalDataset
from ragkeel.evaluation.datasets.files import malformed, write_if_changed
from ragkeel.evaluation.datasets.loaders import (
    load_beir_cases,
    load_csv_qa,
    load_squad,
    load_testset,
)
from ragkeel.evaluation.run.config import DatasetConfig

COLLECTION_PREFIX = "eval-"


def load_dataset(entry: DatasetConfig, work_dir: Path, *, limit: int | None = None) -> EvalDataset:
    """Load ``entry``; ``limit`` (the CLI's ``--limit``) caps its cases below the config's."""
    cap = min((x for x in (entry.limit, limit) if x is not None), default=None)
    own_dir = work_dir / entry.name
    collection = COLLECTION_PREFIX + entry.name
    seed = entry.seed
    if entry.kind == "beir":
        dataset = load_beir_cases(
            entry.path, entry.split, limit=cap, seed=seed, collection=collection
        )
    elif entry.kind == "squad":
        dataset = load_squad(
            entry.path, limit=cap, seed=seed, work_dir=own_dir, collection=collection
        )
    elif entry.kind == "csv_qa":
        assert entry.docs is not None  # checked by DatasetConfig
        dataset = load_csv_qa(
            entry.path, docs_dir=entry.docs, limit=cap, seed=seed, collection=collection
        )
    else:
        dataset = load_testset(
            entry.path, corpus_paths=entry.corpus, limit=cap, seed=seed, collection=collection
        )
    if entry.cases is not None:  # other questions of this corpus (issue 15: conversations)
        asked = load_testset(entry.cases, limit=cap, seed=seed)
        pinned = f"{dataset.sha256}\t{asked.sha256}\n".encode()  # the corpus and the questions
        dataset = replace(
            dataset,
            cases=asked.cases,
            source=entry.cases,
            sha256=hashlib.sha256(pinned).hexdigest(),
        )
    dataset = replace(dataset, name=entry.name)
    if entry.ask_in is not None:
        return as_negatives(dataset, COLLECTION_PREFIX + entry.ask_in, entry.ask_in)
    if entry.corpus_sample is not None:
        dataset = sample_beir_corpus(
            dataset, entry.path / "corpus.jsonl", entry.corpus_sample, entry.seed, own_dir
        )
    return dataset


def as_negatives(dataset: EvalDataset, collection: str, target: str) -> EvalDataset:
    """``dataset``'s questions asked in ``collection`` (another data set's index), where they
    have no answer: each case expects "cannot answer", keeps no reference or relevance, and is
    tagged ``out_of_scope``. Nothing of ``dataset`` is ingested."""
    cases = tuple(
        replace(
            c,
            expect="cannot_answer",
            reference_answers=(),
            relevant_doc_ids=(),
            relevant_source_globs=(),
            qrels={},
            output_schema=None,
            tags=(*c.tags, "out_of_scope", f"asked_in_{target}"),
        )
        for c in dataset.cases
    )
    return replace(dataset, cases=cases, corpus=CorpusSpec((), collection))


def sample_beir_corpus(
    dataset: EvalDataset, corpus_path: Path, n_distractors: int, seed: int, out_dir: Path
) -> EvalDataset:
    """``dataset`` with its corpus cut to the judged documents plus ``n_distractors``."""
    judged = {doc for case in dataset.cases for doc in (*case.qrels, *case.relevant_doc_ids)}
    records = _corpus_records(corpus_path)
    others = sorted(doc_id for doc_id in records if doc_id not in judged)
    keep = judged | set(random.Random(seed).sample(others, min(n_distractors, len(others))))
    content = b"".join(line for doc_id, line in records.items() if doc_id in keep)
    out = out_dir / "corpus.jsonl"
    write_if_changed(out, content)
    return replace(dataset, corpus=CorpusSpec((str(out),), COLLECTION_PREFIX + dataset.name))


def _corpus_records(path: Path) -> dict[str, bytes]:
    """Document id -> its raw line (newline-terminated), in file order."""
    records: dict[str, bytes] = {}
    try:
        with path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    doc_id = json.loads(raw)["_id"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise malformed(path, line_no, "expected a JSON object with an _id") from exc
                records[str(doc_id)] = raw if raw.endswith(b"\n") else raw + b"\n"
    except OSError as exc:
        raise DatasetError(f"cannot read the BEIR corpus {path}: {exc.strerror}") from exc
    return records
