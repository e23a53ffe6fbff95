"""What judging costs in dollars, and a budget that stops sending once a cap is reached.

Prices are USD per 1M tokens of the providers' public list prices for common judge models
(live API; the Batch APIs bill 50% of that). Models you serve yourself (vLLM, OpenAI-compatible
servers, PairRM) cost 0 here: the GPU bill is not per token. ``spec.price_input_per_mtok`` /
``spec.price_output_per_mtok`` override the table (new models, negotiated prices).

Model names are matched by their longest known prefix, so dated snapshots
("gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022") get the family's price.
"""

from __future__ import annotations

import logging
import threading

from judgeflow.specs import JudgeSpec

log = logging.getLogger(__name__)

BATCH_DISCOUNT = 0.5

# model prefix -> (input, output) USD per 1M tokens, live API list prices.
PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    # Anthropic
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-3-haiku": (0.25, 1.25),
}

SELF_HOSTED = frozenset({"vllm", "openai-compatible", "pairrm"})


def _table_price(model: str) -> tuple[float, float] | None:
    best: str | None = None
    for prefix in PRICES:
        if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return PRICES[best] if best is not None else None


def price_for(spec: JudgeSpec) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens at live prices, or None when nothing is known.

    Overrides in the spec win; self-hosted providers are free; otherwise the table.
    """
    table = None if spec.provider in SELF_HOSTED else _table_price(spec.model)
    default_in, default_out = (0.0, 0.0) if spec.provider in SELF_HOSTED else (table or (None, None))
    price_in = spec.price_input_per_mtok if spec.price_input_per_mtok is not None else default_in
    price_out = spec.price_output_per_mtok if spec.price_output_per_mtok is not None else default_out
    if price_in is None or price_out is None:
        return None
    return float(price_in), float(price_out)


def cost_of(spec: JudgeSpec, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
    """Dollars for one request (or a sum of requests). Unknown model prices count as 0."""
    price = price_for(spec)
    if price is None:
        return 0.0
    usd = (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
    return usd * BATCH_DISCOUNT if batch else usd


class Budget:
    """A dollar cap shared by every worker (coroutines and threads alike; one lock).

    ``exhausted`` turns true once ``spent >= cap_usd``; the live path then sends no new request
    (those in flight finish and are paid for, so ``spent`` may end slightly above the cap) and
    records the rest as failed with ``reason``. ``cap_usd=None`` never stops anything.
    """

    def __init__(self, cap_usd: float | None) -> None:
        if cap_usd is not None and cap_usd < 0:
            raise ValueError("budget cap must be >= 0")
        self.cap_usd = cap_usd
        self._spent = 0.0
        self._lock = threading.Lock()
        self._announced = False

    @property
    def spent(self) -> float:
        with self._lock:
            return self._spent

    @property
    def remaining(self) -> float | None:
        return None if self.cap_usd is None else max(0.0, self.cap_usd - self.spent)

    @property
    def exhausted(self) -> bool:
        if self.cap_usd is None:
            return False
        with self._lock:
            return self._spent >= self.cap_usd

    @property
    def reason(self) -> str:
        """The error recorded on every request the cap stopped."""
        return f"budget cap of ${self.cap_usd:.2f} reached"

    def add(self, usd: float) -> bool:
        """Count ``usd`` spent; return True the first time this crosses the cap (log it once)."""
        with self._lock:
            before = self._spent
            self._spent += usd
            crossed = (
                self.cap_usd is not None and before < self.cap_usd <= self._spent and not self._announced
            )
            if crossed:
                self._announced = True
        if crossed:
            log.warning(
                "%s: spent $%.4f; no new judge requests will be sent, the rest are recorded as failed",
                self.reason, self._spent,
            )
        return crossed

    def __repr__(self) -> str:
        return f"Budget(cap_usd={self.cap_usd}, spent={self.spent:.4f})"
