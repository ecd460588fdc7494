"""The ragkeel error tree. Every error a user can see carries a stable ``code``.

::

    RagkeelError                      code            meaning
    ├── ConfigError                   CONFIG_INVALID  a setting has a bad value (names key and value)
    ├── IngestError                   (per subclass)  one file/record could not be ingested
    │   ├── UnsupportedTypeError      UNSUPPORTED_TYPE
    │   ├── ParseError                PARSE_ERROR
    │   ├── DecodeError               DECODE_ERROR
    │   ├── EmptyDocumentError        EMPTY
    │   ├── TooLargeError             TOO_LARGE       over a size bound (bytes, inflated bytes, pages...)
    │   │   └── ParseTimeoutError     PARSE_TIMEOUT   parsing ran past ingestion.max_parse_seconds
    │   ├── EncryptedError            ENCRYPTED
    │   ├── ReadError                 READ_ERROR      the file exists but cannot be read (permissions, I/O)
    │   └── OutsideRootError          SYMLINK_OUTSIDE_ROOT  a symlink leaving the ingested roots (skipped)
    ├── ModelError                    MODEL_MISSING / MODEL_CHECKSUM
    ├── EmbeddingError                EMBEDDING_FAILED  an embedder (usually remote) failed
    ├── StorageError                  STORE_ERROR
    ├── FilterError                   FILTER_INVALID
    ├── QueryError                    QUERY_INVALID
    └── DatasetError                  DATASET_INVALID  an evaluation data set is missing or malformed
        └── DatasetMismatchError      DATASET_MISMATCH two runs compared on different data (evaluation/reports/gate.py)

Messages say what went wrong *and* what to do. Errors are never swallowed: the ingestion
pipeline records per-file errors in its report (and the CLI exit status), it does not drop them.
"""

from __future__ import annotations


class RagkeelError(Exception):
    """Root of every error ragkeel raises on purpose."""

    code: str = "RAGKEEL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class ConfigError(RagkeelError):
    code = "CONFIG_INVALID"


class IngestError(RagkeelError):
    """A single source (file or record) could not be ingested; the rest of the batch goes on."""

    code = "INGEST_ERROR"


class UnsupportedTypeError(IngestError):
    code = "UNSUPPORTED_TYPE"


class ParseError(IngestError):
    code = "PARSE_ERROR"


class DecodeError(IngestError):
    code = "DECODE_ERROR"


class EmptyDocumentError(IngestError):
    code = "EMPTY"


class TooLargeError(IngestError):
    code = "TOO_LARGE"


class ParseTimeoutError(TooLargeError):
    """Parsing one file took longer than its bound: too much work, like a file too large."""

    code = "PARSE_TIMEOUT"


class EncryptedError(IngestError):
    code = "ENCRYPTED"


class ReadError(IngestError):
    code = "READ_ERROR"


class OutsideRootError(IngestError):
    """A symlink found while expanding ingest arguments leads outside them; it is skipped
    (reported, not failed) unless symlinks are followed on purpose."""

    code = "SYMLINK_OUTSIDE_ROOT"


class ModelError(RagkeelError):
    code = "MODEL_MISSING"


class ModelChecksumError(ModelError):
    code = "MODEL_CHECKSUM"


class EmbeddingError(RagkeelError):
    code = "EMBEDDING_FAILED"


class StorageError(RagkeelError):
    code = "STORE_ERROR"


class FilterError(RagkeelError):
    code = "FILTER_INVALID"


class QueryError(RagkeelError):
    code = "QUERY_INVALID"


class DatasetError(RagkeelError):
    code = "DATASET_INVALID"
