"""Test tooling that ships in the package (like pydantic-ai's ``TestModel``): used by the
gateway's scenario tests and by ``bench/`` scripts.

``FaultServer`` is an OpenAI-compatible chat server on 127.0.0.1 with faults a test switches
while it runs (latency, error rate and kind, resets, hangs, hard down, mid-stream disconnect).
"""

from ragkeel.gateway.testing.fault_server import FaultServer
from ragkeel.gateway.testing.faults import ERROR_KINDS, ErrorKind, FaultSettings, FaultStats

__all__ = ["ERROR_KINDS", "ErrorKind", "FaultServer", "FaultSettings", "FaultStats"]
