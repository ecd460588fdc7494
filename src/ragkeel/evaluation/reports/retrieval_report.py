"""Retrieval evaluation reports: one JSON document per run, and a plain-text table for people.

The JSON is written atomically (temporary file in the same directory, fsync, rename), so a
gate or dashboard reading it never sees half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ragkeel.errors import DatasetError

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RetrievalReport:
    """The outcome of evaluating one retrieval mode on one data set split.

    ``metrics`` holds the means from :func:`ragkeel.evaluation.metrics.retrieval.evaluate`;
    ``settings`` is a JSON-compatible snapshot of the configuration that produced them (values
    that are not JSON types are written with ``str()``, so secret types stay masked).
    """

    dataset: str
    split: str
    mode: str
    k: int
    n_queries: int
    metrics: dict[str, float]
    latency_p50_ms: float
    latency_p95_ms: float
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return {"schema_version": SCHEMA_VERSION, **out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RetrievalReport:
        """Parse what :meth:`to_json` wrote; :class:`DatasetError` if it is not such a report."""
        try:
            data = json.loads(text)
            if data.pop("schema_version") != SCHEMA_VERSION:
                raise ValueError("unsupported schema_version")
            data["created_at"] = datetime.fromisoformat(data["created_at"])
            return cls(**data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(
                f"not a retrieval report (schema {SCHEMA_VERSION}): {exc}",
                hint="reports are written by RetrievalReport.write_json",
            ) from exc

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path`` atomically, creating parent directories."""
        write_text_atomic(path, self.to_json())

    def render_table(self) -> str:
        """A fixed-width plain-text table: one metric a row, then the latencies."""
        rows = [(name, f"{value:.4f}") for name, value in self.metrics.items()]
        rows += [
            ("latency p50", f"{self.latency_p50_ms:.1f} ms"),
            ("latency p95", f"{self.latency_p95_ms:.1f} ms"),
        ]
        name_width = max(len("metric"), *(len(name) for name, _ in rows))
        value_width = max(len("value"), *(len(value) for _, value in rows))
        title = (
            f"{self.dataset}/{self.split}  mode={self.mode}  k={self.k}  "
            f"queries={self.n_queries}  {self.created_at:%Y-%m-%d %H:%M:%S %Z}"
        )
        lines = [
            title.rstrip(),
            f"{'metric':<{name_width}}  {'value':>{value_width}}",
            f"{'-' * name_width}  {'-' * value_width}",
            *(f"{name:<{name_width}}  {value:>{value_width}}" for name, value in rows),
        ]
        return "\n".join(lines) + "\n"


def latency_percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) of per-query latencies, linear interpolation; (0, 0) for no samples."""
    if not samples_ms:
        return 0.0, 0.0
    p50, p95 = np.percentile(np.asarray(samples_ms, dtype=float), [50, 95])
    return float(p50), float(p95)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
