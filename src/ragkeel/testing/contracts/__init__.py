"""The shared contract suites, one module per Protocol (see ``ragkeel.testing``): import pytest,
so they need the ``dev`` extra. Subclass a suite as ``Test...`` and override its one fixture."""
