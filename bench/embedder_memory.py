"""Peak RSS and throughput of the ONNX embedder by batch size, one process per batch size
(ru_maxrss only grows), on the first 256 SciFact abstracts (full 256-token passages).

    for b in 4 8 16 32; do .venv/bin/python bench/embedder_memory.py $b; done
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import DATASETS
from ragkeel.embeddings.onnx import OnnxEmbedder
from ragkeel.models.embedder_files import resolve_model_files


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    with tempfile.TemporaryDirectory() as tmp:
        files = resolve_model_files(Path(tmp))
        embedder = OnnxEmbedder(files.model_path, files.tokenizer_path, batch_size=batch)
        loaded = rss_mib()
        with (DATASETS / "scifact" / "corpus.jsonl").open() as fh:
            texts = [json.loads(line)["text"] for line, _ in zip(fh, range(256), strict=False)]
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "batch_size": batch,
                "rss_after_load_mib": round(loaded),
                "peak_rss_mib": round(rss_mib()),
                "passages_per_s": round(len(texts) / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
