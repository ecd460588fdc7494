"""What an ingest run did, file by file: the CLI prints it, ``--json`` emits it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ragkeel.errors import RagkeelError

FileStatus = Literal["ingested", "unchanged", "partial", "failed", "skipped", "pruned"]


@dataclass(slots=True)
class FileResult:
    path: str
    status: FileStatus
    documents: int = 0  # documents written (new or changed)
    unchanged: int = 0  # documents skipped because their content hash matched
    chunks: int = 0
    error_code: str | None = None
    error_message: str | None = None
    record_errors: list[dict[str, str]] = field(default_factory=list)
    error: type[RagkeelError] | None = field(default=None, repr=False)  # the failure's class

    def failed_with(self, error: RagkeelError) -> None:
        """Record ``error`` (its class, code and message) as this file's failure."""
        self.error, self.error_code, self.error_message = type(error), error.code, str(error)


@dataclass(slots=True)
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    documents_written: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    chunks_written: int = 0
    embedded_texts: int = 0  # texts sent to the embedder (0 on an unchanged re-ingest)
    embed_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ("failed", "partial")]

    @property
    def succeeded(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ("ingested", "unchanged", "partial")]

    @property
    def exit_code(self) -> int:
        """0: every file succeeded; 3: some failed; 1: nothing could be ingested."""
        if not self.failed:
            return 0
        return 3 if self.succeeded else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for file in data["files"]:
            del file["error"]  # a class: what it means is in error_code
        data["exit_code"] = self.exit_code
        return data
