"""The context-local call log: ``recording`` / ``current_log`` / ``recorded``, and the policies
that record when a stream ends keep the log that was current when it started."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path

import pytest

from ragkeel.gateway.base import ChatMessage, ChatRequest, ChatStream
from ragkeel.gateway.budget import BudgetChatModel
from ragkeel.gateway.calllog import CallLog, current_log, recorded, recording
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.observability.cost_ledger import SqliteCostLedger

PRICE = Price(input_per_mtok=2.0, output_per_mtok=10.0)


def _request() -> ChatRequest:
    return ChatRequest((ChatMessage("user", "What is the capital of France?"),))


def test_recording_sets_the_current_log_and_restores_the_outer_one() -> None:
    outer, inner = CallLog(), CallLog()
    assert current_log() is None
    with recording(outer) as log:
        assert log is outer and current_log() is outer
        with recording(inner):
            assert current_log() is inner
        assert current_log() is outer
    assert current_log() is None


def test_a_new_thread_records_only_when_given_the_context() -> None:
    log = CallLog()
    seen: list[CallLog | None] = []
    with recording(log):
        bare = threading.Thread(target=lambda: seen.append(current_log()))
        context = contextvars.copy_context()
        carried = threading.Thread(target=context.run, args=(lambda: seen.append(current_log()),))
    for thread in (bare, carried):
        thread.start()
        thread.join()
    assert seen == [None, log]


def test_a_stream_closed_after_the_block_still_records_into_its_own_log() -> None:
    log = CallLog()
    metered = MeteredChatModel(ScriptedChatModel(["one two three"]), deployment="d1", price=PRICE)
    with recording(log):
        stream = metered.stream(_request())
        assert next(stream).text_delta == "one"
    stream.close()  # outside the block: the meter kept the log its stream started with
    (attempt,) = log.attempts
    assert attempt.deployment == "d1" and attempt.outcome == "interrupted"


def test_recorded_records_every_step_wherever_the_stream_is_advanced() -> None:
    first, second = CallLog(), CallLog()
    model = MeteredChatModel(ScriptedChatModel(["a b", "c d"]), deployment="d1", price=PRICE)
    a = recorded(model.stream(_request()), first)
    b = recorded(model.stream(_request()), second)
    assert next(a).text_delta == "a"  # interleaved, outside any recording block
    assert next(b).text_delta == "c"
    assert [c.text_delta for c in a] == [" b"]
    b.close()
    assert current_log() is None
    assert [x.outcome for x in first.attempts] == ["ok"]
    assert [x.outcome for x in second.attempts] == ["interrupted"]


def test_recorded_closes_the_inner_stream_even_before_the_first_step() -> None:
    model = ScriptedChatModel(["one two"], serialised=True)
    inner = model.stream(_request())
    next(inner)  # the scripted model holds its generation slot until the stream is closed
    stream: ChatStream = recorded(inner, CallLog())
    stream.close()
    assert model.cancelled == 1


@pytest.mark.parametrize("how", ["complete", "stream", "closed early"])
def test_the_budget_reads_the_metered_attempts_from_a_log_of_its_own_when_nobody_records(
    how: str, tmp_path: Path
) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    metered = MeteredChatModel(ScriptedChatModel(["Paris is it."]), deployment="d1", price=PRICE)
    budget = BudgetChatModel(metered, PriceTable({"scripted": PRICE}), ledger=ledger)
    if how == "complete":
        budget.complete(_request())
    else:  # advanced outside any recording block
        stream = budget.stream(_request())
        next(stream)
        if how == "stream":
            list(stream)
        stream.close()
    assert current_log() is None
    (row,) = ledger.totals("model")
    # the metered attempt (deployment d1), not the unmetered fallback (model name "scripted")
    assert row.key == "d1" and row.calls == 1 and row.cost > 0
    ledger.close()
