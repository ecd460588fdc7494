"""Test tooling that ships in the package (like pydantic-ai's ``TestModel`` and Haystack's
``DocumentStoreBaseTests``). Production code never imports it (an import-linter contract in
``pyproject.toml`` forbids it).

* ``FaultServer`` (``fault_server``, ``faults``, ``handler``): an OpenAI-compatible chat server
  on 127.0.0.1 with faults a test switches while it runs (latency, error rate and kind, resets,
  hangs, hard down, mid-stream disconnect); used by the gateway's scenario tests and ``bench/``.
  It also answers ``/rerank`` in the Cohere, Jina and TEI shapes (``rerank_replies``: a
  word-overlap scorer, or a malformed body). Needs nothing beyond the package's own
  dependencies.
* ``services`` (PostgreSQL + pgvector, Redis), ``replicas`` (``ragkeel serve`` processes by
  PID), ``proxy`` (a round-robin TCP proxy) and ``cluster`` (``make cluster``: all of it, with
  the model server and the workers): real processes on loopback, started and stopped by PID
  (issue 13).
* ``contracts``: the shared contract suites, one per Protocol — ``store`` (document store),
  ``keyword_index``, ``vector_index``, ``embedder``, ``chat_model``, ``breaker_store``,
  ``trace_store``, ``reranker``. Each is a class of pytest tests against the Protocol only; a
  backend passes by subclassing it as ``Test...`` with one fixture that builds the backend.
  They run from ``tests/storage/test_contract.py``, ``tests/embeddings/test_embedder_contract.py``,
  ``tests/gateway/test_chat_model_contract.py``, ``tests/gateway/test_breaker.py``,
  ``tests/observability/test_trace_store.py`` and ``tests/gateway/test_rerank_http.py`` /
  ``test_rerank_stack.py`` over every backend that exists. These import pytest: they need the
  ``dev`` extra.
"""

from ragkeel.testing.fault_server import FaultServer
from ragkeel.testing.faults import ERROR_KINDS, ErrorKind, FaultSettings, FaultStats

__all__ = ["ERROR_KINDS", "ErrorKind", "FaultServer", "FaultSettings", "FaultStats"]
