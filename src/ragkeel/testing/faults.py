"""What a ``FaultServer`` does (``FaultSettings``) and what it saw (``FaultStats``).

Kept apart from the server so a test or a bench script can build, compare and print settings
without starting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

ErrorKind = Literal["429", "500", "503", "reset", "hang", "400", "401", "403"]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)
# a 200 /rerank answer that is no ranking of the documents sent (issue 15; rerank_replies.py)
RerankFault = Literal[
    "not_json", "no_results", "index_out_of_range", "index_twice", "nan_score", "too_few"
]
RERANK_FAULTS: tuple[str, ...] = get_args(RerankFault)
HTTP_ERRORS: Mapping[str, int] = {
    "429": 429,
    "500": 500,
    "503": 503,
    "400": 400,
    "401": 401,
    "403": 403,
}


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """The server's behaviour; replaced as a whole (``FaultServer.set``), read once per request.

    * ``base_latency_s`` — wait before the response headers (a slow model).
    * ``token_delay_s`` — wait before each streamed piece (JSON answers wait once per piece too,
      so a slow stream and a slow completion take the same time).
    * ``reply`` — the answer; streamed piece by piece (a word or a punctuation mark).
    * ``error_rate`` / ``error`` — share of requests that fail, and how: an HTTP status, a
      ``"reset"`` (RST, SO_LINGER 0) or a ``"hang"`` (no answer until the client goes away).
    * ``retry_after_s`` — ``Retry-After`` header on 429 and 503 when set.
    * ``down`` — hard down: every new connection and every request on a kept-alive one is
      reset at once, before the request is read (clients fail fast with a connection error).
    * ``disconnect_after`` — streams only: close the connection after that share of the pieces
      (at least one piece is sent, never all of them, never ``[DONE]``).
    * ``rerank_fault`` — ``/rerank`` only: answer 200 with that malformed body instead of the
      ranking (``RERANK_FAULTS``: not JSON, no results list, an index out of range or twice,
      a NaN score, a result missing).
    """

    base_latency_s: float = 0.0
    token_delay_s: float = 0.0
    reply: str = "Paris is the capital [1]."
    error_rate: float = 0.0
    error: ErrorKind = "503"
    retry_after_s: float | None = None
    down: bool = False
    disconnect_after: float | None = None
    rerank_fault: RerankFault | None = None

    def __post_init__(self) -> None:
        if self.base_latency_s < 0 or self.token_delay_s < 0:
            raise ValueError("latencies must not be negative")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {self.error_rate}")
        if self.error not in ERROR_KINDS:
            raise ValueError(f"error must be one of {', '.join(ERROR_KINDS)}, got {self.error!r}")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            raise ValueError("retry_after_s must not be negative")
        if self.disconnect_after is not None and not 0.0 < self.disconnect_after < 1.0:
            raise ValueError(f"disconnect_after must be in (0, 1), got {self.disconnect_after}")
        if self.rerank_fault is not None and self.rerank_fault not in RERANK_FAULTS:
            raise ValueError(f"rerank_fault must be one of {', '.join(RERANK_FAULTS)}")


@dataclass(frozen=True, slots=True)
class FaultStats:
    """A snapshot of the server's counters.

    ``requests`` counts HTTP requests read (whatever their outcome); ``by_outcome`` splits them
    into ``"ok"``, ``"disconnect"`` (a stream cut by ``disconnect_after``), ``"client_gone"``
    (the client hung up while the server waited) and the error kinds (``"503"``, ``"reset"``,
    ``"hang"``...). ``refused`` counts connections and requests reset because the server was
    down; those requests were never read, so they are not in ``requests``.
    """

    requests: int = 0
    by_outcome: Mapping[str, int] = field(default_factory=dict)
    streams_started: int = 0
    in_flight: int = 0
    open_connections: int = 0
    refused: int = 0

    def outcome(self, name: str) -> int:
        return self.by_outcome.get(name, 0)
