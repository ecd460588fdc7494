"""The evaluation harness's unit of work: an ``EvalCase`` (one question with what a good answer
looks like) inside an ``EvalDataset`` (the cases plus the corpus they are asked against).

Every loader (BEIR, SQuAD-style JSON such as XQuAD, CSV QA sets, ragkeel's own test-set JSONL)
produces these, so the runner, the metrics and the reports never look at a file format.

Relevance is given either as document ids (``relevant_doc_ids``, graded by ``qrels`` when the
source has grades: BEIR) or, for sets that name their source files rather than ids (the SEC
``qna.csv`` "Source Docs" glob), as ``relevant_source_globs`` matched (``fnmatch``, on the file
name) against ``Chunk.source``. A case with neither has no retrieval metrics (None, not 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Expect = Literal["answer", "cannot_answer"]
DatasetKind = Literal["beir", "squad", "csv_qa", "testset"]


@dataclass(frozen=True, slots=True)
class EvalCase:
    id: str  # unique within its data set
    question: str
    reference_answers: tuple[str, ...] = ()  # any of them is a correct answer (SQuAD: spans)
    relevant_doc_ids: tuple[str, ...] = ()
    relevant_source_globs: tuple[str, ...] = ()
    qrels: Mapping[str, int] = field(default_factory=dict)  # doc id -> grade (BEIR); else 1 each
    expect: Expect = "answer"
    output_schema: Mapping[str, Any] | None = None  # JSON schema the answer must validate against
    tags: tuple[str, ...] = ()
    # a follow-up in a conversation (issue 15): the user's earlier questions, oldest first;
    # the answerer makes ``question`` standalone from them (generation.condense)
    history: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """What to ingest before asking: paths (files, directories or globs) for the ingestion
    pipeline, into ``collection``. A loader that has to materialise its corpus (SQuAD contexts
    become a BEIR-style corpus.jsonl whose ``_id`` is the case's relevant document id) writes it
    under the run's work directory and points here."""

    paths: tuple[str, ...]
    collection: str


@dataclass(frozen=True, slots=True)
class EvalDataset:
    name: str
    kind: DatasetKind
    source: Path  # the file or folder read (for the report)
    sha256: str  # checksum of the source file(s): the report pins exactly what was evaluated
    cases: tuple[EvalCase, ...]
    corpus: CorpusSpec | None  # None: ask against whatever is already indexed
