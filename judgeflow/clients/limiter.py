"""Requests-per-minute and tokens-per-minute limits as async token buckets: the configured ones
(``RateLimiter``) and the ones the provider announces in its reply headers (``HeaderPacer``).

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
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from judgeflow.clients.rate_headers import RateLimitSnapshot


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


# --- pacing to the limits the provider announces ---------------------------------------------


class _Mirror:
    """A local copy of one of the provider's buckets (requests or tokens), kept in step with
    the ``remaining`` its replies report. ``level`` counts what this process has reserved,
    requests still waiting to be sent included, so it is a ledger of commitments."""

    __slots__ = ("limit", "rate", "level", "stamp", "floor", "reserved", "seen", "drift")

    def __init__(self) -> None:
        self.limit = 0  # 0: not known yet (no header seen): no pacing
        self.rate = 0.0
        self.level = 0.0
        self.stamp = 0.0
        self.floor = 0.0
        self.reserved = 0.0  # total reserved by this process, ever
        self.seen = -1.0  # ``reserved`` mark of the newest reply applied
        self.drift = 0.0  # sum of the corrections replies made (< 0: others used the account)

    def refill(self, now: float) -> None:
        if self.limit:
            self.level = min(float(self.limit), self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, amount: float, now: float, in_flight: float) -> tuple[float, float]:
        """Take ``amount``; return (seconds to wait, this reservation's mark). ``in_flight``
        (sent, not answered yet) is kept in reserve too: other workers have about as many
        under way, which no reply has shown yet (it matters when a full bucket runs out)."""
        self.refill(now)
        self.reserved += amount
        if not self.limit:
            return 0.0, self.reserved
        self.level -= min(amount, float(self.limit))
        short = self.floor + in_flight - self.level
        return (short / self.rate if short > 0 else 0.0), self.reserved

    def observe(self, limit: int, remaining: int, mark: float, sent_at: float, now: float, floor_share: float) -> None:
        """Mirror the server: its ``remaining`` when it admitted the request with ``mark``,
        less what was reserved here after that one."""
        if limit <= 0 or mark <= self.seen:
            return  # an older reply than one already applied says less about other workers
        known = limit == self.limit
        if not known:
            self.limit, self.rate = limit, limit / 60.0
            self.floor = max(1.0, floor_share * limit)
        self.refill(now)
        self.seen = mark
        later = self.reserved - mark
        # No refill is counted between the provider's admission and now: when it admitted the
        # request is not known (a loaded event loop sends late), and assuming "just now" errs
        # on the safe side by about ``rate * latency``, which only deepens the reserve.
        level = min(float(limit), remaining - later)
        if known and min(level, self.level) < self.floor:
            # only where requests wait: near a full bucket the ledger, which counts requests
            # not yet sent, refills up to the cap the provider's bucket cannot pass, and the
            # correction is no news about other workers
            self.drift += level - self.level
        self.level = level

    def extra_wait(self, drift_then: float) -> float:
        """Seconds a reservation made at ``drift_then`` must wait more because replies since
        then showed the account lower than this process's ledger (others used it)."""
        short = drift_then - self.drift
        return short / self.rate if short > 0 and self.rate else 0.0


@dataclass(slots=True)
class PaceTicket:
    """What ``HeaderPacer.acquire`` hands out: marks for matching the reply to the send."""

    request_mark: float
    token_mark: float
    sent_at: float
    request_drift: float = 0.0
    token_drift: float = 0.0
    tokens: float = 0.0
    sent: bool = False  # counted in flight until its reply is observed


class HeaderPacer:
    """Paces one provider account (provider, key, base URL) to the limits its replies announce.

    Every reply says the account's per-minute limit and what remains; the pacer mirrors both
    buckets (requests, tokens) locally, refills them at ``limit / 60`` per second as the
    provider does, and makes a request wait while sending it would take the account below a
    small reserve (``floor_share`` of the limit). The reserve costs no throughput (a bucket
    only wastes refill when it is full) and absorbs what other workers on the same key sent
    after the newest reply seen here, so several processes share one key with few 429s. A 429
    carries the same headers (remaining 0), so the pacer waits for the refill, not guesswork.

    Until the first reply nothing is known and nothing waits. Shared by every client and chunk
    of one process that uses the same account (``pacer_for``); thread-safe, since chunk tasks
    may run their event loops on different threads.
    """

    def __init__(self, *, floor_share: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.floor_share = floor_share
        self.requests = _Mirror()
        self.tokens = _Mirror()
        self.waited_s = 0.0
        self.in_flight = 0  # requests sent and not answered yet
        self._last_send_at = 0.0
        self.in_flight_tokens = 0.0

    def reserve(self, estimated_tokens: int) -> tuple[PaceTicket, float]:
        """Reserve one request of about ``estimated_tokens``; (ticket, seconds to wait)."""
        with self._lock:
            now = self._clock()
            wait_r, mark_r = self.requests.reserve(1.0, now, self.in_flight)
            wait_t, mark_t = self.tokens.reserve(float(estimated_tokens), now, self.in_flight_tokens)
            # first come, first sent: a later reservation never goes before an earlier one
            # (the reserve changes with what is in flight; an overtaken request would be
            # missing from the ``remaining`` that the later one's reply reports)
            wait = max(wait_r, wait_t, self._last_send_at - now)
            self._last_send_at = now + wait
            self.waited_s += wait
            ticket = PaceTicket(mark_r, mark_t, now + wait, self.requests.drift, self.tokens.drift,
                                float(estimated_tokens))
            return ticket, wait

    def _sent(self, ticket: PaceTicket) -> None:
        with self._lock:
            ticket.sent = True
            self.in_flight += 1
            self.in_flight_tokens += ticket.tokens

    def recheck(self, ticket: PaceTicket) -> float:
        """After a wait: more seconds to wait if replies meanwhile showed other workers using
        the account (the whole queue of waiting requests moves back by what they took)."""
        with self._lock:
            extra = max(self.requests.extra_wait(ticket.request_drift), self.tokens.extra_wait(ticket.token_drift))
            ticket.request_drift, ticket.token_drift = self.requests.drift, self.tokens.drift
            ticket.sent_at = self._clock() + extra
            self._last_send_at = max(self._last_send_at, ticket.sent_at)
            self.waited_s += extra
            return extra

    async def acquire(self, estimated_tokens: int) -> PaceTicket:
        ticket, wait = self.reserve(estimated_tokens)
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.recheck(ticket)
        self._sent(ticket)
        return ticket

    def observe(self, ticket: PaceTicket | None, snapshot: RateLimitSnapshot | None) -> None:
        """Bring the mirrors in step with a reply's headers (a success's or a 429's, or None
        when the attempt ended without headers): called once per sent ticket."""
        if ticket is None:
            return
        with self._lock:
            if ticket.sent:
                ticket.sent = False
                self.in_flight -= 1
                self.in_flight_tokens -= ticket.tokens
            if snapshot is None:
                return
            now = self._clock()
            s = snapshot
            if s.requests_limit and s.requests_remaining is not None:
                self.requests.observe(s.requests_limit, s.requests_remaining, ticket.request_mark,
                                      ticket.sent_at, now, self.floor_share)
            if s.tokens_limit and s.tokens_remaining is not None:
                self.tokens.observe(s.tokens_limit, s.tokens_remaining, ticket.token_mark,
                                    ticket.sent_at, now, self.floor_share)


_pacers: dict[tuple[str, str], HeaderPacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(url: str, api_key: str | None) -> HeaderPacer:
    """The one pacer of this process for the account behind (``url``, ``api_key``): every chunk
    task and client of a build that uses that account shares its budget. The key is kept only
    as a hash."""
    account = (url, hashlib.sha256((api_key or "").encode()).hexdigest())
    with _pacers_lock:
        pacer = _pacers.get(account)
        if pacer is None:
            pacer = _pacers[account] = HeaderPacer()
        return pacer
