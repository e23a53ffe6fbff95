"""Pacing to the limits a provider announces: header parsing, the pacer's bucket mirror (fake
clock), and a burst against the simulator's ``rate_limits`` mode that counts 429s, not time."""

from __future__ import annotations

import asyncio

from judgeflow.clients.base import ClientError
from judgeflow.clients.fast_anthropic import FastAnthropicClient
from judgeflow.clients.fast_openai import FastOpenAIClient
from judgeflow.clients.limiter import HeaderPacer, pacer_for
from judgeflow.clients.rate_headers import (
    RateLimitSnapshot,
    parse_duration,
    parse_rfc3339,
    read_rate_limits,
)
from judgeflow.clients.resilient import ResilientClient
from judgeflow.clients.retry import RetryPolicy
from judgeflow.simulator import Simulator
from judgeflow.specs import Sampling


def test_openai_durations() -> None:
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1s") == 1.0
    assert parse_duration("20ms") == 0.02
    assert parse_duration("59.911s") == 59.911
    assert parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("7") == 7.0
    assert parse_duration("") is None and parse_duration("soon") is None and parse_duration("1x") is None


def test_rfc3339_times() -> None:
    assert parse_rfc3339("1970-01-01T00:01:00Z") == 60.0
    assert parse_rfc3339("1970-01-01T01:00:30+01:00") == 30.0
    assert parse_rfc3339("1970-01-01T00:00:00.5Z") == 0.5
    assert parse_rfc3339("1970-01-01T00:00:00") is None  # no zone: not RFC 3339
    assert parse_rfc3339("tomorrow") is None


def test_reading_both_providers_headers() -> None:
    openai = read_rate_limits({
        "x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "2999",
        "x-ratelimit-reset-requests": "20ms", "x-ratelimit-limit-tokens": "1000000",
        "x-ratelimit-remaining-tokens": "999500", "x-ratelimit-reset-tokens": "6m0s",
    })
    assert openai == RateLimitSnapshot(3000, 2999, 0.02, 1_000_000, 999_500, 360.0)
    anthropic = read_rate_limits({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "1970-01-01T00:00:12Z",
        "anthropic-ratelimit-tokens-limit": "80000", "anthropic-ratelimit-tokens-remaining": "100",
        "anthropic-ratelimit-tokens-reset": "1970-01-01T00:00:40Z",
    }, now=10.0)
    assert anthropic == RateLimitSnapshot(50, 0, 2.0, 80_000, 100, 30.0)
    assert read_rate_limits({"content-type": "application/json"}) is None


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_pacer_mirrors_the_remaining_a_reply_reports() -> None:
    clock = Clock()
    pacer = HeaderPacer(clock=clock, floor_share=0.1)
    first, wait = pacer.reserve(10)
    assert wait == 0.0  # nothing known yet: nothing waits
    second, _ = pacer.reserve(10)
    # the first reply: 60 RPM, 5 left after it (another worker took the rest); the second
    # request was reserved after it, so 4 are left here, and the reserve is 6 (10% of 60)
    pacer.observe(first, RateLimitSnapshot(requests_limit=60, requests_remaining=5))
    _, wait = pacer.reserve(10)  # 3 left: 3 short of the reserve, at 1 request/s
    assert abs(wait - 3.0) < 1e-9
    # an older reply than one applied changes nothing
    pacer.observe(first, RateLimitSnapshot(requests_limit=60, requests_remaining=60))
    _, wait = pacer.reserve(10)
    assert abs(wait - 4.0) < 1e-9
    # a newer reply (a 429's headers: nothing left) and the refill since it was sent
    pacer.observe(second, RateLimitSnapshot(requests_limit=60, requests_remaining=0))
    clock.t = 1.0
    _, wait = pacer.reserve(10)  # 0 - 2 later + 1 refilled - 1 now = -2: 8 short of the reserve
    assert abs(wait - 8.0) < 1e-9


def test_one_pacer_per_account_in_the_process() -> None:
    a = FastOpenAIClient(model="m", api_key="sk-one-account-key", base_url="http://h/v1")
    b = FastOpenAIClient(model="other", api_key="sk-one-account-key", base_url="http://h/v1")
    c = FastOpenAIClient(model="m", api_key="sk-another-account", base_url="http://h/v1")
    assert pacer_for(*a.rate_account) is pacer_for(*b.rate_account)
    assert pacer_for(*a.rate_account) is not pacer_for(*c.rate_account)


SAMPLING = Sampling(max_tokens=16)


async def _burst(clients: list[ResilientClient], n: int, concurrency: int) -> tuple[int, int]:
    """Send ``n`` requests spread over ``clients``; (answered, failed)."""
    sem = asyncio.Semaphore(concurrency)
    answered = failed = 0

    async def one(i: int) -> None:
        nonlocal answered, failed
        async with sem:
            try:
                await clients[i % len(clients)].complete(None, f"judge item {i}", sampling=SAMPLING)
                answered += 1
            except ClientError:
                failed += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    for client in clients:
        await client.aclose()
    return answered, failed


def _clients(sim: Simulator, n: int, *, paced: bool, anthropic: bool = False) -> list[ResilientClient]:
    policy = RetryPolicy(max_retries=50, base_delay_s=0.05, max_delay_s=0.5)
    out = []
    for _ in range(n):
        inner = (FastAnthropicClient(model="m", api_key="sim-key", base_url=sim.anthropic_base_url, concurrency=16)
                 if anthropic else
                 FastOpenAIClient(model="m", api_key="sim-key", base_url=sim.openai_base_url, concurrency=16))
        # one HeaderPacer per client stands for one worker process each
        out.append(ResilientClient(inner, policy=policy, pacer=HeaderPacer() if paced else None))
    return out


# 600 RPM: the first 600 go at once (a full bucket), the 40 beyond it wait for the refill
RPM, BURST = 600, 640


def test_paced_burst_gets_at_most_a_handful_of_429s_and_an_unpaced_one_many() -> None:
    with Simulator(rate_limits={"rpm": RPM}) as sim:
        answered, failed = asyncio.run(_burst(_clients(sim, 1, paced=True), BURST, 16))
        paced = sim.stats()
        sim.configure(rate_limits={"rpm": RPM, "tpm": 10_000_000})  # new limits: a full bucket again
        sim.reset_stats()
        u_answered, u_failed = asyncio.run(_burst(_clients(sim, 1, paced=False), BURST, 16))
        unpaced = sim.stats()
    assert (answered, failed) == (BURST, 0)
    assert (u_answered, u_failed) == (BURST, 0)
    assert paced.get("rate_limited", 0) <= 3, paced
    assert unpaced.get("rate_limited", 0) >= 20, unpaced


def test_two_workers_on_one_key_share_the_limit() -> None:
    with Simulator(rate_limits={"rpm": RPM}) as sim:
        answered, failed = asyncio.run(_burst(_clients(sim, 2, paced=True), BURST, 16))
        stats = sim.stats()
    assert (answered, failed) == (BURST, 0)
    assert stats.get("rate_limited", 0) <= 6, stats


def test_anthropic_headers_pace_too() -> None:
    with Simulator(rate_limits={"rpm": RPM}) as sim:
        answered, _ = asyncio.run(_burst(_clients(sim, 1, paced=True, anthropic=True), BURST, 16))
        stats = sim.stats()
    assert answered == BURST
    assert stats.get("rate_limited", 0) <= 3, stats
