"""What every policy wrapper shares, whatever the deployment serves.

A policy (retry, breaker, metering) sits around ONE deployment: a ``ChatModel``
(``gateway/base.py``) or a ``Reranker`` (``gateway/rerank.py``). Its generic part is written
once over a ``Deployment``: ``RetryingDeployment`` (``retry.py``), ``CircuitBreakerDeployment``
(``breaker.py``) and ``MeteredDeployment`` (``metering.py``) are ``Wrapper`` subclasses generic
in what they wrap, and the chat and rerank wrappers add only their protocol's own methods
(``complete``/``stream``, ``rerank``: ``rerank_policies.py``).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Deployment(Protocol):
    """What a policy wraps; all a policy needs of it whatever it serves is its name."""

    @property
    def name(self) -> str:
        """The deployment name, as the call log, traces and breakers know it."""
        ...


D = TypeVar("D", bound=Deployment)


class Wrapper(Generic[D]):
    """A policy around one deployment, ``inner``, named as it is (``name``)."""

    def __init__(self, inner: D) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name
