"""Requests-per-minute and tokens-per-minute limits as async token buckets.

Cheap by design: a bucket is two floats and a timestamp. A caller *reserves* its tokens at once
(the balance may go negative) and sleeps exactly as long as the deficit takes to refill, so there
is no background task, no polling loop and no per-request task; waiters are served in the order
they arrived because each later reservation sees the deficit the earlier ones left. Since the
event loop is single-threaded, no lock is needed.

Concurrency is bounded separately by the fixed worker pool in ``judgeflow.judging.live`` (and
the HTTP connector limit), so it is not repeated here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up (the burst)."""

    def __init__(self, rate_per_s: float, capacity: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate_per_s
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now; return how many seconds to wait before using it (0 if none).

        A request larger than the whole bucket is clipped to the capacity so it can ever pass.
        """
        self._refill()
        self._tokens -= min(amount, self.capacity)
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def adjust(self, delta: float) -> None:
        """Give back (``delta`` < 0) or take more (``delta`` > 0) once the true cost is known."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens - delta)


class RateLimiter:
    """RPM and TPM buckets for one judge; either may be None (unlimited).

    The burst defaults to ``burst_s`` seconds of the rate (1 s): enough to keep the workers busy,
    small enough that a full pool cannot spend the whole minute's quota in the first instant.
    """

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        *,
        burst_s: float = 1.0,
    ) -> None:
        self.rpm = (
            TokenBucket(requests_per_minute / 60.0, max(1.0, requests_per_minute / 60.0 * burst_s))
            if requests_per_minute
            else None
        )
        self.tpm = (
            TokenBucket(tokens_per_minute / 60.0, max(1.0, tokens_per_minute / 60.0 * max(burst_s, 1.0)))
            if tokens_per_minute
            else None
        )
        self.waited_s = 0.0  # total time callers slept here: a measure of throttling

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    async def acquire(self, estimated_tokens: int = 0) -> None:
        """Wait until one more request of about ``estimated_tokens`` tokens fits both limits."""
        wait = 0.0
        if self.rpm is not None:
            wait = self.rpm.reserve(1.0)
        if self.tpm is not None and estimated_tokens > 0:
            wait = max(wait, self.tpm.reserve(float(estimated_tokens)))
        if wait > 0:
            self.waited_s += wait
            await asyncio.sleep(wait)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the TPM bucket with the tokens the reply says were really used."""
        if self.tpm is not None and estimated_tokens > 0:
            self.tpm.adjust(float(actual_tokens - estimated_tokens))


def estimate_tokens(system: str | None, user: str, max_tokens: int) -> int:
    """A cheap pre-send token estimate: ~4 characters per token plus the reply budget.

    Providers count ``max_tokens`` against TPM when admitting a request, so this matches them.
    """
    chars = len(user) + (len(system) if system else 0)
    return chars // 4 + max_tokens
