"""Retries with exponential backoff and full jitter, honouring the server's Retry-After.

One policy for every transport (the SDKs' own retries are off), so attempts are counted once and
Retry-After is read the same way everywhere:

* retried: ``TransientError`` (408, 409, 429, 5xx, 529, connection errors) and timeouts;
* not retried: ``PermanentError`` (other 4xx): the request fails with the provider's reason;
* the delay is the server's ``retry-after-ms`` / ``retry-after`` when it sent one, else
  ``uniform(0, min(max_delay, base * 2**n))`` ("full jitter", which spreads a herd of workers
  that all hit a 429 at the same instant);
* a server asking for more than ``max_retry_after_s`` (a quota that resets in an hour) is not
  waited for: the request fails with that reason instead of stalling the whole chunk.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from judgeflow.clients.base import ClientError, PermanentError, TimeoutError, TransientError

T = TypeVar("T")


@dataclass(slots=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt (so ``max_retries + 1`` attempts in all)."""

    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 120.0
    max_retry_after_s: float = 120.0

    def backoff(self, retry_number: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1-based)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return (rng or random).uniform(0.0, ceiling)


@dataclass(slots=True)
class RetryStats:
    """What the retry loop did, summed over all requests of a run."""

    retries: int = 0
    slept_s: float = 0.0
    retry_after_honoured: int = 0
    timeouts: int = 0


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    stats: RetryStats | None = None,
    *,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """Run ``attempt`` until it succeeds or the policy gives up; return (result, attempts).

    Each attempt is bounded by ``policy.timeout_s`` (``asyncio.timeout``: one timer handle, no
    extra task). ``before_attempt`` runs before every attempt (the rate limiter). On giving up
    the last ``ClientError`` is raised with ``.attempts`` set.
    """
    stats = stats if stats is not None else RetryStats()
    attempts = 0
    while True:
        attempts += 1
        if before_attempt is not None:
            await before_attempt()
        try:
            async with asyncio.timeout(policy.timeout_s):
                result = await attempt()
            return result, attempts
        except PermanentError as exc:
            exc.attempts = attempts
            raise
        except (TransientError, TimeoutError, asyncio.TimeoutError) as exc:
            if not isinstance(exc, ClientError):  # our own asyncio.timeout fired
                exc = TimeoutError(f"no reply within {policy.timeout_s:g} s")
            if isinstance(exc, TimeoutError):
                stats.timeouts += 1
            exc.attempts = attempts
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            if attempts > policy.max_retries:
                raise exc from None
            if retry_after is not None and retry_after > policy.max_retry_after_s:
                give_up = TransientError(
                    f"{exc} (server asked to wait {retry_after:g} s, more than "
                    f"{policy.max_retry_after_s:g} s)",
                    status=exc.status,
                    retry_after=retry_after,
                )
                give_up.attempts = attempts
                raise give_up from None
            delay = policy.backoff(attempts, retry_after)
            stats.retries += 1
            stats.slept_s += delay
            if retry_after is not None:
                stats.retry_after_honoured += 1
            await asyncio.sleep(delay)
