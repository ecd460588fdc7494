"""``ApiState``: what the routes share, kept on ``app.state.ragkeel`` (no module globals)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ragkeel.admission.gates import Admission, Admitted, estimate_tokens
from ragkeel.api.admission import count_rejection, rejection_reason, tenant_of
from ragkeel.api.event_pump import EventPump
from ragkeel.api.public_ids import PublicView, load_key
from ragkeel.api.request_limits import Limits
from ragkeel.container import Container
from ragkeel.errors import RagkeelError, ShuttingDownError
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.gateway.router import RouterChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import GenerationMode
from ragkeel.types import AccessScope

log = logging.getLogger("ragkeel.api")
SHUTDOWN_WAIT_S = 5.0
WEDGED_GRACE = 0.1  # an answer may overrun the request deadline by 10 % (at least 1 s)...
WEDGED_MIN_GRACE_S = 1.0  # ...for retrieval and citation checks before it counts as stuck


@dataclass(slots=True)
class ApiState:
    container: Container
    limits: Limits
    answerer_override: Answerer | None = None
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # uploads and deletes
    model_error: RagkeelError | None = None  # why the start-up model load failed, if it did
    admission: Admission = field(default_factory=Admission)  # rate limits, load shedding
    draining: bool = False  # SIGTERM: no new answers (503 SHUTTING_DOWN), running ones end
    auth_required: bool = False  # API keys checked (api.auth; ``auth.py``)
    _pumps: set[EventPump[Any]] = field(default_factory=set)
    _pumps_lock: threading.Lock = field(default_factory=threading.Lock)
    _id_key: bytes | None = None
    _id_key_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answerer(self) -> Answerer:
        return self.answerer_override or self.container.answerer

    @property
    def id_key(self) -> bytes:
        """The key of the public document ids (``public_ids.load_key``; read once)."""
        with self._id_key_lock:
            if self._id_key is None:
                self._id_key = load_key(self.container.home)
            return self._id_key

    def public_view(self, scope: AccessScope | None) -> PublicView:
        """How documents are named to the caller of ``scope`` (``public_ids.py``)."""
        c = self.container
        return PublicView.of(scope, self.id_key, c.uploads_dir, c.home)

    def admit(
        self,
        request: Request,
        question: str,
        *,
        total_tokens: int | None = None,
        answer_tokens: int | None = None,
        mode: GenerationMode | None = None,
        stream: bool = False,
    ) -> Admitted:
        """Admission for one answer (``RateLimitedError``; ``TooManyStreamsError`` for a
        ``stream`` when the caller has its streams open already; ``ModelBusyError`` for a
        generative answer when the local model's queue is full). Its token estimate is the
        answerer's full context budget, the question and ``answer_tokens`` (default: the
        answerer's), capped by the request's ``total_tokens`` (prompt plus answer) if given."""
        answerer = self.answerer
        estimate = estimate_tokens(
            question,
            context_budget=answerer.policy.context_budget,
            max_tokens=answer_tokens or answerer.policy.max_answer_tokens,
        )
        if total_tokens is not None:
            estimate = min(estimate, total_tokens)
        generative = (mode or answerer.policy.mode) == "generative" and answerer.model is not None
        local = generative and self.local_primary() is not None  # takes a local model slot
        try:
            return self.admission.admit(
                tenant_of(request), estimated_tokens=estimate, local=local, stream=stream
            )
        except RagkeelError as exc:
            count_rejection(self, rejection_reason(exc))  # ragkeel_admission_rejections_total
            raise

    def track(self, pump: EventPump[Any]) -> EventPump[Any]:
        with self._pumps_lock:
            self._pumps = {p for p in self._pumps if not p.finished} | {pump}
        return pump

    def drain(self, drain_s: float) -> threading.Timer:
        """Begin a graceful shutdown: refuse new answers now; answers still running after
        ``drain_s`` are ended with ``ShuttingDownError`` (their clients get a terminal error
        event or a 503, even when a provider call never returns). Safe from a signal handler."""
        self.draining = True
        log.warning("draining: no new answers; running ones get %.1f s to finish", drain_s)
        timer = threading.Timer(drain_s, self.end_answers, kwargs={"error": ShuttingDownError()})
        timer.daemon = True
        timer.start()
        return timer

    def end_answers(self, error: BaseException) -> int:
        """End every answer still running with ``error`` now; how many there were."""
        with self._pumps_lock:
            pumps = [p for p in self._pumps if not p.finished]
        for pump in pumps:
            pump.cancel(error)
        if pumps:
            log.warning("ended %d answer(s) still running: %s", len(pumps), error)
        return len(pumps)

    def cancel_all(self, timeout: float = SHUTDOWN_WAIT_S) -> None:
        """Cancel every answer still running and wait (bounded; 1 s after a drain, which gave
        them their time already) for their threads. A thread stuck in a provider call that
        never returns is left behind: it is a daemon and cannot hold the process."""
        with self._pumps_lock:
            pumps, self._pumps = self._pumps, set()
        for pump in pumps:
            pump.cancel(ShuttingDownError())
        if self.draining:
            timeout = min(timeout, 1.0)
        deadline = time.monotonic() + timeout
        stuck = sum(not p.join(max(deadline - time.monotonic(), 0.0)) for p in pumps)
        if stuck:
            log.warning("%d answer thread(s) did not stop within %.0f s", stuck, timeout)

    def answer_path(self) -> dict[str, Any]:
        """Whether answers can still start and end (``/readyz``): ``wedged`` when an answer
        thread, or the local model's generation slot, has been busy longer than the request
        deadline allows (plus a grace). Every answer is bounded by that deadline, so anything
        older is stuck: a lock never released, a provider call that ignores its timeout."""
        deadline_s = self.answerer.policy.deadline_s or self.container.request_deadline_s
        limit = deadline_s + max(WEDGED_MIN_GRACE_S, WEDGED_GRACE * deadline_s)
        now = time.monotonic()
        with self._pumps_lock:
            ages = [a for p in self._pumps if (a := p.running_s(now)) is not None]
        info: dict[str, Any] = {
            "in_flight": len(ages),
            "oldest_s": round(max(ages), 3) if ages else None,
            "limit_s": round(limit, 3),
        }
        reasons = []
        stuck = sum(a > limit for a in ages)
        if stuck:
            reasons.append(f"{stuck} answer(s) running longer than {limit:.0f} s")
        local = self.local_model()
        if local is not None:
            queue = info["local_queue"] = local.queue.snapshot()
            if queue["held_s"] is not None and queue["held_s"] > limit:
                reasons.append(
                    f"the local model's generation slot held for {queue['held_s']:.0f} s"
                )
        info["wedged"] = bool(reasons)
        info["reason"] = "; ".join(reasons) or None
        return info

    def local_primary(self) -> LocalChatModel | None:
        """The local GGUF model when it is the model answers are generated with (under the
        gateway's meter), not only a fallback."""
        model: object = self.answerer.model
        while not isinstance(model, LocalChatModel):
            if isinstance(model, RouterChatModel):  # a cheap local tier beside it (issue 14)
                model = model.strong  # the default model; the cheap one shares its queue
            elif hasattr(model, "inner"):
                model = model.inner
            else:
                return None
        return model

    def local_model(self) -> LocalChatModel | None:
        """The local GGUF model when answers use it: as the model itself (under the gateway's
        meter) or as the gateway's last rung (``gateway.fallback_to_local``). Constructing it
        does not load it."""
        if (model := self.local_primary()) is not None:
            return model
        if self.container.fallback_to_local:
            local = self.container.local_model
            return local if isinstance(local, LocalChatModel) else None
        return None

    def load_model(self) -> None:
        """Load the local chat model now (run in a background thread at start-up); a failure is
        kept for ``/readyz`` and the answers degrade to extractive."""
        model = self.local_model()
        if model is None:
            return
        cheap = self.container.local_cheap_model if model is self.local_primary() else None
        try:
            model.load()
            if isinstance(cheap, LocalChatModel):  # the cheap local tier too (issue 14)
                cheap.load()
        except RagkeelError as exc:
            self.model_error = exc
            log.warning("chat model not loaded: %s", exc)


async def get_state(request: Request) -> ApiState:
    """The routes' dependency. ``async`` so FastAPI calls it on the event loop: a sync one
    would cost a thread-pool round trip per request, and under load (answer threads holding
    the GIL) each hop can wait milliseconds, far too slow for a 429 that must take < 5 ms."""
    state = request.app.state.ragkeel
    assert isinstance(state, ApiState)
    return state
