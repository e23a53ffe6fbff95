"""The simulator's ``rate_limits`` mode: token buckets per key, 429 beyond them, the providers'
rate-limit headers on every reply. Bucket arithmetic runs on a fake clock (no timings)."""

from __future__ import annotations

import httpx

from judgeflow.simulator import Simulator
from judgeflow.simulator.config import RateLimits
from judgeflow.simulator.rate_limits import RateLimiter, go_duration, rfc3339


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def limiter() -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(clock=clock, wall=lambda: 1_800_000_000.0 + clock.t), clock


def test_requests_bucket_refills_continuously_and_refuses_beyond_it() -> None:
    lim, clock = limiter()
    cfg = RateLimits(rpm=60)
    admitted = [lim.admit(cfg, "k", anthropic=False, input_tokens=10, max_tokens=10) for _ in range(61)]
    assert [a.refused for a in admitted[:60]] == [None] * 60  # a full minute's limit at once
    refused = admitted[60]
    assert refused.refused == "requests" and refused.limit == 60
    assert abs(refused.retry_after_s - 1.0) < 1e-6  # one request comes back every second
    assert refused.headers["retry-after"] == "1" and refused.headers["x-ratelimit-remaining-requests"] == "0"
    clock.t += 0.5
    assert lim.admit(cfg, "k", anthropic=False, input_tokens=1, max_tokens=1).refused == "requests"
    clock.t += 0.5
    ok = lim.admit(cfg, "k", anthropic=False, input_tokens=1, max_tokens=1)
    assert ok.refused is None
    assert ok.headers["x-ratelimit-reset-requests"] == "1m0s"  # empty again: a minute to full


def test_tokens_count_prompt_and_max_tokens_at_openai_and_keys_are_separate() -> None:
    lim, _ = limiter()
    cfg = RateLimits(tpm=1000)
    first = lim.admit(cfg, "a", anthropic=False, input_tokens=300, max_tokens=300)
    assert first.headers["x-ratelimit-remaining-tokens"] == "400"
    assert "x-ratelimit-limit-requests" not in first.headers  # no rpm configured: no such headers
    second = lim.admit(cfg, "a", anthropic=False, input_tokens=300, max_tokens=300)
    assert second.refused == "tokens"
    assert lim.admit(cfg, "b", anthropic=False, input_tokens=300, max_tokens=300).refused is None
    shared = RateLimits(tpm=1000, scope="global")
    lim.admit(shared, "a", anthropic=False, input_tokens=300, max_tokens=300)
    lim.admit(shared, "b", anthropic=False, input_tokens=300, max_tokens=300)
    assert lim.admit(shared, "c", anthropic=False, input_tokens=300, max_tokens=300).refused == "tokens"


def test_per_key_limits_override_the_default() -> None:
    lim, _ = limiter()
    cfg = RateLimits(rpm=100, per_key={"small": {"rpm": 1}})
    assert lim.admit(cfg, "small", anthropic=False, input_tokens=1, max_tokens=1).refused is None
    assert lim.admit(cfg, "small", anthropic=False, input_tokens=1, max_tokens=1).refused == "requests"
    assert lim.admit(cfg, "other", anthropic=False, input_tokens=1, max_tokens=1).headers[
        "x-ratelimit-limit-requests"] == "100"


def test_anthropic_input_and_output_buckets_and_rfc3339_resets() -> None:
    lim, clock = limiter()
    cfg = RateLimits(rpm=10, tpm=600, output_tpm=120)
    a = lim.admit(cfg, "k", anthropic=True, input_tokens=60, max_tokens=100)
    h = a.headers
    assert h["anthropic-ratelimit-input-tokens-remaining"] == "540"
    assert h["anthropic-ratelimit-output-tokens-remaining"] == "20"
    # the most restrictive token bucket is the output one (20/120 left)
    assert h["anthropic-ratelimit-tokens-limit"] == "120" and h["anthropic-ratelimit-tokens-remaining"] == "20"
    # 100 output tokens refill at 2/s: full again in 50 s
    assert h["anthropic-ratelimit-output-tokens-reset"] == rfc3339(1_800_000_000.0 + clock.t + 50)
    assert lim.admit(cfg, "k", anthropic=True, input_tokens=60, max_tokens=100).refused == "tokens"
    lim.release(cfg, "k", anthropic=True, unused_output_tokens=90)  # the reply used 10 of 100
    assert lim.admit(cfg, "k", anthropic=True, input_tokens=60, max_tokens=100).refused is None


def test_duration_and_time_formats() -> None:
    assert [go_duration(s) for s in (0, 0.02, 1, 1.5, 59.911, 60, 360, 3723)] == [
        "0s", "20ms", "1s", "1.5s", "59.911s", "1m0s", "6m0s", "1h2m3s"]
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_every_reply_carries_the_headers_and_a_429_says_when_to_retry() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    with Simulator(rate_limits={"rpm": 2}) as sim:
        url = sim.openai_base_url + "/chat/completions"
        replies = [httpx.post(url, json=body, headers={"Authorization": "Bearer k"}) for _ in range(3)]
        other_key = httpx.post(url, json=body, headers={"Authorization": "Bearer k2"})
        anth = httpx.post(sim.anthropic_base_url + "/v1/messages", json=body,
                          headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
        stats = sim.stats()
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies] == ["1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "2" for r in replies)
    limited = replies[2]
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert other_key.status_code == 200  # another key is another account
    assert anth.status_code == 200 and anth.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert stats["rate_limited"] == 1 and stats["rate_admitted"] == 4


def test_off_by_default_no_headers() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    with Simulator() as sim:
        r = httpx.post(sim.openai_base_url + "/chat/completions", json=body, headers={"Authorization": "Bearer k"})
    assert r.status_code == 200 and not any("ratelimit" in k for k in r.headers)
