"""``BudgetChatModel`` and ``CostAccounts``: pre-call estimates, degradation, exact daily
accounting under concurrency (scenario 10), and the cost ledger rows."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from ragkeel.admission.accounts import CostAccounts
from ragkeel.errors import BudgetExceededError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.budget import BudgetChatModel
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.tokenizers import count_message_tokens
from ragkeel.observability.cost_ledger import SqliteCostLedger

STRONG = Price(1_000.0, 2_000.0)  # USD per 1M tokens: 0.001 / 0.002 per token, easy sums
CHEAP = Price(100.0, 200.0)
NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC
REPLY = "one two three four five"  # 5 completion tokens for the scripted model


def _metered(
    script: list[str | ScriptedFailure] | None = None,
    *,
    name: str = "strong",
    price: Price = STRONG,
    delay: float = 0.0,
) -> tuple[ScriptedChatModel, MeteredChatModel]:
    model = ScriptedChatModel(script or [REPLY], name=name, token_delay_s=delay)
    return model, MeteredChatModel(model, price=price)


def _prices() -> PriceTable:
    return PriceTable({"strong": STRONG, "cheap": CHEAP})


def _request(max_tokens: int = 100, **kw: object) -> ChatRequest:
    messages = (ChatMessage("user", "How often should I rotate an API key?"),)
    return ChatRequest(messages, max_tokens=max_tokens, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def log() -> Iterator[CallLog]:
    """Every call in these tests is recorded, as the answer flow records it."""
    with recording(CallLog()) as log:
        yield log


def _prompt_tokens(model: ScriptedChatModel, request: ChatRequest) -> int:
    return count_message_tokens(request.messages, model.count_tokens)


def test_a_request_that_fits_is_passed_unchanged_and_costed(log: CallLog) -> None:
    model, metered = _metered()
    budget = BudgetChatModel(metered, _prices(), counter=model.count_tokens)
    request = _request(max_cost=1.0)
    response = budget.complete(request)
    assert response.text == REPLY
    assert model.requests[0].max_tokens == 100
    assert log.decisions == []
    assert log.cost == pytest.approx(STRONG.cost(response.usage))


def test_over_max_cost_lowers_max_tokens_to_fit(log: CallLog) -> None:
    model, metered = _metered()
    budget = BudgetChatModel(metered, _prices(), counter=model.count_tokens, min_answer_tokens=5)
    probe = _request()
    prompt = _prompt_tokens(model, probe)
    allowed = (prompt * 0.001) + 40 * 0.002  # room for exactly 40 answer tokens
    request = _request(max_cost=allowed)
    budget.complete(request)
    sent = model.requests[0]
    assert sent.max_tokens == 40
    (decision,) = log.decisions
    assert decision.policy == "budget" and "max_tokens 100 -> 40" in decision.reason


def test_too_little_room_switches_to_the_cheaper_model(log: CallLog) -> None:
    strong, metered = _metered()
    cheap, cheap_metered = _metered(name="cheap", price=CHEAP)
    budget = BudgetChatModel(
        metered, _prices(), counter=strong.count_tokens, cheaper=cheap_metered, min_answer_tokens=64
    )
    request = _request(max_cost=0.02)  # strong: ~15 prompt tokens = 0.015, < 64 answer tokens fit
    response = budget.complete(request)
    assert strong.calls == 0 and cheap.calls == 1 and response.model == "cheap"
    reasons = [d.reason for d in log.decisions]
    assert any("answering with cheap" in r for r in reasons), reasons
    assert log.cost <= 0.02


def test_refusal_says_what_it_would_cost_and_what_is_allowed(log: CallLog) -> None:
    model, metered = _metered()
    budget = BudgetChatModel(metered, _prices(), counter=model.count_tokens)
    request = _request(max_cost=0.001)
    with pytest.raises(BudgetExceededError) as info:
        budget.complete(request)
    assert model.calls == 0  # nothing was spent
    message = str(info.value)
    prompt = _prompt_tokens(model, request)
    assert f"${prompt * 0.001 + 100 * 0.002:.6f}" in message and "max_cost $0.001000" in message
    assert info.value.code == "BUDGET_EXCEEDED" and info.value.retry_after_s is None
    assert log.decisions[-1].reason.startswith("refused")


def test_defaults_apply_when_the_request_sets_none() -> None:
    model, metered = _metered()
    budget = BudgetChatModel(
        metered,
        _prices(),
        counter=model.count_tokens,
        default_max_tokens=30,
        default_max_cost=0.001,
    )
    with pytest.raises(BudgetExceededError):
        budget.complete(_request())
    budget = BudgetChatModel(metered, _prices(), counter=model.count_tokens, default_max_tokens=30)
    budget.complete(_request(max_tokens=100))
    assert model.requests[-1].max_tokens == 30


def test_the_estimate_uses_the_highest_price_in_the_chain() -> None:
    model, metered = _metered(price=CHEAP)
    table = PriceTable({"strong": STRONG, "cheap": CHEAP, "scripted-local": Price(0, 0)})
    budget = BudgetChatModel(
        metered, table, counter=model.count_tokens, deployments=["cheap", "strong"]
    )
    plan = budget.plan(_request())
    prompt = _prompt_tokens(model, _request())
    assert plan.max_cost == pytest.approx(prompt * 0.001 + 100 * 0.002)  # STRONG's prices


def test_the_cheaper_chain_is_priced_by_its_deployments(log: CallLog) -> None:
    strong, metered = _metered()
    cheap, cheap_metered = _metered(name="a-cheap-chain", price=CHEAP)
    budget = BudgetChatModel(
        metered,
        _prices(),
        counter=strong.count_tokens,
        cheaper=cheap_metered,
        cheaper_deployments=["cheap"],  # the chain's name is not a priced model
        min_answer_tokens=64,
    )
    request = _request(max_cost=0.02)
    budget.complete(request)
    assert cheap.calls == 1 and strong.calls == 0
    assert cheap.requests[0].max_tokens < 100  # priced as "cheap": 100 answer tokens do not fit
    assert 0 < log.cost <= 0.02


def test_the_default_counter_is_the_models_tokenizer() -> None:
    _, metered = _metered(name="gpt-4o")
    budget = BudgetChatModel(metered, PriceTable({"gpt-4o": STRONG}))
    plan = budget.plan(_request())
    # "How often should I rotate an API key?": 9 o200k tokens + "user" 1 + 3 + 3 framing
    assert plan.prompt_tokens == 16


def _accounts(budget_usd: float, **kw: object) -> CostAccounts:
    return CostAccounts(budget_usd, wall=lambda: NOON, **kw)  # type: ignore[arg-type]


def test_reservations_are_settled_on_success_failure_and_cancel() -> None:
    accounts = _accounts(10.0)
    model, metered = _metered([REPLY, ScriptedFailure("unavailable"), REPLY])
    budget = BudgetChatModel(metered, _prices(), counter=model.count_tokens, accounts=accounts)
    budget.complete(_request(tenant="t"))
    first = accounts.spent("t")
    assert first > 0 and accounts.open_reservations() == 0 and accounts.reserved("t") == 0.0
    with pytest.raises(Exception, match="scripted unavailable"):
        budget.complete(_request(tenant="t"))
    assert accounts.open_reservations() == 0 and accounts.spent("t") == first  # failed: free
    stream = budget.stream(_request(tenant="t"))
    assert accounts.open_reservations() == 0  # not iterated: nothing reserved yet
    next(stream)
    assert accounts.open_reservations() == 1 and accounts.reserved("t") > 0
    stream.close()  # the consumer went away
    assert accounts.open_reservations() == 0 and accounts.reserved("t") == 0.0


def test_streams_settle_the_actual_cost_and_write_the_ledger(tmp_path: Path, log: CallLog) -> None:
    accounts = _accounts(10.0)
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    model, metered = _metered()
    budget = BudgetChatModel(
        metered, _prices(), counter=model.count_tokens, accounts=accounts, ledger=ledger
    )
    request = _request(tenant="t", metadata={"request_id": "req-1"})
    text = "".join(c.text_delta for c in budget.stream(request))
    assert text == REPLY
    assert accounts.spent("t") == pytest.approx(log.cost)
    (row,) = ledger.totals("tenant")
    assert row.key == "t" and row.calls == 1 and row.cost == pytest.approx(log.cost)
    assert row.completion_tokens == 5
    ledger.close()


def test_the_daily_budget_degrades_then_refuses_until_midnight() -> None:
    model, metered = _metered()
    prompt = _prompt_tokens(model, _request())
    full = prompt * 0.001 + 100 * 0.002
    accounts = _accounts(full * 1.5)
    budget = BudgetChatModel(
        metered, _prices(), counter=model.count_tokens, accounts=accounts, min_answer_tokens=5
    )
    accounts.reserve("t", full)  # a call in flight holds most of the budget
    request = _request(tenant="t")
    budget.complete(request)
    assert model.requests[-1].max_tokens < 100  # degraded to what is left
    hold = accounts.reserve("t", accounts.remaining("t"))
    with pytest.raises(BudgetExceededError) as info:
        budget.complete(_request(tenant="t"))
    assert info.value.retry_after_s == pytest.approx(12 * 3600)  # noon -> midnight UTC
    assert "left of today's budget for t" in str(info.value)
    accounts.settle(hold, 0.0)
    assert budget.complete(_request(tenant="other")).text == REPLY  # other tenants unaffected


def test_accounts_start_from_the_ledger_after_a_restart(tmp_path: Path) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    ledger.record(
        tenant="t",
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        cost=0.75,
        outcome="ok",
        ts=NOON - 60,
    )
    ledger.record(
        tenant="t",
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        cost=5.0,
        outcome="ok",
        ts=NOON - 86_400,
    )  # yesterday: does not count
    accounts = _accounts(1.0, source=ledger)
    assert accounts.spent("t") == pytest.approx(0.75)
    assert accounts.remaining("t") == pytest.approx(0.25)
    with pytest.raises(BudgetExceededError):
        accounts.reserve("t", 0.3)
    accounts.reserve("t", 0.2)
    ledger.close()


def test_scenario_10_budget_exactness_under_100_concurrent_requests(tmp_path: Path) -> None:
    """100 threads against a daily budget that fits only some of them, with actual usage
    varying per request: the settled spend never passes the budget, every reservation is
    released, the refused requests got BudgetExceededError, and the ledger adds up."""
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    accounts = _accounts(1.0, source=ledger)

    def reply(request: ChatRequest) -> str:
        n = 1 + sum(map(ord, request.messages[0].content)) % 20  # 1..20 tokens, varies
        return " ".join(["word"] * n)

    model = ScriptedChatModel(reply, name="strong", token_delay_s=0.001)
    budget = BudgetChatModel(
        MeteredChatModel(model, price=STRONG),
        _prices(),
        counter=model.count_tokens,
        accounts=accounts,
        ledger=ledger,
        min_answer_tokens=5,
    )
    maximum = budget.plan(_request(max_tokens=20, tenant="t")).max_cost
    barrier = threading.Barrier(100, timeout=10)

    def one(i: int) -> float | BudgetExceededError:
        request = ChatRequest(
            (ChatMessage("user", f"question number {i}"),),
            max_tokens=20,
            tenant="t",
            metadata={"request_id": f"r{i}"},
        )
        barrier.wait()
        log = CallLog()
        try:
            with recording(log):  # a pool thread does not inherit the test's context
                budget.complete(request)
        except BudgetExceededError as exc:
            assert log.cost == 0.0
            return exc
        return log.cost

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(one, range(100), timeout=30))
    costs = [r for r in results if isinstance(r, float)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(costs) + len(refused) == 100
    assert refused and costs, (len(costs), len(refused))  # the budget fits only some
    assert 100 * maximum > 1.0  # without accounting, they would all have been admitted
    spent = accounts.spent("t")
    assert spent <= 1.0 + 1e-9  # never overspent (not even by one request's maximum)
    assert spent == pytest.approx(math.fsum(costs), rel=1e-12)
    assert accounts.open_reservations() == 0 and accounts.reserved("t") == 0.0
    (row,) = ledger.totals("tenant")
    assert row.calls == len(costs) == model.calls
    assert row.cost == pytest.approx(math.fsum(costs), rel=1e-12)
    assert ledger.spent("t", date(2026, 1, 1)) == pytest.approx(spent, rel=1e-12)
    ledger.close()
