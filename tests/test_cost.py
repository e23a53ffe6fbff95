"""Price table, batch discount, overrides and the budget accumulator."""

from __future__ import annotations

import logging
import threading

import pytest

from judgeflow.cost import Budget, cost_of, price_for
from judgeflow.specs import JudgeSpec


def test_table_price_by_longest_prefix() -> None:
    mini = JudgeSpec(name="j", model="gpt-4o-mini-2024-07-18")
    full = JudgeSpec(name="j", model="gpt-4o-2024-08-06")
    assert price_for(mini) == (0.15, 0.60)
    assert price_for(full) == (2.50, 10.00)
    haiku = JudgeSpec(name="j", provider="anthropic", model="claude-3-5-haiku-20241022")
    assert price_for(haiku) == (0.80, 4.00)


def test_cost_live_and_batch() -> None:
    spec = JudgeSpec(name="j", model="gpt-4o-mini")
    live = cost_of(spec, 1_000_000, 1_000_000, batch=False)
    assert live == pytest.approx(0.75)
    assert cost_of(spec, 1_000_000, 1_000_000, batch=True) == pytest.approx(0.375)
    assert cost_of(spec, 1200, 300) == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1e6)


def test_self_hosted_is_free_and_overrides_win() -> None:
    vllm = JudgeSpec(name="j", provider="vllm", model="prometheus-eval/prometheus-7b-v2.0", base_url="http://x/v1")
    assert cost_of(vllm, 10**6, 10**6) == 0.0
    priced = JudgeSpec(name="j", provider="vllm", model="m", price_input_per_mtok=1.0, price_output_per_mtok=2.0)
    assert cost_of(priced, 10**6, 10**6) == pytest.approx(3.0)
    custom = JudgeSpec(name="j", model="gpt-4o", price_output_per_mtok=0.0)
    assert price_for(custom) == (2.50, 0.0)


def test_unknown_model_has_no_price() -> None:
    spec = JudgeSpec(name="j", model="some-new-model")
    assert price_for(spec) is None
    assert cost_of(spec, 10**6, 10**6) == 0.0


def test_budget_crosses_once_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    budget = Budget(1.0)
    assert not budget.exhausted
    with caplog.at_level(logging.WARNING, logger="judgeflow.cost"):
        assert budget.add(0.6) is False
        assert budget.add(0.5) is True
        assert budget.add(0.1) is False  # announced once
    assert budget.exhausted
    assert budget.spent == pytest.approx(1.2)
    assert budget.remaining == 0.0
    assert budget.reason == "budget cap of $1.00 reached"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "budget cap of $1.00 reached" in messages[0]


def test_budget_uncapped_and_thread_safe() -> None:
    assert not Budget(None).exhausted
    budget = Budget(10_000.0)

    def spend() -> None:
        for _ in range(10_000):
            budget.add(0.01)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent == pytest.approx(400.0)
    with pytest.raises(ValueError):
        Budget(-1)
