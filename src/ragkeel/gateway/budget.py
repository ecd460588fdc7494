"""``BudgetChatModel``: the outermost policy. It checks a request's cost *before* anything is
spent, degrades or refuses what does not fit, keeps each tenant's daily account exact, and
writes every call that reached a provider to the cost ledger.

Before the call it estimates the request's maximum cost: the prompt tokens (counted with the
model's tokenizer plus OpenAI's chat framing, ``tokenizers.count_message_tokens``) at the input
price plus ``max_tokens`` at the output price, using the highest prices among ``deployments``
(the price-table names of the chain's models, default ``inner.name``: the fallback chain may
answer on any of them, so this is an upper bound for one call; ``cheaper_deployments``
likewise for ``cheaper``). The
allowance is the request's ``max_cost`` (else ``default_max_cost``), and also what the tenant
has left today when ``accounts`` keeps daily budgets. Over the allowance it degrades, each step
logged as a ``budget`` decision in the call log:

1. lower ``max_tokens`` to what fits, if at least ``min_answer_tokens`` still do;
2. else answer with ``cheaper`` (its own price and tokenizer; ``max_tokens`` lowered if needed);
3. else raise ``BudgetExceededError`` saying what the call would cost and what is allowed.

With shared accounts (``RedisCostAccounts``) that Redis cannot reach, nothing is known to be
left: the plan is made with $0 allowed, so only a free option (the local model, priced 0) fits,
and otherwise the call is refused with ``BudgetUnavailableError`` (``BUDGET_UNAVAILABLE``;
accounts fail closed for paid calls). ``default_max_tokens`` caps ``max_tokens`` before all
that. The estimate is then reserved in
``accounts`` (atomically; a reservation that no longer fits is refused) and, after the call,
settled with the actual cost: the costs the metered deployments logged during this call in the
call log being recorded (``calllog.current_log()``; when nobody records, the budget records
into a log of its own), or, for an unmetered inner model, its reported usage at its price;
whether the call succeeded, failed or its stream was closed early. A reservation is never
leaked.

The estimate bounds one call. Retries that fail before answering cost nothing, but a stream
interrupted and continued on the next deployment pays for both parts: such a request can cost
more than it reserved, and the overrun is booked (never hidden). Context cannot be shrunk here
(the messages are already rendered): the answerer packs its context to a token budget.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from ragkeel.admission.accounts import Accounts, CostSink, Reservation
from ragkeel.errors import BudgetExceededError, BudgetUnavailableError
from ragkeel.gateway.base import (
    ChatChunk,
    ChatModel,
    ChatRequest,
    ChatResponse,
    ChatStream,
    Usage,
)
from ragkeel.gateway.calllog import Attempt, CallLog, current_log, recorded, recording
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.tokenizers import CountTokens, count_message_tokens, token_counter_for

_PER = 1_000_000
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class _Option:
    model: ChatModel
    price: Price
    count: CountTokens


@dataclass(frozen=True, slots=True)
class Plan:
    """What will be called, with which request, and at most what it costs."""

    model: ChatModel
    request: ChatRequest
    prompt_tokens: int
    max_cost: float


class BudgetChatModel:
    def __init__(
        self,
        inner: ChatModel,
        prices: PriceTable,
        *,
        counter: CountTokens | None = None,
        accounts: Accounts | None = None,
        cheaper: ChatModel | None = None,
        deployments: Sequence[str] = (),
        cheaper_deployments: Sequence[str] = (),
        min_answer_tokens: int = 64,
        default_max_cost: float | None = None,
        default_max_tokens: int | None = None,
        ledger: CostSink | None = None,
    ) -> None:
        if min_answer_tokens < 1:
            raise ValueError("min_answer_tokens must be at least 1")
        names = list(deployments) or [inner.name]
        self.inner = inner
        self.prices = prices
        self.accounts = accounts
        self.min_answer_tokens = min_answer_tokens
        self.default_max_cost = default_max_cost
        self.default_max_tokens = default_max_tokens
        self.ledger = ledger
        self._options = [_Option(inner, _upper_price(prices, names), counter or _lazy(names[0]))]
        if cheaper is not None:
            cheap_names = list(cheaper_deployments) or [cheaper.name]
            price = _upper_price(prices, cheap_names)
            self._options.append(_Option(cheaper, price, _lazy(cheap_names[0])))

    @property
    def name(self) -> str:
        return self.inner.name

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, request: ChatRequest) -> ChatResponse:
        log = current_log()
        if log is None:  # the budget reads the attempts' costs from a log: one of its own
            with recording(CallLog()) as own:
                return self._complete(request, own)
        return self._complete(request, log)

    def _complete(self, request: ChatRequest, log: CallLog) -> ChatResponse:
        plan = self.plan(request)
        reservation, start = self._reserve(plan), len(log.attempts)
        response: ChatResponse | None = None
        try:
            response = plan.model.complete(plan.request)
            return response
        finally:
            used = (response.model, response.usage) if response else None
            self._settle(plan, log, reservation, start, used)

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Plans, reserves and settles lazily, as the stream is consumed: a stream never
        iterated reserves nothing (a budget refusal is raised by its first ``next``)."""
        return self._stream(request)

    def _stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        log = current_log()
        if log is None:  # the budget reads the attempts' costs from a log: one of its own,
            # recorded into at every step, wherever this stream is advanced
            yield from recorded(self._stream(request), CallLog())
            return
        plan = self.plan(request)
        reservation, start = self._reserve(plan), len(log.attempts)
        used: tuple[str, Usage] | None = None
        chunks: ChatStream | None = None
        try:
            chunks = plan.model.stream(plan.request)
            for chunk in chunks:
                if chunk.usage is not None:
                    used = (chunk.model or plan.model.name, chunk.usage)
                yield chunk
        finally:
            if chunks is not None:
                chunks.close()  # a consumer that left early stops generation before we settle
            self._settle(plan, log, reservation, start, used)

    def plan(self, request: ChatRequest) -> Plan:
        """The model and request to call within the allowance, or ``BudgetExceededError``."""
        request = self._cap_tokens(request)
        max_cost = request.max_cost if request.max_cost is not None else self.default_max_cost
        tenant = request.tenant or ANONYMOUS
        unavailable: BudgetUnavailableError | None = None
        try:
            left = self.accounts.remaining(tenant) if self.accounts else math.inf
        except BudgetUnavailableError as exc:  # shared accounts unreachable: only free calls
            left, unavailable = 0.0, exc
        allowed = min(max_cost if max_cost is not None else math.inf, left)
        for i, option in enumerate(self._options):
            plan = _fit(option, request, allowed, self.min_answer_tokens)
            if plan is not None:
                self._explain(request, plan, i)
                return plan
        if unavailable is not None:
            _decide(f"refused: {unavailable.message}")
            raise unavailable
        raise self._refusal(request, self._unbounded(request), max_cost, left)

    def _unbounded(self, request: ChatRequest) -> Plan:
        """The first choice's plan as asked, whatever it costs (for messages)."""
        plan = _fit(self._options[0], request, math.inf, self.min_answer_tokens)
        assert plan is not None
        return plan

    def _cap_tokens(self, request: ChatRequest) -> ChatRequest:
        cap = self.default_max_tokens
        if cap is None or request.max_tokens <= cap:
            return request
        _decide(f"max_tokens {request.max_tokens} -> {cap} (the default cap)")
        return dataclasses.replace(request, max_tokens=cap)

    def _explain(self, request: ChatRequest, plan: Plan, option: int) -> None:
        if option > 0:
            unbounded = self._unbounded(request)
            _decide(
                f"{unbounded.model.name} would cost up to ${unbounded.max_cost:.6f}, over the "
                f"allowance; answering with {plan.model.name} (up to ${plan.max_cost:.6f})",
            )
        if plan.request.max_tokens < request.max_tokens:
            _decide(
                f"max_tokens {request.max_tokens} -> {plan.request.max_tokens} to fit the "
                f"allowance (up to ${plan.max_cost:.6f})",
            )

    def _refusal(
        self, request: ChatRequest, first: Plan, max_cost: float | None, left: float
    ) -> BudgetExceededError:
        limits = []
        if max_cost is not None:
            limits.append(f"max_cost ${max_cost:.6f}")
        if math.isfinite(left):
            limits.append(f"${left:.6f} left of today's budget for {request.tenant or ANONYMOUS}")
        message = (
            f"this request would cost up to ${first.max_cost:.6f} ({first.prompt_tokens} prompt "
            f"tokens + {first.request.max_tokens} answer tokens on {first.model.name}), and even "
            f"{self.min_answer_tokens} answer tokens"
            + (" on the cheaper model" if len(self._options) > 1 else "")
            + f" do not fit the allowance: {' and '.join(limits)}"
        )
        _decide(f"refused: {message}")
        daily = max_cost is None or left < max_cost
        return BudgetExceededError(
            message,
            model=first.model.name,
            hint="raise max_cost, or ask with a smaller k (a shorter context)",
            retry_after_s=self.accounts.seconds_until_reset() if daily and self.accounts else None,
        )

    def _reserve(self, plan: Plan) -> Reservation | None:
        if self.accounts is None:
            return None
        try:
            return self.accounts.reserve(plan.request.tenant or ANONYMOUS, plan.max_cost)
        except (BudgetExceededError, BudgetUnavailableError) as exc:  # another request took
            _decide(f"refused: {exc.message}")  # the rest meanwhile, or Redis went away
            raise

    def _settle(
        self,
        plan: Plan,
        log: CallLog,
        reservation: Reservation | None,
        start: int,
        used: tuple[str, Usage] | None,
    ) -> None:
        """Book the actual cost of this call and write its ledger rows."""
        calls = [a for a in log.attempts[start:] if a.outcome != "rejected"]
        if not calls and used is not None:  # an unmetered inner model: price its usage
            model, usage = used
            cost = self.prices.cost(model, usage)
            calls = [Attempt(model, "ok", 0.0, usage=usage, cost=cost)]
        if reservation is not None and self.accounts is not None:
            self.accounts.settle(reservation, math.fsum(a.cost for a in calls))
        if self.ledger is not None:
            self._write(plan.request, log, calls)

    def _write(self, request: ChatRequest, log: CallLog, calls: list[Attempt]) -> None:
        request_id = request.metadata.get("request_id") or request.metadata.get("trace_id")
        ts = self.accounts.now() if self.accounts else None  # same day as the account's
        for a in calls:
            assert self.ledger is not None
            self.ledger.record(
                tenant=request.tenant or ANONYMOUS,
                model=a.deployment,
                prompt_tokens=a.usage.prompt_tokens,
                completion_tokens=a.usage.completion_tokens,
                cost=a.cost,
                outcome=a.outcome,
                request_id=request_id,
                rung=log.rung,
                ts=ts,
            )


def _fit(option: _Option, request: ChatRequest, allowed: float, floor: int) -> Plan | None:
    """``option`` with ``max_tokens`` lowered as needed to cost at most ``allowed``; ``None``
    when fewer than ``floor`` answer tokens would fit."""
    prompt = count_message_tokens(request.messages, option.count)
    max_tokens = request.max_tokens
    if _cost(option.price, prompt, max_tokens) > allowed:
        if option.price.output_per_mtok == 0:
            return None
        room = (
            allowed * _PER - prompt * option.price.input_per_mtok
        ) / option.price.output_per_mtok
        max_tokens = min(max_tokens, math.floor(room) if room > 0 else 0)
        while max_tokens > 0 and _cost(option.price, prompt, max_tokens) > allowed:
            max_tokens -= 1  # float rounding: at most a step or two
        if max_tokens < min(floor, request.max_tokens):
            return None
    same = max_tokens == request.max_tokens
    fitted = request if same else dataclasses.replace(request, max_tokens=max_tokens)
    return Plan(option.model, fitted, prompt, _cost(option.price, prompt, max_tokens))


def _cost(price: Price, prompt_tokens: int, answer_tokens: int) -> float:
    return price.cost(Usage(prompt_tokens, answer_tokens))


def _upper_price(prices: PriceTable, names: Sequence[str]) -> Price:
    """The highest input and output price among ``names`` (unpriced or local ones: 0)."""
    found = [
        p for n in names if n not in prices.local_models and (p := prices.price(n)) is not None
    ]
    return Price(
        max((p.input_per_mtok for p in found), default=0.0),
        max((p.output_per_mtok for p in found), default=0.0),
    )


def _lazy(model_name: str) -> CountTokens:
    """The model's counter, loaded at the first count (loading a vocabulary takes ~50 ms)."""

    def count(text: str) -> int:
        return token_counter_for(model_name)(text)

    return count


def _decide(reason: str) -> None:
    if (log := current_log()) is not None:
        log.decide("budget", reason)
