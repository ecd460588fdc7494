"""The one place where the gateway's policies are composed, in this order (outermost first)::

    admission (ragkeel/admission/: tenant rate limits, cost per day, load shedding)  -- before retrieval
    RouterChatModel          cheap or strong route from the question and retrieval confidence
    └── BudgetChatModel      per route: estimate before spending; fewer tokens, the cheaper route, or refuse;
        │                    reserve/settle the tenant's daily account; one ledger row per call
        └── FallbackChatModel   the route's deployments in order, then the local model; a stream
            │                   broken mid-answer continues on the next rung
            └── RetryingChatModel        per deployment: backoff with full jitter, Retry-After,
                │                        deadlines, a retry budget
                └── CircuitBreakerChatModel   per deployment: open/half-open/closed, 429 cool-down
                    └── MeteredChatModel      one Attempt per provider call: outcome, usage, cost
                        └── provider          OpenAI-compatible or Anthropic over httpx (no retries)

Why this order: the breaker sits inside the retry loop so every attempt is counted and an open
circuit stops retrying at once (fallback moves on); metering is innermost so only calls that
reached a provider cost money; the budget sits above the fallback chain so its estimate covers
whichever rung answers and its settlement sees every attempt; the router is outermost so each
route has its own, exact, budget estimate (and the strong route can degrade to the cheap one).
Below the gateway the answer flow degrades further: extractive answer, then "cannot answer".

Timeouts: an attempt on a deployment lasts at most the smallest of its ``timeout_s``,
``gateway.attempt_timeout_s``, the request's ``timeout_s`` (``generation.model_timeout_s``) and
the deadline left. A timed-out attempt moves on to the next rung instead of being retried when
there is one, and a ``Retry-After`` past ``retry.fallback_patience_s`` does too (``retry.py``).

A reranker (``retrieval.rerank``, issue 15) gets the same policies around its one deployment,
in the same order: ``build_reranker`` composes ``RetryingReranker`` → ``CircuitBreakerReranker``
→ ``MeteredReranker`` → ``RemoteReranker`` (``rerank_policies.py``), with the gateway's backoff
and breaker settings, its own ``max_retries`` and per-attempt ``timeout_s``, and the breakers'
store (shared with other replicas when Redis is). No fallback: the retrieval keeps the fused
order when it fails.

``build_gateway`` takes its own settings section (``GatewaySettings``) and the deployments to
chain, never the whole ``Settings``: which deployments those are is the container's choice
(``ragkeel.container.deployments_of``: ``gateway.deployments``, or the single model
``generation.provider`` names, ``openai`` becoming one deployment through the full stack). With
no remote deployment the local model is only metered (no provider to protect, nothing to pay),
behind the router when a cheap local tier is set (``generation.local.cheap_model``, issue 14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ragkeel.admission.accounts import Accounts, CostSink
from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.gateway.base import ChatModel
from ragkeel.gateway.breaker import BreakerPolicy, CircuitBreakerChatModel, InMemoryBreakerStore
from ragkeel.gateway.breaker_store import BreakerStore
from ragkeel.gateway.budget import BudgetChatModel
from ragkeel.gateway.fallback import FallbackChatModel
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.providers.anthropic import DEFAULT_BASE_URL as ANTHROPIC_URL
from ragkeel.gateway.providers.anthropic import AnthropicChatModel
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.providers.rerank_http import RemoteReranker
from ragkeel.gateway.rerank import Reranker
from ragkeel.gateway.rerank_policies import (
    CircuitBreakerReranker,
    MeteredReranker,
    RetryingReranker,
)
from ragkeel.gateway.retry import RetryBudget, RetryingChatModel, RetryPolicy
from ragkeel.gateway.router import DEFAULT_MULTI_PART_MARKERS, RouterChatModel, RoutingRules
from ragkeel.observability import names
from ragkeel.settings import DeploymentSettings, GatewaySettings, RerankSettings

OPENAI_URL = "https://api.openai.com/v1"


class ProviderClient(ChatModel, Protocol):
    """A deployment's client: a ``ChatModel`` holding a connection pool until ``close()``."""

    def close(self) -> None: ...


ProviderFactory = Callable[[DeploymentSettings], ProviderClient]


@dataclass
class GatewayStack:
    model: ChatModel  # what the answer flow calls
    breakers: tuple[CircuitBreakerChatModel, ...] = ()
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def cheap(self) -> ChatModel:
        """The cheap route for side calls such as condensing a follow-up question (issue 15):
        the router's cheap chain when there is a router (a cheap local tier, or cheap and
        strong deployments with ``gateway.routing`` on), else ``model`` itself."""
        return self.model.cheap if isinstance(self.model, RouterChatModel) else self.model

    def readiness(self) -> list[dict[str, Any]]:
        """Each deployment's breaker state (``/readyz``)."""
        return [b.snapshot().to_dict() for b in self.breakers]

    def close(self) -> None:
        for close in self.closers:
            close()


def provider_for(d: DeploymentSettings) -> ProviderClient:
    """The HTTP client of one deployment (its SDK-free client: the gateway is the only retry
    loop). Its ``name`` is the deployment's name."""
    key = d.api_key.get_secret_value() if d.api_key else None
    if d.provider == "anthropic":
        return AnthropicChatModel(
            d.base_url or ANTHROPIC_URL, d.model, api_key=key, timeout_s=d.timeout_s, name=d.name
        )
    return OpenAICompatChatModel(
        d.base_url or OPENAI_URL, d.model, api_key=key, timeout_s=d.timeout_s, name=d.name
    )


def build_gateway(
    g: GatewaySettings,
    remote: Sequence[DeploymentSettings],
    prices: PriceTable,
    *,
    local: Callable[[], ChatModel | None] = lambda: None,
    local_cheap: Callable[[], ChatModel | None] = lambda: None,
    accounts: Accounts | None = None,
    ledger: CostSink | None = None,
    clock: Clock = SYSTEM_CLOCK,
    provider: ProviderFactory = provider_for,
    breaker_store: BreakerStore | None = None,
    breaker_clock: Clock | None = None,
) -> GatewayStack | None:
    """The model the answer flow calls over the ``remote`` deployments, composed as the module
    docstring says; with none, the ``local`` model alone, or None when there is no local model
    either (``generation.provider: none`` never gets here: the container builds no gateway);
    with a ``local_cheap`` model too, the router picks between the two local models (issue 14).
    ``breaker_store``: where the breakers keep their state (default: this process's memory;
    ``RedisBreakerStore`` to share it with other replicas, on ``breaker_clock`` = the wall
    clock, since its times must compare across machines; default ``clock``)."""
    if not remote:
        if (model := local()) is None:
            return None
        if (cheap_local := local_cheap()) is None:
            return GatewayStack(MeteredChatModel(model, clock=clock))
        tiers = MeteredChatModel(cheap_local, clock=clock), MeteredChatModel(model, clock=clock)
        return GatewayStack(RouterChatModel(*tiers, _rules(g)))
    tail: list[ChatModel] = []
    if g.fallback_to_local and (model := local()) is not None:
        tail.append(MeteredChatModel(model, clock=clock))
    store = breaker_store if breaker_store is not None else InMemoryBreakerStore()
    breakers: dict[str, CircuitBreakerChatModel] = {}
    rungs: dict[str, ChatModel] = {}
    closers: list[Callable[[], None]] = []
    for d in remote:
        client = provider(d)
        closers.append(client.close)
        metered = MeteredChatModel(
            client,
            deployment=d.name,
            price=prices.price(d.model),
            clock=clock,
            model=d.model,
            provider=names.PROVIDER_NAMES[d.provider],
        )
        breakers[d.name] = CircuitBreakerChatModel(
            metered,
            deployment=d.name,
            policy=_breaker_policy(g),
            store=store,
            clock=breaker_clock or clock,
        )
        rungs[d.name] = RetryingChatModel(
            breakers[d.name], _retry_policy(g, d), budget=_retry_budget(g, clock), clock=clock
        )

    def chain(ds: Sequence[DeploymentSettings]) -> ChatModel:
        return FallbackChatModel(
            [*(rungs[d.name] for d in ds), *tail], continue_interrupted=g.continue_interrupted
        )

    def budgeted(
        ds: Sequence[DeploymentSettings], cheaper: Sequence[DeploymentSettings] = ()
    ) -> ChatModel:
        # gateway.budget.max_tokens (prompt + answer) is applied by the answer flow, which can
        # shrink the context; here only cost is checked (max_tokens of a call = answer tokens)
        return BudgetChatModel(
            chain(ds),
            prices,
            accounts=accounts,
            cheaper=chain(cheaper) if cheaper else None,
            deployments=[d.model for d in ds],
            cheaper_deployments=[d.model for d in cheaper],
            min_answer_tokens=g.budget.min_answer_tokens,
            default_max_cost=g.budget.max_cost,
            ledger=ledger,
        )

    cheap = [d for d in remote if d.tier == "cheap"]
    strong = [d for d in remote if d.tier == "strong"]
    top: ChatModel
    if g.routing.enabled and cheap and strong:
        top = RouterChatModel(budgeted(cheap), budgeted(strong, cheap), _rules(g))
    else:
        top = budgeted(remote, cheap if cheap and strong else ())
    return GatewayStack(top, tuple(breakers.values()), closers)


@dataclass
class RerankStack:
    model: Reranker  # what the retrieval calls
    breaker: CircuitBreakerReranker
    close: Callable[[], None]

    def readiness(self) -> dict[str, Any]:
        """The reranker's breaker state (``/metrics``' ``ragkeel_breaker_state``)."""
        return self.breaker.snapshot().to_dict()


def build_reranker(
    r: RerankSettings,
    g: GatewaySettings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    breaker_store: BreakerStore | None = None,
    breaker_clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RerankStack | None:
    """The reranker the retrieval calls (see the module doc), or None with ``provider: none``.
    Its deployment is ``rerank:<model>`` (``rerank:<shape>`` without a model), so its breaker
    never shares a key with a chat deployment's."""
    if r.provider == "none" or r.url is None:
        return None
    deployment = f"rerank:{r.model or r.shape}"
    key = r.api_key.get_secret_value() if r.api_key else None
    client = RemoteReranker(
        r.url,
        shape=r.shape,
        model=r.model,
        api_key=key,
        timeout_s=r.timeout_s,
        transport=transport,
        name=deployment,
    )
    breaker = CircuitBreakerReranker(
        MeteredReranker(client, provider=r.shape, clock=clock),
        policy=_breaker_policy(g),
        store=breaker_store,
        clock=breaker_clock or clock,
    )
    retry = g.retry
    policy = RetryPolicy(
        max_retries=r.max_retries,
        base_delay_s=retry.base_delay_s,
        max_delay_s=retry.max_delay_s,
        max_retry_after_s=min(retry.max_retry_after_s, r.deadline_s),
        attempt_timeout_s=r.timeout_s,
        min_attempt_s=retry.min_attempt_s,
    )
    model = RetryingReranker(breaker, policy, budget=_retry_budget(g, clock), clock=clock)
    return RerankStack(model, breaker, client.close)


def _retry_policy(g: GatewaySettings, d: DeploymentSettings) -> RetryPolicy:
    """The deployment's retry policy. Its attempts are bounded by its own ``timeout_s`` as well
    as ``gateway.attempt_timeout_s``: the answer flow sets ``request.timeout_s`` to
    ``generation.model_timeout_s``, which would otherwise override the provider's default."""
    r = g.retry
    limits = [t for t in (g.attempt_timeout_s, d.timeout_s) if t is not None]
    return RetryPolicy(
        max_retries=r.max_retries,
        base_delay_s=r.base_delay_s,
        max_delay_s=r.max_delay_s,
        max_retry_after_s=r.max_retry_after_s,
        fallback_patience_s=r.fallback_patience_s,
        attempt_timeout_s=min(limits),
        min_attempt_s=r.min_attempt_s,
    )


def _retry_budget(g: GatewaySettings, clock: Clock) -> RetryBudget:
    r = g.retry
    return RetryBudget(
        ratio=r.budget_ratio,
        window_s=r.budget_window_s,
        min_retries=r.budget_min_retries,
        clock=clock,
    )


def _breaker_policy(g: GatewaySettings) -> BreakerPolicy:
    return BreakerPolicy(**g.breaker.model_dump())


def _rules(g: GatewaySettings) -> RoutingRules:
    r = g.routing
    return RoutingRules(
        cheap_min_top_score=r.cheap_min_top_score,
        cheap_min_margin=r.cheap_min_margin,
        strong_min_question_tokens=r.strong_min_question_tokens,
        max_question_marks=r.max_question_marks,
        multi_part_markers=r.multi_part_markers or DEFAULT_MULTI_PART_MARKERS,
        default=r.default,
    )
